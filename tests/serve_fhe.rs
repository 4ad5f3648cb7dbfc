//! The FHE service end to end: `secc serve --fhe` as a process on loopback, clients
//! (the library's, and `secc infer --server` with only the client spec) with real keys
//! on the smallest parameter set. Concurrent clients get the simulation's outputs, up
//! to a bootstrap reading the neighbouring table entry; bad requests, clients that
//! vanish, keys for another model, evicted keys and late requests each get a clear
//! error while the service serves on.

use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::artifact::Artifact;
use secc_ir::client_spec::ClientSpec;
use secc_ir::ops::round_shift;
use secc_ir::{Op, Tensor};
use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, CtValues};
use secc_runtime::fhe::file::{decode_file, encode_file, Kind};
use secc_runtime::fhe::keys::{generate_keys, ClientKey};
use secc_runtime::fhe::serve::client::{FheClient, Transport};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A compiled model with keys for it, on disk in `dir`.
struct Model {
    id: &'static str,
    art: Artifact,
    spec: ClientSpec,
    ck: ClientKey,
    file_key_id: [u8; 16],
    /// The uploaded form of the server key.
    server_key: PathBuf,
}

struct Fixture {
    dir: PathBuf,
    tiny: Model,
    other: Model,
    xs: Vec<Vec<Tensor>>,
}

/// Writes `art` as `dir/{id}.secc` with its client spec, keys and uploadable server key.
fn prepare(dir: &Path, id: &'static str, art: Artifact) -> Model {
    std::fs::write(dir.join(format!("{id}.secc")), art.to_bytes()).unwrap();
    let spec = ClientSpec::from_artifact(&art).unwrap();
    let (ck, sk) = generate_keys(&spec.keys).unwrap();
    let file_key_id = [id.len() as u8; 16];
    let server_key = dir.join(format!("{id}.server.key"));
    std::fs::write(&server_key, encode_file(Kind::ServerKey, &spec.artifact_digest, &file_key_id, &sk)).unwrap();
    Model { id, art, spec, ck, file_key_id, server_key }
}

/// Two models of three bootstraps each (a 3x3 dense layer and a sigmoid evaluated as a
/// table under encryption, 4-bit tables): the cheapest circuits that bootstrap. Their
/// keys (120 MB) live under cargo's test scratch directory, one folder per test process;
/// the folders of processes that have ended are removed here, as no test knows it is last.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(scratch).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("serve-fhe-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = scratch.join(format!("serve-fhe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sample = |k: usize| {
            let x: Vec<f32> = (0..3).map(|i| ((i * 7 + k * 5 + i * k) % 17) as f32 / 8.0 - 1.0).collect();
            vec![Tensor::F32(ndarray::ArrayD::from_shape_vec(vec![1, 3], x).unwrap())]
        };
        let model = |id: &'static str, weights: &str| {
            let text = format!(
                "graph \"{id}\" {{\n  %0 = input {{index=0}} : f32[1,3]  ; \"x\"\n  %1 = const {{value=f32[3,3] [{weights}]}} : f32[3,3]  ; \"w\"\n  %2 = matmul %0, %1 : f32[1,3]  ; \"fc\"\n  %3 = sigmoid %2 : f32[1,3]  ; \"out\"\n  return %3\n}}"
            );
            let g = secc_ir::parse_graph(&text).unwrap();
            let calib: Vec<_> = (0..40).map(sample).collect();
            let quant = QuantConfig { bits: 3, table_bits: 2, output_tables: true, ..QuantConfig::default() };
            let opts = secc_compiler::pipeline::Options { quant, ..Default::default() };
            let c = secc_compiler::pipeline::compile_float(g, &calib, &opts).unwrap();
            prepare(&dir, id, c.into_artifact(&format!("{id}.onnx"), calib.len()))
        };
        let tiny = model("tiny", "1.0, -0.5, 0.25, 0.5, 1.0, -1.0, -0.25, 0.75, 0.5");
        let other = model("other", "0.5, 0.5, -0.25, -1.0, 0.25, 1.0, 0.75, -0.5, 0.25");
        eprintln!(
            "{}: {} bootstraps on {}, server key {} MB",
            tiny.id,
            tiny.spec.pbs,
            tiny.spec.keys.name(),
            std::fs::metadata(&tiny.server_key).unwrap().len() >> 20
        );
        Fixture { dir, tiny, other, xs: (40..60).map(sample).collect() }
    })
}

