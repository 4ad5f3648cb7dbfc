//! The circuit's parameter set in tfhe-rs's types, built from the numbers the circuit
//! carries; a catalog set's numbers are checked against the tfhe-rs constant it names.

use super::FheError;
use secc_ir::lowered::fhe::{Lattice, ParamSet};
use tfhe::core_crypto::prelude::*;
use tfhe::shortint::parameters::v1_6::*;
use tfhe::shortint::ClassicPBSParameters;

/// What keys, encryption and evaluation take from a parameter set.
#[derive(Clone, Copy, Debug)]
pub struct TfheParams {
    /// `n`.
    pub lwe_dimension: LweDimension,
    /// `k`.
    pub glwe_dimension: GlweDimension,
    /// `N`.
    pub polynomial_size: PolynomialSize,
    /// The bootstrapping key's decomposition.
    pub pbs_base_log: DecompositionBaseLog,
    /// Its levels.
    pub pbs_level: DecompositionLevelCount,
    /// The keyswitching key's decomposition.
    pub ks_base_log: DecompositionBaseLog,
    /// Its levels.
    pub ks_level: DecompositionLevelCount,
    /// Noise of encryptions under the small key.
    pub lwe_noise_distribution: DynamicDistribution<u64>,
    /// Noise of encryptions under the GLWE key (and the big LWE key it flattens to).
    pub glwe_noise_distribution: DynamicDistribution<u64>,
    /// The native 2^64.
    pub ciphertext_modulus: CiphertextModulus<u64>,
}

impl TfheParams {
    /// The size of a ciphertext under the big LWE key (the flattened GLWE key): `k·N + 1`.
    pub fn big_lwe_size(&self) -> LweSize {
        self.glwe_dimension.to_equivalent_lwe_dimension(self.polynomial_size).to_lwe_size()
    }
}

/// `set` in tfhe-rs's types. Its numbers are range-checked first (tfhe-rs asserts on
/// some); a catalog set must also carry exactly the numbers of the tfhe-rs constant it names.
pub fn resolve_params(set: &ParamSet) -> Result<TfheParams, FheError> {
    let bad = |message: String| FheError::BadParams { name: set.name.clone(), message };
    set.lattice.check().map_err(bad)?;
    if !set.searched {
        let t = catalog_constant(&set.name)?;
        let std = |d: DynamicDistribution<u64>| match d {
            DynamicDistribution::Gaussian(g) => g.std,
            DynamicDistribution::TUniform(_) => f64::NAN,
        };
        let theirs = Lattice {
            lwe_dimension: t.lwe_dimension.0 as u32,
            glwe_dimension: t.glwe_dimension.0 as u32,
            polynomial_size: t.polynomial_size.0 as u32,
            pbs_level: t.pbs_level.0 as u32,
            pbs_base_log: t.pbs_base_log.0 as u32,
            ks_level: t.ks_level.0 as u32,
            ks_base_log: t.ks_base_log.0 as u32,
            lwe_std: std(t.lwe_noise_distribution),
            glwe_std: std(t.glwe_noise_distribution),
        };
        if theirs != set.lattice || !t.ciphertext_modulus.is_native_modulus() {
            return Err(bad(format!("its numbers are not tfhe-rs's ({theirs:?})")));
        }
    }
    let l = &set.lattice;
    let gaussian = |std: f64| DynamicDistribution::new_gaussian_from_std_dev(StandardDev(std));
    Ok(TfheParams {
        lwe_dimension: LweDimension(l.lwe_dimension as usize),
        glwe_dimension: GlweDimension(l.glwe_dimension as usize),
        polynomial_size: PolynomialSize(l.polynomial_size as usize),
        pbs_base_log: DecompositionBaseLog(l.pbs_base_log as usize),
        pbs_level: DecompositionLevelCount(l.pbs_level as usize),
        ks_base_log: DecompositionBaseLog(l.ks_base_log as usize),
        ks_level: DecompositionLevelCount(l.ks_level as usize),
        lwe_noise_distribution: gaussian(l.lwe_std),
        glwe_noise_distribution: gaussian(l.glwe_std),
        ciphertext_modulus: CiphertextModulus::new_native(),
    })
}

macro_rules! sets {
    ($($name:ident),* $(,)?) => {
        /// The tfhe-rs constant named `name` (a catalog entry of `secc_ir::lowered::fhe`).
        fn catalog_constant(name: &str) -> Result<ClassicPBSParameters, FheError> {
            match name {
                $(stringify!($name) => Ok($name),)*
                other => Err(FheError::UnknownParams(other.to_string())),
            }
        }
    };
}

