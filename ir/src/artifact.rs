//! `model.secc`: one file holding a compiled model.
//!
//! Layout: the 8-byte magic `SECCMODL`, the format version (u32 LE), the payload
//! length (u64 LE), the SHA-256 of the payload, then the payload (bincode of
//! [`Artifact`]). Loading checks each in turn, so a foreign file, a file from a newer
//! secc, a truncated file and a corrupted one each get their own error.

use crate::frame::{decode_payload, frame, unframe, FrameError, HEADER};
use crate::graph::Graph;
use crate::lowered::{verify_circuit, verify_plan, CircuitError, PlanError};
use crate::{verify_graph, IrError, QuantConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// File magic.
pub const MAGIC: &[u8; 8] = b"SECCMODL";
/// The format version this build writes and the newest it reads (2 added tree
/// ensembles, 3 [`Settings::backend`], 4 the SMPC plan and the programs' graph digests,
/// 5 an artifact without a quantized IR, 6 the TFHE parameter set's numbers).
pub const FORMAT_VERSION: u32 = 7;
/// Largest payload accepted (1 GiB): a corrupt length cannot make us allocate more.
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// A compiled model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// The float IR (the float backend runs it).
    pub float: Graph,
    /// The quantized IR (the simulation runs it; the TFHE circuit is lowered from it),
    /// or why the model has none.
    pub quantized: Result<Graph, String>,
    /// The range each float-IR value took on the calibration set, by value number
    /// (`None` for values that are not floats); fixed-point backends fit their
    /// approximations on it.
    pub float_ranges: Vec<Option<(f64, f64)>>,
    /// The TFHE circuit of `quantized`, or why there is none.
    pub fhe: Result<crate::lowered::fhe::Circuit, String>,
    /// The SMPC plan of `float` (the model owner's, with the weights), or why there is none.
    pub mpc: Result<crate::lowered::mpc::Plan, String>,
    /// How it was compiled, for `secc inspect`.
    pub settings: Settings,
}

/// The compilation settings recorded in an artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The secc version that compiled it.
    pub secc_version: String,
    /// The source model file name.
    pub source: String,
    /// The quantizer's settings.
    pub quant: QuantConfig,
    /// Calibration samples used.
    pub calibration_samples: usize,
    /// The backend `secc compile --backend auto` predicted to be faster, and why.
    pub backend: Option<BackendChoice>,
}

/// A private backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrivateBackend {
    /// TFHE on one server.
    Fhe,
    /// 3-party secret sharing.
    Mpc,
}

impl std::fmt::Display for PrivateBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrivateBackend::Fhe => "fhe",
            PrivateBackend::Mpc => "mpc",
        })
    }
}

/// The predicted winner between the two private backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendChoice {
    /// The backend predicted to be faster per inference.
    pub backend: PrivateBackend,
    /// Both predictions, the network and the cost file they came from.
    pub reason: String,
}