/// The two models of the fixture.
const BOTH: &[&str] = &["tiny.secc", "other.secc"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `secc serve --fhe` process; killed when dropped.
struct Server {
    child: Child,
    url: String,
    port: u16,
    ca: Option<Vec<u8>>,
    log: PathBuf,
}

impl Server {
    /// Serves `models` (artifact files in the fixture's folder) with `extra` flags; over
    /// TLS with a fresh self-signed certificate for `localhost` when `tls`.
    fn start(tag: &str, models: &[&str], tls: bool, extra: &[&str]) -> Server {
        let f = fixture();
        let port = free_port();
        let data = f.dir.join(format!("data-{tag}"));
        let log = f.dir.join(format!("server-{tag}.log"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_secc"));
        c.current_dir(&f.dir)
            .args(["serve", "--fhe"])
            .args(models)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let (url, ca) = if tls {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
            std::fs::write(f.dir.join(format!("{tag}.cert.pem")), &cert_pem).unwrap();
            std::fs::write(f.dir.join(format!("{tag}.key.pem")), key_pem).unwrap();
            c.args(["--cert", &format!("{tag}.cert.pem"), "--key", &format!("{tag}.key.pem")]);
            (format!("https://localhost:{port}"), Some(cert_pem.into_bytes()))
        } else {
            c.arg("--insecure");
            (format!("http://127.0.0.1:{port}"), None)
        };
        let server = Server { child: c.spawn().unwrap(), url, port, ca, log };
        let start = Instant::now();
        while server.client().models().is_err() {
            assert!(start.elapsed() < TIMEOUT, "the server never came up: {}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn client(&self) -> FheClient {
        let transport = match &self.ca {
            Some(ca) => Transport::Tls(Some(ca.clone())),
            None => Transport::Plain,
        };
        FheClient::new(&self.url, transport, TIMEOUT).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        let mut s = self.raw();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// A plain connection (for the servers without TLS).
    fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Encrypts `x` for `m`, runs it on the server under `key_id`, decrypts.
fn infer(client: &FheClient, m: &Model, key_id: &str, x: &[Tensor]) -> Vec<f64> {
    let cts = vec![encrypt_sample(&m.spec, &m.ck, x).unwrap()];
    let body = encode_file(Kind::Ciphertexts, &m.spec.artifact_digest, &m.file_key_id, &cts);
    let reply = client.infer(m.id, key_id, &body).unwrap();
    let (values, _): (Vec<CtValues>, _) =
        decode_file(&reply, "reply", Kind::Ciphertexts, &m.spec.artifact_digest, Some(&m.file_key_id)).unwrap();
    decrypt_sample(&m.spec, &m.ck, &values[0]).unwrap()[0].to_f64_vec()
}

/// Checks `got` against the simulation: each output is the dequantized entry of its
/// table for the simulation's accumulator, or of a neighbouring index (approximate
/// rounding; tests/fhe.rs measures how often). Returns how many were neighbours.
fn check(m: &Model, x: &[Tensor], got: &[f64], what: &str) -> usize {
    let q = m.art.quantized.as_ref().unwrap();
    let env = secc_ir::interp::eval_all(q, x).unwrap();
    let v = m.spec.decrypted[0].value as usize;
    let Op::Lut(lut) = &q.nodes[v].op else { panic!("the output is a table") };
    let acc = env[q.nodes[v].inputs[0].index()].as_i64().unwrap();
    let entry = |d: i64| {
        let ints = acc.iter().enumerate().map(|(e, &a)| {
            let t = lut.table_for(e);
            t[(round_shift(a, lut.shift) - lut.base + d).clamp(0, t.len() as i64 - 1) as usize]
        });
        let t = Tensor::I64(ndarray::ArrayD::from_shape_vec(acc.shape(), ints.collect()).unwrap());
        secc_ir::interp::run_graph(&m.spec.decode, &[t]).unwrap()[0].to_f64_vec()
    };
    let (exact, below, above) = (entry(0), entry(-1), entry(1));
    let mut neighbours = 0;
    for (e, g) in got.iter().enumerate() {
        // Outputs through CSV are f32.
        let near = |w: &[f64]| (g - w[e]).abs() <= 1e-6 * w[e].abs().max(1.0);
        assert!(
            near(&exact) || near(&below) || near(&above),
            "{what}: output {e} = {g}, the simulation's {}",
            exact[e]
        );
        neighbours += !near(&exact) as usize;
    }
    neighbours
}

#[test]
fn two_hundred_requests_from_eight_clients_equal_the_simulation() {
    let f = fixture();
    let server = Server::start("load", BOTH, false, &[]);
    let client = server.client();
    let models = client.models().unwrap();
    assert_eq!(models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["tiny", "other"]);
    // The spec served is the one `compile --client-spec` writes: no weights.
    assert_eq!(client.client_spec("tiny").unwrap(), f.tiny.spec);
    let key_id = client.upload_key("tiny", &f.tiny.server_key).unwrap();
    // The same key again gets the same id.
    assert_eq!(client.upload_key("tiny", &f.tiny.server_key).unwrap(), key_id);
    let (per_client, clients) = (25, 8);
    let t = Instant::now();
    let neighbours: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (server, key_id) = (&server, &key_id);
                s.spawn(move || {
                    let client = server.client();
                    (0..per_client)
                        .map(|i| {
                            let row = (c * per_client + i) % f.xs.len();
                            let y = infer(&client, &f.tiny, key_id, &f.xs[row]);
                            check(&f.tiny, &f.xs[row], &y, &format!("client {c}, request {i}"))
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let lookups = per_client * clients * 3;
    eprintln!(
        "{} requests from {clients} clients in {:.1} s; {neighbours}/{lookups} outputs a rounding neighbour",
        per_client * clients,
        t.elapsed().as_secs_f64()
    );
    assert!(neighbours * 5 <= lookups, "{neighbours}/{lookups} outputs a rounding neighbour");
    let metrics = server.metrics();
    let served =
        format!("secc_requests_total{{route=\"/v1/models/{{id}}/infer\",status=\"200\"}} {}", per_client * clients);
    assert!(metrics.contains(&served), "{metrics}");
    assert!(metrics.contains("secc_keys_held 1\n") && metrics.contains("secc_queue_depth 0\n"), "{metrics}");
    let bootstraps = format!("secc_bootstraps_total {}\n", per_client * clients * 3);
    assert!(metrics.contains(&bootstraps), "{metrics}");

    // `secc infer --server`, twice at once, with nothing but a keys directory: each
    // fetches the spec; one set of keys is made and shared; outputs as the simulation's.
    let x_csv = f.dir.join("x.csv");
    let rows: Vec<Vec<f32>> = f.xs[..4].iter().map(|x| x[0].as_f32().unwrap().iter().copied().collect()).collect();
    std::fs::write(&x_csv, secc_runtime::csv::format_csv(&rows)).unwrap();
    let run_cli = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_secc"))
            .args(["infer", "--server", &server.url, "--model", "tiny", "--insecure", "--input"])
            .arg(&x_csv)
            .arg("--keys")
            .arg(f.dir.join("client-keys"))
            .arg("-o")
            .arg(f.dir.join(out))
            .output()
            .unwrap()
    };
    let outs = std::thread::scope(|s| {
        let a = s.spawn(|| run_cli("y1.csv"));
        let b = s.spawn(|| run_cli("y2.csv"));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for (k, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "secc infer {k}: {}", String::from_utf8_lossy(&out.stderr));
        let got = secc_runtime::csv::read_csv(&f.dir.join(format!("y{}.csv", k + 1)), 3).unwrap();
        for (r, y) in got.iter().enumerate() {
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            check(&f.tiny, &f.xs[r], &y, &format!("secc infer {k}, row {r}"));
        }
    }
    // A third run reuses the keys and the upload.
    let out = run_cli("y3.csv");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("making keys"), "{said}");
    assert!(server.metrics().contains("secc_keys_held 2\n"));
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Sends `head` (and `body`) on a plain connection and returns the status and reply.
fn send(server: &Server, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = server.raw();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn post(path: &str, key_id: Option<&str>, len: usize) -> String {
    let key = key_id.map_or(String::new(), |k| format!("secc-key-id: {k}\r\n"));
    format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{key}Content-Length: {len}\r\n\r\n")
}

#[test]
fn bad_requests_get_clear_errors_while_the_server_serves_on() {
    let f = fixture();
    let key_mb = (std::fs::metadata(&f.tiny.server_key).unwrap().len() >> 20) + 1;
    let server = Server::start("bad", BOTH, false, &["--max-key", &key_mb.to_string()]);
    let client = server.client();
    let key_id = client.upload_key("tiny", &f.tiny.server_key).unwrap();
    let status = |e: secc_runtime::fhe::serve::client::ClientError| (e.status().unwrap(), e.to_string());

    // Garbage instead of a key, and instead of ciphertexts.
    let (code, reply) = send(&server, &post("/v1/keys", None, 11), b"not a key!!");
    assert!(code == 400 && reply.contains("not a secc server key"), "{reply}");
    let (code, reply) = send(&server, &post("/v1/models/tiny/infer", Some(&key_id), 11), b"not a ctxt!");
    assert!(code == 400 && reply.contains("not a secc ciphertext file"), "{reply}");
    // Oversized: a key over --max-key, ciphertexts over the model's limit.
    let big = vec![0u8; ((key_mb + 1) << 20) as usize];
    let (code, reply) = send(&server, &post("/v1/keys", None, big.len()), &big);
    assert!(code == 413 && reply.contains("a server key of more than"), "{reply}");
    let (code, reply) = send(&server, &post("/v1/models/tiny/infer", Some(&key_id), big.len()), &big);
    assert!(code == 413 && reply.contains("a request of more than"), "{reply}");
    // Unknown model, unknown key, no key.
    let (code, msg) = status(client.infer("nope", &key_id, b"x").unwrap_err());
    assert!(code == 404 && msg.contains("no model \"nope\""), "{msg}");
    let (code, msg) = status(client.infer("tiny", "0123", b"x").unwrap_err());
    assert!(code == 404 && msg.contains("unknown key id"), "{msg}");
    let (code, reply) = send(&server, &post("/v1/models/tiny/infer", None, 1), b"x");
    assert!(code == 400 && reply.contains("no secc-key-id header"), "{reply}");
    // A key made for another model: refused at upload when the model is named, and
    // for the other model's requests when it is not.
    let (code, msg) = status(client.upload_key("tiny", &f.other.server_key).unwrap_err());
    assert!(code == 409 && msg.contains("made for model other, not tiny"), "{msg}");
    let other_key = client.upload_key("other", &f.other.server_key).unwrap();
    let cts = vec![encrypt_sample(&f.tiny.spec, &f.tiny.ck, &f.xs[0]).unwrap()];
    let body = encode_file(Kind::Ciphertexts, &f.tiny.spec.artifact_digest, &f.tiny.file_key_id, &cts);
    let (code, msg) = status(client.infer("tiny", &other_key, &body).unwrap_err());
    assert!(code == 409 && msg.contains("made for model other"), "{msg}");
    // Ciphertexts of another model under the right key id.
    let stray = encode_file(Kind::Ciphertexts, &f.other.spec.artifact_digest, &f.tiny.file_key_id, &cts);
    let (code, msg) = status(client.infer("tiny", &key_id, &stray).unwrap_err());
    assert!(code == 409 && msg.contains("another compiled model"), "{msg}");
    // Clients that vanish mid-upload and mid-request.
    for (path, key) in [("/v1/keys", None), ("/v1/models/tiny/infer", Some(key_id.as_str()))] {
        let mut s = server.raw();
        s.write_all(post(path, key, 1 << 20).as_bytes()).unwrap();
        s.write_all(&body[..body.len().min(4096)]).unwrap();
    }
    let mut s = server.raw();
    s.write_all(post("/v1/models/tiny/infer", Some(&key_id), body.len()).as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    drop(s);
    // And the server serves on.
    let y = infer(&client, &f.tiny, &key_id, &f.xs[1]);
    check(&f.tiny, &f.xs[1], &y, "after the bad requests");
    let metrics = server.metrics();
    assert!(metrics.contains("status=\"413\"} 1\n") && metrics.contains("status=\"409\"}"), "{metrics}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn tls_eviction_and_deadlines() {
    let f = fixture();
    // Over TLS, pinned to the self-signed certificate; a key budget of 1 MB holds one key.
    let server = Server::start("tls", BOTH, true, &["--key-budget", "1"]);
    let client = server.client();
    let tiny_key = client.upload_key("tiny", &f.tiny.server_key).unwrap();
    let y = infer(&client, &f.tiny, &tiny_key, &f.xs[2]);
    check(&f.tiny, &f.xs[2], &y, "over TLS");
    let other_key = client.upload_key("other", &f.other.server_key).unwrap();
    let e = client.infer("tiny", &tiny_key, b"x").unwrap_err();
    assert!(e.status() == Some(404) && e.to_string().contains("upload the server key again"), "{e}");
    let y = infer(&client, &f.other, &other_key, &f.xs[3]);
    check(&f.other, &f.xs[3], &y, "the key that evicted the other");
    // A client without the certificate refuses the server.
    let stranger = FheClient::new(&server.url, Transport::Tls(None), TIMEOUT).unwrap();
    assert!(stranger.models().is_err());
    drop(server);

    // A request past its deadline gets 504, and the server serves on.
    let server = Server::start("late", BOTH, false, &["--request-timeout", "0.001"]);
    let client = server.client();
    let key = client.upload_key("tiny", &f.tiny.server_key).unwrap();
    let cts = vec![encrypt_sample(&f.tiny.spec, &f.tiny.ck, &f.xs[0]).unwrap()];
    let body = encode_file(Kind::Ciphertexts, &f.tiny.spec.artifact_digest, &f.tiny.file_key_id, &cts);
    for _ in 0..3 {
        let e = client.infer("tiny", &key, &body).unwrap_err();
        assert!(e.status() == Some(504), "{e}");
    }
    assert!(client.models().is_ok());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Whether decrypted outputs are the simulation's (through CSV they are f32).
fn same(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 1e-6 * w.abs().max(1.0))
}

/// A thousand requests with the server's resident memory sampled after the first 200
/// and at the end. The model is scikit-learn's LinearRegression through skl2onnx: no
/// table, so a request takes the server's whole path (body limits, queue, evaluation,
/// reply, metrics) in milliseconds; a request's ciphertexts are 10 x 6 KB, so keeping
/// any part of each would pass the 8 MB allowed.
#[test]
fn memory_stays_flat_over_a_thousand_requests_and_keys_outlive_a_restart() {
    let f = fixture();
    let (c, calib) = common::compile("skl_linreg", &Default::default());
    let lin = prepare(&f.dir, "linreg", c.into_artifact("skl_linreg.onnx", calib.len()));
    assert_eq!(lin.spec.pbs, 0);
    let q = lin.art.quantized.as_ref().unwrap();
    let xs = common::samples(q, "skl_linreg", "test.csv");
    let server = Server::start("memory", &["linreg.secc"], false, &[]);
    let key_id = server.client().upload_key("linreg", &lin.server_key).unwrap();
    let rss_kib = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let clients = 8;
    let burst = |per_client: usize| {
        std::thread::scope(|s| {
            for c in 0..clients {
                let (server, key_id, lin, xs) = (&server, &key_id, &lin, &xs);
                s.spawn(move || {
                    let client = server.client();
                    for i in 0..per_client {
                        let x = &xs[(c * per_client + i) % xs.len()];
                        let got = infer(&client, lin, key_id, x);
                        // No table, so nothing to round: the simulation's output.
                        let want = secc_ir::interp::run_graph(q, x).unwrap()[0].to_f64_vec();
                        assert!(same(&got, &want), "client {c}, request {i}: {got:?}, not {want:?}");
                    }
                });
            }
        })
    };
    burst(25);
    let early = rss_kib();
    burst(100);
    let late = rss_kib();
    eprintln!("server's resident memory after 200 requests: {early} KiB; after 800 more: {late} KiB");
    assert!(late <= early + 8192, "the server's memory grew from {early} KiB to {late} KiB");
    let served = "secc_requests_total{route=\"/v1/models/{id}/infer\",status=\"200\"} 1000\n";
    assert!(server.metrics().contains(served), "{}", server.metrics());
    assert!(!server.log().contains("panicked"), "{}", server.log());

    // A restarted server still knows the key: no upload, and the same outputs.
    drop(server);
    let server = Server::start("memory", &["linreg.secc"], false, &[]);
    assert!(server.metrics().contains("secc_keys_held 0\n"));
    let got = infer(&server.client(), &lin, &key_id, &xs[0]);
    let want = secc_ir::interp::run_graph(q, &xs[0]).unwrap()[0].to_f64_vec();
    assert!(same(&got, &want), "{got:?}, not {want:?}");
    assert!(server.metrics().contains("secc_keys_held 1\n"));
    // A key id that names no kept file is still unknown.
    let e = server.client().infer("linreg", "../keys/x", b"x").unwrap_err();
    assert!(e.status() == Some(404), "{e}");
}
