//! A serving party: a thread per client connection feeds a queue; the session thread
//! keeps the links to the other parties, shares the weights once per session, and
//! runs the queued requests in batches.
//!
//! Party 0 leads: it forms each batch and names its requests (id and rows) to the
//! others; every party then says which of them it holds (a client may have reached
//! only some parties), and the batch is the requests all three hold, in party 0's
//! order. When idle, party 0 still starts a round at least every second, so the
//! parties notice a lost peer and reconnect without waiting for a request.

use super::super::exec::{run_plan_on_shares, share_weights};
use super::super::net::{configure, Net, Security};
use super::super::party::{Party, MAX_BATCH};
use super::super::session::abort;
use super::super::share::{reshare, Shares};
use super::super::MpcError;
use super::wire::{read_message, write_message, Reply, Request, RequestId, WireError};
use super::{ClientAccess, Stream, MAX_REQUEST_ROWS};
use secc_ir::lowered::mpc::Plan;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The party that forms the batches.
const LEADER: usize = 0;
/// Requests queued at once; more are refused as busy rather than held without bound.
const MAX_QUEUED: usize = 4096;
/// Client connections open at once.
const MAX_CLIENTS: usize = 1024;
/// How long a client connection may sit idle between requests.
const CLIENT_IDLE: Duration = Duration::from_secs(120);

/// How a party serves.
#[derive(Clone)]
pub struct ServeConfig {
    /// The party: 0, 1 or 2.
    pub id: usize,
    /// The three parties' addresses for each other, in party order.
    pub addrs: [SocketAddr; 3],
    /// The links between parties.
    pub security: Security,
    /// The links to clients.
    pub clients: ClientAccess,
    /// How long to wait on a silent peer.
    pub timeout: Duration,
    /// How long party 0 holds the first request of a batch for others to join it.
    pub batch_window: Duration,
    /// Most samples in one batch (a larger single request runs alone).
    pub max_batch: usize,
    /// How long a request may wait for its result before the client is told so.
    pub request_timeout: Duration,
}

