//! The SMPC service end to end: three `secc party serve` processes on loopback, outside
//! clients (the library's and `secc infer`) sharing inputs with them. Concurrent
//! clients get the float IR's outputs, with the parties' memory flat; bad requests, clients that vanish, unpinned
//! client keys and a killed party each give a clear error while the service serves on.

mod common;

use common::*;
use secc_ir::lowered::mpc::Plan;
use secc_runtime::mpc::serve::client::ServiceClient;
use secc_runtime::mpc::serve::wire::{read_message, write_message, Reply, Request};
use secc_runtime::mpc::serve::{ClientLink, ServeError};
use secc_runtime::mpc::tls::{ClientTls, Identity, Pin};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Largest logit difference allowed on the digits CNN (as tests/mpc.rs).
const LOGIT_BOUND: f64 = 0.05;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Three serving parties, as processes; killed when dropped.
struct Service {
    dir: PathBuf,
    parties: Vec<Option<Child>>,
    clients: [SocketAddr; 3],
    /// The party keys' pins, or none for plain TCP.
    pins: Option<[Pin; 3]>,
    model_owner: usize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_key(path: &Path, identity: &Identity) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    f.write_all(identity.to_pem().as_bytes()).unwrap();
}

impl Service {
    /// Starts the three parties on `plan`: over TLS admitting the clients `client_pins`
    /// (any, if empty), or over plain TCP.
    fn start(tag: &str, plan: &Plan, tls: bool, client_pins: &[Pin]) -> Service {
        let dir = std::env::temp_dir().join(format!("secc-serve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("owner.plan"), plan.to_bytes()).unwrap();
        std::fs::write(dir.join("other.plan"), plan.weightless().to_bytes()).unwrap();
        let quoted = |v: Vec<String>| v.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut toml = format!(
            "parties = [{}]\nclients = [{}]\n",
            quoted(peer_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()),
            quoted(client_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()),
        );
        let pins = tls.then(|| {
            let ids = [Identity::generate(), Identity::generate(), Identity::generate()];
            for (i, id) in ids.iter().enumerate() {
                write_key(&dir.join(format!("p{i}.key")), id);
            }
            [ids[0].pin(), ids[1].pin(), ids[2].pin()]
        });
        if let Some(pins) = &pins {
            toml += &format!("pins = [{}]\n", quoted(pins.iter().map(|p| p.to_string()).collect()));
            if !client_pins.is_empty() {
                toml += &format!("client_pins = [{}]\n", quoted(client_pins.iter().map(|p| p.to_string()).collect()));
            }
        }
        std::fs::write(dir.join("parties.toml"), toml).unwrap();
        let clients = client_ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect::<Vec<_>>();
        let mut s = Service {
            dir,
            parties: vec![None, None, None],
            clients: clients.try_into().unwrap(),
            pins,
            model_owner: plan.roles.model_owner,
        };
        (0..3).for_each(|id| s.spawn(id));
        s
    }

    fn spawn(&mut self, id: usize) {
        let plan = if id == self.model_owner { "owner.plan" } else { "other.plan" };
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("p{id}.log"))).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_secc"));
        c.current_dir(&self.dir)
            .args(["party", "serve", plan, "--id", &id.to_string(), "--parties", "parties.toml"])
            .args(["--timeout", "3", "--request-timeout", "10"])
            .stdout(Stdio::null())
            .stderr(log);
        match self.pins {
            Some(_) => c.args(["--key", &format!("p{id}.key")]),
            None => c.arg("--insecure"),
        };
        self.parties[id] = Some(c.spawn().unwrap());
    }

    fn link(&self, identity: &Identity) -> ClientLink {
        match self.pins {
            Some(pins) => ClientLink::Tls(ClientTls::new(identity, pins).unwrap()),
            None => ClientLink::Plain,
        }
    }

    fn client(&self, identity: &Identity) -> Result<ServiceClient, ServeError> {
        ServiceClient::connect(self.clients, &self.link(identity), CLIENT_TIMEOUT)
    }

