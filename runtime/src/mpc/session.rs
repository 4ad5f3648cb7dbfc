//! A party's whole session (connect, set up, run the plan `repeat` times, report), and
//! the three parties of a session on loopback (over TLS with throwaway identities), each in its own thread with its own
//! sockets, as `secc run --backend mpc`, the tests and the benchmark use them.

use super::exec::run_plan;
use super::net::{Net, Security, Traffic};
use super::party::Party;
use super::tls::{Identity, Tls};
use super::MpcError;
use secc_ir::lowered::mpc::Plan;
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// What one party did.
#[derive(Clone, Debug)]
pub struct PartyReport {
    /// The party.
    pub id: usize,
    /// The outputs, one row per sample (the receiver only).
    pub outputs: Option<Vec<Vec<f32>>>,
    /// Traffic of the set-up round (seeds and batch size).
    pub setup: Traffic,
    /// Traffic and time of each run of the plan.
    pub runs: Vec<(Traffic, Duration)>,
}

/// How one party takes part in a session.
#[derive(Clone)]
pub struct PartyConfig {
    /// The party: 0, 1 or 2.
    pub id: usize,
    /// The three parties' addresses, in party order.
    pub addrs: [SocketAddr; 3],
    /// TLS or plain TCP.
    pub security: Security,
    /// How long to wait on a silent peer.
    pub timeout: Duration,
    /// Runs of the plan in the session; the parties check they agree on it.
    pub repeat: usize,
}

/// Runs one party of a session: listens on `listener`, connects to the others, and
/// runs `plan` `config.repeat` times on `samples` (the data owner's only).
pub fn run_party(
    plan: &Plan,
    listener: TcpListener,
    config: &PartyConfig,
    samples: Option<&[Vec<f32>]>,
) -> Result<PartyReport, MpcError> {
    let id = config.id;
    let len: usize = plan.input_shape.iter().product();
    let out_len: usize = plan.output_shape.iter().product();
    if id == plan.roles.data_owner && samples.is_none() {
        return Err(MpcError::Setup(format!("party {id} is the data owner: it needs the input samples")));
    }
    if let Some(bad) = samples.and_then(|s| s.iter().position(|r| r.len() != len)) {
        return Err(MpcError::Setup(format!("sample {} has the wrong length; the model takes {len} values", bad + 1)));
    }
    let repeat = config.repeat.max(1);
    // The parties must run the same plan (up to the weights only the model owner
    // holds) the same number of times; each hashes both into its hello.
    let terms: [u8; 32] = Sha256::new_with_prefix(plan.weightless().to_bytes())
        .chain_update((repeat as u64).to_le_bytes())
        .finalize()
        .into();
    let mut net = Net::connect(id, listener, &config.addrs, &config.security, config.timeout, &terms)?;
    let batch = samples.map_or(0, |s| s.len());
    let (mut party, batch) = match Party::setup_on(&mut net, plan.roles.data_owner, batch) {
        Ok((prg, batch)) => (Party::new(net, prg), batch),
        Err(e) => return Err(abort(&mut net, e)),
    };
    let setup = party.traffic();
    let flat: Option<Vec<f32>> = samples.map(|s| s.concat());
    let mut runs = Vec::new();
    let mut outputs = None;
    for _ in 0..repeat {
        let (before, start) = (party.traffic(), Instant::now());
        let out = match run_plan(&mut party, plan, flat.as_deref(), batch) {
            Ok(out) => out,
            Err(e) => return Err(abort(&mut party.net, e)),
        };
        runs.push((party.traffic().since(&before), start.elapsed()));
        outputs = out.map(|v| v.chunks(out_len).map(|r| r.iter().map(|&x| x as f32).collect()).collect());
    }
    Ok(PartyReport { id, outputs, setup, runs })
}

/// Tells the remaining peer which party was lost before returning `e`.
pub(crate) fn abort(net: &mut Net, e: MpcError) -> MpcError {
    if let Some(lost) = e.lost_party() {
        net.abort(lost);
    }
    e
}

/// Three parties pinned to each other with throwaway identities, for a session whose
/// parties all live in this process.
pub fn fresh_tls() -> [Security; 3] {
    let ids = [Identity::generate(), Identity::generate(), Identity::generate()];
    let pins = [ids[0].pin(), ids[1].pin(), ids[2].pin()];
    [0, 1, 2].map(|p| Security::Tls(Tls::new(p, &ids[p], pins).expect("an identity matches its own pin")))
}

/// Runs the three parties of a session on loopback over TLS, each on its own thread
/// and sockets; the model owner's plan holds the weights, the others' do not. Returns
/// the three reports, or the first party's error that is not just a consequence of
/// another party stopping.
pub fn run_local(
    plan: &Plan,
    samples: &[Vec<f32>],
    timeout: Duration,
    repeat: usize,
) -> Result<[PartyReport; 3], MpcError> {
    run_local_with(plan, samples, fresh_tls(), timeout, repeat)
}

/// [`run_local`] with the given link security for each party.
pub fn run_local_with(
    plan: &Plan,
    samples: &[Vec<f32>],
    security: [Security; 3],
    timeout: Duration,
    repeat: usize,
) -> Result<[PartyReport; 3], MpcError> {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| MpcError::Setup(format!("cannot listen on loopback: {e}")))?;
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<_, _>>()
        .map_err(|e| MpcError::Setup(format!("cannot listen on loopback: {e}")))?;
    let addrs: [SocketAddr; 3] = addrs.try_into().expect("three listeners");
    let configs = security.map(|security| PartyConfig { id: 0, addrs, security, timeout, repeat });
    let configs = [0, 1, 2].map(|id| PartyConfig { id, ..configs[id].clone() });
    let results = run_parties(plan, samples, listeners, &configs);
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(rep) => reports.push(rep),
            Err(e) => errors.push(e),
        }
    }
    if let Some(root) =
        errors.iter().position(|e| !matches!(e, MpcError::PeerClosed { .. } | MpcError::PeerAborted { .. }))
    {
        return Err(errors.swap_remove(root));
    }
    if let Some(e) = errors.pop() {
        return Err(e);
    }
    Ok(reports.try_into().expect("three reports"))
}

/// Runs the three parties of `configs` (in party order) on their own threads, each
/// listening on its listener, and returns each party's result.
pub fn run_parties(
    plan: &Plan,
    samples: &[Vec<f32>],
    listeners: Vec<TcpListener>,
    configs: &[PartyConfig; 3],
) -> Vec<Result<PartyReport, MpcError>> {
    let weightless = plan.weightless();
    std::thread::scope(|s| {
        let handles: Vec<_> = listeners
            .into_iter()
            .zip(configs)
            .map(|(l, config)| {
                let id = config.id;
                let plan = if id == plan.roles.model_owner { plan } else { &weightless };
                let input = (id == plan.roles.data_owner).then_some(samples);
                s.spawn(move || run_party(plan, l, config, input))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("party threads do not panic")).collect()
    })
}
