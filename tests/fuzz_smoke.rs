//! The fuzz targets' smoke pass on stable (CI has no nightly): every committed corpus
//! file, crashes the fuzzer once found among them, then a few thousand mutations of
//! those files, go through the same entry points as `cargo +nightly fuzz run`; none
//! may panic. The entry points are `fuzz/src/lib.rs`, compiled here as a module.

#[path = "../fuzz/src/lib.rs"]
mod entries;

use std::path::PathBuf;

/// Mutated inputs per target (the ONNX import runs tract's analysis: fewer there).
fn mutations(target: &str) -> usize {
    if target == "onnx" {
        300
    } else {
        3000
    }
}

/// xorshift64: deterministic, so a failure here reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits of `input`: flip, overwrite with an extreme value, insert,
/// delete, truncate, splice in a piece of another input.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let at = at.min(v.len() - 1);
                v[at] ^= 1 << rng.below(8);
            }
            1 if v.len() >= 8 => {
                let at = at.min(v.len() - 8);
                let x = [0u64, u64::MAX, 1 << 40, 0x7fff_ffff][rng.below(4)];
                v[at..at + 8].copy_from_slice(&x.to_le_bytes());
            }
            2 => {
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            4 => v.truncate(at),
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let piece = &other[from..(from + 1 + rng.below(64)).min(other.len())];
                v.splice(at..at, piece.iter().copied());
            }
            _ => {}
        }
    }
    v
}

#[test]
fn every_corpus_input_and_mutations_of_it_are_parsed_without_a_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, entry) in entries::TARGETS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(target))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        let corpus: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        for (file, bytes) in files.iter().zip(&corpus) {
            let caught = std::panic::catch_unwind(|| entry(bytes));
            assert!(caught.is_ok(), "{target}: {} panics", file.display());
        }
        let mut rng = Rng(0x5ecc_f022 ^ target.len() as u64);
        for i in 0..mutations(target) {
            let other = rng.below(corpus.len());
            let input = mutate(&mut rng, &corpus[i % corpus.len()], &corpus[other]);
            let caught = std::panic::catch_unwind(|| entry(&input));
            assert!(caught.is_ok(), "{target}: mutation {i} of the corpus panics; input {input:02x?}");
        }
    }
}