/// Serves clients on `clients` as party `config.id` of the service, meeting the other
/// parties on `peers`, until the process ends. Returns only if it cannot start.
pub fn serve_party(
    plan: &Plan,
    peers: TcpListener,
    clients: TcpListener,
    config: &ServeConfig,
) -> Result<std::convert::Infallible, MpcError> {
    let id = config.id;
    if id == plan.roles.model_owner && plan.weight_values.is_none() {
        return Err(MpcError::Setup(format!("party {id} is the model owner but its plan has no weights")));
    }
    let weightless = plan.weightless().to_bytes();
    // The parties must serve the same plan (up to the weights only the model owner holds).
    let terms: [u8; 32] = Sha256::new_with_prefix(b"secc serve").chain_update(&weightless).finalize().into();
    let queue = Arc::new(Queue::default());
    let gate = Gate {
        id,
        access: config.clients.clone(),
        plan: weightless,
        input_len: plan.input_shape.iter().product(),
        queue: queue.clone(),
        request_timeout: config.request_timeout,
        open: AtomicUsize::new(0),
    };
    std::thread::spawn(move || accept_clients(clients, Arc::new(gate)));
    let mut sessions = 0u64;
    loop {
        let listener = peers.try_clone().map_err(|e| MpcError::Setup(format!("cannot listen: {e}")))?;
        let net = match Net::connect(id, listener, &config.addrs, &config.security, config.timeout, &terms) {
            Ok(net) => net,
            Err(e) => {
                eprintln!("party {id}: no session yet ({e}); retrying");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        sessions += 1;
        eprintln!("party {id}: session {sessions} up");
        let mut batch = Vec::new();
        let e = run_session(net, plan, &queue, config, &mut batch);
        // The queued requests fail too: a restarted party does not hold them, so the
        // next session could not run them.
        let why = format!("party {id} lost its session with the other parties: {e}");
        for r in batch.drain(..).chain(queue.drain()) {
            let _ = r.reply.send(Reply::Error(why.clone()));
        }
        eprintln!("party {id}: session {sessions} ended ({e}); reconnecting");
    }
}

/// Runs batches on a fresh session until it fails; the requests of the batch in hand
/// when it does are left in `batch`. Returns what ended the session.
fn run_session(mut net: Net, plan: &Plan, queue: &Queue, config: &ServeConfig, batch: &mut Vec<Pending>) -> MpcError {
    // The batch size of the set-up round is unused: each batch names its own.
    let mut p = match Party::setup_on(&mut net, LEADER, 1) {
        Ok((prg, _)) => Party::new(net, prg),
        Err(e) => return abort(&mut net, e),
    };
    let weights = match share_weights(&mut p, plan) {
        Ok(w) => w,
        Err(e) => return abort(&mut p.net, e),
    };
    // How often an idle party 0 starts a round, and how long the others wait for a
    // named request to reach them: both well within the peers' timeout.
    let beat = (config.timeout / 4).min(Duration::from_secs(1));
    loop {
        if let Err(e) = run_batch(&mut p, plan, &weights, queue, config, beat, batch) {
            return abort(&mut p.net, e);
        }
    }
}

/// One batch: party 0 names it, all agree on the requests all three hold, the plan
/// runs on them, and each client gets this party's shares of its outputs.
fn run_batch(
    p: &mut Party,
    plan: &Plan,
    weights: &[Shares],
    queue: &Queue,
    config: &ServeConfig,
    beat: Duration,
    batch: &mut Vec<Pending>,
) -> Result<(), MpcError> {
    let id = p.id();
    let others = |words: Vec<u64>| -> [Vec<u64>; 3] {
        let mut s: [Vec<u64>; 3] = Default::default();
        (0..3).filter(|&q| q != id).for_each(|q| s[q] = words.clone());
        s
    };
    let from_others = |n: usize| -> [usize; 3] { [0, 1, 2].map(|q| if q == id { 0 } else { n }) };
    if id == LEADER {
        *batch = queue.next_batch(config.batch_window, config.max_batch, beat);
    }
    // Every party hears from both others each round, so an idle round still finds a lost peer.
    let got = p.net.round(others(vec![batch.len() as u64]), from_others(1))?;
    let n = if id == LEADER { batch.len() as u64 } else { got[LEADER][0] };
    if n > MAX_QUEUED as u64 {
        return Err(MpcError::Garbage { peer: LEADER, round: p.traffic().rounds, what: format!("a batch of {n}") });
    }
    let n = n as usize;
    if n == 0 {
        return Ok(());
    }
    let named: Vec<(RequestId, usize)> = if id == LEADER {
        let words = batch.iter().flat_map(|r| id_words(&r.id).into_iter().chain([r.rows as u64])).collect();
        p.net.round(others(words), [0; 3])?;
        batch.iter().map(|r| (r.id, r.rows)).collect()
    } else {
        let mut expect = [0; 3];
        expect[LEADER] = 3 * n;
        let got = p.net.round(Default::default(), expect)?;
        let named: Vec<(RequestId, usize)> =
            got[LEADER].chunks_exact(3).map(|c| (words_id([c[0], c[1]]), c[2] as usize)).collect();
        *batch = queue.take(&named, beat);
        named
    };
    // Which requests each party holds, with the rows party 0 named.
    let held: Vec<u64> =
        named.iter().map(|(rid, rows)| batch.iter().any(|r| r.id == *rid && r.rows == *rows) as u64).collect();
    let got = p.net.round(others(held.clone()), from_others(n))?;
    let holders =
        |k: usize| -> Vec<usize> { (0..3).filter(|&q| if q == id { held[k] == 1 } else { got[q][k] == 1 }).collect() };
    let mut run = Vec::new();
    for r in batch.drain(..) {
        let k = named.iter().position(|(rid, _)| *rid == r.id).expect("a party takes only named requests");
        let holders = holders(k);
        if holders.len() == 3 {
            run.push((k, r));
            continue;
        }
        let lacking: Vec<String> = (0..3).filter(|q| !holders.contains(q)).map(|q| q.to_string()).collect();
        let _ = r.reply.send(Reply::Error(format!(
            "party {} did not receive this request with the number of rows party 0 has (it may have restarted, \
             or the client did not reach it): nothing was run",
            lacking.join(" and party ")
        )));
    }
    if run.is_empty() {
        return Ok(());
    }
    // Party 0's order, so every party stacks the same rows in the same place.
    run.sort_by_key(|(k, _)| *k);
    batch.extend(run.into_iter().map(|(_, r)| r));
    let rows: usize = batch.iter().map(|r| r.rows).sum();
    let input = Shares::concat(&batch.iter().map(|r| &r.input).collect::<Vec<_>>());
    let outputs = run_plan_on_shares(p, plan, input, weights, rows)?;
    let outputs = fresh(p, outputs)?;
    let mut at = 0;
    for r in batch.drain(..) {
        let slices = outputs
            .iter()
            .map(|y| {
                let each = y.len() / rows;
                (y.s0[at * each..(at + r.rows) * each].to_vec(), y.s1[at * each..(at + r.rows) * each].to_vec())
            })
            .collect();
        at += r.rows;
        let _ = r.reply.send(Reply::Outputs(slices));
    }
    Ok(())
}

/// The same values, shared afresh (one resharing round for all of them): the client
/// gets all three slots of each output, which must then say nothing but the output,
/// whatever local steps produced them.
fn fresh(p: &mut Party, outputs: Vec<Shares>) -> Result<Vec<Shares>, MpcError> {
    let z: Vec<u64> = outputs.iter().flat_map(|y| y.s0.iter().copied()).collect();
    let all = reshare(p, z, false)?;
    let mut at = 0;
    Ok(outputs
        .iter()
        .map(|y| {
            at += y.len();
            all.slice(at - y.len()..at)
        })
        .collect())
}

fn id_words(id: &RequestId) -> [u64; 2] {
    [0, 8].map(|i| u64::from_le_bytes(id[i..i + 8].try_into().expect("8 bytes")))
}

fn words_id(w: [u64; 2]) -> RequestId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&w[0].to_le_bytes());
    id[8..].copy_from_slice(&w[1].to_le_bytes());
    id
}