sets!(
    V1_6_PARAM_MESSAGE_1_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_3_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_4_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_5_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_6_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_7_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_4_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_5_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_2_CARRY_6_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_4_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_3_CARRY_5_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_4_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_4_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_4_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_4_CARRY_3_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_5_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_5_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_5_CARRY_3_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_6_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_6_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_6_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_7_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_7_CARRY_1_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_8_CARRY_0_KS_PBS_GAUSSIAN_2M128,
    V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M64,
    V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M64,
    V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M64,
    V1_6_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M64,
    V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M40,
    V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M40,
    V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M40,
    V1_6_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M40,
);

#[cfg(test)]
mod tests {
    use super::*;
    use secc_ir::lowered::fhe::{catalog, noise};
    use tfhe::shortint::parameters::ModulusSwitchType;

    /// The catalog's figures are tfhe-rs's own: every entry resolves (its numbers equal
    /// the constant's), with the message/carry split, noise budget and failure
    /// probability it claims; and the noise model predicts that failure probability at
    /// the set's own precision and norm budget.
    #[test]
    fn catalog_matches_tfhe() {
        for p in [-128, -64, -40] {
            for set in catalog(p) {
                resolve_params(&set).unwrap();
                let t = catalog_constant(&set.name).unwrap();
                assert_eq!(t.message_modulus.0, 1 << set.message_bits, "{}", set.name);
                assert_eq!(t.carry_modulus.0, 1 << set.carry_bits, "{}", set.name);
                assert_eq!(t.max_noise_level.get() as f64, set.norm_budget, "{}", set.name);
                // At least as reliable as the catalog claims.
                assert!(t.log2_p_fail <= set.log2_p_fail as f64 + 0.5, "{}: {}", set.name, t.log2_p_fail);
                // tfhe-rs tuned its 2^-64 and 2^-40 sets for the standard modulus switch,
                // whose body rounding and uncentred mask double the noise of the centred
                // one this runtime uses (and the model describes).
                let l = &set.lattice;
                let centred = noise::input_variance(l, set.norm_budget);
                let two_n = 2.0 * l.polynomial_size as f64;
                let q2 = 2f64.powi(-128);
                let standard_ms =
                    l.lwe_dimension as f64 * (q2 / 48.0 + two_n.powi(-2) / 24.0) - q2 / 12.0 + two_n.powi(-2) / 12.0;
                let own = match t.modulus_switch_noise_reduction_params {
                    ModulusSwitchType::Standard => centred - noise::modulus_switch_variance(l) + standard_ms,
                    _ => centred,
                };
                let predicted = noise::log2_p_fail_of(set.bits(), own);
                let ours = noise::log2_p_fail_of(set.bits(), centred);
                println!("{}: tfhe-rs 2^{}, model 2^{predicted:.2}, centred 2^{ours:.2}", set.name, t.log2_p_fail);
                assert!(
                    (predicted - t.log2_p_fail).abs() <= 2.0,
                    "{}: model {predicted} vs {}",
                    set.name,
                    t.log2_p_fail
                );
                assert!(ours <= predicted + 1e-9);
            }
        }
        let mut off = catalog(-128).remove(3);
        off.lattice.ks_level += 1;
        assert!(resolve_params(&off).unwrap_err().to_string().contains("not tfhe-rs's"));
    }