/// Errors reading or writing an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a secc artifact at all.
    #[error("{path} is not a secc model (no SECCMODL header); compile one with `secc compile`")]
    Foreign {
        /// The file.
        path: String,
    },
    /// Written by an older secc, whose format this one no longer reads.
    #[error("{path} has format version {found}, from an older secc; this one reads version {FORMAT_VERSION}: recompile the model with `secc compile`")]
    OlderVersion {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// Written by a newer secc.
    #[error("{path} has format version {found}; this secc reads up to {FORMAT_VERSION}: upgrade secc or recompile the model")]
    NewerVersion {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// Shorter than its header says.
    #[error("{path} is truncated: {got} bytes, the header promises {expected}")]
    Truncated {
        /// The file.
        path: String,
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// Checksum mismatch or undecodable payload.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// Decoded, but its contents break an invariant (a crafted or tampered file).
    #[error("{path} is invalid: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        source: ContentError,
    },
}

/// What is wrong inside an artifact that decoded.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The float IR fails verification.
    #[error("the float IR: {}", one_line(.0))]
    Float(IrError),
    /// The quantized IR fails verification.
    #[error("the quantized IR: {}", one_line(.0))]
    Quantized(IrError),
    /// The TFHE circuit does not fit the quantized IR.
    #[error("the TFHE circuit: {0}")]
    Circuit(#[from] CircuitError),
    /// The SMPC plan is inconsistent.
    #[error("the SMPC plan: {0}")]
    Plan(#[from] PlanError),
    /// A lowered program that was not lowered from the artifact's own graph.
    #[error("its {program} was not lowered from its {graph} graph (digests differ); recompile the model")]
    Unbound {
        /// `TFHE circuit` or `SMPC plan`.
        program: &'static str,
        /// `quantized` or `float`.
        graph: &'static str,
    },
}

/// Every broken invariant of a graph on one line, so the first line of an error names the value.
fn one_line(e: &IrError) -> String {
    match e {
        IrError::Verify { errors, .. } => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

impl Artifact {
    /// SHA-256 of the payload: keys and ciphertexts made for this model carry it.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(bincode::serialize(self).expect("artifacts serialize")).into()
    }

    /// Serializes with header and checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(MAGIC, FORMAT_VERSION, &bincode::serialize(self).expect("artifacts serialize"))
    }

    /// Parses and checks bytes produced by [`Artifact::to_bytes`]. `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, ArtifactError> {
        let path = path.to_string();
        let refused = |e| match e {
            FrameError::Foreign => ArtifactError::Foreign { path: path.clone() },
            FrameError::Newer(found) => ArtifactError::NewerVersion { path: path.clone(), found },
            FrameError::Older(found) => ArtifactError::OlderVersion { path: path.clone(), found },
            FrameError::Truncated { expected, got } => ArtifactError::Truncated { path: path.clone(), expected, got },
            FrameError::Corrupt(reason) => ArtifactError::Corrupt { path: path.clone(), reason },
        };
        let payload = unframe(bytes, MAGIC, FORMAT_VERSION, MAX_PAYLOAD).map_err(refused)?;
        let artifact: Artifact = decode_payload(payload, MAX_PAYLOAD).map_err(refused)?;
        // The checksum catches accidents, not a crafted file: check what the runtime relies on.
        match artifact.verify() {
            Ok(()) => Ok(artifact),
            Err(source) => Err(ArtifactError::Invalid { path, source }),
        }
    }

    /// Reads and checks an artifact file.
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        let p = path.display().to_string();
        let io = |source| ArtifactError::Io { path: p.clone(), source };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_PAYLOAD + HEADER as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Self::from_bytes(&bytes, &p)
    }

    /// Checks both graphs, that each program was lowered from its graph, the circuit
    /// against the quantized graph and the plan on its own.
    pub fn verify(&self) -> Result<(), ContentError> {
        verify_graph(&self.float).map_err(ContentError::Float)?;
        if let Ok(quantized) = &self.quantized {
            verify_graph(quantized).map_err(ContentError::Quantized)?;
        }
        if let Ok(circuit) = &self.fhe {
            let quantized = self.quantized.as_ref().ok();
            if quantized.map(Graph::digest) != Some(circuit.graph_digest) {
                return Err(ContentError::Unbound { program: "TFHE circuit", graph: "quantized" });
            }
            verify_circuit(circuit, quantized.expect("bound to it"))?;
        }
        if let Ok(plan) = &self.mpc {
            if plan.graph_digest != self.float.digest() {
                return Err(ContentError::Unbound { program: "SMPC plan", graph: "float" });
            }
            verify_plan(plan)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest graph that verifies: one input, returned.
    fn graph(name: &str) -> Graph {
        use crate::ops::{Input, Op};
        let mut g = Graph::new(name);
        let ty = crate::TensorType::f32(crate::Shape(vec![1, 2]));
        let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "x").unwrap();
        g.outputs.push(x);
        g
    }

    fn sample() -> Artifact {
        let settings = Settings {
            secc_version: "test".into(),
            source: "m.onnx".into(),
            quant: QuantConfig::default(),
            calibration_samples: 3,
            backend: Some(BackendChoice { backend: PrivateBackend::Fhe, reason: "test".into() }),
        };
        Artifact {
            float: graph("f"),
            quantized: Ok(graph("q")),
            float_ranges: vec![Some((-1.0, 2.5)), None],
            fhe: Err("none".into()),
            mpc: Err("none".into()),
            settings,
        }
    }

    #[test]
    fn round_trips() {
        let a = sample();
        assert_eq!(Artifact::from_bytes(&a.to_bytes(), "a").unwrap(), a);
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let bytes = sample().to_bytes();
        let err = |b: &[u8]| Artifact::from_bytes(b, "m.secc").unwrap_err().to_string();
        assert!(err(b"PK\x03\x04zipfile").contains("is not a secc model"));
        assert!(err(&bytes[..bytes.len() - 5]).contains("is truncated"));
        assert!(err(&bytes[..30]).contains("is truncated"));
        let mut newer = bytes.clone();
        newer[8] = 9;
        assert!(err(&newer).contains("format version 9"));
        let mut older = bytes.clone();
        older[8] = 2;
        assert!(err(&older).contains("format version 2, from an older secc"));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(err(&flipped).contains("checksum mismatch"));
        let mut huge = bytes.clone();
        huge[19] = 0x7f;
        assert!(err(&huge).contains("exceeds"));
        // A re-checksummed file whose graph no longer verifies.
        let mut tampered = sample();
        tampered.quantized.as_mut().unwrap().outputs.clear();
        let e = Artifact::from_bytes(&tampered.to_bytes(), "m.secc").unwrap_err();
        assert!(matches!(e, ArtifactError::Invalid { source: ContentError::Quantized(_), .. }), "{e}");
        assert_eq!(e.to_string(), "m.secc is invalid: the quantized IR: %0: graph has no outputs");
    }

    #[test]
    fn a_program_of_another_graph_is_refused() {
        use crate::lowered::mpc::{Plan, Roles};
        let mut a = sample();
        let plan = |graph: &Graph| Plan {
            name: "p".into(),
            graph_digest: graph.digest(),
            frac_bits: 18,
            roles: Roles::default(),
            input_shape: vec![1],
            output_shape: vec![1],
            weights: vec![],
            weight_values: None,
            regs: 0,
            steps: vec![],
            finish: None,
        };
        a.mpc = Ok(plan(a.quantized.as_ref().unwrap()));
        let err = Artifact::from_bytes(&a.to_bytes(), "m.secc").unwrap_err().to_string();
        assert_eq!(err, "m.secc is invalid: its SMPC plan was not lowered from its float graph (digests differ); recompile the model");
    }
}
