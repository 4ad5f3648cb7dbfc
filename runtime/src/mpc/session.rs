//! A party's whole session (connect, set up, run the plan `repeat` times, report), and
//! the three parties of a session on loopback, each in its own thread with its own
//! sockets, as `secc run --backend mpc`, the tests and the benchmark use them.

use super::exec::run_plan;
use super::net::{Net, Traffic};
use super::party::Party;
use super::MpcError;
use secc_ir::lowered::mpc::Plan;
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

/// Runs party `id` of a session: listens on `listener`, connects to the others at
/// `addrs`, and runs `plan` `repeat` times on `samples` (the data owner's only).
pub fn run_party(
    id: usize,
    plan: &Plan,
    listener: TcpListener,
    addrs: &[SocketAddr; 3],
    timeout: Duration,
    samples: Option<&[Vec<f32>]>,
    repeat: usize,
) -> Result<PartyReport, MpcError> {
    let len: usize = plan.input_shape.iter().product();
    let out_len: usize = plan.output_shape.iter().product();
    if id == plan.roles.data_owner && samples.is_none() {
        return Err(MpcError::Setup(format!("party {id} is the data owner: it needs the input samples")));
    }
    if let Some(bad) = samples.and_then(|s| s.iter().position(|r| r.len() != len)) {
        return Err(MpcError::Setup(format!("sample {} has the wrong length; the model takes {len} values", bad + 1)));
    }
    let mut net = Net::connect(id, listener, addrs, timeout)?;
    let batch = samples.map_or(0, |s| s.len());
    let (mut party, batch) = match Party::setup_on(&mut net, plan.roles.data_owner, batch) {
        Ok((prg, batch)) => (Party::new(net, prg), batch),
        Err(e) => return Err(abort(&mut net, e)),
    };
    let setup = party.traffic();
    let flat: Option<Vec<f32>> = samples.map(|s| s.concat());
    let mut runs = Vec::new();
    let mut outputs = None;
    for _ in 0..repeat.max(1) {
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
fn abort(net: &mut Net, e: MpcError) -> MpcError {
    if let Some(lost) = e.lost_party() {
        net.abort(lost);
    }
    e
}

/// Runs the three parties of a session on loopback, each on its own thread and
/// sockets; the model owner's plan holds the weights, the others' do not. Returns the
/// three reports, or the first party's error that is not just a consequence of
/// another party stopping.
pub fn run_local(
    plan: &Plan,
    samples: &[Vec<f32>],
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
    let weightless = plan.weightless();
    let results: Vec<Result<PartyReport, MpcError>> = std::thread::scope(|s| {
        let handles: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(id, l)| {
                let plan = if id == plan.roles.model_owner { plan } else { &weightless };
                let input = (id == plan.roles.data_owner).then_some(samples);
                s.spawn(move || run_party(id, plan, l, &addrs, timeout, input, repeat))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("party threads do not panic")).collect()
    });
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
