//! Tiny llama-architecture GGUF models built in memory, for the engine and CLI tests.
//!
//! [`ModelFile::tiny_llama`] makes a complete, valid model (byte-level BPE vocabulary, seeded
//! pseudo-random weights); tests edit its metadata and tensors to break it in one precise way,
//! then [`ModelFile::write`] it to a temporary file that is deleted on drop.
//!
//! Shared by `engine/tests/synthetic_model.rs` and `cli/tests/cli.rs` (through `#[path]`), so it
//! only uses crates both depend on: fovea-formats and fovea-kernels.

// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code, unused_imports)]

mod tiny_llama;
mod vocab;

/// n deterministic token ids below n_vocab (xorshift from `seed`): inputs for the model tests.
pub fn token_ids(n_vocab: usize, n: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n_vocab as u64) as u32
        })
        .collect()
}

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_formats::{GgmlType, GgufWriter, Value};

pub use tiny_llama::{encode_tensor, TinyConfig};
pub use vocab::TinyVocab;

/// One tensor of a model under construction; `dims` is GGUF order (ne0 first).
#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

/// A GGUF file under construction: metadata entries and tensors, in file order.
#[derive(Clone, Debug, Default)]
pub struct ModelFile {
    pub meta: Vec<(String, Value)>,
    pub tensors: Vec<TensorSpec>,
}

impl ModelFile {
    /// Sets `key` (replacing an existing entry in place, else appending).
    pub fn set(&mut self, key: &str, value: Value) -> &mut Self {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.meta.push((key.to_string(), value)),
        }
        self
    }

    /// Removes `key`; panics if it is not there (the test would otherwise prove nothing).
    pub fn remove(&mut self, key: &str) -> &mut Self {
        let before = self.meta.len();
        self.meta.retain(|(k, _)| k != key);
        assert_ne!(before, self.meta.len(), "test setup: no metadata key '{key}' to remove");
        self
    }

    /// The tensor called `name`; panics if there is none (a test setup bug).
    pub fn tensor_mut(&mut self, name: &str) -> &mut TensorSpec {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("test setup: no tensor '{name}'"))
    }

    /// Removes the tensor `name`; panics if there is none.
    pub fn remove_tensor(&mut self, name: &str) -> &mut Self {
        let before = self.tensors.len();
        self.tensors.retain(|t| t.name != name);
        assert_ne!(before, self.tensors.len(), "test setup: no tensor '{name}' to remove");
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        for (key, value) in &self.meta {
            w.add(key, value.clone());
        }
        for t in &self.tensors {
            w.add_tensor(&t.name, &t.dims, t.ty, &t.data);
        }
        w.finish()
    }

    /// Writes the file to a fresh temporary path; `tag` names the test in the file name.
    pub fn write(&self, tag: &str) -> TempFile {
        TempFile::with_contents(tag, "gguf", &self.to_bytes())
    }
}

/// A file in the system temp directory, removed when dropped.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A unique path per process and call (tests run in parallel threads and processes).
    pub fn with_contents(tag: &str, ext: &str, bytes: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("fovea-test-{tag}-{}-{n}.{ext}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        TempFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string, for command lines.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temp paths are UTF-8 in tests")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
