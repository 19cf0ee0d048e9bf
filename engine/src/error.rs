//! The engine's error type: every variant names the file, tensor or key and what was expected.

use std::path::PathBuf;

use fovea_formats::{FormatError, GgmlType};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    File(#[from] fovea_formats::mmap::GgufFileError),
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: FormatError },
    #[error("{path}: unsupported architecture '{arch}' (supported: {supported})")]
    UnsupportedArchitecture { path: PathBuf, arch: String, supported: &'static str },
    #[error("{path}: missing tensor '{name}'")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor '{name}' has shape {found:?}, expected {expected:?}")]
    TensorShape { path: PathBuf, name: String, expected: Vec<u64>, found: Vec<u64> },
    #[error("{path}: tensor '{name}' has type {ty}, which this engine cannot multiply yet")]
    UnsupportedTensorType { path: PathBuf, name: String, ty: GgmlType },
    #[error("{path}: metadata '{key}' is invalid: {reason}")]
    BadMetadata { path: PathBuf, key: String, reason: String },
    #[error("{path}: tokenizer: {source}")]
    Tokenizer { path: PathBuf, source: crate::tokenizer::TokenizerError },
    #[error("the prompt has {n_tokens} tokens but the context holds {n_ctx}; use a shorter prompt or a larger --ctx")]
    PromptTooLong { n_tokens: usize, n_ctx: usize },
    #[error("the context is full ({n_ctx} tokens)")]
    ContextFull { n_ctx: usize },
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    BadToken { id: u32, n_vocab: usize },
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The Vulkan backend could not start or run (no loader, no device, a failed call).
    #[error("{0}")]
    Vulkan(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
