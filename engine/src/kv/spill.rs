//! The spill file: fixed-size slots in a memory-mapped temporary file, where pages go when the
//! resident KV memory would exceed `--kv-ram`. Nothing is thrown away: a spilled page is read
//! back through the map (the OS pages it in on demand and may drop it again, it is file-backed).
//!
//! Pages are written with `pwrite`, not through the map, so writing never maps them into the
//! process; [`SpillFile::release_mapped`] unmaps the pages read once they add up to
//! [`RELEASE_BYTES`] (they stay in the OS page cache, reclaimable), so the process's RSS stays
//! within that of `--kv-ram`, not the file's size.
//!
//! The file is created in `$FOVEA_KV_SPILL_DIR` or the temp dir and unlinked at once, so it
//! disappears with the process even after a crash. It grows by doubling; growing remaps it.

use std::fs::{File, OpenOptions};
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of spilled pages read through the map before they are unmapped again: RSS may exceed
/// `--kv-ram` by this much. Every release makes the next selections fault their pages back in,
/// which costs generation: SmolLM2 at 32K tokens with `--kv-ram 256M` decoded 76.7 t/s with a
/// 64 MiB slack, 82.7 with this one and 90.8 with none (peak RSS 831, 831 and 1,276 MiB).
const RELEASE_BYTES: usize = 256 << 20;

use memmap2::MmapMut;

use crate::error::{EngineError, Result};

/// Slots of the first mapping (more are added by doubling).
const INITIAL_SLOTS: usize = 64;

pub struct SpillFile {
    file: File,
    /// The whole file, `capacity * slot_bytes` bytes (None until the first page is spilled).
    map: Option<MmapMut>,
    slot_bytes: usize,
    capacity: usize,
    /// Slots handed out so far (slots are freed only all at once, by `clear`).
    used: usize,
    /// Slots given back by `free`, reused first.
    free: Vec<usize>,
    /// Bytes read through the map since it was last released (counted by `read`, which shares
    /// `&self` across threads).
    mapped_reads: AtomicUsize,
}

fn spill_dir() -> PathBuf {
    std::env::var_os("FOVEA_KV_SPILL_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

impl SpillFile {
    /// An empty spill file for slots of `slot_bytes` bytes.
    pub fn create(slot_bytes: usize) -> Result<SpillFile> {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let dir = spill_dir();
        let path = dir.join(format!(
            "fovea-kv-{}-{}.spill",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |what: &str, e: std::io::Error| {
            EngineError::InvalidSetting(format!("KV spill file {}: cannot {what}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io("create", e))?;
        // Unlinked now: the open handle and the map keep the data alive until the process ends.
        std::fs::remove_file(&path).map_err(|e| io("unlink", e))?;
        Ok(SpillFile {
            file,
            map: None,
            slot_bytes,
            capacity: 0,
            used: 0,
            free: Vec::new(),
            mapped_reads: AtomicUsize::new(0),
        })
    }

    /// Bytes of the slots currently holding pages.
    pub fn bytes_in_use(&self) -> usize {
        (self.used - self.free.len()) * self.slot_bytes
    }

    /// Writes one page (slot_bytes,) into a free slot and returns the slot.
    pub fn write(&mut self, page: &[u8]) -> Result<usize> {
        debug_assert_eq!(page.len(), self.slot_bytes);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                if self.used == self.capacity {
                    self.grow()?;
                }
                self.used += 1;
                self.used - 1
            }
        };
        self.write_slot(slot, page)?;
        Ok(slot)
    }

    #[cfg(unix)]
    fn write_slot(&mut self, slot: usize, page: &[u8]) -> Result<()> {
        let at = (slot * self.slot_bytes) as u64;
        self.file
            .write_all_at(page, at)
            .map_err(|e| EngineError::InvalidSetting(format!("KV spill file: cannot write slot {slot}: {e}")))
    }

    /// Without `pwrite`, through the map (the pages then count in RSS until the OS drops them).
    #[cfg(not(unix))]
    fn write_slot(&mut self, slot: usize, page: &[u8]) -> Result<()> {
        let Some(map) = self.map.as_mut() else {
            return Err(EngineError::InvalidSetting("KV spill file is not mapped".into()));
        };
        map[slot * self.slot_bytes..(slot + 1) * self.slot_bytes].copy_from_slice(page);
        Ok(())
    }

    /// Unmaps the pages read through the map once they add up to [`RELEASE_BYTES`].
    pub fn release_mapped(&mut self) {
        if *self.mapped_reads.get_mut() >= RELEASE_BYTES {
            self.release_mapped_now();
        }
    }

    /// Unmaps the pages read through the map, so they stop counting in the process's RSS. Their
    /// data stays in the file (and the OS page cache): the next read maps them again.
    pub fn release_mapped_now(&mut self) {
        *self.mapped_reads.get_mut() = 0;
        #[cfg(unix)]
        if let Some(map) = &self.map {
            // SAFETY: the map is shared and file-backed, so MADV_DONTNEED only drops this
            // process's page-table entries; the contents live on in the file and are read back
            // on the next access. `&mut self` guarantees no slice from `read` is alive.
            // Failure only means the pages stay mapped, which is harmless.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// The bytes of a written slot.
    pub fn read(&self, slot: usize) -> &[u8] {
        self.mapped_reads.fetch_add(self.slot_bytes, Ordering::Relaxed);
        match &self.map {
            Some(map) => &map[slot * self.slot_bytes..(slot + 1) * self.slot_bytes],
            None => &[],
        }
    }

    /// Gives a slot back for reuse.
    pub fn free(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Forgets every slot (the file keeps its size for the next stream).
    pub fn clear(&mut self) {
        self.used = 0;
        self.free.clear();
    }

    fn grow(&mut self) -> Result<()> {
        let capacity = (self.capacity * 2).max(INITIAL_SLOTS);
        let len = capacity
            .checked_mul(self.slot_bytes)
            .ok_or_else(|| EngineError::InvalidSetting("KV spill file size overflows".into()))?;
        let err = |e: std::io::Error| EngineError::InvalidSetting(format!("KV spill file cannot grow: {e}"));
        // Unmap before resizing: the old map must not outlive the file's old length.
        self.map = None;
        self.file.set_len(len as u64).map_err(err)?;
        // SAFETY: the file is private to this process (created exclusively and unlinked), so
        // nothing else can truncate it while it is mapped; our own writes go through `pwrite`,
        // which the kernel keeps coherent with the shared map (one page cache).
        let map = unsafe { MmapMut::map_mut(&self.file) }.map_err(err)?;
        self.map = Some(map);
        self.capacity = capacity;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_byte_exact_across_growth() {
        let mut f = SpillFile::create(100).unwrap();
        let page = |i: usize| -> Vec<u8> { (0..100).map(|b| (i * 31 + b * 7) as u8).collect() };
        let slots: Vec<usize> = (0..200).map(|i| f.write(&page(i)).unwrap()).collect();
        assert_eq!(f.bytes_in_use(), 200 * 100);
        // Read, unmap what was read, read again: the data lives in the file, not the mapping.
        for round in 0..2 {
            for (i, &s) in slots.iter().enumerate() {
                assert_eq!(f.read(s), page(i).as_slice(), "page {i}, round {round}");
            }
            f.release_mapped_now();
        }
        f.free(slots[3]);
        let again = f.write(&page(999)).unwrap();
        assert_eq!(again, slots[3]);
        assert_eq!(f.read(again), page(999).as_slice());
        assert_eq!(f.read(slots[4]), page(4).as_slice());
    }
}
