//! The model cache directory: where it is, what counts as a verified entry, and the atomic store.
//!
//! Layout, for a model file `NAME`:
//! - `NAME`: the model, only ever put there by a rename after its sha256 was checked.
//! - `NAME.sha256`: `"<hex>  NAME\n"` (the `sha256sum` format), written after the rename. A model
//!   whose marker holds the expected hash and is not older than the model is used without
//!   rehashing, so later runs start instantly. A model without a valid marker (copied in by
//!   hand, replaced later, or a run interrupted between the two renames) is hashed once.
//! - `NAME.part-<pid>-<n>` and `.NAME.pip-<pid>-<n>/`: work in progress of one fetch. They are
//!   removed when that fetch fails; ones left behind by a killed process (Ctrl-C) are removed
//!   by the next fetch once their process is gone.
//!
//! Concurrent fetchers never share a temporary name, and each publishes with `rename`, which
//! is atomic: readers see no file or a whole verified one; the last writer wins with identical
//! bytes. That needs no lock file.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::{HubError, SourceError};
use super::progress::Progress;
use super::registry::KnownModel;

/// Temporary entries of a process that cannot be checked for liveness are stale after this.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The model cache directory from the environment: `$FOVEA_MODELS`, else
/// `$XDG_CACHE_HOME/fovea/models`, else `~/.cache/fovea/models`.
pub fn cache_dir() -> Result<PathBuf, HubError> {
    cache_dir_from(|key| std::env::var_os(key))
}

/// `cache_dir` with the environment passed in, so it can be tested without touching the
/// process environment. Empty values count as unset; a relative `XDG_CACHE_HOME` is ignored,
/// as the XDG base directory spec requires.
pub fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, HubError> {
    let set = |key: &str| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("FOVEA_MODELS") {
        return Ok(dir);
    }
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("fovea").join("models"));
    }
    if let Some(home) = set("HOME") {
        return Ok(home.join(".cache").join("fovea").join("models"));
    }
    Err(HubError::NoCacheDir)
}

/// Path of the marker recording that `model_path` was verified.
fn marker_path(model_path: &Path) -> PathBuf {
    let mut name = model_path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// True when `path` holds `model` and was verified earlier (marker present, matching, not
/// older than the file). Cheap: two `stat`s and one small read.
pub fn is_verified(path: &Path, model: &KnownModel<'_>) -> bool {
    let (Ok(file), Ok(marker)) = (fs::metadata(path), fs::metadata(marker_path(path))) else {
        return false;
    };
    if file.len() != model.size {
        return false;
    }
    let (Ok(file_time), Ok(marker_time)) = (file.modified(), marker.modified()) else {
        return false;
    };
    if marker_time < file_time {
        return false;
    }
    let Ok(text) = fs::read_to_string(marker_path(path)) else {
        return false;
    };
    text.split_whitespace().next() == Some(model.sha256)
}

/// Hashes an existing cache entry of the right size; on success writes its marker.
/// Returns false when the file is missing, of the wrong size or does not match.
pub fn verify_existing(path: &Path, model: &KnownModel<'_>, progress: Progress) -> Result<bool, HubError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == model.size => {}
        _ => return Ok(false),
    }
    progress.stage(&format!("verifying {}", path.display()));
    let actual =
        sha256_file(path, progress).map_err(|error| HubError::Cache { path: path.to_owned(), error })?;
    if actual != model.sha256 {
        return Ok(false);
    }
    write_marker(path, model)?;
    Ok(true)
}

/// Lowercase hex sha256 of a whole file.
pub fn sha256_file(path: &Path, progress: Progress) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut bar = progress.bytes("verifying", file.metadata()?.len());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.advance(n as u64);
    }
    bar.finish();
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `NAME.sha256` through its own temporary name and rename.
fn write_marker(model_path: &Path, model: &KnownModel<'_>) -> Result<(), HubError> {
    let marker = marker_path(model_path);
    let temp = temp_sibling(&marker, "part");
    let text = format!("{}  {}\n", model.sha256, model.file_name);
    let cache_err = |error| HubError::Cache { path: marker.clone(), error };
    fs::write(&temp, text).map_err(cache_err)?;
    fs::rename(&temp, &marker).map_err(|error| {
        let _ = fs::remove_file(&temp);
        cache_err(error)
    })
}

