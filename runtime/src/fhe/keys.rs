//! Key generation: the client's secret keys and the server's evaluation keys
//! (keyswitching key + bootstrapping key in the Fourier domain), for one parameter set.

use super::params::resolve_params;
use super::FheError;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::prelude::*;

/// The client's secret keys. Never leaves the client.
#[derive(Serialize, Deserialize)]
pub struct ClientKey {
    /// The parameter set's name.
    pub params: String,
    /// The small LWE key (bootstrap input side).
    pub lwe: LweSecretKeyOwned<u64>,
    /// The GLWE key; flattened, it is the big LWE key ciphertexts live under.
    pub glwe: GlweSecretKeyOwned<u64>,
}

/// The server's evaluation keys: they let it compute, not decrypt.
#[derive(Serialize, Deserialize)]
pub struct ServerKey {
    /// The parameter set's name.
    pub params: String,
    /// Big key → small key.
    pub ksk: LweKeyswitchKeyOwned<u64>,
    /// Small key → GLWE, Fourier domain, ready for blind rotations.
    pub bsk: FourierLweBootstrapKeyOwned,
}

impl ClientKey {
    /// The big LWE key ciphertexts are encrypted and decrypted under.
    pub fn big_key(&self) -> LweSecretKeyOwned<u64> {
        self.glwe.clone().into_lwe_secret_key()
    }
}

/// Generates fresh keys for the named parameter set from the OS's entropy.
pub fn generate_keys(params_name: &str) -> Result<(ClientKey, ServerKey), FheError> {
    let p = resolve_params(params_name)?;
    let cm = p.ciphertext_modulus;
    let mut seeder = new_seeder();
    let seeder = seeder.as_mut();
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let mut enc = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
    let lwe = allocate_and_generate_new_binary_lwe_secret_key(p.lwe_dimension, &mut secret);
    let glwe = allocate_and_generate_new_binary_glwe_secret_key(p.glwe_dimension, p.polynomial_size, &mut secret);
    let big = glwe.clone().into_lwe_secret_key();
    let ksk = allocate_and_generate_new_lwe_keyswitch_key(
        &big,
        &lwe,
        p.ks_base_log,
        p.ks_level,
        p.lwe_noise_distribution,
        cm,
        &mut enc,
    );
    let std_bsk = par_allocate_and_generate_new_lwe_bootstrap_key(
        &lwe,
        &glwe,
        p.pbs_base_log,
        p.pbs_level,
        p.glwe_noise_distribution,
        cm,
        &mut enc,
    );
    let mut bsk = FourierLweBootstrapKey::new(
        std_bsk.input_lwe_dimension(),
        std_bsk.glwe_size(),
        std_bsk.polynomial_size(),
        std_bsk.decomposition_base_log(),
        std_bsk.decomposition_level_count(),
    );
    par_convert_standard_lwe_bootstrap_key_to_fourier(&std_bsk, &mut bsk);
    let name = params_name.to_string();
    Ok((ClientKey { params: name.clone(), lwe, glwe }, ServerKey { params: name, ksk, bsk }))
}
