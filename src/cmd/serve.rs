//! The SMPC service's commands: `secc party serve` (a long-lived party), and `secc
//! infer`, the one client of both services (`--parties`: an outside client of the
//! three; `--server`: of `secc serve --fhe`, in [`crate::cmd::serve_fhe`]).

use crate::cmd::party::{identity, party_id, read_parties, timeout_seconds, PartiesFile};
use crate::io::{read_rows, write_rows};
use anyhow::{bail, Context, Result};
use secc_ir::lowered::mpc::Plan;
use secc_runtime::mpc::net::Security;
use secc_runtime::mpc::serve::client::ServiceClient;
use secc_runtime::mpc::serve::party::{serve_party, ServeConfig};
use secc_runtime::mpc::serve::{ClientAccess, ClientLink};
use secc_runtime::mpc::tls::{ClientGate, ClientTls, Tls};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Serve outside clients as one of three long-lived parties.
///
/// The parties keep their links and share the weights once per session; clients
/// (`secc infer --parties`) share their inputs with the three and alone get the
/// outputs. PARTIES.toml is `secc party`'s, plus `clients = ["host:port", ...]`
/// (where each party accepts clients) and optionally `client_pins = ["sha256:…", ...]`
/// (the client keys admitted; any client key when absent). Requests reaching party 0
/// within --batch-window run as one batch. A lost party ends the session: the
/// requests in flight fail, and the parties reconnect when it is back.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The plan (from `secc mpc-plan`; the model owner's holds the weights)
    pub plan: PathBuf,
    /// This party's id: 0, 1 or 2
    #[arg(long, value_parser = party_id)]
    pub id: usize,
    /// The parties' addresses, client addresses and pins
    #[arg(long, value_name = "PARTIES.toml")]
    pub parties: PathBuf,
    /// This party's key (from `secc party-keygen`)
    #[arg(long, value_name = "PARTY.key", required_unless_present = "insecure")]
    pub key: Option<PathBuf>,
    /// Plain TCP to the parties and the clients: anyone on the network reads every
    /// secret (testing only)
    #[arg(long, conflicts_with = "key")]
    pub insecure: bool,
    /// Give up on a silent peer after this many seconds (0.001 to 86400)
    #[arg(long, default_value_t = 10.0, value_parser = timeout_seconds, allow_hyphen_values = true)]
    pub timeout: f64,
    /// Milliseconds party 0 holds a request for others to join its batch
    #[arg(long, value_name = "MS", default_value_t = 2.0, value_parser = window_ms)]
    pub batch_window: f64,
    /// Most samples in one batch
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_batch: u32,
    /// Fail a request that has no result after this many seconds (0.001 to 86400)
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = timeout_seconds)]
    pub request_timeout: f64,
}

/// Run a model served over FHE (--server) or by three SMPC parties (--parties) on
/// samples, and print (or write) its outputs.
///
/// FHE: fetches the model's client spec from the server, makes keys for it once
/// (kept in --keys, per model), uploads the server key once (again if the server has
/// dropped it), encrypts, posts, decrypts: the server sees only ciphertexts, the
/// client only the client spec (no weights).
///
/// SMPC: each party receives only two of three random shares of each input, and
/// sends its shares of the outputs to this client alone, which adds them up. The
/// three must serve the same plan (checked; with --plan, also the same as that file's).
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("service").required(true).args(["server", "parties"])))]
pub struct InferArgs {
    /// FHE: the server (https://host:port, or http://127.0.0.1:port with --insecure)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// FHE: the model's id on the server (`GET /v1/models` lists them)
    #[arg(long, value_name = "NAME", requires = "server", required_unless_present = "parties")]
    pub model: Option<String>,
    /// FHE: where keys are made and kept, one directory per model [default:
    /// $HOME/.cache/secc/keys]
    #[arg(long, value_name = "DIR", requires = "server")]
    pub keys: Option<PathBuf>,
    /// FHE: the server's certificate, or the CA that signed it (PEM), when the web's
    /// roots do not vouch for it (a self-signed server)
    #[arg(long, value_name = "CERT.pem", requires = "server", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// SMPC: the parties' client addresses (`clients = [...]`) and pins
    #[arg(long, value_name = "PARTIES.toml")]
    pub parties: Option<PathBuf>,
    /// Samples: CSV, one per row, or .npy
    #[arg(long, value_name = "X.csv")]
    pub input: PathBuf,
    /// SMPC: check that the parties serve this plan (weights aside)
    #[arg(long, value_name = "PLAN", requires = "parties")]
    pub plan: Option<PathBuf>,
    /// SMPC: this client's key (from `secc party-keygen`; its pin goes in the parties'
    /// `client_pins` if they list any)
    #[arg(long, value_name = "CLIENT.key", requires = "parties", required_unless_present_any = ["insecure", "server"])]
    pub key: Option<PathBuf>,
    /// Plain transport, loopback only for FHE: anyone on the network reads the SMPC
    /// inputs and outputs, or tampers with FHE replies (testing only)
    #[arg(long, conflicts_with = "key")]
    pub insecure: bool,
    /// Write the outputs here (CSV) instead of standard output
    #[arg(short, long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// SMPC: give up on a party that sends nothing for this many seconds; FHE: on a
    /// request with no answer after this many seconds (0.001 to 86400) [default: 60
    /// for SMPC, 600 for FHE]
    #[arg(long, value_parser = timeout_seconds)]
    pub timeout: Option<f64>,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

fn window_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=10_000.0).contains(&t) => Ok(t),
        _ => Err(format!("`{s}`: a batch window is 0 to 10000 milliseconds")),
    }
}

