//! Memory-mapping a GGUF file (feature `std`).
//!
//! [`MappedGguf`] owns the mapping; [`MappedGguf::gguf`] parses it into a [`Gguf`] that borrows from
//! it. Parsing is not cached: a struct holding both the map and a view into it would be
//! self-referential. The header is small (a 262144-entry vocab parses in milliseconds) and callers
//! parse once and keep the `Gguf` next to the `MappedGguf`.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::FormatError;
use crate::gguf::Gguf;

/// A failure opening or parsing a GGUF file, with its path.
#[derive(Debug)]
pub enum GgufFileError {
    Io { path: PathBuf, error: io::Error },
    Format { path: PathBuf, error: FormatError },
}

impl GgufFileError {
    pub fn path(&self) -> &Path {
        match self {
            GgufFileError::Io { path, .. } | GgufFileError::Format { path, .. } => path,
        }
    }

    /// The format error, if that is what this is.
    pub fn format_error(&self) -> Option<&FormatError> {
        match self {
            GgufFileError::Format { error, .. } => Some(error),
            GgufFileError::Io { .. } => None,
        }
    }
}

impl fmt::Display for GgufFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufFileError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            GgufFileError::Format { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for GgufFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GgufFileError::Io { error, .. } => Some(error),
            GgufFileError::Format { error, .. } => Some(error),
        }
    }
}

/// A GGUF file mapped read-only into memory.
#[derive(Debug)]
pub struct MappedGguf {
    path: PathBuf,
    mmap: memmap2::Mmap,
}

impl MappedGguf {
    /// Map `path`. Directories and empty files are refused here; everything else is checked by
    /// [`MappedGguf::gguf`].
    pub fn open(path: impl AsRef<Path>) -> Result<MappedGguf, GgufFileError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |error: io::Error| GgufFileError::Io { path: path.clone(), error };
        let file = File::open(&path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory, expected a .gguf file",
            )));
        }
        if meta.len() == 0 {
            return Err(GgufFileError::Format { path, error: FormatError::Empty });
        }
        // SAFETY: the mapping is read-only and private to this process, but the file itself may be
        // changed by others while mapped. As every memmap2 user must, we assume model files are not
        // modified or truncated while in use (truncation would raise SIGBUS on access; a rewrite
        // could change bytes after they were validated, which affects values read, never the bounds
        // of the slices handed out, since those come from the mapping length fixed here).
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        Ok(MappedGguf { path, mmap })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file. Page aligned, so 32-aligned tensor data can be viewed as blocks in place.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// Parse and validate the mapped file; errors carry the path.
    pub fn gguf(&self) -> Result<Gguf<'_>, GgufFileError> {
        Gguf::parse(&self.mmap).map_err(|error| GgufFileError::Format { path: self.path.clone(), error })
    }
}