    /// The noise model against real keys of a searched set, over 300 bootstraps of an
    /// identity table: the bootstrap output's noise, and what a bootstrap reads from
    /// those outputs scaled by ν = 128 (a cleartext multiply) after the keyswitch and
    /// after the modulus switch, and after a keyswitch to a second partition's smaller
    /// key, each within 0.5×–2× of the model's variance.
    #[test]
    fn measured_noise_matches_the_model() {
        use crate::fhe::keys::generate_local_keys;
        use secc_ir::lowered::fhe::{KeyLayout, Lattice, ParamSet};
        use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;

        let dims = Lattice {
            lwe_dimension: 704,
            glwe_dimension: 1,
            polynomial_size: 2048,
            pbs_level: 1,
            pbs_base_log: 23,
            ks_level: 4,
            ks_base_log: 3,
            lwe_std: 0.0,
            glwe_std: 0.0,
        };
        let set = ParamSet::searched(dims, 2, -40).unwrap();
        let l = &set.lattice;
        let p = resolve_params(&set).unwrap();
        let other = ParamSet::searched(
            Lattice { lwe_dimension: 640, glwe_dimension: 2, polynomial_size: 1024, ks_level: 5, ..dims },
            2,
            -40,
        )
        .unwrap();
        let layout = KeyLayout { sets: vec![set.clone(), other.clone()], keyswitches: vec![(0, 0), (0, 1)] };
        let (ck, sk) = generate_local_keys(&layout).unwrap();
        let big = ck.big_key(0);
        let small: Vec<u64> = ck.lwe[0].as_ref().to_vec();
        let (bits, nu) = (2u32, 128u64);
        let delta = 1u64 << (63 - bits);
        let cm = p.ciphertext_modulus;
        let acc = generate_programmable_bootstrap_glwe_lut(
            p.polynomial_size,
            p.glwe_dimension.to_glwe_size(),
            1 << bits,
            cm,
            delta,
            |m: u64| m,
        );
        let fft = Fft::new(p.polynomial_size);
        let fft = fft.as_view();
        let mut buffers = ComputationBuffers::new();
        buffers.resize(
            blind_rotate_assign_mem_optimized_requirement::<u64>(
                p.glwe_dimension.to_glwe_size(),
                p.polynomial_size,
                fft,
            )
            .unaligned_bytes_required(),
        );
        let log_2n = p.polynomial_size.to_blind_rotation_input_modulus_log();
        let two_n = 1u64 << log_2n.0;
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let mut enc = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
        let torus = |e: u64| e as i64 as f64 / 2f64.powi(64);
        let keyswitch_to = |k: usize, ct: &LweCiphertextOwned<u64>| {
            let mut out = LweCiphertext::new(0u64, sk.ksk[k].output_lwe_size(), cm);
            keyswitch_lwe_ciphertext(&sk.ksk[k], ct, &mut out);
            out
        };
        let keyswitch = |ct: &LweCiphertextOwned<u64>| keyswitch_to(0, ct);
        let (mut out_var, mut ks_var, mut ms_var, mut cross_var) = (0.0, 0.0, 0.0, 0.0);
        let samples = 300;
        for i in 0..samples {
            let m = (i % 4) as u64;
            let ct = allocate_and_encrypt_new_lwe_ciphertext(
                &big,
                Plaintext(m * delta),
                p.glwe_noise_distribution,
                cm,
                &mut enc,
            );
            let input = keyswitch(&ct);
            let msed = lwe_ciphertext_centered_binary_modulus_switch::<u64, usize, _>(input.as_view(), log_2n);
            let mut rotated = acc.clone();
            blind_rotate_assign_mem_optimized(&msed, &mut rotated, sk.bsk[0].as_ref().unwrap(), fft, buffers.stack());
            let mut out = LweCiphertext::new(0u64, big.lwe_dimension().to_lwe_size(), cm);
            extract_lwe_sample_from_glwe_ciphertext(&rotated, &mut out, MonomialDegree(0));
            out_var += torus(decrypt_lwe_ciphertext(&big, &out).0.wrapping_sub(m * delta)).powi(2);

            lwe_ciphertext_cleartext_mul_assign(&mut out, Cleartext(nu));
            let expected = (m * delta).wrapping_mul(nu);
            let switched = keyswitch(&out);
            ks_var += torus(decrypt_lwe_ciphertext(&ck.lwe[0], &switched).0.wrapping_sub(expected)).powi(2);
            let across = keyswitch_to(1, &out);
            cross_var += torus(decrypt_lwe_ciphertext(&ck.lwe[1], &across).0.wrapping_sub(expected)).powi(2);
            let msed = lwe_ciphertext_centered_binary_modulus_switch::<u64, usize, _>(switched.as_view(), log_2n);
            let dot = msed.mask().zip(&small).fold(0u64, |a, (x, &s)| a.wrapping_add(x as u64 * s));
            let phase = (msed.body() as u64).wrapping_sub(dot) % two_n;
            let error = (phase + two_n - (expected >> (64 - log_2n.0))) % two_n;
            let centred = if error >= two_n / 2 { error as f64 - two_n as f64 } else { error as f64 };
            ms_var += (centred / two_n as f64).powi(2);
        }
        let nu = nu as f64;
        let pbs = noise::bootstrap_variance(l);
        let after_ks = nu * nu * pbs + noise::keyswitch_variance(l);
        let after_ms = noise::input_variance(l, nu);
        for (what, measured, model) in [
            ("bootstrap output", out_var, pbs),
            ("after keyswitch", ks_var, after_ks),
            ("after modulus switch", ms_var, after_ms),
            (
                "after a keyswitch across partitions",
                cross_var,
                nu * nu * pbs + noise::keyswitch_variance_from(&other.lattice, 2048),
            ),
        ] {
            let ratio = measured / samples as f64 / model;
            println!("{what}: measured/model variance {ratio:.3} (model 2^{:.2})", model.log2());
            assert!((0.5..2.0).contains(&ratio), "{what}: measured/model {ratio}");
        }
    }
}
