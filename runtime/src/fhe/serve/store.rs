//! The server keys the service holds: each upload is a file under `DIR/keys/` (so an
//! upload never sits whole in memory before it is checked) and, once checked, decoded
//! in memory; the least recently used are dropped when their files pass the budget.
//! A restarted service starts with none: clients upload again when told the key is
//! unknown.

use crate::fhe::keys::ServerKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One held key.
pub struct HeldKey {
    /// The served model (index) it was made for.
    pub model: usize,
    /// The decoded key.
    pub key: Arc<ServerKey>,
    /// The id inside the key file, which the model's ciphertext files carry.
    pub file_key_id: [u8; 16],
    bytes: u64,
    used: u64,
}

/// The held keys, by the id the service gave them.
pub struct KeyStore {
    dir: PathBuf,
    budget: u64,
    keys: HashMap<String, HeldKey>,
    tick: u64,
}

impl KeyStore {
    /// A store under `data_dir/keys`, keeping at most `budget` bytes of key files; the
    /// key files and uploads an earlier run left there are removed (nothing else is).
    pub fn open(data_dir: &Path, budget: u64) -> std::io::Result<KeyStore> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "key" || e == "part") {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(KeyStore { dir, budget, keys: HashMap::new(), tick: 0 })
    }

    /// Where an upload is written while it arrives.
    pub fn upload_path(&self, nonce: &str) -> PathBuf {
        self.dir.join(format!("{nonce}.part"))
    }

    /// Where a checked key's file lives.
    pub fn key_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    /// Whether the key `id` is held.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Holds a checked key whose file (`bytes` long) is at [`KeyStore::key_path`];
    /// drops the least recently used others while the files pass the budget.
    pub fn insert(&mut self, id: String, model: usize, key: Arc<ServerKey>, file_key_id: [u8; 16], bytes: u64) {
        self.tick += 1;
        self.keys.insert(id.clone(), HeldKey { model, key, file_key_id, bytes, used: self.tick });
        while self.bytes() > self.budget {
            let Some(oldest) = self.keys.iter().filter(|(k, _)| **k != id).min_by_key(|(_, h)| h.used) else { break };
            let oldest = oldest.0.clone();
            self.keys.remove(&oldest);
            let _ = std::fs::remove_file(self.key_path(&oldest));
        }
    }

    /// The key `id`, marked as just used.
    pub fn get(&mut self, id: &str) -> Option<&HeldKey> {
        self.tick += 1;
        let tick = self.tick;
        self.keys.get_mut(id).map(|h| {
            h.used = tick;
            &*h
        })
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of the held keys' files.
    pub fn bytes(&self) -> u64 {
        self.keys.values().map(|h| h.bytes).sum()
    }
}
