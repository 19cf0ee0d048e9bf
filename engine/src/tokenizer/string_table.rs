//! Many byte strings in one buffer: a vocabulary's texts, its decoded pieces, BPE merge lines.
//!
//! A `Vec<String>` of 262,144 tokens is 262,144 heap blocks of a few bytes, each with its
//! allocator header and a 24-byte `String` beside it: about 40 bytes of overhead for a token of
//! 9. Here every string is a range of one byte arena, found through a u32 offset (4 bytes each).

use std::ops::Index;

/// A table of byte strings, indexed by u32 id in the order they were pushed.
/// Offsets are u32, so the texts together hold at most 4 GiB ([`TableFull`] past that).
#[derive(Clone, PartialEq, Eq)]
pub struct StringTable {
    /// every string, concatenated
    bytes: Vec<u8>,
    /// string `i` is `bytes[offsets[i]..offsets[i + 1]]`; starts with 0, so never empty
    offsets: Vec<u32>,
}

/// Pushing would take the arena past the 4 GiB a u32 offset can address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("string table over 4 GiB")]
pub struct TableFull;

impl StringTable {
    pub fn new() -> StringTable {
        StringTable::with_capacity(0, 0)
    }

    /// Room for `strings` strings of `bytes` bytes in all, so a table whose size is known (a GGUF
    /// array's) is allocated once, exactly.
    pub fn with_capacity(strings: usize, bytes: usize) -> StringTable {
        let mut offsets = Vec::with_capacity(strings.saturating_add(1));
        offsets.push(0);
        StringTable { bytes: Vec::with_capacity(bytes), offsets }
    }

    /// Appends `s` and returns its id.
    pub fn push(&mut self, s: impl AsRef<[u8]>) -> Result<u32, TableFull> {
        let s = s.as_ref();
        let end = u32::try_from(self.bytes.len() + s.len()).map_err(|_| TableFull)?;
        // ids are u32 too (only billions of empty strings could run out of them first)
        let id = u32::try_from(self.len()).map_err(|_| TableFull)?;
        self.bytes.extend_from_slice(s);
        self.offsets.push(end);
        Ok(id)
    }

    pub fn get(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let (&start, &end) = (self.offsets.get(i)?, self.offsets.get(i + 1)?);
        Some(&self.bytes[start as usize..end as usize])
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of all strings together.
    pub fn text_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.offsets.windows(2).map(|w| &self.bytes[w[0] as usize..w[1] as usize])
    }

    /// Gives back spare capacity (a table built with a guessed size).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.offsets.shrink_to_fit();
    }
}

impl Default for StringTable {
    fn default() -> StringTable {
        StringTable::new()
    }
}

/// String `id`; panics when out of range, like slice indexing.
impl Index<u32> for StringTable {
    type Output = [u8];

    fn index(&self, id: u32) -> &[u8] {
        match self.get(id) {
            Some(s) => s,
            None => panic!("string id {id} out of range for a table of {}", self.len()),
        }
    }
}

/// For hand-built vocabularies (tests, tools). Panics past 4 GiB of text, as `Vec` does past its
/// capacity limit; readers of untrusted files use [`StringTable::push`].
impl<S: AsRef<[u8]>> FromIterator<S> for StringTable {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> StringTable {
        let mut table = StringTable::new();
        for s in iter {
            if let Err(e) = table.push(s) {
                panic!("{e}");
            }
        }
        table
    }
}

/// Summarized: a vocabulary would print megabytes.
impl std::fmt::Debug for StringTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StringTable").field("len", &self.len()).field("text_len", &self.text_len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_including_empty_ones() {
        let words: [&[u8]; 5] = [b"a", b"", b"\xff\x00", b"", "▁hé".as_bytes()];
        let table: StringTable = words.iter().collect();
        assert_eq!(table.len(), 5);
        assert_eq!(table.text_len(), words.iter().map(|w| w.len()).sum::<usize>());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(&table[i as u32], *w);
            assert_eq!(table.get(i as u32), Some(*w));
        }
        assert_eq!(table.get(5), None);
        assert!(table.iter().eq(words.iter().copied()));
        assert!(StringTable::new().is_empty() && StringTable::new().iter().next().is_none());
        assert_eq!(StringTable::default(), StringTable::new());
    }
}