/// A request waiting for its batch.
struct Pending {
    id: RequestId,
    rows: usize,
    input: Shares,
    arrived: Instant,
    reply: mpsc::Sender<Reply>,
}

/// The requests received and not yet in a batch, oldest first.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<Pending>>,
    changed: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(
        &self,
        q: std::sync::MutexGuard<'a, VecDeque<Pending>>,
        d: Duration,
    ) -> std::sync::MutexGuard<'a, VecDeque<Pending>> {
        self.changed.wait_timeout(q, d).unwrap_or_else(|e| e.into_inner()).0
    }

    /// Queues `r`, or says why not.
    fn push(&self, r: Pending) -> Result<(), String> {
        let mut q = self.lock();
        if q.len() >= MAX_QUEUED {
            return Err(format!("busy: {MAX_QUEUED} requests are queued; retry later"));
        }
        if q.iter().any(|p| p.id == r.id) {
            return Err("a request with this id is already queued".into());
        }
        q.push_back(r);
        self.changed.notify_all();
        Ok(())
    }

    /// Takes every queued request.
    fn drain(&self) -> Vec<Pending> {
        self.lock().drain(..).collect()
    }

    /// Drops request `id` if it is still queued (its client stopped waiting).
    fn remove(&self, id: &RequestId) {
        self.lock().retain(|p| p.id != *id);
    }

    /// Party 0's next batch: once a request is queued, waits until `window` after it
    /// arrived or until `max_rows` samples are queued, then takes the oldest requests
    /// that fit (at least one). Empty if no batch is due within `idle`.
    fn next_batch(&self, window: Duration, max_rows: usize, idle: Duration) -> Vec<Pending> {
        let idle_until = Instant::now() + idle;
        let mut q = self.lock();
        loop {
            let now = Instant::now();
            match q.front() {
                None if now >= idle_until => return Vec::new(),
                None => q = self.wait(q, idle_until - now),
                Some(first) => {
                    let due = first.arrived + window;
                    if now >= due || q.iter().map(|r| r.rows).sum::<usize>() >= max_rows {
                        break;
                    }
                    // A window longer than `idle` still lets the idle round go out.
                    if now >= idle_until {
                        return Vec::new();
                    }
                    q = self.wait(q, due.min(idle_until) - now);
                }
            }
        }
        let mut batch: Vec<Pending> = Vec::new();
        let mut rows = 0;
        while let Some(front) = q.front() {
            if !batch.is_empty() && rows + front.rows > max_rows {
                break;
            }
            rows += front.rows;
            batch.extend(q.pop_front());
        }
        batch
    }

    /// Takes the requests party 0 named, waiting up to `wait` for those not here yet
    /// (the client sends to the three parties one after the other).
    fn take(&self, named: &[(RequestId, usize)], wait: Duration) -> Vec<Pending> {
        let until = Instant::now() + wait;
        let mut q = self.lock();
        loop {
            let now = Instant::now();
            if now >= until || named.iter().all(|(id, _)| q.iter().any(|r| r.id == *id)) {
                break;
            }
            q = self.wait(q, until - now);
        }
        let mut taken = Vec::new();
        for (id, _) in named {
            if let Some(i) = q.iter().position(|r| r.id == *id) {
                taken.extend(q.remove(i));
            }
        }
        taken
    }
}

