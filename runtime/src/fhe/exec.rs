//! The three steps of an encrypted inference.
//!
//! - [`encrypt_sample`] (client): quantize the inputs in the clear, encrypt each
//!   integer `q` as `q · Δ` under the big LWE key.
//! - [`ServerProgram::evaluate`] (server): levelled ops as cleartext multiply-adds on
//!   the ciphertexts of their encrypted operands, each `lut` element as keyswitch +
//!   centred modulus switch + blind rotation + sample extraction, a layer's bootstraps
//!   in parallel.
//! - [`decrypt_sample`] (client): decrypt what `dequantize` reads, round away the
//!   noise, and finish the model in the clear.

use super::keys::{ClientKey, ServerKey};
use super::params::{resolve_params, TfheParams};
use super::FheError;
use rayon::prelude::*;
use secc_ir::client_spec::ClientSpec;
use secc_ir::interp::run_graph;
use secc_ir::lowered::fhe::{map_operands, Circuit};
use secc_ir::ops::{FheLowering, FheRule, LinearMap};
use secc_ir::{Graph, OpSpec, Tensor, ValueId};
use std::collections::HashMap;
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;

/// One encrypted tensor: a ciphertext per element, C order.
pub type CtTensor = Vec<LweCiphertextOwned<u64>>;

/// Encrypted values by value number: the client's inputs, or the server's results.
pub type CtValues = Vec<(u32, CtTensor)>;

fn delta(circuit: &Circuit, v: ValueId) -> u64 {
    1u64 << circuit.log_delta[v.index()].expect("encrypted values have an encoding")
}

/// Encrypts one sample: quantizes `inputs` and encrypts every value the client encrypts,
/// each under its partition's big key.
pub fn encrypt_sample(spec: &ClientSpec, ck: &ClientKey, inputs: &[Tensor]) -> Result<CtValues, FheError> {
    check_key(spec, ck)?;
    let ints = run_graph(&spec.encode, inputs)?;
    let ps = spec.keys.sets.iter().map(resolve_params).collect::<Result<Vec<_>, _>>()?;
    let mut seeder = new_seeder();
    let seeder = seeder.as_mut();
    let mut enc = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
    let mut out = Vec::new();
    for (t, e) in ints.iter().zip(&spec.encrypted) {
        let d = 1u64 << e.log_delta;
        let (big, p) = (ck.big_key(e.partition as usize), &ps[e.partition as usize]);
        let cts = t
            .as_i64()
            .expect("quantize gives integers")
            .iter()
            .map(|&m| {
                allocate_and_encrypt_new_lwe_ciphertext(
                    &big,
                    Plaintext((m as u64).wrapping_mul(d)),
                    p.glwe_noise_distribution,
                    p.ciphertext_modulus,
                    &mut enc,
                )
            })
            .collect();
        out.push((e.value, cts));
    }
    Ok(out)
}

fn check_key(spec: &ClientSpec, ck: &ClientKey) -> Result<(), FheError> {
    if ck.params != spec.keys.name() || ck.glwe.len() != spec.keys.sets.len() {
        return Err(FheError::Mismatch(format!(
            "the client key is for {}, the model uses {}",
            ck.params,
            spec.keys.name()
        )));
    }
    Ok(())
}

enum Step<'a> {
    /// The map, over these operands laid end to end.
    Linear(&'a LinearMap, Vec<ValueId>),
    /// `rescale` brings the input to the encoding the bootstrap reads.
    /// `ksk` indexes the server key's keyswitching keys, `partition` the set it bootstraps on.
    Lut {
        accumulators: Vec<GlweCiphertextOwned<u64>>,
        table_of: Vec<u32>,
        offset_plaintext: u64,
        rescale: u64,
        ksk: usize,
        partition: usize,
    },
}

/// The server's precomputed program: linear maps and bootstrap accumulators.
pub struct ServerProgram<'a> {
    graph: &'a Graph,
    circuit: &'a Circuit,
    sk: &'a ServerKey,
    params: Vec<TfheParams>,
    steps: HashMap<u32, Step<'a>>,
}

