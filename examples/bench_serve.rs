//! Benchmark of the SMPC service (release build, not a test):
//!
//!     cargo run --release --example bench_serve [-- --model cnn_tiny] [--seconds S]
//!         [--batch-window MS] [--max-batch N]
//!
//! Compiles a testdata model, starts its three serving parties in this process (a
//! thread each, on loopback TLS, as `secc party serve` runs them), then runs 1, 8 and
//! 32 concurrent clients (`secc infer`'s client, one connection set each, one sample
//! per request) for `--seconds` each. Reports inferences per second and the p50/p99
//! latency of a request, next to a one-shot `run_local` (three parties started,
//! weights shared, one sample run) on the same plan.

use secc_runtime::mpc::net::Security;
use secc_runtime::mpc::serve::client::ServiceClient;
use secc_runtime::mpc::serve::party::{serve_party, ServeConfig};
use secc_runtime::mpc::serve::{ClientAccess, ClientLink};
use secc_runtime::mpc::session::run_local;
use secc_runtime::mpc::tls::{ClientGate, ClientTls, Identity, Tls};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a value")),
        None => default,
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn main() {
    let model: String = arg("--model", "cnn_tiny".to_string());
    let seconds: f64 = arg("--seconds", 3.0);
    let window: f64 = arg("--batch-window", 2.0);
    let max_batch: usize = arg("--max-batch", 64);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(&model);
    let g = secc_compiler::pipeline::import_float(&dir.join("model.onnx")).unwrap();
    let len = g.ty(g.inputs[0]).shape.numel();
    let calib = secc_runtime::csv::read_csv(&dir.join("calib.csv"), len).unwrap();
    let shape = g.ty(g.inputs[0]).shape.0.clone();
    let tensors: Vec<Vec<secc_ir::Tensor>> = calib
        .iter()
        .map(|r| {
            vec![secc_ir::Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), r.clone()).unwrap())]
        })
        .collect();
    let compiled = secc_compiler::pipeline::compile_float(g, &tensors, &Default::default()).unwrap();
    let plan = compiled.mpc.unwrap();
    let xs = secc_runtime::csv::read_csv(&dir.join("test.csv"), len).unwrap();

    let one_shot: Vec<f64> = (0..20)
        .map(|i| {
            let start = Instant::now();
            run_local(&plan, &xs[i % xs.len()..i % xs.len() + 1], Duration::from_secs(10), 1).unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();

    let ids = [Identity::generate(), Identity::generate(), Identity::generate()];
    let pins = [ids[0].pin(), ids[1].pin(), ids[2].pin()];
    let peers: Vec<(TcpListener, SocketAddr)> = (0..3).map(|_| listener()).collect();
    let clients: Vec<(TcpListener, SocketAddr)> = (0..3).map(|_| listener()).collect();
    let addrs: [SocketAddr; 3] = [peers[0].1, peers[1].1, peers[2].1];
    let client_addrs: [SocketAddr; 3] = [clients[0].1, clients[1].1, clients[2].1];
    for (id, ((peer, _), (client, _))) in peers.into_iter().zip(clients).enumerate() {
        let config = ServeConfig {
            id,
            addrs,
            security: Security::Tls(Tls::new(id, &ids[id], pins).unwrap()),
            clients: ClientAccess::Tls(ClientGate::new(&ids[id], Vec::new()).unwrap()),
            timeout: Duration::from_secs(10),
            batch_window: Duration::from_secs_f64(window / 1e3),
            max_batch,
            request_timeout: Duration::from_secs(30),
        };
        let plan = if id == plan.roles.model_owner { plan.clone() } else { plan.weightless() };
        std::thread::spawn(move || serve_party(&plan, peer, client, &config));
    }
    let me = Identity::generate();
    let link = ClientLink::Tls(ClientTls::new(&me, pins).unwrap());
    // Wait for the session.
    let start = Instant::now();
    while ServiceClient::connect(client_addrs, &link, Duration::from_secs(10))
        .and_then(|mut c| c.infer(&xs[..1]))
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "the parties did not meet");
        std::thread::sleep(Duration::from_millis(50));
    }

    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let one_shot = sorted(one_shot);
    println!("{model}: SMPC service, 3 parties in one process on loopback TLS, batch window {window} ms, max batch {max_batch}");
    println!("one-shot run_local (connect, share weights, run one sample): p50 {:.2} ms", pct(&one_shot, 0.5));
    println!("| clients | inferences/s | p50 ms | p99 ms | vs 1 client |");
    println!("|---|---|---|---|---|");
    let mut base = None;
    for n in [1usize, 8, 32] {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let lat: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|t| {
                    let (link, xs) = (&link, &xs);
                    s.spawn(move || {
                        let mut c = ServiceClient::connect(client_addrs, link, Duration::from_secs(30)).unwrap();
                        let mut lat = Vec::new();
                        let mut i = t;
                        while Instant::now() < deadline {
                            let start = Instant::now();
                            c.infer(&xs[i % xs.len()..i % xs.len() + 1]).unwrap();
                            lat.push(start.elapsed().as_secs_f64() * 1e3);
                            i += n;
                        }
                        lat
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let throughput = lat.len() as f64 / seconds;
        let lat = sorted(lat);
        let ratio = throughput / *base.get_or_insert(throughput);
        println!("| {n} | {throughput:.0} | {:.2} | {:.2} | {ratio:.1}x |", pct(&lat, 0.5), pct(&lat, 0.99));
    }
}
