//! The FHE service's commands: `secc serve --fhe` (the server) and the `--server` mode
//! of `secc infer` (its client).

use crate::cmd::fhe::{decrypt_all, encrypt_all, read_client_key, read_client_samples, write_keys};
use crate::cmd::party::timeout_seconds;
use crate::cmd::serve::InferArgs;
use anyhow::{bail, Context, Result};
use secc_ir::artifact::Artifact;
use secc_ir::client_spec::ClientSpec;
use secc_runtime::fhe::exec::CtValues;
use secc_runtime::fhe::file::{decode_file, encode_file, Kind};
use secc_runtime::fhe::serve::client::{FheClient, Transport};
use secc_runtime::fhe::serve::server::{serve as serve_models, server_tls, ServeConfig, ServedModel};
use secc_runtime::fhe::serve::{hex, MAX_REQUEST_ROWS};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Serve compiled models to TFHE clients over HTTPS (`secc infer --server`).
///
/// Each model is served under its file name without `.secc`. A client fetches the
/// model's client spec (no weights), uploads its server key once (kept under
/// --data-dir, the least recently used dropped beyond --key-budget), then posts
/// ciphertexts. Routes: GET /health, GET /metrics (Prometheus), GET /v1/models,
/// GET /v1/models/ID/client, POST /v1/keys, POST /v1/models/ID/infer.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The models to serve (from `secc compile`)
    #[arg(long = "fhe", value_name = "MODEL.secc", num_args = 1.., required = true)]
    pub fhe: Vec<PathBuf>,
    /// Address to listen on (host:port)
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where uploaded server keys are kept, in DIR/keys; after a restart a key kept there
    /// is loaded again when a request names it
    #[arg(long, value_name = "DIR", default_value = "secc-serve")]
    pub data_dir: PathBuf,
    /// The server's certificate chain (PEM)
    #[arg(long, value_name = "CERT.pem", requires = "key", required_unless_present = "insecure")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Plain HTTP, on a loopback address only (testing only)
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pub insecure: bool,
    /// Megabytes of memory for the server keys held (a key takes 3-4 times its file);
    /// the least recently used are dropped beyond it, their files too
    #[arg(long, value_name = "MB", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub key_budget: u64,
    /// Largest server key upload, in megabytes
    #[arg(long, value_name = "MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_key: u64,
    /// Inference requests that may wait for a worker; more get 429
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub queue: usize,
    /// Requests evaluated at once (each spreads its bootstraps over every core)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// Answer 504 to a request with no result after this many seconds (0.001 to 86400)
    #[arg(long, value_name = "S", default_value_t = 300.0, value_parser = timeout_seconds)]
    pub request_timeout: f64,
}

pub fn serve(a: ServeArgs) -> Result<()> {
    let tls = match (&a.cert, &a.key) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
            Some(server_tls(&read(cert)?, &read(key)?)?)
        }
        _ if a.listen.ip().is_loopback() => {
            eprintln!("warning: --insecure: plain HTTP; anyone on this machine can read which model is queried and tamper with the replies");
            None
        }
        _ => bail!("--insecure serves plain HTTP on a loopback address only, not {}; give --cert and --key", a.listen),
    };
    let mut models = Vec::new();
    for path in &a.fhe {
        let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        models.push(ServedModel { id, artifact: Artifact::read(path)? });
    }
    let listener = std::net::TcpListener::bind(a.listen).with_context(|| format!("cannot listen on {}", a.listen))?;
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    eprintln!("serving {} on {}://{}", ids.join(", "), if tls.is_some() { "https" } else { "http" }, a.listen);
    let config = ServeConfig {
        data_dir: a.data_dir,
        key_budget: a.key_budget << 20,
        max_key_bytes: a.max_key << 20,
        queue: a.queue,
        workers: a.workers as usize,
        deadline: Duration::from_secs_f64(a.request_timeout),
        tls,
    };
    Ok(serve_models(models, listener, config)?)
}