impl<'a> ServerProgram<'a> {
    /// Prepares evaluation of `graph` under `sk`.
    pub fn new(graph: &'a Graph, circuit: &'a Circuit, sk: &'a ServerKey) -> Result<Self, FheError> {
        let layout = circuit.key_layout(graph);
        if sk.params != layout.name() || sk.bsk.len() != layout.sets.len() || sk.ksk.len() != layout.keyswitches.len() {
            return Err(FheError::Mismatch(format!(
                "server key is for {}, the circuit uses {}",
                sk.params,
                layout.name()
            )));
        }
        let params = circuit.params.iter().map(resolve_params).collect::<Result<Vec<_>, _>>()?;
        let mut steps = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let v = ValueId(i as u32);
            let step = match (&circuit.linear[i], &circuit.luts[i]) {
                (Some(map), _) => Step::Linear(map, map_operands(graph, v, &circuit.log_delta)),
                (None, None) => continue,
                (None, Some(plan)) => {
                    let FheLowering::Bootstrap(lut) = node.op.fhe_lowering() else {
                        return Err(FheError::Mismatch(format!("{v} ({}) is not a table", node.op.mnemonic())));
                    };
                    let (own, from) = (circuit.partition_of(i), circuit.partition_of(node.inputs[0].index()));
                    let ksk = layout.keyswitches.iter().position(|&pair| pair == (from as u32, own as u32));
                    let (Some(ksk), Some(Some(_))) = (ksk, sk.bsk.get(own)) else {
                        return Err(FheError::Mismatch(format!("the server key lacks the keys of {v}'s bootstrap")));
                    };
                    let params = &params[own];
                    let boxes = 1usize << plan.precision;
                    let d_out = delta(circuit, v);
                    let accumulators = lut
                        .tables
                        .iter()
                        .map(|table| {
                            generate_programmable_bootstrap_glwe_lut(
                                params.polynomial_size,
                                params.glwe_dimension.to_glwe_size(),
                                boxes,
                                params.ciphertext_modulus,
                                1u64,
                                |b: u64| {
                                    let index = (plan.offset + b as i64 - lut.base).clamp(0, table.len() as i64 - 1);
                                    (table[index as usize] as u64).wrapping_mul(d_out)
                                },
                            )
                        })
                        .collect();
                    let delta_in = 1u64 << (63 - plan.precision);
                    let read_at = 63 - plan.precision - lut.shift;
                    let encoded_at = circuit.log_delta[node.inputs[0].index()].filter(|&d| d <= read_at);
                    let Some(encoded_at) = encoded_at else {
                        return Err(FheError::Mismatch(format!("{v} reads its input above 2^{read_at}")));
                    };
                    Step::Lut {
                        accumulators,
                        table_of: lut.table_of.clone(),
                        offset_plaintext: (plan.offset as u64).wrapping_neg().wrapping_mul(delta_in),
                        rescale: 1 << (read_at - encoded_at),
                        ksk,
                        partition: own,
                    }
                }
            };
            steps.insert(v.0, step);
        }
        Ok(ServerProgram { graph, circuit, sk, params, steps })
    }

    /// Bootstraps per inference.
    pub fn pbs_count(&self) -> usize {
        self.circuit.stats.pbs
    }

    /// Evaluates one sample's encrypted inputs; returns the values the client decrypts.
    /// `on_pbs` is called after each bootstrap (progress).
    pub fn evaluate(&self, inputs: CtValues, on_pbs: &(dyn Fn() + Sync)) -> Result<CtValues, FheError> {
        let values = self.evaluate_values(inputs, on_pbs)?;
        let out = self.circuit.outputs.iter().map(|v| values.get(v).map(|cts| (*v, cts.clone())));
        out.collect::<Option<CtValues>>().ok_or_else(|| FheError::Mismatch("an output was not computed".into()))
    }

    /// Evaluates one sample and returns every encrypted value (tests decrypt them all).
    pub fn evaluate_values(
        &self,
        inputs: CtValues,
        on_pbs: &(dyn Fn() + Sync),
    ) -> Result<HashMap<u32, CtTensor>, FheError> {
        let mut values: HashMap<u32, CtTensor> = HashMap::new();
        for (v, cts) in inputs {
            let expected = self.graph.nodes.get(v as usize).map(|n| n.ty.shape.numel());
            if !self.circuit.inputs.contains(&v) || expected != Some(cts.len()) {
                return Err(FheError::Mismatch(format!("input %{v} with {} ciphertexts", cts.len())));
            }
            if cts.iter().any(|c| c.lwe_size() != self.big_size(v as usize)) {
                return Err(FheError::Mismatch("ciphertext dimension differs from the server key's".into()));
            }
            values.insert(v, cts);
        }
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let Some(step) = self.steps.get(&(i as u32)) else { continue };
            let read =
                |x: ValueId| values.get(&x.0).ok_or_else(|| FheError::Mismatch(format!("missing input for %{i}")));
            let out = match step {
                Step::Linear(map, operands) => {
                    let xs = operands.iter().map(|&x| read(x)).collect::<Result<Vec<_>, _>>()?;
                    self.linear(map, &xs, delta(self.circuit, ValueId(i as u32)), self.big_size(i))
                }
                Step::Lut { accumulators, table_of, offset_plaintext, rescale, ksk, partition } => {
                    let lut = Bootstrap {
                        accumulators,
                        table_of,
                        offset: *offset_plaintext,
                        rescale: *rescale,
                        ksk: &self.sk.ksk[*ksk],
                        bsk: self.sk.bsk[*partition].as_ref().expect("checked when prepared"),
                        params: &self.params[*partition],
                    };
                    lut.run(read(node.inputs[0])?, on_pbs)
                }
            };
            values.insert(i as u32, out);
        }
        Ok(values)
    }

    /// The ciphertext size of encrypted value `v`: its partition's big key's, plus one.
    fn big_size(&self, v: usize) -> LweSize {
        self.params[self.circuit.partition_of(v)].big_lwe_size()
    }

    fn linear(&self, map: &LinearMap, xs: &[&CtTensor], d: u64, size: LweSize) -> CtTensor {
        let x: Vec<&LweCiphertextOwned<u64>> = xs.iter().flat_map(|x| x.iter()).collect();
        let cm = CiphertextModulus::new_native();
        map.terms
            .par_iter()
            .zip(&map.constant)
            .map(|(terms, &c)| {
                let mut acc = LweCiphertext::new(0u64, size, cm);
                *acc.get_mut_body().data = (c as u64).wrapping_mul(d);
                for &(i, w) in terms {
                    let w = w as u64;
                    for (a, b) in acc.as_mut().iter_mut().zip(x[i as usize].as_ref()) {
                        *a = a.wrapping_add(b.wrapping_mul(w));
                    }
                }
                acc
            })
            .collect()
    }
}

