//! The SMPC backend's commands: `secc mpc-plan` (write a party's plan), `secc
//! party-keygen` (a party's TLS key and certificate), `secc party` (run one party over
//! TLS, or plain TCP with `--insecure`), and the three local parties of `secc run
//! --backend mpc`.

use crate::io::{read_secret, write_new, write_secret};
use anyhow::{bail, Context, Result};
use secc_compiler::pipeline::{lower_plan, MpcConfig};
use secc_ir::artifact::Artifact;
use secc_ir::lowered::mpc::Plan;
use secc_ir::lowered::MAX_PRODUCT_FRAC_BITS;
use secc_runtime::mpc::net::Security;
use secc_runtime::mpc::session::{run_local, run_party, PartyConfig, PartyReport};
use secc_runtime::mpc::tls::{Identity, Pin, Tls};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write the SMPC protocol plan of a compiled model for one party.
///
/// The model owner's plan holds the (fixed-point) weights; give the other parties the
/// plan written with `--weightless`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// A model compiled by `secc compile`
    pub artifact: PathBuf,
    /// Where to write the plan
    #[arg(short, long, value_name = "PLAN")]
    pub output: PathBuf,
    /// Leave the weights out (the plan for the data owner and the result receiver)
    #[arg(long)]
    pub weightless: bool,
    /// Fractional bits of the fixed-point encoding on Z_2^64 (products sit at twice as
    /// many, which must stay below 2^62) [default: those the model was compiled with,
    /// `secc compile --frac-bits`]; other values re-run the pipeline's lower_mpc stage
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(1..=MAX_PRODUCT_FRAC_BITS as i64))]
    pub frac_bits: Option<u32>,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Write a party's TLS key and self-signed certificate, and print the certificate's pin.
///
/// The key file is secret (owner-only permissions); the pin it prints goes into every
/// party's PARTIES.toml, at this party's place in `pins`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the key and certificate
    #[arg(short, long, value_name = "PARTY.key")]
    pub output: PathBuf,
    /// Overwrite the key file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Run one party of an SMPC session, or (`secc party serve`) serve outside clients.
///
/// PARTIES.toml lists the three parties' addresses and the pins of their certificates
/// (from `secc party-keygen`), in party order:
/// `parties = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]`,
/// `pins = ["sha256:…", "sha256:…", "sha256:…"]`.
/// Links are TLS 1.3, both ends authenticated by their pinned certificates.
/// Party 0 shares the input (--input) and receives the output (-o, or standard output);
/// party 1 shares the weights (its plan must hold them). Bytes and rounds sent go to
/// standard error.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PartyCommand {
    #[command(subcommand)]
    pub serve: Option<PartySubcommand>,
    #[command(flatten)]
    pub run: Option<PartyArgs>,
}

#[derive(clap::Subcommand)]
pub enum PartySubcommand {
    Serve(crate::cmd::serve::ServeArgs),
}

/// One party of a single session.
#[derive(clap::Args)]
pub struct PartyArgs {
    /// The plan (from `secc mpc-plan`)
    pub plan: PathBuf,
    /// This party's id: 0, 1 or 2
    #[arg(long, value_parser = party_id)]
    pub id: usize,
    /// The three parties' addresses
    #[arg(long, value_name = "PARTIES.toml")]
    pub parties: PathBuf,
    /// Samples (the data owner only)
    #[arg(long, value_name = "X.csv")]
    pub input: Option<PathBuf>,
    /// Write the outputs here (the receiver only)
    #[arg(short, long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// This party's key (from `secc party-keygen`)
    #[arg(long, value_name = "PARTY.key", required_unless_present = "insecure")]
    pub key: Option<PathBuf>,
    /// Plain TCP links: anyone on the network reads every secret (testing only)
    #[arg(long, conflicts_with = "key")]
    pub insecure: bool,
    /// Give up on a silent peer after this many seconds (0.001 to 86400)
    #[arg(long, default_value_t = 10.0, value_parser = timeout_seconds, allow_hyphen_values = true)]
    pub timeout: f64,
    /// Run the plan this many times in the session (all three must agree)
    #[arg(long, default_value_t = 1, value_parser = repeat_count)]
    pub repeat: usize,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parties {
    parties: Vec<String>,
    #[serde(default)]
    pins: Vec<String>,
    /// Where each party accepts outside clients (`secc party serve`).
    #[serde(default)]
    clients: Vec<String>,
    /// The client certificates the serving parties admit (any, when empty).
    #[serde(default)]
    client_pins: Vec<String>,
}

/// A parties file, read and checked.
pub struct PartiesFile {
    /// Where the parties meet each other, in party order.
    pub addrs: [SocketAddr; 3],
    /// Their certificates' pins (none, or three).
    pub pins: Vec<Pin>,
    /// Where they accept clients, if the file says.
    pub clients: Option<[SocketAddr; 3]>,
    /// The clients they admit (any, when empty).
    pub client_pins: Vec<Pin>,
}

pub fn party_id(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(id) if id < 3 => Ok(id),
        _ => Err(format!("`{s}`: the party id is 0, 1 or 2")),
    }
}

