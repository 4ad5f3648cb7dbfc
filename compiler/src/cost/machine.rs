//! Per-operation costs measured on one machine (`secc calibrate-costs`), stored as JSON.
//!
//! The build ships the figures measured on the machine secc is developed on
//! ([`MachineCosts::builtin`]), so predictions work out of the box; `secc
//! calibrate-costs` measures this machine's and writes them to
//! [`MachineCosts::default_path`], which later commands read instead.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The costs shipped with secc (measured on its 2-core development machine).
const BUILTIN: &str = include_str!("builtin_costs.json");

/// Per-operation costs of both backends on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineCosts {
    /// The machine, in words (CPU, cores).
    pub machine: String,
    /// When and how it was measured (load, build).
    pub measured: String,
    /// Cores the measurement ran on (FHE bootstraps of a layer run this many at a time).
    pub cores: usize,
    /// TFHE costs, one entry per parameter set measured.
    pub fhe: Vec<FheSetCosts>,
    /// SMPC costs.
    pub mpc: MpcCosts,
}

/// What TFHE operations cost with one parameter set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FheSetCosts {
    /// The tfhe-rs set's name (`V1_6_PARAM_MESSAGE_1_CARRY_4_KS_PBS_GAUSSIAN_2M128`).
    pub name: String,
    /// The catalog's relative cost of the set (unmeasured sets are scaled by it).
    pub catalog_cost: u32,
    /// Wall time of one wave of bootstraps: `cores` keyswitch + PBS in parallel, ms.
    pub pbs_wave_ms: f64,
    /// One levelled multiply-accumulate of a whole ciphertext, on one core, ns.
    pub mac_ns: f64,
    /// The client's fixed cost per inference, whatever its size (random generators,
    /// buffers), µs.
    pub inference_us: f64,
    /// Encrypting one value (the client), µs.
    pub encrypt_us: f64,
    /// Decrypting one value (the client), µs.
    pub decrypt_us: f64,
    /// Bytes of one ciphertext on the wire.
    pub ciphertext_bytes: u64,
}

/// What the SMPC runtime costs: a linear model of one run of a plan on loopback,
/// `rounds × round_us + bytes × byte_ns + macs × mac_ns`, fitted on probe plans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcCosts {
    /// One round of messages between the three parties, µs.
    pub round_us: f64,
    /// One byte sent, all parties together (serialisation, PRG, copies), ns.
    pub byte_ns: f64,
    /// One multiply-accumulate on replicated shares (a weight times an input), ns.
    pub mac_ns: f64,
}

/// Errors loading or saving costs.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The file cannot be read or written (the OS error follows as the source).
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a costs file (the JSON reader's message follows as the source).
    #[error("{path} is not a secc costs file")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// A costs file with no figures for some backend.
    #[error("{path}: {message}")]
    Incomplete {
        /// The file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
}

impl MachineCosts {
    /// The costs shipped with this build.
    pub fn builtin() -> MachineCosts {
        serde_json::from_str(BUILTIN).expect("the built-in costs parse")
    }

    /// Where `secc calibrate-costs` writes and other commands look:
    /// `$XDG_CACHE_HOME/secc/costs.json`, else `~/.cache/secc/costs.json`.
    pub fn default_path() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("secc").join("costs.json"))
    }

    /// Reads a costs file.
    pub fn load(path: &Path) -> Result<MachineCosts, CostError> {
        let text = std::fs::read_to_string(path).map_err(|source| CostError::Io { path: path.into(), source })?;
        let costs: MachineCosts =
            serde_json::from_str(&text).map_err(|source| CostError::Parse { path: path.into(), source })?;
        if costs.fhe.is_empty() || costs.cores == 0 {
            let message = "no TFHE parameter set was measured (or zero cores); rerun `secc calibrate-costs`".into();
            return Err(CostError::Incomplete { path: path.into(), message });
        }
        Ok(costs)
    }

    /// The costs a command uses and where they came from: `explicit` if given, else the
    /// calibrated file at [`MachineCosts::default_path`] if there is one, else the built-in ones.
    pub fn resolve(explicit: Option<&Path>) -> Result<(MachineCosts, String), CostError> {
        let path = explicit.map(Path::to_path_buf).or_else(|| Self::default_path().filter(|p| p.exists()));
        match path {
            Some(p) => Ok((Self::load(&p)?, p.display().to_string())),
            None => {
                let b = Self::builtin();
                let source = format!("built-in ({}, {})", b.machine, b.measured);
                Ok((b, source))
            }
        }
    }

    /// Writes the costs as pretty JSON, creating the folder.
    pub fn save(&self, path: &Path) -> Result<(), CostError> {
        let io = |source| CostError::Io { path: path.into(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).expect("costs serialize");
        std::fs::write(path, text + "\n").map_err(io)
    }

    /// The costs of the set named `name` whose catalog cost is `catalog_cost`: measured,
    /// or else the measured set of the nearest catalog cost with its bootstrap time
    /// scaled by the ratio of catalog costs (`true` in the second place then).
    pub fn fhe_set(&self, name: &str, catalog_cost: u32) -> (FheSetCosts, bool) {
        if let Some(s) = self.fhe.iter().find(|s| s.name == name) {
            return (s.clone(), false);
        }
        let near = self
            .fhe
            .iter()
            .min_by(|a, b| {
                let d = |s: &FheSetCosts| (s.catalog_cost as f64 / catalog_cost as f64).ln().abs();
                d(a).total_cmp(&d(b))
            })
            .expect("costs hold at least one set");
        let ratio = catalog_cost as f64 / near.catalog_cost as f64;
        let scaled =
            FheSetCosts { name: name.into(), catalog_cost, pbs_wave_ms: near.pbs_wave_ms * ratio, ..near.clone() };
        (scaled, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_costs_parse_and_round_trip_through_a_file() {
        let b = MachineCosts::builtin();
        assert!(b.cores > 0 && !b.fhe.is_empty());
        let path = std::env::temp_dir().join(format!("secc-costs-{}/costs.json", std::process::id()));
        b.save(&path).unwrap();
        assert_eq!(MachineCosts::load(&path).unwrap(), b);
        std::fs::write(&path, "{}").unwrap();
        let err = MachineCosts::load(&path).unwrap_err();
        assert!(err.to_string().ends_with("is not a secc costs file"));
        assert!(std::error::Error::source(&err).unwrap().to_string().contains("missing field"));
    }

    #[test]
    fn an_unmeasured_set_scales_the_nearest_measured_one() {
        let mut b = MachineCosts::builtin();
        b.fhe.truncate(1);
        b.fhe[0].catalog_cost = 100;
        b.fhe[0].pbs_wave_ms = 10.0;
        let (s, scaled) = b.fhe_set("OTHER", 250);
        assert!(scaled && (s.pbs_wave_ms - 25.0).abs() < 1e-9 && s.name == "OTHER");
        let name = b.fhe[0].name.clone();
        assert!(!b.fhe_set(&name, 1).1);
    }
}
