//! Key generation: the client's secret keys and the server's evaluation keys
//! (keyswitching keys + bootstrapping keys in the Fourier domain) for a circuit's
//! [`KeyLayout`]: a key pair per partition, a keyswitching key per pair of partitions
//! a table reads across, a bootstrapping key per partition that bootstraps.

use super::params::{resolve_params, TfheParams};
use super::FheError;
use secc_ir::lowered::fhe::KeyLayout;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::math::random::CompressionSeed;
use tfhe::core_crypto::prelude::*;
use tfhe_csprng::generators::aes_ctr::TableIndex;
use tfhe_csprng::seeders::SeedKind;

/// The client's secret keys, a pair per partition. Never leaves the client.
#[derive(Serialize, Deserialize)]
pub struct ClientKey {
    /// The layout's name ([`KeyLayout::name`]).
    pub params: String,
    /// Each partition's small LWE key (bootstrap input side).
    pub lwe: Vec<LweSecretKeyOwned<u64>>,
    /// Each partition's GLWE key; flattened, it is the big LWE key its ciphertexts live under.
    pub glwe: Vec<GlweSecretKeyOwned<u64>>,
}

/// The server's evaluation keys as they travel and rest on disk: seeded, so each key
/// ciphertext keeps its body and the masks are regenerated from a public seed. A
/// keyswitching key shrinks by its output dimension (~800×), a bootstrapping key by its
/// GLWE size; [`CompressedServerKey::decompress`] expands them for evaluation.
#[derive(Serialize, Deserialize)]
pub struct CompressedServerKey {
    /// The layout's name.
    pub params: String,
    /// One per [`KeyLayout::keyswitches`] pair: big key → small key, seeded.
    pub ksk: Vec<SeededLweKeyswitchKeyOwned<u64>>,
    /// Per partition, where it bootstraps: small key → GLWE, seeded, in the standard domain.
    pub bsk: Vec<Option<SeededLweBootstrapKeyOwned<u64>>>,
}

/// The server's evaluation keys, expanded: they let it compute, not decrypt. Held in
/// memory only; files hold the [`CompressedServerKey`].
pub struct ServerKey {
    /// The layout's name.
    pub params: String,
    /// One per keyswitch pair: big key → small key.
    pub ksk: Vec<LweKeyswitchKeyOwned<u64>>,
    /// Per partition that bootstraps: small key → GLWE, Fourier domain.
    pub bsk: Vec<Option<FourierLweBootstrapKeyOwned>>,
}

impl ServerKey {
    /// Bytes the expanded keys take in memory.
    pub fn memory_bytes(&self) -> u64 {
        let ksk: usize = self.ksk.iter().map(|k| k.as_ref().len() * std::mem::size_of::<u64>()).sum();
        let c64 = std::mem::size_of::<tfhe::core_crypto::fft_impl::fft64::c64>();
        let bsk: usize = self.bsk.iter().flatten().map(|b| b.as_view().data().len() * c64).sum();
        (ksk + bsk) as u64
    }
}

impl ClientKey {
    /// The big LWE key of partition `p`, which its ciphertexts are encrypted and
    /// decrypted under.
    pub fn big_key(&self, p: usize) -> LweSecretKeyOwned<u64> {
        self.glwe[p].clone().into_lwe_secret_key()
    }
}

/// Each partition's set in tfhe-rs's types.
fn resolve_layout(layout: &KeyLayout) -> Result<Vec<TfheParams>, FheError> {
    layout.check().map_err(|message| FheError::BadParams { name: layout.name(), message })?;
    layout.sets.iter().map(resolve_params).collect()
}

/// Generates fresh keys for a circuit's key layout from the OS's entropy; the server's
/// come seeded, as they are written and sent.
pub fn generate_keys(layout: &KeyLayout) -> Result<(ClientKey, CompressedServerKey), FheError> {
    let ps = resolve_layout(layout)?;
    let mut seeder = new_seeder();
    let seeder = seeder.as_mut();
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let lwe: Vec<_> =
        ps.iter().map(|p| allocate_and_generate_new_binary_lwe_secret_key(p.lwe_dimension, &mut secret)).collect();
    let glwe: Vec<_> = ps
        .iter()
        .map(|p| allocate_and_generate_new_binary_glwe_secret_key(p.glwe_dimension, p.polynomial_size, &mut secret))
        .collect();
    let ksk = layout
        .keyswitches
        .iter()
        .map(|&(from, to)| {
            let p = &ps[to as usize];
            allocate_and_generate_new_seeded_lwe_keyswitch_key(
                &glwe[from as usize].clone().into_lwe_secret_key(),
                &lwe[to as usize],
                p.ks_base_log,
                p.ks_level,
                p.lwe_noise_distribution,
                p.ciphertext_modulus,
                seeder,
            )
        })
        .collect();
    let bsk = (0..ps.len())
        .map(|k| {
            let p = &ps[k];
            layout.bootstraps(k).then(|| {
                par_allocate_and_generate_new_seeded_lwe_bootstrap_key(
                    &lwe[k],
                    &glwe[k],
                    p.pbs_base_log,
                    p.pbs_level,
                    p.glwe_noise_distribution,
                    p.ciphertext_modulus,
                    seeder,
                )
            })
        })
        .collect();
    let name = layout.name();
    Ok((ClientKey { params: name.clone(), lwe, glwe }, CompressedServerKey { params: name, ksk, bsk }))
}