/// The default key directory.
fn default_keys() -> PathBuf {
    std::env::var_os("HOME").map_or(PathBuf::from(".secc-keys"), |h| PathBuf::from(h).join(".cache/secc/keys"))
}

/// `secc infer --server`: returns the output rows.
pub fn infer(a: &InferArgs, url: &str, model: &str) -> Result<Vec<Vec<f32>>> {
    let transport = if a.insecure {
        eprintln!("warning: --insecure: plain HTTP; whoever can read loopback traffic can tamper with the replies");
        Transport::Plain
    } else {
        let ca = a.ca.as_ref().map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())));
        Transport::Tls(ca.transpose()?)
    };
    let client = FheClient::new(url, transport, Duration::from_secs_f64(a.timeout.unwrap_or(600.0)))?;
    let spec = client.client_spec(model)?;
    let dir = a.keys.clone().unwrap_or_else(default_keys).join(hex(&spec.artifact_digest));
    ensure_keys(&spec, &dir)?;
    let (ck, file_key_id) = read_client_key(&spec, &dir)?;
    let samples = read_client_samples(&spec, &a.input)?;
    // Which key id this server gave our server key, per server.
    let receipt = dir.join(format!("key-id-{}", &hex(&sha2_digest(url.as_bytes()))[..16]));
    let mut key_id = match std::fs::read_to_string(&receipt) {
        Ok(id) => id.trim().to_string(),
        Err(_) => upload(&client, model, &dir, &receipt)?,
    };
    let mut rows = Vec::new();
    for chunk in samples.chunks(MAX_REQUEST_ROWS) {
        let cts = encrypt_all(&spec, &ck, chunk)?;
        let body = encode_file(Kind::Ciphertexts, &spec.artifact_digest, &file_key_id, &cts);
        let reply = match client.infer(model, &key_id, &body) {
            // The server dropped our key (evicted, or restarted): once more with a fresh upload.
            Err(e) if e.status() == Some(404) => {
                key_id = upload(&client, model, &dir, &receipt)?;
                client.infer(model, &key_id, &body)?
            }
            other => other?,
        };
        let (values, _): (Vec<CtValues>, _) =
            decode_file(&reply, url, Kind::Ciphertexts, &spec.artifact_digest, Some(&file_key_id))?;
        if values.len() != chunk.len() {
            bail!("{url}: {} results for {} samples", values.len(), chunk.len());
        }
        rows.extend(decrypt_all(&spec, &ck, &values)?);
    }
    Ok(rows)
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Makes keys for `spec` in `dir` unless they are there. Concurrent clients may race:
/// each makes its keys aside and renames them into place, and the first one wins.
fn ensure_keys(spec: &ClientSpec, dir: &Path) -> Result<()> {
    if dir.join("client.key").exists() {
        return Ok(());
    }
    let parent = dir.parent().expect("a model directory under --keys");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let aside = parent.join(format!(".new-{}", std::process::id()));
    eprintln!("making keys for {} ({}) in {}", spec.model, spec.keys.name(), dir.display());
    write_keys(spec, &aside, true)?;
    if std::fs::rename(&aside, dir).is_err() && dir.join("client.key").exists() {
        std::fs::remove_dir_all(&aside).ok();
    } else if !dir.join("client.key").exists() {
        bail!("cannot move the new keys into {}", dir.display());
    }
    Ok(())
}

/// Uploads the server key and remembers the id the server gave it.
fn upload(client: &FheClient, model: &str, dir: &Path, receipt: &Path) -> Result<String> {
    let id = client.upload_key(model, &dir.join("server.key"))?;
    let aside = receipt.with_extension(format!("new-{}", std::process::id()));
    std::fs::write(&aside, &id).with_context(|| format!("cannot write {}", aside.display()))?;
    std::fs::rename(&aside, receipt).with_context(|| format!("cannot write {}", receipt.display()))?;
    Ok(id)
}