/// `path` with `.{kind}-<pid>-<n>` appended: unique across processes and across threads.
fn temp_sibling(path: &Path, kind: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{kind}-{}-{n}", std::process::id()));
    PathBuf::from(name)
}

/// A fresh, uniquely named working directory next to the model (for pip's downloads), removed
/// with its contents when dropped.
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn create(cache_dir: &Path, file_name: &str) -> Result<Self, SourceError> {
        let path = temp_sibling(&cache_dir.join(format!(".{file_name}")), "pip");
        fs::create_dir(&path).map_err(|error| SourceError::Store { path: path.clone(), error })?;
        Ok(WorkDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A model file being written: hashed and counted as bytes arrive, removed unless committed.
pub struct PartFile {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    written: u64,
    limit: u64,
    committed: bool,
}

impl PartFile {
    /// Creates `final_path.part-<pid>-<n>`. `limit` is the expected size: a source sending
    /// more is cut off at once instead of filling the disk.
    pub fn create(final_path: &Path, limit: u64) -> Result<Self, SourceError> {
        let path = temp_sibling(final_path, "part");
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| SourceError::Store { path: path.clone(), error })?;
        Ok(PartFile { path, file, hasher: Sha256::new(), written: 0, limit, committed: false })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SourceError> {
        let total = self.written + bytes.len() as u64;
        if total > self.limit {
            return Err(SourceError::Size { expected: self.limit, actual: total });
        }
        self.file.write_all(bytes).map_err(|error| SourceError::Store { path: self.path.clone(), error })?;
        self.hasher.update(bytes);
        self.written = total;
        Ok(())
    }

    /// Checks size and sha256 against `model`, then flushes to disk and renames onto
    /// `final_path`, then writes the marker. On any mismatch the part file is removed.
    pub fn commit(mut self, final_path: &Path, model: &KnownModel<'_>) -> Result<(), SourceError> {
        if self.written != model.size {
            return Err(SourceError::Size { expected: model.size, actual: self.written });
        }
        let actual = hex(&self.hasher.clone().finalize());
        if actual != model.sha256 {
            return Err(SourceError::Checksum { expected: model.sha256.to_owned(), actual });
        }
        let store_err = |path: &Path, error| SourceError::Store { path: path.to_owned(), error };
        // fsync before rename: after a crash the name must not point at unwritten blocks.
        self.file.sync_all().map_err(|e| store_err(&self.path, e))?;
        fs::rename(&self.path, final_path).map_err(|e| store_err(final_path, e))?;
        self.committed = true;
        sync_parent_dir(final_path);
        write_marker(final_path, model).map_err(|e| match e {
            HubError::Cache { path, error } => SourceError::Store { path, error },
            other => SourceError::Unavailable(other.to_string()),
        })
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes a rename durable on Unix (the directory entry is data of the directory). Best
/// effort: the cache stays correct without it, a crash may only lose the new entry.
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Removes temporary entries for `file_name` left by fetches whose process is gone
/// (checked through `/proc` where it exists, else by age).
pub fn remove_stale_temporaries(cache_dir: &Path, file_name: &str) {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let part_prefix = format!("{file_name}.part-");
    let marker_prefix = format!("{file_name}.sha256.part-");
    let pip_prefix = format!(".{file_name}.pip-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let suffix =
            [&part_prefix, &marker_prefix, &pip_prefix].iter().find_map(|p| name.strip_prefix(p.as_str()));
        let Some(suffix) = suffix else {
            continue;
        };
        if is_stale(&entry.path(), suffix) {
            let _ = fs::remove_file(entry.path()).or_else(|_| fs::remove_dir_all(entry.path()));
        }
    }
}

/// `suffix` is `<pid>-<n>`.
fn is_stale(path: &Path, suffix: &str) -> bool {
    let pid = suffix.split('-').next().and_then(|p| p.parse::<u32>().ok());
    let proc_dir = Path::new("/proc/self");
    if let (Some(pid), true) = (pid, proc_dir.exists()) {
        return pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists();
    }
    let age = fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|age| age > STALE_AFTER)
}
