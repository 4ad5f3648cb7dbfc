//! The client spec: what a TFHE client needs to encrypt its inputs and decrypt the
//! server's results, and nothing the server keeps to itself (no weights, no tables).
//!
//! It holds two small graphs cut out of the quantized IR: `encode`, from the model's
//! inputs to the values the client quantizes (or, for a tree ensemble, bucketizes on the
//! trees' thresholds) and encrypts, and `decode`, from the
//! values it decrypts (one `input` each) to the model's outputs (the `dequantize` and
//! whatever the client finishes in the clear), with each encrypted value's number in
//! the circuit and its encoding `2^log_delta`. It carries the digest of the artifact it
//! was cut from, which keys and ciphertexts are bound to, and the parameter set.
//!
//! File: the framing of `model.secc` under the magic `SECCSPEC`; loading checks the
//! frame, then both graphs and every index and encoding the client relies on.

use crate::artifact::Artifact;
use crate::frame::{decode_payload, frame, unframe, FrameError};
use crate::lowered::fhe::{Circuit, KeyLayout};
use crate::ops::{FheLowering, FheRule, Input, Op};
use crate::{verify_graph, Graph, ValueId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// File magic.
pub const SPEC_MAGIC: &[u8; 8] = b"SECCSPEC";
/// The format version this build writes and reads.
pub const SPEC_VERSION: u32 = 2;
/// Largest payload accepted: a spec holds no weights, only the client's ends of the graph.
pub const MAX_SPEC_BYTES: u64 = 1 << 26;

/// One encrypted tensor at the client's boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encrypted {
    /// Its value number in the circuit (what ciphertext files name it by).
    pub value: u32,
    /// Its encoding: the integer `m` is encrypted as `m · 2^log_delta`.
    pub log_delta: u32,
    /// The key partition whose big key it is encrypted under.
    pub partition: u32,
}

/// What a TFHE client needs (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// The model's name.
    pub model: String,
    /// [`Artifact::digest`] of the compiled model: keys and ciphertexts carry it.
    pub artifact_digest: [u8; 32],
    /// The keys: a parameter set per partition, and the keyswitches between them.
    pub keys: KeyLayout,
    /// Bootstraps per inference (what a request costs the server).
    pub pbs: usize,
    /// The model's inputs → the values the client encrypts, as its outputs.
    pub encode: Graph,
    /// Each `encode` output's circuit value and encoding, in order.
    pub encrypted: Vec<Encrypted>,
    /// One input per decrypted value → the model's outputs.
    pub decode: Graph,
    /// Each `decode` input's circuit value and encoding, in order.
    pub decrypted: Vec<Encrypted>,
}