fn client_addrs(file: &PartiesFile, path: &Path) -> Result<[std::net::SocketAddr; 3]> {
    file.clients.with_context(|| {
        format!("{}: no client addresses: add clients = [\"host:port\", ...], one per party", path.display())
    })
}

pub fn serve(a: ServeArgs) -> Result<()> {
    let bytes = std::fs::read(&a.plan).with_context(|| format!("cannot read {}", a.plan.display()))?;
    let plan = Plan::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.plan.display()))?;
    let file = read_parties(&a.parties)?;
    let clients = client_addrs(&file, &a.parties)?;
    let (security, access) = match identity(a.key.as_deref(), a.insecure, &file.pins, &a.parties)? {
        None => (Security::Plain, ClientAccess::Plain),
        Some((identity, pins)) => {
            let key = || a.key.as_ref().expect("a key").display().to_string();
            (
                Security::Tls(Tls::new(a.id, &identity, pins).with_context(key)?),
                ClientAccess::Tls(ClientGate::new(&identity, file.client_pins.clone()).with_context(key)?),
            )
        }
    };
    let peers = TcpListener::bind(file.addrs[a.id])
        .with_context(|| format!("party {}: cannot listen on {}", a.id, file.addrs[a.id]))?;
    let client_listener = TcpListener::bind(clients[a.id])
        .with_context(|| format!("party {}: cannot listen for clients on {}", a.id, clients[a.id]))?;
    let config = ServeConfig {
        id: a.id,
        addrs: file.addrs,
        security,
        clients: access,
        timeout: Duration::from_secs_f64(a.timeout),
        batch_window: Duration::from_secs_f64(a.batch_window / 1e3),
        max_batch: a.max_batch as usize,
        request_timeout: Duration::from_secs_f64(a.request_timeout),
    };
    eprintln!("party {}: serving {} to clients on {}", a.id, plan.name, clients[a.id]);
    match serve_party(&plan, peers, client_listener, &config).with_context(|| format!("party {}", a.id))? {}
}

pub fn infer(a: InferArgs) -> Result<()> {
    let outputs = match (&a.server, &a.parties) {
        (Some(url), _) => crate::cmd::serve_fhe::infer(&a, url, a.model.as_deref().expect("clap requires --model"))?,
        (None, Some(parties)) => infer_mpc(&a, parties)?,
        (None, None) => unreachable!("clap requires --server or --parties"),
    };
    write_rows(&outputs, a.output.as_deref(), a.force)
}

fn infer_mpc(a: &InferArgs, parties: &Path) -> Result<Vec<Vec<f32>>> {
    let file = read_parties(parties)?;
    let addrs = client_addrs(&file, parties)?;
    let link = match identity(a.key.as_deref(), a.insecure, &file.pins, parties)? {
        None => ClientLink::Plain,
        Some((identity, pins)) => ClientLink::Tls(
            ClientTls::new(&identity, pins).with_context(|| a.key.as_ref().expect("a key").display().to_string())?,
        ),
    };
    let mut client = ServiceClient::connect(addrs, &link, Duration::from_secs_f64(a.timeout.unwrap_or(60.0)))?;
    if let Some(path) = &a.plan {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mine = Plan::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if mine.weightless() != *client.plan() {
            bail!("the parties serve another plan than {} ({})", path.display(), client.plan().name);
        }
    }
    let samples = read_rows(&a.input, client.plan().input_shape.iter().product())
        .with_context(|| format!("cannot read {}", a.input.display()))?;
    Ok(client.infer(&samples)?)
}