/// One table's bootstraps: its accumulators and the keys of its partitions.
struct Bootstrap<'k> {
    accumulators: &'k [GlweCiphertextOwned<u64>],
    table_of: &'k [u32],
    offset: u64,
    rescale: u64,
    /// From the input's partition's big key to this table's small key.
    ksk: &'k LweKeyswitchKeyOwned<u64>,
    bsk: &'k FourierLweBootstrapKeyOwned,
    params: &'k TfheParams,
}

impl Bootstrap<'_> {
    fn run(&self, x: &CtTensor, on_pbs: &(dyn Fn() + Sync)) -> CtTensor {
        let p = self.params;
        let fft = Fft::new(p.polynomial_size);
        let fft = fft.as_view();
        let glwe_size = p.glwe_dimension.to_glwe_size();
        let scratch = blind_rotate_assign_mem_optimized_requirement::<u64>(glwe_size, p.polynomial_size, fft)
            .unaligned_bytes_required();
        let small = self.ksk.output_key_lwe_dimension().to_lwe_size();
        let big = p.big_lwe_size();
        let log_modulus = p.polynomial_size.to_blind_rotation_input_modulus_log();
        x.par_iter()
            .enumerate()
            .map_init(
                || {
                    let mut buffers = ComputationBuffers::new();
                    buffers.resize(scratch);
                    buffers
                },
                |buffers, (e, ct)| {
                    let mut input = ct.clone();
                    lwe_ciphertext_cleartext_mul_assign(&mut input, Cleartext(self.rescale));
                    lwe_ciphertext_plaintext_add_assign(&mut input, Plaintext(self.offset));
                    let mut ks = LweCiphertext::new(0u64, small, p.ciphertext_modulus);
                    keyswitch_lwe_ciphertext(self.ksk, &input, &mut ks);
                    let msed =
                        lwe_ciphertext_centered_binary_modulus_switch::<u64, usize, _>(ks.as_view(), log_modulus);
                    let table = if self.table_of.is_empty() { 0 } else { self.table_of[e] as usize };
                    let mut acc = self.accumulators[table].clone();
                    blind_rotate_assign_mem_optimized(&msed, &mut acc, self.bsk, fft, buffers.stack());
                    let mut out = LweCiphertext::new(0u64, big, p.ciphertext_modulus);
                    extract_lwe_sample_from_glwe_ciphertext(&acc, &mut out, MonomialDegree(0));
                    on_pbs();
                    out
                },
            )
            .collect()
    }
}

