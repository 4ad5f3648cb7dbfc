//! The circuit's parameter set, by name, resolved to tfhe-rs's constant.

use super::FheError;
use tfhe::shortint::parameters::v1_6::*;
use tfhe::shortint::ClassicPBSParameters;

macro_rules! sets {
    ($($name:ident),* $(,)?) => {
        /// The tfhe-rs parameters named `name` (a catalog entry of `secc_ir::lowered::fhe`).
        pub fn resolve_params(name: &str) -> Result<ClassicPBSParameters, FheError> {
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
    use secc_ir::lowered::fhe::catalog;

    /// The catalog's figures are tfhe-rs's own: every entry resolves, with the
    /// message/carry split, noise budget and failure probability it claims.
    #[test]
    fn catalog_matches_tfhe() {
        for p in [-128, -64, -40] {
            for set in catalog(p) {
                let t = resolve_params(&set.name).unwrap();
                assert_eq!(t.message_modulus.0, 1 << set.message_bits, "{}", set.name);
                assert_eq!(t.carry_modulus.0, 1 << set.carry_bits, "{}", set.name);
                assert_eq!(t.max_noise_level.get() as f64, set.norm_budget, "{}", set.name);
                // At least as reliable as the catalog claims.
                assert!(t.log2_p_fail <= set.log2_p_fail as f64 + 0.5, "{}: {}", set.name, t.log2_p_fail);
            }
        }
    }
}
