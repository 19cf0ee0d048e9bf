//! A bounds-checked little-endian reader over a borrowed byte slice.
//!
//! Every read either returns bytes that are inside the buffer or a [`Short`] saying how many were
//! missing. `Short` carries no description, so the hot path (hundreds of thousands of vocab strings)
//! allocates nothing; callers attach one with [`Context::ctx`] only when a read fails.

use alloc::string::String;

use crate::error::FormatError;

/// A read that ran past the end: `needed` bytes at `offset`, `available` left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    pub offset: u64,
    pub needed: u64,
    pub available: u64,
}

impl Short {
    pub fn describe(self, what: String) -> FormatError {
        FormatError::Truncated { what, offset: self.offset, needed: self.needed, available: self.available }
    }
}

/// Attach a lazily built description to a short read.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, FormatError>;
}

impl<T> Context<T> for Result<T, Short> {
    #[inline]
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, FormatError> {
        self.map_err(|short| short.describe(what()))
    }
}

/// Position `pos` in `bytes`; `pos <= bytes.len()` always holds.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes consumed so far (the absolute offset when the cursor spans the whole file).
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The bytes consumed since position `start` (empty if `start` is ahead of the cursor).
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.bytes.get(start..self.pos).unwrap_or(&[])
    }

    /// The next `n` bytes, consumed. `n` is a u64 because lengths come straight from the file.
    pub fn take(&mut self, n: u64) -> Result<&'a [u8], Short> {
        let short = Short { offset: self.pos as u64, needed: n, available: self.remaining() as u64 };
        let n = usize::try_from(n).map_err(|_| short)?;
        let end = self.pos.checked_add(n).ok_or(short)?;
        let out = self.bytes.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn magic(&mut self) -> Result<[u8; 4], Short> {
        self.array()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_stops_at_the_end() {
        let bytes = [1u8, 0, 2, 0, 0, 0, 9];
        let mut cur = Cursor::new(&bytes);
        assert_eq!(cur.u16(), Ok(1));
        assert_eq!(cur.u32(), Ok(2));
        assert_eq!(cur.u32(), Err(Short { offset: 6, needed: 4, available: 1 }));
        // A failed read consumes nothing.
        assert_eq!(cur.pos(), 6);
        assert_eq!(cur.u8(), Ok(9));
        assert_eq!(cur.remaining(), 0);
    }

    #[test]
    fn huge_lengths_are_short_reads_not_panics() {
        let bytes = [0u8; 8];
        let mut cur = Cursor::new(&bytes);
        cur.take(3).unwrap();
        for n in [u64::MAX, u64::MAX - 2, 1 << 62, 6] {
            assert_eq!(cur.take(n), Err(Short { offset: 3, needed: n, available: 5 }));
        }
    }
}
