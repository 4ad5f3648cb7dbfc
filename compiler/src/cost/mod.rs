//! The cost model: how long one private inference takes under each backend, predicted
//! from the compiled program ([`fhe`]: the TFHE circuit; [`mpc`]: the SMPC plan) and
//! per-operation costs measured once on the machine ([`machine`]), for a [`Network`].
//!
//! `secc inspect` prints both predictions; `secc compile --backend auto` records the
//! predicted winner; `secc bench` sets them against measured times.

pub mod fhe;
pub mod machine;
pub mod mpc;

use secc_ir::artifact::{BackendChoice, PrivateBackend};
use std::fmt;

/// The link between the client and the FHE server, and between the SMPC parties.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    /// Its name in messages and `--network`.
    pub name: &'static str,
    /// Round-trip time added to every round of messages, in milliseconds.
    pub rtt_ms: f64,
    /// Bytes per second a link carries (infinite: free).
    pub bandwidth: f64,
}

impl Network {
    /// Every party on this machine: the measured per-round and per-byte costs of the
    /// stack (in [`machine::MachineCosts`]) are all a message costs.
    pub const LOOPBACK: Network = Network { name: "loopback", rtt_ms: 0.0, bandwidth: f64::INFINITY };
    /// A data-centre LAN: 0.2 ms round trip, 1 Gbit/s.
    pub const LAN: Network = Network { name: "LAN", rtt_ms: 0.2, bandwidth: 125e6 };
    /// A wide-area link: 40 ms round trip, 100 Mbit/s.
    pub const WAN: Network = Network { name: "WAN", rtt_ms: 40.0, bandwidth: 12.5e6 };
    /// All three, in the order `secc inspect` prints them.
    pub const ALL: [Network; 3] = [Network::LOOPBACK, Network::LAN, Network::WAN];

    /// Milliseconds to carry `bytes` over one link.
    pub fn transfer_ms(&self, bytes: u64) -> f64 {
        bytes as f64 / self.bandwidth * 1e3
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rtt_ms == 0.0 {
            return f.write_str(self.name);
        }
        write!(f, "{} ({} ms RTT, {} Mbit/s)", self.name, self.rtt_ms, self.bandwidth * 8.0 / 1e6)
    }
}

/// A predicted time, with the terms it adds up, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The sum of the terms.
    pub total_ms: f64,
    /// `(what, ms)`: the terms, for `secc inspect`.
    pub terms: Vec<(&'static str, f64)>,
    /// What makes it less certain (a cost extrapolated rather than measured).
    pub caveat: Option<String>,
}

impl Prediction {
    /// A prediction from its terms.
    pub fn of(terms: Vec<(&'static str, f64)>) -> Prediction {
        Prediction { total_ms: terms.iter().map(|t| t.1).sum(), terms, caveat: None }
    }
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_ms(self.total_ms))?;
        let parts: Vec<String> =
            self.terms.iter().filter(|t| t.1 > 0.0).map(|(w, ms)| format!("{w} {}", format_ms(*ms))).collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(" + "))?;
        }
        if let Some(c) = &self.caveat {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

/// A duration in milliseconds, as seconds from one second up (`0.142 ms`, `8.230 s`).
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.3} s", ms / 1e3)
    } else {
        format!("{ms:.3} ms")
    }
}

/// The faster backend on `network` given what each would cost (`Err`: why it cannot run
/// the model), with a reason naming both figures and the cost source. `None` when
/// neither backend can run it.
pub fn choose_backend(
    fhe: Result<&Prediction, &str>,
    mpc: Result<&Prediction, &str>,
    network: Network,
    source: &str,
) -> Option<BackendChoice> {
    let (backend, reason) = match (fhe, mpc) {
        (Ok(f), Ok(m)) => {
            let winner = if f.total_ms <= m.total_ms { PrivateBackend::Fhe } else { PrivateBackend::Mpc };
            let (fast, slow) = if winner == PrivateBackend::Fhe { (f, m) } else { (m, f) };
            let other = if winner == PrivateBackend::Fhe { "mpc" } else { "fhe" };
            (
                winner,
                format!(
                    "{winner}: {} vs {other} {} per inference on {network} ({:.1}x); costs: {source}",
                    format_ms(fast.total_ms),
                    format_ms(slow.total_ms),
                    slow.total_ms / fast.total_ms.max(1e-9)
                ),
            )
        }
        (Ok(f), Err(e)) => {
            (PrivateBackend::Fhe, format!("fhe: {} on {network}; no SMPC plan: {e}", format_ms(f.total_ms)))
        }
        (Err(e), Ok(m)) => {
            (PrivateBackend::Mpc, format!("mpc: {} on {network}; no TFHE circuit: {e}", format_ms(m.total_ms)))
        }
        (Err(_), Err(_)) => return None,
    };
    Some(BackendChoice { backend, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheaper_backend_wins_and_the_reason_says_by_how_much() {
        let f = Prediction::of(vec![("encrypt", 0.1)]);
        let m = Prediction::of(vec![("rounds", 1.0), ("bytes", 0.2)]);
        let c = choose_backend(Ok(&f), Ok(&m), Network::LAN, "defaults").unwrap();
        assert_eq!(c.backend, PrivateBackend::Fhe);
        assert!(c
            .reason
            .starts_with("fhe: 0.100 ms vs mpc 1.200 ms per inference on LAN (0.2 ms RTT, 1000 Mbit/s) (12.0x)"));
        let c = choose_backend(Err("max pooling"), Ok(&m), Network::LAN, "defaults").unwrap();
        assert_eq!(c.backend, PrivateBackend::Mpc);
        assert!(c.reason.contains("no TFHE circuit: max pooling"));
        assert!(choose_backend(Err("a"), Err("b"), Network::LAN, "d").is_none());
    }
}
