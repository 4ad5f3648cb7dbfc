//! The TFHE client/server split: `secc keygen`, `encrypt`, `eval`, `decrypt`, and the
//! all-in-one local run behind `secc run --backend fhe`.
//!
//! Files: `DIR/client.key` (secret, owner-only permissions), `DIR/server.key` (the
//! evaluation keys to hand to the server), `*.enc` (ciphertexts). Each is bound to the
//! compiled model by its digest; ciphertexts are bound to their keys by a key id. The
//! server's commands refuse to run where a client key lies.

use crate::io::{check_private, flatten_outputs, read_samples, write_new, write_secret};
use anyhow::{anyhow, bail, Context, Result};
use secc_ir::artifact::Artifact;
use secc_ir::client_spec::ClientSpec;
use secc_ir::lowered::fhe::Circuit;
use secc_ir::{Graph, Tensor};
use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, CtValues, ServerProgram};
use secc_runtime::fhe::file::{decode_file, encode_file, read_limited, sniff, Kind};
use secc_runtime::fhe::keys::{generate_keys, generate_local_keys, ClientKey, CompressedServerKey};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Generate TFHE keys for a compiled model: DIR/client.key (secret) and DIR/server.key.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// A model compiled by `secc compile`, or its client spec (`secc compile --client-spec`)
    pub artifact: PathBuf,
    /// Directory to write the keys to (created if missing)
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Overwrite existing keys
    #[arg(long)]
    pub force: bool,
}

/// Encrypt samples with the client key (the client's side).
#[derive(clap::Args)]
pub struct EncryptArgs {
    /// A model compiled by `secc compile`, or its client spec (`secc compile --client-spec`)
    pub artifact: PathBuf,
    /// The directory `secc keygen` wrote
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Samples: CSV (one sample per row, input flattened in C order) or .npy
    #[arg(long, value_name = "X.csv")]
    pub input: PathBuf,
    /// Ciphertext file to write
    #[arg(short, long, value_name = "X.enc")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Evaluate the model on ciphertexts with the server key only (the server's side).
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A model compiled by `secc compile`
    pub artifact: PathBuf,
    /// The server key file (DIR/server.key); the client key is never read
    #[arg(long, value_name = "FILE")]
    pub server_key: PathBuf,
    /// Ciphertexts from `secc encrypt`
    pub input: PathBuf,
    /// Ciphertext file to write
    #[arg(short, long, value_name = "Y.enc")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Decrypt the server's result with the client key and write the outputs as CSV.
#[derive(clap::Args)]
pub struct DecryptArgs {
    /// A model compiled by `secc compile`, or its client spec (`secc compile --client-spec`)
    pub artifact: PathBuf,
    /// The directory `secc keygen` wrote
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Ciphertexts from `secc eval`
    pub input: PathBuf,
    /// CSV to write (standard output if absent)
    #[arg(short, long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// The artifact's circuit and the quantized IR it was lowered from.
fn circuit(art: &Artifact) -> Result<(&Graph, &Circuit)> {
    let c = art.fhe.as_ref().map_err(|e| anyhow!("this model has no TFHE circuit: {e}"))?;
    Ok((crate::cmd::quantized(art)?, c))
}

/// What a client needs of a model: read from its client spec, or cut from the whole
/// `model.secc` when given that.
pub(crate) fn read_spec(path: &Path) -> Result<ClientSpec> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|f| f.take(8).read(&mut magic))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if ClientSpec::sniff(&magic[..n]) {
        return Ok(ClientSpec::read(path)?);
    }
    Ok(ClientSpec::from_artifact(&Artifact::read(path)?)?)
}

/// Reads a key or ciphertext file made for the model with digest `digest`.
fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: Kind,
    digest: &[u8; 32],
    key_id: Option<&[u8; 16]>,
) -> Result<(T, [u8; 16])> {
    if kind == Kind::ClientKey {
        check_private(path)?;
    }
    let bytes = read_limited(path, kind)?;
    Ok(decode_file(&bytes, &path.display().to_string(), kind, digest, key_id)?)
}

