//! An outside client of the SMPC service: one connection to each party, the plan
//! checked to be the same at all three, inputs shared, outputs reconstructed.

use super::super::net::configure;
use super::super::piecewise::encode;
use super::wire::{read_message, write_message, Reply, Request, RequestId, WireError};
use super::{ClientLink, ServeError, Stream, MAX_REQUEST_ROWS};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secc_ir::lowered::fixed::decode_fixed;
use secc_ir::lowered::mpc::Plan;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest plan a client accepts from a party.
const MAX_PLAN_BYTES: u64 = 256 << 20;

/// A client connected to the three parties.
pub struct ServiceClient {
    links: Links,
    plan: Plan,
    rng: ChaCha20Rng,
}

/// The connections to the three parties, in party order.
struct Links {
    conns: Vec<Box<dyn Stream>>,
    addrs: [SocketAddr; 3],
    timeout: Duration,
    /// A connection failed: the replies still due on the others would be read as the
    /// next request's, so none is sent.
    broken: bool,
}

impl ServiceClient {
    /// Connects to the parties' client addresses `addrs` (in party order), fetches
    /// the plan from each and checks that all three serve the same one. A party that
    /// sends nothing for `timeout` fails the call.
    pub fn connect(addrs: [SocketAddr; 3], link: &ClientLink, timeout: Duration) -> Result<ServiceClient, ServeError> {
        let mut conns = Vec::new();
        for (party, addr) in addrs.iter().enumerate() {
            let refused = |reason: String| ServeError::Connect { party, addr: addr.to_string(), reason };
            let socket = TcpStream::connect_timeout(addr, timeout).map_err(|e| refused(e.to_string()))?;
            configure(&socket, timeout).map_err(|e| refused(e.to_string()))?;
            conns.push(match link {
                ClientLink::Plain => Box::new(socket) as Box<dyn Stream>,
                ClientLink::Tls(tls) => {
                    let c = tls.client(party).map_err(|e| refused(e.to_string()))?;
                    Box::new(rustls::StreamOwned::new(c, socket))
                }
            });
        }
        let mut links = Links { conns, addrs, timeout, broken: false };
        let mut plans = Vec::new();
        for party in 0..3 {
            links.send(party, &Request::Plan)?;
            match links.receive(party, MAX_PLAN_BYTES)? {
                Reply::Plan(bytes) => plans.push(bytes),
                other => return Err(links.unexpected(party, other)),
            }
        }
        if plans[0] != plans[1] || plans[0] != plans[2] {
            return Err(ServeError::Disagree("the three parties serve different plans".into()));
        }
        let plan = Plan::from_bytes(&plans[0]).map_err(|e| ServeError::Link {
            party: 0,
            addr: addrs[0].to_string(),
            reason: format!("its plan: {e}"),
        })?;
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        Ok(ServiceClient { links, plan, rng: ChaCha20Rng::from_seed(seed) })
    }