    /// Waits until a request of `xs` succeeds (the parties have met), and returns its outputs.
    fn ready(&self, identity: &Identity, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let start = Instant::now();
        loop {
            match self.client(identity).and_then(|mut c| c.infer(xs)) {
                Ok(y) => return y,
                Err(e) => assert!(start.elapsed() < Duration::from_secs(60), "the service never came up: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Each party's resident memory, in KiB.
    fn rss_kib(&self) -> [u64; 3] {
        [0, 1, 2].map(|id| {
            let pid = self.parties[id].as_ref().unwrap().id();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        })
    }

    /// What the parties wrote to standard error.
    fn logs(&self) -> String {
        (0..3).map(|i| std::fs::read_to_string(self.dir.join(format!("p{i}.log"))).unwrap_or_default()).collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for p in self.parties.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The digits CNN's plan, its test rows, and the float IR's outputs on them.
fn cnn() -> (Plan, Vec<Vec<f32>>, Vec<Vec<f64>>) {
    let (g, plan) = mpc_plan("cnn_tiny");
    let xs = samples(&g, "cnn_tiny", "test.csv");
    let want = xs.iter().map(|x| secc_ir::interp::run_graph(&g, x).unwrap()[0].to_f64_vec()).collect();
    let flat = xs.iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
    (plan, flat, want)
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    let worst = got.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
    assert!(worst <= LOGIT_BOUND, "{what}: logits off by {worst}: {got:?} vs {want:?}");
}

#[test]
fn eight_concurrent_clients_get_the_float_outputs_and_unpinned_clients_are_refused() {
    let (plan, xs, want) = cnn();
    let client_key = Identity::generate();
    let service = Service::start("load", &plan, true, &[client_key.pin()]);
    service.ready(&client_key, &xs[..1]);
    // 200 requests from 8 clients at once, then 800 more: every output right, and the
    // parties' memory flat over the 800.
    load(&service, &client_key, &xs, &want, 25);
    let early = service.rss_kib();
    load(&service, &client_key, &xs, &want, 100);
    let late = service.rss_kib();
    eprintln!("parties' resident memory after 200 requests: {early:?} KiB; after 800 more: {late:?} KiB");
    for id in 0..3 {
        assert!(late[id] <= early[id] + 8192, "party {id}'s memory grew from {} KiB to {} KiB", early[id], late[id]);
    }
    // Several rows in one request come back in order.
    let mut client = service.client(&client_key).unwrap();
    let y = client.infer(&xs[..5]).unwrap();
    for (r, y) in y.iter().enumerate() {
        assert_close(y, &want[r], &format!("row {r} of a 5-row request"));
    }
    // The parties serve the plan without its weights.
    assert_eq!(*client.plan(), plan.weightless());
    // A client key the parties do not pin is refused at the handshake, by name.
    let stranger = Identity::generate();
    let err = service.client(&stranger).and_then(|mut c| c.infer(&xs[..1])).expect_err("an unpinned client");
    assert!(err.to_string().contains("client_pins"), "{err}");
    // `secc infer` with a key file gives the same outputs, as CSV.
    write_key(&service.dir.join("client.key"), &client_key);
    std::fs::copy(model_dir("cnn_tiny").join("test.csv"), service.dir.join("x.csv")).unwrap();
    std::fs::write(service.dir.join("owner.plan"), plan.to_bytes()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_secc"))
        .current_dir(&service.dir)
        .args(["infer", "--parties", "parties.toml", "--input", "x.csv", "--key", "client.key"])
        .args(["--plan", "owner.plan", "-o", "y.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = secc_runtime::csv::read_csv(&service.dir.join("y.csv"), 10).unwrap();
    assert_eq!(got.len(), xs.len());
    for (r, (y, w)) in got.iter().zip(&want).enumerate() {
        assert_close(y, w, &format!("secc infer, row {r}"));
    }
    assert!(!service.logs().contains("panicked"), "{}", service.logs());
}

/// 8 clients at once, `per_client` one-sample requests each on its own connections;
/// every output within the bound of the float IR's.
fn load(service: &Service, key: &Identity, xs: &[Vec<f32>], want: &[Vec<f64>], per_client: usize) {
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                let mut client = service.client(key).unwrap();
                for i in 0..per_client {
                    let row = (t * per_client + i) % xs.len();
                    let y = client.infer(&xs[row..row + 1]).unwrap();
                    assert_close(&y[0], &want[row], &format!("client {t}, request {i} (row {row})"));
                }
            });
        }
    });
}

/// Opens a plain connection to a party's client port.
fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s
}

fn error_reply(s: &mut TcpStream) -> String {
    match read_message::<Reply>(s, 1 << 20) {
        Ok(Reply::Error(e)) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn bad_requests_and_vanishing_clients_get_clear_errors_while_others_are_served() {
    let (plan, xs, want) = cnn();
    let me = Identity::generate();
    let service = Service::start("bad", &plan, false, &[]);
    service.ready(&me, &xs[..1]);
    let len = xs[0].len();
    let infer =
        |id: [u8; 16], rows: u32, words: usize| Request::Infer { id, rows, s0: vec![1; words], s1: vec![2; words] };

    // Garbage instead of a message.
    let mut s = raw(service.clients[0]);
    s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let e = error_reply(&mut s);
    assert!(e.contains("not a secc SMPC service message"), "{e}");
    // A header announcing more than a request may hold: refused before it is sent.
    let mut s = raw(service.clients[1]);
    let mut header = b"SMPQ\x01\0\0\0".to_vec();
    header.extend_from_slice(&(1u64 << 40).to_le_bytes());
    s.write_all(&header).unwrap();
    let e = error_reply(&mut s);
    assert!(e.contains("over the limit"), "{e}");
    // Shares that do not fit the number of rows.
    let mut s = raw(service.clients[2]);
    write_message(&mut s, &infer([1; 16], 2, len)).unwrap();
    let e = error_reply(&mut s);
    assert!(e.contains("input shares for 2 samples"), "{e}");
    // Zero rows.
    write_message(&mut s, &infer([2; 16], 0, 0)).unwrap();
    let e = error_reply(&mut s);
    assert!(e.contains("0 samples in one request"), "{e}");

    // A client that reaches parties 0 and 1 but never party 2: both say party 2 lacks it.
    let mut conns: Vec<TcpStream> = (0..2).map(|p| raw(service.clients[p])).collect();
    for c in &mut conns {
        write_message(c, &infer([3; 16], 1, len)).unwrap();
    }
    for c in &mut conns {
        let e = error_reply(c);
        assert!(e.contains("party 2 did not receive this request"), "{e}");
    }
    // Clients that vanish: half a message, and a whole request whose answers nobody reads.
    let mut s = raw(service.clients[0]);
    let mut half = Vec::new();
    write_message(&mut half, &infer([4; 16], 1, len)).unwrap();
    s.write_all(&half[..half.len() / 2]).unwrap();
    drop(s);
    let gone: Vec<TcpStream> = (0..3)
        .map(|p| {
            let mut c = raw(service.clients[p]);
            write_message(&mut c, &infer([5; 16], 1, len)).unwrap();
            c
        })
        .collect();
    drop(gone);

    // Meanwhile and afterwards, a well-behaved client is served correctly.
    let mut client = service.client(&me).unwrap();
    for row in 0..3 {
        let y = client.infer(&xs[row..row + 1]).unwrap();
        assert_close(&y[0], &want[row], &format!("row {row} after the bad requests"));
    }
    // The client's own mistake is its error, before anything is sent.
    let e = client.infer(&[vec![0.0; 3]]).err().unwrap().to_string();
    assert!(e.contains("has 3 values; the model takes 64"), "{e}");
    // The commands say what is wrong with a parties file or an absent service.
    let secc = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_secc")).current_dir(&service.dir).args(args).output();
    let dead = [free_port(), free_port(), free_port()].map(|p| format!("\"127.0.0.1:{p}\""));
    std::fs::write(service.dir.join("no-clients.toml"), format!("parties = [{}]\n", dead.join(", "))).unwrap();
    let out =
        secc(&["party", "serve", "other.plan", "--id", "0", "--parties", "no-clients.toml", "--insecure"]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no client addresses"), "{err}");
    let toml = format!("parties = [{0}]\nclients = [{0}]\n", dead.join(", "));
    std::fs::write(service.dir.join("dead.toml"), toml).unwrap();
    std::fs::write(service.dir.join("x.csv"), "0\n").unwrap();
    let out = secc(&["infer", "--parties", "dead.toml", "--input", "x.csv", "--insecure"]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot reach party 0"), "{err}");
    assert!(!service.logs().contains("panicked"), "{}", service.logs());
}

#[test]
fn a_killed_party_fails_the_requests_in_flight_and_rejoins_without_restarting_the_others() {
    let (plan, xs, want) = cnn();
    let me = Identity::generate();
    let mut service = Service::start("kill", &plan, true, &[]);
    service.ready(&me, &xs[..1]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (errors, served) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (service, me, xs, stop) = (&service, &me, &xs, &stop);
                s.spawn(move || {
                    let (mut errors, mut served) = (Vec::new(), 0);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // After an error a client starts over with fresh connections.
                        match service.client(me).and_then(|mut c| c.infer(&xs[t..t + 1])) {
                            Ok(_) => served += 1,
                            Err(e) => {
                                errors.push(e.to_string());
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    (errors, served)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        service_kill(&service, 2);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let results: Vec<(Vec<String>, usize)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results.iter().flat_map(|r| r.0.clone()).collect::<Vec<_>>(), results.iter().map(|r| r.1).sum::<usize>())
    });
    assert!(served > 0, "nothing was served before the kill");
    assert!(!errors.is_empty(), "killing a party failed no request");
    for e in &errors {
        assert!(e.contains("party 2"), "every error names the lost party: {e}");
    }
    // Parties 0 and 1 keep running; party 2 comes back, and requests succeed again.
    service.parties[2].take().unwrap().wait().unwrap();
    service.spawn(2);
    let y = service.ready(&me, &xs[..2]);
    for r in 0..2 {
        assert_close(&y[r], &want[r], &format!("row {r} after the restart"));
    }
    for id in 0..2 {
        let p = service.parties[id].as_mut().unwrap();
        assert!(p.try_wait().unwrap().is_none(), "party {id} stopped");
    }
    let logs = service.logs();
    assert!(logs.contains("party 0: session 2 up") && logs.contains("party 1: session 2 up"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

/// Kills party `id` of a service shared with running clients (the child is killed
/// through its pid, since the clients hold the service by reference).
fn service_kill(service: &Service, id: usize) {
    let pid = service.parties[id].as_ref().unwrap().id();
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}