pub(crate) fn encrypt_all(spec: &ClientSpec, ck: &ClientKey, samples: &[Vec<Tensor>]) -> Result<Vec<CtValues>> {
    Ok(samples.iter().map(|s| encrypt_sample(spec, ck, s)).collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn decrypt_all(spec: &ClientSpec, ck: &ClientKey, values: &[CtValues]) -> Result<Vec<Vec<f32>>> {
    Ok(values
        .iter()
        .map(|v| decrypt_sample(spec, ck, v).map(|o| flatten_outputs(&o)))
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn keygen(a: KeygenArgs) -> Result<()> {
    let spec = read_spec(&a.artifact)?;
    for f in ["client.key", "server.key"] {
        if a.keys.join(f).exists() && !a.force {
            bail!("{} exists; pass --force to overwrite the keys", a.keys.join(f).display());
        }
    }
    let t = Instant::now();
    let server_bytes = write_keys(&spec, &a.keys, a.force)?;
    eprintln!(
        "keys for {} in {} ({:.1} s): client.key (secret), server.key ({} MB: give it to the server, in a directory of its own)",
        spec.keys.name(),
        a.keys.display(),
        t.elapsed().as_secs_f64(),
        server_bytes >> 20
    );
    Ok(())
}

/// Generates keys for `spec` into `dir` (client.key, secret; server.key); returns the
/// server key's size.
pub(crate) fn write_keys(spec: &ClientSpec, dir: &Path, force: bool) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (ck, sk) = generate_keys(&spec.keys)?;
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let digest = spec.artifact_digest;
    write_secret(&dir.join("client.key"), &encode_file(Kind::ClientKey, &digest, &id, &ck), force)?;
    let server = encode_file(Kind::ServerKey, &digest, &id, &sk);
    write_new(&dir.join("server.key"), &server, force)?;
    Ok(server.len())
}

/// The client key in `dir` for `spec`, checked, and its key id.
pub(crate) fn read_client_key(spec: &ClientSpec, dir: &Path) -> Result<(ClientKey, [u8; 16])> {
    let (ck, id): (ClientKey, _) = load(&dir.join("client.key"), Kind::ClientKey, &spec.artifact_digest, None)?;
    ck.check(&spec.keys)?;
    Ok((ck, id))
}

pub fn encrypt(a: EncryptArgs) -> Result<()> {
    let spec = read_spec(&a.artifact)?;
    let (ck, id) = read_client_key(&spec, &a.keys)?;
    let samples = read_client_samples(&spec, &a.input)?;
    let cts = encrypt_all(&spec, &ck, &samples)?;
    write_new(&a.output, &encode_file(Kind::Ciphertexts, &spec.artifact_digest, &id, &cts), a.force)
}

/// Reads samples for `spec`'s model, warning about values outside its calibrated range.
pub(crate) fn read_client_samples(spec: &ClientSpec, path: &Path) -> Result<Vec<Vec<Tensor>>> {
    let samples = read_samples(path, &spec.encode).with_context(|| format!("cannot read {}", path.display()))?;
    warn_clipped(&spec.encode, &samples);
    Ok(samples)
}

/// Refuses to run the server in a directory holding a client key: whoever runs the
/// server must not be able to decrypt, not even by a slip of `cp`.
fn refuse_client_keys(paths: &[&Path]) -> Result<()> {
    for path in paths {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        if let Some(key) = entries.flatten().map(|e| e.path()).find(|p| sniff(p) == Some(Kind::ClientKey)) {
            bail!(
                "{} is a client secret key in the server's directory {}: the server must never hold it; \
                 give the server server.key alone, in a directory of its own",
                key.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    refuse_client_keys(&[&a.server_key, &a.input, &a.output])?;
    let art = Artifact::read(&a.artifact)?;
    let (g, c) = circuit(&art)?;
    let digest = art.digest();
    let (sk, id): (CompressedServerKey, _) = load(&a.server_key, Kind::ServerKey, &digest, None)?;
    let t = Instant::now();
    let sk = sk.decompress(&c.key_layout(g))?;
    eprintln!("server key expanded in {:.2} s", t.elapsed().as_secs_f64());
    let (inputs, _) = load(&a.input, Kind::Ciphertexts, &digest, Some(&id))?;
    let program = ServerProgram::new(g, c, &sk)?;
    let (outputs, each) = evaluate_all(&program, inputs)?;
    if !each.is_empty() {
        let total: f64 = each.iter().sum();
        let (lo, hi) = each.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        eprintln!(
            "evaluated {} samples in {total:.2} s; per sample: median {:.3} s, min {lo:.3} s, max {hi:.3} s",
            outputs.len(),
            crate::bench::measure::median(&each)
        );
    }
    write_new(&a.output, &encode_file(Kind::Ciphertexts, &digest, &id, &outputs), a.force)
}

pub fn decrypt(a: DecryptArgs) -> Result<()> {
    let spec = read_spec(&a.artifact)?;
    let (ck, id) = read_client_key(&spec, &a.keys)?;
    let (values, _): (Vec<CtValues>, _) = load(&a.input, Kind::Ciphertexts, &spec.artifact_digest, Some(&id))?;
    crate::io::write_rows(&decrypt_all(&spec, &ck, &values)?, a.output.as_deref(), a.force)
}

fn warn_clipped(g: &Graph, samples: &[Vec<Tensor>]) {
    let clipped = crate::cmd::run::count_clipped(g, samples);
    if clipped > 0 {
        eprintln!("warning: {clipped} input values lie outside the calibrated range and were clipped");
    }
}

/// Evaluates every sample with a progress bar over bootstraps; also returns each
/// sample's seconds.
fn evaluate_all(program: &ServerProgram, inputs: Vec<CtValues>) -> Result<(Vec<CtValues>, Vec<f64>)> {
    let bar = indicatif::ProgressBar::new((program.pbs_count() * inputs.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} bootstraps ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    let tick = || bar.inc(1);
    let mut each = Vec::with_capacity(inputs.len());
    let out = inputs
        .into_iter()
        .map(|s| {
            let t = Instant::now();
            let out = program.evaluate(s, &tick);
            each.push(t.elapsed().as_secs_f64());
            out
        })
        .collect::<Result<Vec<_>, _>>();
    bar.finish_and_clear();
    Ok((out?, each))
}

/// `secc run --backend fhe`: keygen, encrypt, evaluate, decrypt in one process.
pub fn run_local(art: &Artifact, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<f32>>> {
    let (g, c) = circuit(art)?;
    let spec = ClientSpec::new(g, c, art.digest())?;
    warn_clipped(g, samples);
    let t = Instant::now();
    let (ck, sk) = generate_local_keys(&spec.keys)?;
    let keygen = t.elapsed();
    let t = Instant::now();
    let cts = encrypt_all(&spec, &ck, samples)?;
    let encrypt = t.elapsed();
    let program = ServerProgram::new(g, c, &sk)?;
    let t = Instant::now();
    let (outs, _) = evaluate_all(&program, cts)?;
    let eval = t.elapsed();
    let t = Instant::now();
    let rows = decrypt_all(&spec, &ck, &outs)?;
    let decrypt = t.elapsed();
    let n = samples.len().max(1) as u32;
    let per = |d: Duration| format!("{:.1} ms", (d / n).as_secs_f64() * 1e3);
    eprintln!(
        "fhe: {} on tfhe-rs core_crypto (p_fail 2^{}); {} bootstraps per sample\n  keygen {:.2} s | per sample: encrypt {}, eval {}, decrypt {} | {} samples",
        spec.keys.name().replace("V1_6_PARAM_", ""),
        c.params[0].log2_p_fail,
        c.stats.pbs,
        keygen.as_secs_f64(),
        per(encrypt),
        per(eval),
        per(decrypt),
        samples.len()
    );
    Ok(rows)
}