/// What the client connections share.
struct Gate {
    id: usize,
    access: ClientAccess,
    /// The weightless plan, as sent to clients.
    plan: Vec<u8>,
    input_len: usize,
    queue: Arc<Queue>,
    request_timeout: Duration,
    open: AtomicUsize,
}

fn accept_clients(listener: TcpListener, gate: Arc<Gate>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors, say: wait for connections to close rather than spin.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        if gate.open.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            gate.open.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let gate = gate.clone();
        std::thread::spawn(move || {
            serve_client(stream, &gate);
            gate.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Answers one client connection's requests, one after the other, until it closes.
fn serve_client(socket: TcpStream, gate: &Gate) {
    if configure(&socket, CLIENT_IDLE).is_err() {
        return;
    }
    let mut conn: Box<dyn Stream> = match &gate.access {
        ClientAccess::Plain => Box::new(socket),
        ClientAccess::Tls(tls) => match tls.server() {
            Ok(c) => Box::new(rustls::StreamOwned::new(c, socket)),
            Err(_) => return,
        },
    };
    // Two slots of every input word, and the rest of the message.
    let limit = (16 * gate.input_len * MAX_REQUEST_ROWS + 1024) as u64;
    loop {
        let reply = match read_message::<Request>(&mut conn, limit) {
            Ok(Request::Plan) => Reply::Plan(gate.plan.clone()),
            Ok(Request::Infer { id, rows, s0, s1 }) => infer(gate, id, rows as usize, Shares { s0, s1 }),
            // The client closed the connection, went quiet, or failed TLS (it hears that at its own end).
            Err(WireError::Io(_)) => return,
            Err(e) => {
                let _ = write_message(&mut conn, &Reply::Error(format!("party {}: {e}", gate.id)));
                return;
            }
        };
        if write_message(&mut conn, &reply).is_err() {
            return;
        }
    }
}

/// Queues a request and waits for its batch to run.
fn infer(gate: &Gate, id: RequestId, rows: usize, input: Shares) -> Reply {
    let len = gate.input_len;
    if rows == 0 || rows > MAX_REQUEST_ROWS.min(MAX_BATCH as usize) {
        return Reply::Error(format!("{rows} samples in one request: send 1 to {MAX_REQUEST_ROWS}"));
    }
    if input.s0.len() != rows * len || input.s1.len() != rows * len {
        return Reply::Error(format!(
            "{} and {} input shares for {rows} samples; the model takes {len} values per sample",
            input.s0.len(),
            input.s1.len()
        ));
    }
    let (tx, rx) = mpsc::channel();
    if let Err(why) = gate.queue.push(Pending { id, rows, input, arrived: Instant::now(), reply: tx }) {
        return Reply::Error(format!("party {}: {why}", gate.id));
    }
    match rx.recv_timeout(gate.request_timeout) {
        Ok(reply) => reply,
        Err(_) => {
            gate.queue.remove(&id);
            Reply::Error(format!(
                "party {}: no result within {:.1} s (are all three parties up?)",
                gate.id,
                gate.request_timeout.as_secs_f64()
            ))
        }
    }
}