fn repeat_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}`: the plan runs a whole number of times, at least once")),
    }
}

/// A timeout in seconds: finite and positive, from a millisecond (finer rounds to no
/// timeout at all for the sockets) to a day.
pub fn timeout_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.001..=86_400.0).contains(&t) => Ok(t),
        _ => Err(format!("`{s}`: a timeout is a number of seconds from 0.001 to 86400")),
    }
}

/// The warning `--insecure` prints.
pub const INSECURE: &str = "warning: --insecure: the links are plain TCP; anyone who can read the traffic \
reads the PRG seeds and so every secret value. Use it on a trusted test network only.";

/// The SMPC plan the artifact holds.
pub fn plan_of(art: &Artifact) -> Result<&Plan> {
    art.mpc.as_ref().map_err(|e| anyhow::anyhow!("this model has no SMPC plan: {e}"))
}

pub fn write_plan(a: PlanArgs) -> Result<()> {
    let art = Artifact::read(&a.artifact)?;
    let compiled = plan_of(&art)?;
    let plan = match a.frac_bits {
        Some(frac_bits) if frac_bits != compiled.frac_bits => {
            lower_plan(&art.float, &art.float_ranges, MpcConfig { frac_bits, roles: compiled.roles })?
        }
        _ => compiled.clone(),
    };
    let plan = if a.weightless { plan.weightless() } else { plan };
    write_new(&a.output, &plan.to_bytes(), a.force)
}

pub fn read_parties(path: &Path) -> Result<PartiesFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let p: Parties = toml::from_str(&text).with_context(|| {
        format!("{}: expected parties = [\"host:port\", ...] and pins = [\"sha256:...\", ...]", path.display())
    })?;
    if p.parties.len() != 3 {
        bail!("{}: lists {} parties, expected 3", path.display(), p.parties.len());
    }
    if !p.pins.is_empty() && p.pins.len() != 3 {
        bail!("{}: lists {} pins, expected 3", path.display(), p.pins.len());
    }
    if !p.clients.is_empty() && p.clients.len() != 3 {
        bail!("{}: lists {} client addresses, expected 3 (one per party)", path.display(), p.clients.len());
    }
    let resolve = |list: &[String]| -> Result<[SocketAddr; 3]> {
        let mut addrs = Vec::new();
        for a in list {
            addrs.push(
                a.to_socket_addrs()
                    .ok()
                    .and_then(|mut i| i.next())
                    .with_context(|| format!("{}: bad address {a}", path.display()))?,
            );
        }
        Ok(addrs.try_into().expect("three"))
    };
    let pins = |list: &[String]| -> Result<Vec<Pin>> {
        let pins = list.iter().map(|s| s.parse::<Pin>()).collect::<Result<Vec<_>, _>>();
        pins.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    Ok(PartiesFile {
        addrs: resolve(&p.parties)?,
        pins: pins(&p.pins)?,
        clients: if p.clients.is_empty() { None } else { Some(resolve(&p.clients)?) },
        client_pins: pins(&p.client_pins)?,
    })
}

pub fn keygen(a: KeygenArgs) -> Result<()> {
    let identity = Identity::generate();
    write_secret(&a.output, identity.to_pem().as_bytes(), a.force)?;
    eprintln!("{}: this party's key (secret); pin its certificate in every PARTIES.toml:", a.output.display());
    println!("{}", identity.pin());
    Ok(())
}

/// The links' security: TLS with this party's key and the pins, or plain TCP.
fn security(a: &PartyArgs, pins: &[Pin], parties: &Path) -> Result<Security> {
    Ok(match identity(a.key.as_deref(), a.insecure, pins, parties)? {
        None => Security::Plain,
        Some((identity, pins)) => Security::Tls(
            Tls::new(a.id, &identity, pins).with_context(|| a.key.as_ref().expect("a key").display().to_string())?,
        ),
    })
}

/// The key at `key` and the three pins, or `None` (after the warning) with `--insecure`.
pub fn identity(
    key: Option<&Path>,
    insecure: bool,
    pins: &[Pin],
    parties: &Path,
) -> Result<Option<(Identity, [Pin; 3])>> {
    if insecure {
        eprintln!("{INSECURE}");
        return Ok(None);
    }
    let Ok(pins) = <[Pin; 3]>::try_from(pins) else {
        bail!(
            "{} pins no certificates: run `secc party-keygen` for each party and list the pins it prints as \
             pins = [...], or pass --insecure",
            parties.display()
        );
    };
    let key = key.expect("clap requires --key without --insecure");
    Ok(Some((Identity::from_pem(&read_secret(key)?, &key.display().to_string())?, pins)))
}

pub fn party(c: PartyCommand) -> Result<()> {
    match (c.serve, c.run) {
        (Some(PartySubcommand::Serve(a)), _) => crate::cmd::serve::serve(a),
        (None, Some(a)) => run_one(a),
        (None, None) => bail!("give a plan and --id, --parties (see `secc party --help`), or `secc party serve`"),
    }
}

fn run_one(a: PartyArgs) -> Result<()> {
    let bytes = std::fs::read(&a.plan).with_context(|| format!("cannot read {}", a.plan.display()))?;
    let plan = Plan::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.plan.display()))?;
    let PartiesFile { addrs, pins, .. } = read_parties(&a.parties)?;
    let security = security(&a, &pins, &a.parties)?;
    let samples = match &a.input {
        Some(p) => Some(secc_runtime::csv::read_csv(p, plan.input_shape.iter().product())?),
        None => None,
    };
    let listener =
        TcpListener::bind(addrs[a.id]).with_context(|| format!("party {}: cannot listen on {}", a.id, addrs[a.id]))?;
    let timeout = Duration::from_secs_f64(a.timeout);
    let config = PartyConfig { id: a.id, addrs, security, timeout, repeat: a.repeat };
    let report = run_party(&plan, listener, &config, samples.as_deref()).with_context(|| format!("party {}", a.id))?;
    print_report(&report);
    if let Some(rows) = &report.outputs {
        let text = secc_runtime::csv::format_csv(rows);
        match &a.output {
            Some(path) => write_new(path, text.as_bytes(), a.force)?,
            None => print!("{text}"),
        }
    }
    Ok(())
}

/// Runs the three parties on loopback and returns the outputs.
pub fn run_three(art: &Artifact, samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let plan = plan_of(art)?;
    let reports = run_local(plan, samples, Duration::from_secs(30), 1)?;
    reports.iter().for_each(print_report);
    Ok(reports[plan.roles.receiver].outputs.clone().expect("the receiver gets the outputs"))
}

fn print_report(r: &PartyReport) {
    for (t, d) in &r.runs {
        eprintln!(
            "party {}: {:.3} ms, {} rounds, {} bytes sent in {} messages (set-up: {} round, {} bytes)",
            r.id,
            d.as_secs_f64() * 1e3,
            t.rounds,
            t.bytes,
            t.frames,
            r.setup.rounds,
            r.setup.bytes
        );
    }
}