/// Fresh keys for evaluation in this process (`secc run`, benchmarks, tests): the
/// server's expanded as a server expands the key it loads.
pub fn generate_local_keys(layout: &KeyLayout) -> Result<(ClientKey, ServerKey), FheError> {
    let (ck, sk) = generate_keys(layout)?;
    Ok((ck, sk.decompress(layout)?))
}

/// A key whose sizes disagree with its parameter set: checksums catch accidents, not a
/// crafted file, and tfhe-rs asserts (panics) on inconsistent sizes.
fn inconsistent(what: &str) -> FheError {
    FheError::Mismatch(format!("the {what} does not match its parameter set"))
}

/// The layout's sets resolved, for a key made for the layout named `name`.
fn resolve_for(name: &str, layout: &KeyLayout) -> Result<Vec<TfheParams>, FheError> {
    if name != layout.name() {
        return Err(FheError::Mismatch(format!("the key is for {name}, the circuit uses {}", layout.name())));
    }
    resolve_layout(layout)
}

impl ClientKey {
    /// Checks every size against the circuit's key layout, before anything uses the key.
    pub fn check(&self, layout: &KeyLayout) -> Result<(), FheError> {
        let ps = resolve_for(&self.params, layout)?;
        if self.lwe.len() != ps.len() || self.glwe.len() != ps.len() {
            return Err(inconsistent("client key's partition count"));
        }
        for ((p, lwe), glwe) in ps.iter().zip(&self.lwe).zip(&self.glwe) {
            if lwe.lwe_dimension() != p.lwe_dimension {
                return Err(inconsistent("client key's LWE key"));
            }
            // The GLWE dimension is the length over the polynomial size: check that first.
            if glwe.polynomial_size() != p.polynomial_size || glwe.glwe_dimension() != p.glwe_dimension {
                return Err(inconsistent("client key's GLWE key"));
            }
        }
        Ok(())
    }
}

impl CompressedServerKey {
    /// Checks every size and seed against the key layout from the raw fields (tfhe-rs
    /// derives some sizes by division and asserts on the rest).
    pub fn check(&self, layout: &KeyLayout) -> Result<(), FheError> {
        let ps = resolve_for(&self.params, layout)?;
        // Only what `generate_keys` writes: a seed that starts the generator late in its
        // table would run it dry mid-expansion, and tfhe-rs panics then.
        let fresh = |seed: CompressionSeed| {
            matches!(seed.inner.seed, SeedKind::Ctr(_)) && seed.inner.first_index == TableIndex::FIRST
        };
        if self.ksk.len() != layout.keyswitches.len() || self.bsk.len() != ps.len() {
            return Err(inconsistent("server key's key count"));
        }
        for (ksk, &(from, to)) in self.ksk.iter().zip(&layout.keyswitches) {
            let (f, p) = (&ps[from as usize], &ps[to as usize]);
            let big = f.big_lwe_size().to_lwe_dimension().0;
            if ksk.decomposition_base_log() != p.ks_base_log
                || ksk.decomposition_level_count() != p.ks_level
                || ksk.output_lwe_size() != p.lwe_dimension.to_lwe_size()
                || ksk.ciphertext_modulus() != p.ciphertext_modulus
                || ksk.as_ref().len() != big * p.ks_level.0
                || !fresh(ksk.compression_seed())
            {
                return Err(inconsistent("server key's keyswitching key"));
            }
        }
        for (k, (bsk, p)) in self.bsk.iter().zip(&ps).enumerate() {
            let Some(bsk) = bsk else {
                if layout.bootstraps(k) {
                    return Err(inconsistent("server key's bootstrapping key"));
                }
                continue;
            };
            let glwe_size = p.glwe_dimension.to_glwe_size().0;
            if !layout.bootstraps(k)
                || bsk.input_lwe_dimension() != p.lwe_dimension
                || bsk.glwe_size().0 != glwe_size
                || bsk.polynomial_size() != p.polynomial_size
                || bsk.decomposition_base_log() != p.pbs_base_log
                || bsk.decomposition_level_count() != p.pbs_level
                || bsk.ciphertext_modulus() != p.ciphertext_modulus
                || bsk.as_ref().len() != p.lwe_dimension.0 * p.pbs_level.0 * glwe_size * p.polynomial_size.0
                || !fresh(bsk.compression_seed())
            {
                return Err(inconsistent("server key's bootstrapping key"));
            }
        }
        Ok(())
    }

