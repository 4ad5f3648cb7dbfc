//! Benchmark of the SMPC and FHE services (release build, not a test):
//!
//!     cargo run --release --example bench_serve [-- --model cnn_tiny] [--seconds S]
//!         [--batch-window MS] [--max-batch N]
//!     cargo run --release --example bench_serve -- --fhe [--model dense_relu] [--seconds S]
//!
//! Compiles a testdata model, starts its three serving parties in this process (a
//! thread each, on loopback TLS, as `secc party serve` runs them), then runs 1, 8 and
//! 32 concurrent clients (`secc infer`'s client, one connection set each, one sample
//! per request) for `--seconds` each. Reports inferences per second and the p50/p99
//! latency of a request, next to a one-shot `run_local` (three parties started,
//! weights shared, one sample run) on the same plan.
//!
//! With `--fhe`: compiles the model (the digits dense net by default), serves it in this
//! process as `secc serve --fhe` does (plain HTTP on loopback, one worker), makes one
//! set of keys and uploads the server key, then runs 1, 8 and 32 concurrent clients
//! (`secc infer --server`'s client: encrypt, post, decrypt; one sample per request) for
//! `--seconds` each (at least one request per client).

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
    let fhe = std::env::args().any(|a| a == "--fhe");
    let model: String = arg("--model", if fhe { "dense_relu" } else { "cnn_tiny" }.to_string());
    let seconds: f64 = arg("--seconds", if fhe { 20.0 } else { 3.0 });
    let window: f64 = arg("--batch-window", 2.0);
    let max_batch: usize = arg("--max-batch", 64);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(&model);
    let g = secc_compiler::pipeline::import_float(&dir.join("model.onnx")).unwrap();
    let len = g.ty(g.inputs[0]).shape.numel();
    let calib = secc_runtime::csv::read_csv(&dir.join("calib.csv"), len).unwrap();
    let shape = g.ty(g.inputs[0]).shape.0.clone();
    let tensor = |r: &Vec<f32>| {
        vec![secc_ir::Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), r.clone()).unwrap())]
    };
    let tensors: Vec<Vec<secc_ir::Tensor>> = calib.iter().map(tensor).collect();
    let compiled = secc_compiler::pipeline::compile_float(g, &tensors, &Default::default()).unwrap();
    let xs = secc_runtime::csv::read_csv(&dir.join("test.csv"), len).unwrap();
    if fhe {
        let samples: Vec<_> = xs.iter().map(tensor).collect();
        return bench_fhe(&model, compiled.into_artifact(&format!("{model}.onnx"), tensors.len()), &samples, seconds);
    }
    let plan = compiled.mpc.unwrap();

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

    let one_shot = sorted(one_shot);
    println!("{model}: SMPC service, 3 parties in one process on loopback TLS, batch window {window} ms, max batch {max_batch}");
    println!("one-shot run_local (connect, share weights, run one sample): p50 {:.2} ms", pct(&one_shot, 0.5));
    table(seconds, |n, t| {
        let mut c = ServiceClient::connect(client_addrs, &link, Duration::from_secs(30)).unwrap();
        let mut i = t;
        let xs = &xs;
        move || {
            c.infer(&xs[i % xs.len()..i % xs.len() + 1]).unwrap();
            i += n;
        }
    });
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Runs 1, 8 and 32 concurrent clients for `seconds` each (each client makes at least one
/// request) and prints a row per count. `client(n, t)` makes client `t` of `n`: a
/// function that sends one request.
fn table<F: FnMut() + Send>(seconds: f64, client: impl Fn(usize, usize) -> F + Sync) {
    println!("| clients | inferences/s | p50 ms | p99 ms | vs 1 client |");
    println!("|---|---|---|---|---|");
    let mut base = None;
    for n in [1usize, 8, 32] {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(seconds);
        let lat: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|t| {
                    let client = &client;
                    s.spawn(move || {
                        let mut request = client(n, t);
                        let mut lat = Vec::new();
                        loop {
                            let start = Instant::now();
                            request();
                            lat.push(start.elapsed().as_secs_f64() * 1e3);
                            if Instant::now() >= deadline {
                                return lat;
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let throughput = lat.len() as f64 / start.elapsed().as_secs_f64();
        let lat = sorted(lat);
        let ratio = throughput / *base.get_or_insert(throughput);
        println!("| {n} | {throughput:.2} | {:.2} | {:.2} | {ratio:.1}x |", pct(&lat, 0.5), pct(&lat, 0.99));
    }
}

fn bench_fhe(model: &str, art: secc_ir::artifact::Artifact, xs: &[Vec<secc_ir::Tensor>], seconds: f64) {
    use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, CtValues};
    use secc_runtime::fhe::file::{decode_file, encode_file, Kind};
    use secc_runtime::fhe::serve::client::{FheClient, Transport};
    use secc_runtime::fhe::serve::server::{serve, ServeConfig, ServedModel};
    let spec = secc_ir::client_spec::ClientSpec::from_artifact(&art).unwrap();
    let data = std::env::temp_dir().join(format!("secc-bench-serve-{}", std::process::id()));
    let (listener, addr) = listener();
    let config = ServeConfig {
        data_dir: data.clone(),
        key_budget: 1 << 34,
        max_key_bytes: 1 << 32,
        queue: 256,
        workers: 1,
        deadline: Duration::from_secs(3600),
        tls: None,
    };
    let served = vec![ServedModel { id: model.to_string(), artifact: art }];
    std::thread::spawn(move || serve(served, listener, config));
    let t = Instant::now();
    let (ck, sk) = secc_runtime::fhe::keys::generate_keys(&spec.keys).unwrap();
    let keygen = t.elapsed();
    let key_id_in_file = [1u8; 16];
    std::fs::create_dir_all(&data).unwrap();
    let key_file = data.join("server.key");
    std::fs::write(&key_file, encode_file(Kind::ServerKey, &spec.artifact_digest, &key_id_in_file, &sk)).unwrap();
    drop(sk);
    let url = format!("http://{addr}");
    let client = || FheClient::new(&url, Transport::Plain, Duration::from_secs(3600)).unwrap();
    let start = Instant::now();
    while client().models().is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    let key_id = client().upload_key(model, &key_file).unwrap();
    println!(
        "{model}: FHE service in this process on loopback HTTP, one worker; {} bootstraps per inference on {}; keygen {:.1} s, server key upload {:.1} s ({} MB)",
        spec.pbs,
        spec.keys.name(),
        keygen.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&key_file).unwrap().len() >> 20
    );
    table(seconds, |n, t| {
        let c = client();
        let mut i = t;
        let (spec, ck, key_id) = (&spec, &ck, &key_id);
        move || {
            let cts = vec![encrypt_sample(spec, ck, &xs[i % xs.len()]).unwrap()];
            let body = encode_file(Kind::Ciphertexts, &spec.artifact_digest, &key_id_in_file, &cts);
            let reply = c.infer(model, key_id, &body).unwrap();
            let (values, _): (Vec<CtValues>, _) =
                decode_file(&reply, "reply", Kind::Ciphertexts, &spec.artifact_digest, Some(&key_id_in_file)).unwrap();
            decrypt_sample(spec, ck, &values[0]).unwrap();
            i += n;
        }
    });
    let _ = std::fs::remove_dir_all(&data);
}