/// Decrypts what the server returned and finishes the model in the clear.
pub fn decrypt_sample(spec: &ClientSpec, ck: &ClientKey, values: &CtValues) -> Result<Vec<Tensor>, FheError> {
    check_key(spec, ck)?;
    let mut bound: Vec<Option<Tensor>> = vec![None; spec.decrypted.len()];
    for (v, cts) in values {
        let k = spec.decrypted.iter().position(|e| e.value == *v);
        let Some(k) = k.filter(|&k| bound[k].is_none()) else {
            return Err(FheError::Mismatch(format!("%{v} is not an encrypted output of this model, or comes twice")));
        };
        let shape = &spec.decode.ty(spec.decode.inputs[k]).shape;
        if cts.len() != shape.numel() {
            return Err(FheError::Mismatch(format!("%{v} has {} ciphertexts, not {}", cts.len(), shape.numel())));
        }
        let big = ck.big_key(spec.decrypted[k].partition as usize);
        if cts.iter().any(|c| c.lwe_size() != big.lwe_dimension().to_lwe_size()) {
            return Err(FheError::Mismatch("ciphertext dimension differs from the client key's".into()));
        }
        bound[k] = Some(Tensor::I64(decrypt_tensor(&big, cts, spec.decrypted[k].log_delta, shape)));
    }
    let bound = bound.into_iter().zip(&spec.decrypted).map(|(t, e)| {
        t.ok_or_else(|| FheError::Mismatch(format!("%{}, an encrypted output of this model, is missing", e.value)))
    });
    Ok(run_graph(&spec.decode, &bound.collect::<Result<Vec<_>, _>>()?)?)
}

/// Decrypts ciphertexts encoding `m · 2^log_delta`, rounding the noise away.
pub fn decrypt_tensor(
    big: &LweSecretKeyOwned<u64>,
    cts: &[LweCiphertextOwned<u64>],
    log_delta: u32,
    shape: &secc_ir::Shape,
) -> ndarray::ArrayD<i64> {
    let half = 1i64 << (log_delta - 1);
    let data =
        cts.iter().map(|ct| (decrypt_lwe_ciphertext(big, ct).0 as i64).wrapping_add(half) >> log_delta).collect();
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), data).expect("one ciphertext per element")
}
