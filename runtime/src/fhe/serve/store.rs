//! The server keys the service holds: each upload is a file under `DIR/keys/` (so an
//! upload never sits whole in memory before it is checked) and, once checked, expanded
//! in memory; the least recently used are dropped (file too) when the expanded keys
//! pass the budget, which counts memory because that is what runs out: a key expands to
//! 3-4 times its file. A restarted service keeps the files and expands a key again when
//! a request names it, so clients need not upload again.

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
    /// A store under `data_dir/keys`, holding at most `budget` bytes of expanded keys.
    /// Uploads an earlier run left unfinished there are removed, and so are its key files
    /// beyond the budget, oldest first (their size on disk standing for their size held);
    /// nothing else is.
    pub fn open(data_dir: &Path, budget: u64) -> std::io::Result<KeyStore> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir)?;
        let mut kept = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("part") => std::fs::remove_file(&path)?,
                Some("key") => {
                    let meta = entry.metadata()?;
                    kept.push((meta.modified()?, meta.len(), path));
                }
                _ => {}
            }
        }
        kept.sort_by(|a, b| b.0.cmp(&a.0));
        let mut total = 0;
        for (_, len, path) in kept {
            total += len;
            if total > budget {
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

    /// The file of a key that is not held but was kept (by an earlier run), if `id` is
    /// a key id at all: ids are hex digests, so a crafted id names no other file.
    pub fn kept_file(&self, id: &str) -> Option<PathBuf> {
        let well_formed = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let path = self.key_path(id);
        (well_formed && !self.keys.contains_key(id) && path.is_file()).then_some(path)
    }

    /// Whether the key `id` is held.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Holds a checked key whose file is at [`KeyStore::key_path`]; drops the least
    /// recently used others while the keys held pass the budget.
    pub fn insert(&mut self, id: String, model: usize, key: Arc<ServerKey>, file_key_id: [u8; 16]) {
        self.tick += 1;
        let bytes = key.memory_bytes();
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

    /// Bytes of the held keys, expanded.
    pub fn bytes(&self) -> u64 {
        self.keys.values().map(|h| h.bytes).sum()
    }
}