    /// The weightless plan the parties serve.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The outputs of the plan on `samples` (one row each), computed by the parties
    /// on shares; large inputs go as several requests. After an error that names a
    /// connection ([`ServeError::Link`]), connect again.
    pub fn infer(&mut self, samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, ServeError> {
        if self.links.broken {
            return Err(ServeError::Broken);
        }
        let len: usize = self.plan.input_shape.iter().product();
        if let Some(bad) = samples.iter().position(|r| r.len() != len) {
            return Err(ServeError::Input(format!(
                "sample {} has {} values; the model takes {len}",
                bad + 1,
                samples[bad].len()
            )));
        }
        let mut out = Vec::with_capacity(samples.len());
        for chunk in samples.chunks(MAX_REQUEST_ROWS) {
            out.extend(self.infer_request(chunk)?);
        }
        Ok(out)
    }

    fn infer_request(&mut self, samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, ServeError> {
        let f = self.plan.frac_bits;
        let x: Vec<u64> = samples.iter().flatten().map(|&v| encode(v as f64, f)).collect();
        // x = x0 + x1 + x2 with x1, x2 uniform: any two slots are independent of x.
        let x1: Vec<u64> = (0..x.len()).map(|_| self.rng.next_u64()).collect();
        let x2: Vec<u64> = (0..x.len()).map(|_| self.rng.next_u64()).collect();
        let x0: Vec<u64> = x.iter().zip(&x1).zip(&x2).map(|((x, a), b)| x.wrapping_sub(*a).wrapping_sub(*b)).collect();
        let slots = [x0, x1, x2];
        let mut id: RequestId = [0; 16];
        self.rng.fill_bytes(&mut id);
        let rows = samples.len();
        // Party 0 schedules the request once it holds it: send it there last, so the
        // other two rarely wait for it.
        for party in (0..3).rev() {
            let request =
                Request::Infer { id, rows: rows as u32, s0: slots[party].clone(), s1: slots[(party + 1) % 3].clone() };
            self.links.send(party, &request)?;
        }
        let out_len: usize = self.plan.output_shape.iter().product();
        // Two slots of every output word, with room for several outputs.
        let limit = (64 * rows * out_len.max(1) + 1024) as u64;
        let mut shares = Vec::new();
        let mut first_error = None;
        for party in 0..3 {
            match self.links.receive(party, limit) {
                Ok(Reply::Outputs(o)) => shares.push(o),
                Ok(other) => {
                    first_error.get_or_insert(self.links.unexpected(party, other));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let revealed = reconstruct(&shares, rows, f)?;
        // The model's tail is the receiver's: here, the client's.
        Ok(revealed
            .into_iter()
            .map(|y| {
                let y = self.plan.finish_outputs(y.into_iter().map(f64::from).collect());
                y.into_iter().map(|v| v as f32).collect()
            })
            .collect())
    }
}

impl Links {
    fn send(&mut self, party: usize, request: &Request) -> Result<(), ServeError> {
        write_message(&mut self.conns[party], request).map_err(|e| self.link(party, WireError::Io(e)))
    }

    fn receive(&mut self, party: usize, limit: u64) -> Result<Reply, ServeError> {
        read_message(&mut self.conns[party], limit).map_err(|e| self.link(party, e))
    }

    fn link(&mut self, party: usize, e: WireError) -> ServeError {
        self.broken = true;
        ServeError::Link { party, addr: self.addrs[party].to_string(), reason: self.reason(e) }
    }

    fn unexpected(&self, party: usize, reply: Reply) -> ServeError {
        match reply {
            Reply::Error(reason) => ServeError::Refused { party, reason },
            _ => ServeError::Link { party, addr: self.addrs[party].to_string(), reason: "an unexpected reply".into() },
        }
    }

    fn reason(&self, e: WireError) -> String {
        match &e {
            WireError::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                format!("no reply within {:.1} s", self.timeout.as_secs_f64())
            }
            WireError::Io(io) if io.kind() == ErrorKind::UnexpectedEof => "it closed the connection".into(),
            WireError::Io(io) => tls_reason(io).unwrap_or_else(|| io.to_string()),
            e => e.to_string(),
        }
    }
}

/// A TLS failure, in words that say what to check.
fn tls_reason(e: &std::io::Error) -> Option<String> {
    use rustls::AlertDescription as A;
    Some(match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(A::BadCertificate | A::CertificateUnknown | A::AccessDenied) => {
            "it refused this client's certificate (is its pin in the parties file's client_pins?)".into()
        }
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            format!("TLS: invalid party certificate: {}", other.0)
        }
        e => format!("TLS: {e}"),
    })
}

/// Adds up the parties' slots: party `i` sent slots `i` and `i + 1` of each output.
/// The two copies of each slot must agree; they do not if the parties ran different
/// batches or different plans.
fn reconstruct(shares: &[Vec<(Vec<u64>, Vec<u64>)>], rows: usize, f: u32) -> Result<Vec<Vec<f32>>, ServeError> {
    let outputs = shares[0].len();
    if shares.iter().any(|s| s.len() != outputs) || outputs == 0 {
        return Err(ServeError::Disagree("the parties sent different numbers of outputs".into()));
    }
    let mut per_output = Vec::new();
    for (k, a) in shares[0].iter().enumerate() {
        let (b, c) = (&shares[1][k], &shares[2][k]);
        let n = a.0.len();
        if [a.1.len(), b.0.len(), b.1.len(), c.0.len(), c.1.len()].iter().any(|&l| l != n) || n % rows != 0 {
            return Err(ServeError::Disagree(format!("output {k}: shares of different lengths")));
        }
        if a.1 != b.0 || b.1 != c.0 || c.1 != a.0 {
            return Err(ServeError::Disagree(format!("output {k}: the copies of its shares differ")));
        }
        let y: Vec<f32> =
            (0..n).map(|e| decode_fixed(a.0[e].wrapping_add(b.0[e]).wrapping_add(c.0[e]) as i64, f) as f32).collect();
        per_output.push(y);
    }
    Ok((0..rows)
        .map(|r| {
            per_output
                .iter()
                .flat_map(|y| {
                    let each = y.len() / rows;
                    y[r * each..(r + 1) * each].iter().copied()
                })
                .collect()
        })
        .collect())
}