    /// Checks the keys, regenerates their masks and moves the bootstrapping keys to the
    /// Fourier domain: what loading a server key costs.
    pub fn decompress(self, layout: &KeyLayout) -> Result<ServerKey, FheError> {
        self.check(layout)?;
        let ksk = self.ksk.into_iter().map(|k| k.par_decompress_into_lwe_keyswitch_key()).collect();
        let bsk = self
            .bsk
            .into_iter()
            .map(|b| {
                b.map(|b| {
                    let std_bsk = b.par_decompress_into_lwe_bootstrap_key();
                    let mut bsk = FourierLweBootstrapKey::new(
                        std_bsk.input_lwe_dimension(),
                        std_bsk.glwe_size(),
                        std_bsk.polynomial_size(),
                        std_bsk.decomposition_base_log(),
                        std_bsk.decomposition_level_count(),
                    );
                    par_convert_standard_lwe_bootstrap_key_to_fourier(&std_bsk, &mut bsk);
                    bsk
                })
            })
            .collect();
        Ok(ServerKey { params: self.params, ksk, bsk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhe::exec::CtValues;
    use crate::fhe::file::{decode_file, encode_body, Kind};
    use secc_ir::lowered::fhe::catalog;

    #[test]
    fn keys_with_sizes_off_their_parameter_set_are_refused() {
        let set = &KeyLayout::single(catalog(-128)[0].clone());
        let (mut ck, mut sk) = generate_keys(set).unwrap();
        ck.check(set).unwrap();
        sk.check(set).unwrap();
        // What a crafted file with a valid checksum could hold: a key that claims another
        // decomposition, a keyswitching key for a smaller input key, a seed that starts
        // the mask generator near the end of its table.
        let bsk = sk.bsk[0].as_ref().unwrap();
        let deeper = SeededLweBootstrapKey::new(
            0u64,
            bsk.glwe_size(),
            bsk.polynomial_size(),
            bsk.decomposition_base_log(),
            DecompositionLevelCount(bsk.decomposition_level_count().0 + 1),
            bsk.input_lwe_dimension(),
            bsk.compression_seed(),
            bsk.ciphertext_modulus(),
        );
        let fine = std::mem::replace(&mut sk.bsk[0], Some(deeper));
        assert!(sk.check(set).unwrap_err().to_string().contains("bootstrapping key"));
        sk.bsk[0] = fine;
        let ksk = &sk.ksk[0];
        let one_input = ksk.decomposition_level_count().0;
        let short = ksk.as_ref()[..ksk.as_ref().len() - one_input].to_vec();
        let seed = ksk.compression_seed();
        let mut late = seed.clone();
        late.inner.first_index = TableIndex::LAST;
        let with = |data: Vec<u64>, seed| {
            SeededLweKeyswitchKey::from_container(
                data,
                ksk.decomposition_base_log(),
                ksk.decomposition_level_count(),
                ksk.output_lwe_size(),
                seed,
                ksk.ciphertext_modulus(),
            )
        };
        let (short, late) = (with(short, seed), with(ksk.as_ref().to_vec(), late));
        for bad in [short, late] {
            sk.ksk[0] = bad;
            assert!(sk.check(set).unwrap_err().to_string().contains("keyswitching key"));
        }
        ck.lwe[0] = LweSecretKey::new_empty_key(0u64, LweDimension(ck.lwe[0].lwe_dimension().0 - 1));
        assert!(ck.check(set).is_err());
    }

    /// xorshift64, so a failure reproduces.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn arbitrary_payloads_under_a_valid_header_never_panic_the_key_loaders() {
        // The fuzz target `key_file` covers the header without tfhe-rs; this feeds the
        // real key and ciphertext types, with small length prefixes so bincode gets past
        // the first field often.
        let (a, k) = ([3u8; 32], [4u8; 16]);
        let set = &KeyLayout::single(catalog(-128)[0].clone());
        for seed in 0..3000u64 {
            let mut payload = bytes(seed, (seed % 200) as usize);
            if seed % 2 == 0 && payload.len() >= 8 {
                payload[..8].copy_from_slice(&(seed % 40).to_le_bytes());
            }
            let frame = |kind| encode_body(kind, &a, &k, &payload);
            if let Ok((ck, _)) = decode_file::<ClientKey>(&frame(Kind::ClientKey), "k", Kind::ClientKey, &a, None) {
                let _ = ck.check(set);
            }
            if let Ok((sk, _)) =
                decode_file::<CompressedServerKey>(&frame(Kind::ServerKey), "k", Kind::ServerKey, &a, None)
            {
                let _ = sk.decompress(set);
            }
            let _ = decode_file::<CtValues>(&frame(Kind::Ciphertexts), "c", Kind::Ciphertexts, &a, None);
        }
    }
}