/// Errors making, reading or checking a client spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a client spec.
    #[error("{path} is not a secc client spec (no SECCSPEC header); write one with `secc compile --client-spec`")]
    Foreign {
        /// The file.
        path: String,
    },
    /// Another format version.
    #[error("{path} has client spec version {found}; this secc reads version {SPEC_VERSION}: use the same secc as the server, or fetch the spec again")]
    Version {
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
        /// Bytes announced.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// Checksum mismatch, undecodable payload, or contents that break an invariant.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The model has no TFHE circuit.
    #[error("this model has no TFHE circuit: {0}")]
    NoCircuit(String),
    /// The circuit's boundary is not one a client can compute.
    #[error("the client cannot compute {value} ({name}): {reason}")]
    NotClientSide {
        /// The value.
        value: ValueId,
        /// Its node's name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

impl ClientSpec {
    /// The spec of a compiled model.
    pub fn from_artifact(art: &Artifact) -> Result<Self, SpecError> {
        let circuit = art.fhe.as_ref().map_err(|e| SpecError::NoCircuit(e.clone()))?;
        let graph = art.quantized.as_ref().map_err(|e| SpecError::NoCircuit(e.clone()))?;
        Self::new(graph, circuit, art.digest())
    }

    /// The client's ends of `circuit`, lowered from `graph`, for the artifact `digest`.
    pub fn new(graph: &Graph, circuit: &Circuit, artifact_digest: [u8; 32]) -> Result<Self, SpecError> {
        let not_client =
            |v: ValueId, reason| SpecError::NotClientSide { value: v, name: graph.node(v).name.clone(), reason };
        let encoding = |v: u32| {
            let log_delta = circuit.log_delta.get(v as usize).copied().flatten();
            log_delta
                .map(|log_delta| Encrypted { value: v, log_delta, partition: circuit.partition_of(v as usize) as u32 })
                .ok_or_else(|| not_client(ValueId(v), "no encoding"))
        };
        let built = |e: crate::IrError| SpecError::Corrupt { path: graph.name.clone(), reason: e.to_string() };

        let mut encode = Graph::new(&graph.name);
        let mut ids = HashMap::new();
        for &v in &graph.inputs {
            ids.insert(v, encode.push(graph.node(v).op.clone(), vec![], &graph.node(v).name).map_err(built)?);
        }
        let mut encrypted = Vec::new();
        for &q in &circuit.inputs {
            let node = graph.node(ValueId(q));
            let input = node.inputs.first().and_then(|x| ids.get(x).copied());
            let (FheLowering::ClientEncrypts, Some(input)) = (node.op.fhe_lowering(), input) else {
                return Err(not_client(ValueId(q), "an encrypted input must quantize or bucketize a model input"));
            };
            let id = encode.push(node.op.clone(), vec![input], &node.name).map_err(built)?;
            encode.outputs.push(id);
            encrypted.push(encoding(q)?);
        }

        let mut decode = Graph::new(&graph.name);
        let mut ids = HashMap::new();
        let mut decrypted = Vec::new();
        for (index, &v) in circuit.outputs.iter().enumerate() {
            let node = graph.node(ValueId(v));
            let input = Op::Input(Input { index, ty: node.ty.clone() });
            ids.insert(ValueId(v), decode.push(input, vec![], &node.name).map_err(built)?);
            decrypted.push(encoding(v)?);
        }
        // Everything downstream of the decrypted values runs on the client, with copies
        // of the constants it reads.
        let mut consts = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let v = ValueId(i as u32);
            if ids.contains_key(&v) || !node.inputs.iter().any(|x| ids.contains_key(x)) {
                continue;
            }
            let mut inputs = Vec::new();
            for x in &node.inputs {
                let id = match (ids.get(x).or(consts.get(x)).copied(), &graph.node(*x).op) {
                    (Some(id), _) => id,
                    (None, op @ Op::Const(_)) => {
                        let id = decode.push(op.clone(), vec![], &graph.node(*x).name).map_err(built)?;
                        consts.insert(*x, id);
                        id
                    }
                    _ => return Err(not_client(v, "it reads a value the server computes but does not return")),
                };
                inputs.push(id);
            }
            ids.insert(v, decode.push(node.op.clone(), inputs, &node.name).map_err(built)?);
        }
        for &o in &graph.outputs {
            let id = ids.get(&o).copied().ok_or_else(|| not_client(o, "a model output the client does not decrypt"))?;
            decode.outputs.push(id);
        }
        Ok(ClientSpec {
            model: graph.name.clone(),
            artifact_digest,
            keys: circuit.key_layout(graph),
            pbs: circuit.stats.pbs,
            encode,
            encrypted,
            decode,
            decrypted,
        })
    }

    /// Serializes with header and checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(SPEC_MAGIC, SPEC_VERSION, &bincode::serialize(self).expect("specs serialize"))
    }

    /// Parses and checks bytes produced by [`ClientSpec::to_bytes`]. `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, SpecError> {
        let path = path.to_string();
        let refused = |e| match e {
            FrameError::Foreign => SpecError::Foreign { path: path.clone() },
            FrameError::Newer(found) | FrameError::Older(found) => SpecError::Version { path: path.clone(), found },
            FrameError::Truncated { expected, got } => SpecError::Truncated { path: path.clone(), expected, got },
            FrameError::Corrupt(reason) => SpecError::Corrupt { path: path.clone(), reason },
        };
        let payload = unframe(bytes, SPEC_MAGIC, SPEC_VERSION, MAX_SPEC_BYTES).map_err(refused)?;
        let spec: ClientSpec = decode_payload(payload, MAX_SPEC_BYTES).map_err(refused)?;
        // The checksum catches accidents, not a crafted file: check what the client relies on.
        spec.verify().map_err(|reason| SpecError::Corrupt { path, reason })?;
        Ok(spec)
    }

    /// Reads and checks a client spec file.
    pub fn read(path: &std::path::Path) -> Result<Self, SpecError> {
        use std::io::Read;
        let p = path.display().to_string();
        let io = |source| SpecError::Io { path: p.clone(), source };
        let mut bytes = Vec::new();
        let limit = MAX_SPEC_BYTES + crate::frame::HEADER as u64 + 1;
        std::fs::File::open(path).map_err(io)?.take(limit).read_to_end(&mut bytes).map_err(io)?;
        Self::from_bytes(&bytes, &p)
    }

    /// Whether `bytes` start as a client spec (rather than, say, a `model.secc`).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(SPEC_MAGIC)
    }

    /// Checks both graphs, and that every boundary value is an integer tensor with an
    /// encoding the client can encrypt and decode.
    fn verify(&self) -> Result<(), String> {
        self.keys.check()?;
        verify_graph(&self.encode).map_err(|e| format!("the encoding graph: {e}"))?;
        verify_graph(&self.decode).map_err(|e| format!("the decoding graph: {e}"))?;
        let ends = [
            ("encrypted", &self.encode, &self.encode.outputs, &self.encrypted),
            ("decrypted", &self.decode, &self.decode.inputs, &self.decrypted),
        ];
        for (what, graph, values, encodings) in ends {
            if values.len() != encodings.len() || values.is_empty() {
                return Err(format!("{} {what} values, {} encodings", values.len(), encodings.len()));
            }
            for (v, e) in values.iter().zip(encodings) {
                let ty = graph.ty(*v);
                if ty.as_int().is_none() || ty.shape.numel() == 0 || !(1..=63).contains(&e.log_delta) {
                    return Err(format!("{what} value %{} is not an encodable integer tensor", e.value));
                }
                if e.partition as usize >= self.keys.sets.len() {
                    return Err(format!(
                        "{what} value %{} is in partition {} of {}",
                        e.value,
                        e.partition,
                        self.keys.sets.len()
                    ));
                }
            }
        }
        let encode_only_quantizes = self
            .encode
            .nodes
            .iter()
            .all(|n| matches!(n.op, Op::Input(_)) || matches!(n.op.fhe_lowering(), FheLowering::ClientEncrypts));
        if !encode_only_quantizes {
            return Err("the encoding graph does more than quantize or bucketize the inputs".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lowered::fhe::{catalog, CircuitStats};
    use crate::ops::{Dequantize, Quantize};
    use crate::{Quant, Shape, TensorType};

    /// `x → quantize → (server) → dequantize`, with the server's part a placeholder
    /// input-typed value (the spec never looks at it).
    fn model() -> (Graph, Circuit) {
        let mut g = Graph::new("m");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, 2])) }), vec![], "x").unwrap();
        let quant = Quant { scale: vec![0.5], zero_point: vec![0], axis: None };
        let q = g.push(Op::Quantize(Quantize { quant: quant.clone(), lo: -8, hi: 7 }), vec![x], "q").unwrap();
        let y = g.push(Op::Dequantize(Dequantize { quant }), vec![q], "y").unwrap();
        g.outputs.push(y);
        let params = vec![catalog(-128).remove(0)];
        let n = g.nodes.len();
        let circuit = Circuit {
            graph_digest: g.digest(),
            params,
            partition: Vec::new(),
            log_delta: vec![None, Some(60), None],
            luts: vec![None; n],
            linear: vec![None; n],
            inputs: vec![1],
            outputs: vec![1],
            stats: CircuitStats { pbs: 0, widest_table: None, max_norm: None, levelled_macs: 0 },
        };
        (g, circuit)
    }

    #[test]
    fn round_trips_and_every_kind_of_damage_is_named() {
        let (g, c) = model();
        let spec = ClientSpec::new(&g, &c, [7; 32]).unwrap();
        assert_eq!(spec.encrypted, vec![Encrypted { value: 1, log_delta: 60, partition: 0 }]);
        assert_eq!(spec.decode.nodes.len(), 2);
        let bytes = spec.to_bytes();
        assert_eq!(ClientSpec::from_bytes(&bytes, "s").unwrap(), spec);
        let err = |b: &[u8]| ClientSpec::from_bytes(b, "s").unwrap_err().to_string();
        assert!(err(b"SECCMODL....").contains("not a secc client spec"));
        assert!(err(&bytes[..bytes.len() - 3]).contains("truncated"));
        assert!(err(&bytes[..20]).contains("truncated"));
        let mut newer = bytes.clone();
        newer[8] = 3;
        assert!(err(&newer).contains("version 3"));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(err(&flipped).contains("checksum"));
        let mut tampered = spec.clone();
        tampered.decrypted[0].log_delta = 64;
        assert!(err(&tampered.to_bytes()).contains("not an encodable integer tensor"));
        let mut tampered = spec.clone();
        tampered.encrypted[0].partition = 1;
        assert!(err(&tampered.to_bytes()).contains("in partition 1 of 1"));
        let mut tampered = spec;
        tampered.encrypted.clear();
        assert!(err(&tampered.to_bytes()).contains("1 encrypted values, 0 encodings"));
    }

    #[test]
    fn a_tail_reading_a_server_value_is_refused() {
        let (mut g, mut c) = model();
        // A model output the client does not decrypt.
        let z = g
            .push(
                Op::Quantize(Quantize {
                    quant: Quant { scale: vec![1.0], zero_point: vec![0], axis: None },
                    lo: 0,
                    hi: 1,
                }),
                vec![ValueId(0)],
                "z",
            )
            .unwrap();
        g.outputs.push(z);
        c.log_delta.push(None);
        let err = ClientSpec::new(&g, &c, [0; 32]).unwrap_err().to_string();
        assert!(err.contains("a model output the client does not decrypt"), "{err}");
    }
}
