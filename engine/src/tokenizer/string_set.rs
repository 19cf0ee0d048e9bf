//! A [`StringTable`] with a hash index: text -> id without storing any text a second time.
//!
//! A `HashMap<Box<[u8]>, u32>` beside the table would copy every key into its own heap block.
//! Here the hash table holds only ids (4 bytes a slot); a lookup hashes the text it is asked for
//! and compares it with the table's slice for each candidate id.

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

use super::string_table::{StringTable, TableFull};

pub(crate) struct StringSet {
    table: StringTable,
    /// the id of every string in `table`, placed by the hash of its text
    index: HashTable<u32>,
    /// foldhash, seeded at random per set. Hashing is most of the cost of encoding (a lookup per
    /// candidate merge), and foldhash takes a fraction of SipHash's time on short keys. Its seed
    /// keeps collisions hard to plan; and the table's contents come from the model file, so text
    /// a user types can only look strings up, never lengthen the table's probe sequences.
    hasher: DefaultHashBuilder,
}

/// Two ids with the same text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub text: Vec<u8>,
    pub first: u32,
    pub second: u32,
}

impl StringSet {
    pub fn new() -> StringSet {
        StringSet {
            table: StringTable::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Indexes the strings of `table` by their ids, which stay as they are; a text that occurs
    /// twice is an error.
    pub fn from_table(table: StringTable) -> Result<StringSet, Duplicate> {
        let hasher = DefaultHashBuilder::default();
        let mut index = HashTable::with_capacity(table.len());
        // `table` has at most u32::MAX + 1 strings, so the ids fit
        for second in 0..table.len() as u32 {
            let text = &table[second];
            let hash = hasher.hash_one(text);
            match index.entry(hash, |&id| &table[id] == text, |&id| hasher.hash_one(&table[id])) {
                Entry::Occupied(e) => return Err(Duplicate { text: text.to_vec(), first: *e.get(), second }),
                Entry::Vacant(e) => {
                    e.insert(second);
                }
            }
        }
        Ok(StringSet { table, index, hasher })
    }

    /// The id of `text`, added at the end if it is new.
    pub fn intern(&mut self, text: &[u8]) -> Result<u32, TableFull> {
        let hash = self.hasher.hash_one(text);
        let (table, hasher) = (&mut self.table, &self.hasher);
        match self.index.entry(hash, |&id| &table[id] == text, |&id| hasher.hash_one(&table[id])) {
            Entry::Occupied(e) => Ok(*e.get()),
            Entry::Vacant(e) => {
                let id = table.push(text)?;
                e.insert(id);
                Ok(id)
            }
        }
    }

    pub fn id_of(&self, text: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        self.index.find(hash, |&id| &self.table[id] == text).copied()
    }

    /// String `id`; panics when out of range, like slice indexing.
    pub fn text(&self, id: u32) -> &[u8] {
        &self.table[id]
    }

    pub fn table(&self) -> &StringTable {
        &self.table
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_intern_and_duplicates() {
        let table: StringTable = ["a", "bc", "", "▁x"].into_iter().collect();
        let mut set = StringSet::from_table(table).unwrap();
        assert_eq!(set.id_of(b"bc"), Some(1));
        assert_eq!(set.id_of(b""), Some(2));
        assert_eq!(set.id_of("▁x".as_bytes()), Some(3));
        assert_eq!(set.id_of(b"b"), None);
        assert_eq!(set.intern(b"a"), Ok(0));
        assert_eq!(set.intern(b"new"), Ok(4));
        assert_eq!(set.intern(b"new"), Ok(4));
        assert_eq!((set.len(), set.text(4)), (5, &b"new"[..]));
        // enough strings to make the index grow several times while interning
        let mut grown = StringSet::new();
        for i in 0..1000u32 {
            assert_eq!(grown.intern(i.to_string().as_bytes()), Ok(i));
        }
        assert!((0..1000u32).all(|i| grown.id_of(i.to_string().as_bytes()) == Some(i)));

        let dup: StringTable = ["x", "y", "x"].into_iter().collect();
        assert_eq!(
            StringSet::from_table(dup).err(),
            Some(Duplicate { text: b"x".to_vec(), first: 0, second: 2 })
        );
    }
}
