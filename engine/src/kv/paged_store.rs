//! The exact store: every token's keys and values, per layer, in pages of P tokens.
//!
//! A page holds one layer's P consecutive positions for all KV heads, laid out
//! K (n_kv, P, row_bytes(hd)) then V (n_kv, P, row_bytes(hdv)), in the cache's element type. Pages
//! stay resident up to `ram_bytes`, less what the owner reserves for its other resident bytes
//! (summaries, kept selections); when the total goes over the cap, the oldest completed pages
//! move to the spill file. Pages no query can reach again (a
//! sliding-window layer's past) are dropped.

use std::collections::VecDeque;
use std::ops::Range;

use half::f16;

use super::codec::{decode, encode, row_bytes};
use super::mode::KvType;
use super::spill::SpillFile;
use crate::error::{EngineError, Result};

enum Page {
    Resident(Box<[u8]>),
    Spilled(usize),
    Dropped,
}

/// Geometry of a page.
#[derive(Clone, Copy, Debug)]
pub struct PageShape {
    pub tokens: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub ty: KvType,
}

impl PageShape {
    fn k_row(&self) -> usize {
        row_bytes(self.ty, self.head_dim)
    }

    fn v_row(&self) -> usize {
        row_bytes(self.ty, self.head_dim_v)
    }

    pub fn bytes(&self) -> usize {
        self.tokens * self.n_kv * (self.k_row() + self.v_row())
    }

    /// Byte offset of head h, slot s's key in a page.
    fn k_at(&self, h: usize, s: usize) -> usize {
        (h * self.tokens + s) * self.k_row()
    }

    fn v_at(&self, h: usize, s: usize) -> usize {
        self.n_kv * self.tokens * self.k_row() + (h * self.tokens + s) * self.v_row()
    }
}

pub struct PagedStore {
    shape: PageShape,
    /// pages[layer][page]
    pages: Vec<Vec<Page>>,
    /// Cap on resident bytes, pages plus `reserved` (None: never spill).
    ram_bytes: Option<usize>,
    resident: usize,
    /// The owner's other resident bytes, counted against the cap.
    reserved: usize,
    /// Completed resident pages, oldest first: the spill order.
    spill_queue: VecDeque<(usize, usize)>,
    spill: Option<SpillFile>,
}

impl PagedStore {
    pub fn new(shape: PageShape, n_layer: usize, ram_bytes: Option<usize>) -> Result<PagedStore> {
        if shape.ty == KvType::Q8_0
            && (!shape.head_dim.is_multiple_of(32) || !shape.head_dim_v.is_multiple_of(32))
        {
            return Err(EngineError::InvalidSetting(format!(
                "--kv-type q8_0 needs head dimensions that are multiples of 32 (this model: {}, {})",
                shape.head_dim, shape.head_dim_v
            )));
        }
        // Each layer writes into one incomplete page, which cannot be spilled.
        let floor = n_layer * shape.bytes();
        if let Some(cap) = ram_bytes {
            if cap < floor {
                return Err(EngineError::InvalidSetting(format!(
                    "--kv-ram {cap} is below one page per layer ({floor} bytes for this model and --kv-page)"
                )));
            }
        }
        Ok(PagedStore {
            shape,
            pages: (0..n_layer).map(|_| Vec::new()).collect(),
            ram_bytes,
            resident: 0,
            reserved: 0,
            spill_queue: VecDeque::new(),
            spill: None,
        })
    }

    pub fn shape(&self) -> PageShape {
        self.shape
    }

    pub fn resident_bytes(&self) -> usize {
        self.resident
    }

    pub fn spilled_bytes(&self) -> usize {
        self.spill.as_ref().map_or(0, SpillFile::bytes_in_use)
    }

    /// Unmaps the spilled pages read through the map once they pass the slack (see
    /// [`SpillFile::release_mapped`]).
    pub fn release_spilled_reads(&mut self) {
        if let Some(s) = &mut self.spill {
            s.release_mapped();
        }
    }

    /// Counts `bytes` of the owner's other resident memory against the cap, spilling pages if
    /// the total is now over it. Only completed pages spill: once the reserve alone fills the
    /// cap, the resident total is the reserve plus one page per layer.
    pub fn set_reserved(&mut self, bytes: usize) -> Result<()> {
        self.reserved = bytes;
        self.enforce_cap()
    }

    pub fn clear(&mut self) {
        self.pages.iter_mut().for_each(Vec::clear);
        self.resident = 0;
        self.spill_queue.clear();
        if let Some(s) = &mut self.spill {
            s.clear();
        }
    }

    /// Stores position `pos` of `layer`: k (n_kv * hd,), v (n_kv * hdv,). Positions of a layer
    /// arrive in order. Returns whether this completed a page.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) -> Result<bool> {
        let sh = self.shape;
        let (page, slot) = (pos / sh.tokens, pos % sh.tokens);
        while self.pages[layer].len() <= page {
            self.pages[layer].push(Page::Resident(vec![0u8; sh.bytes()].into_boxed_slice()));
            self.resident += sh.bytes();
            self.enforce_cap()?;
        }
        let Page::Resident(bytes) = &mut self.pages[layer][page] else {
            return Err(EngineError::InvalidSetting(format!(
                "KV page {page} of layer {layer} is no longer writable"
            )));
        };
        let (kr, vr) = (sh.k_row(), sh.v_row());
        for h in 0..sh.n_kv {
            let at = sh.k_at(h, slot);
            encode(sh.ty, &k[h * sh.head_dim..(h + 1) * sh.head_dim], &mut bytes[at..at + kr]);
            let at = sh.v_at(h, slot);
            encode(sh.ty, &v[h * sh.head_dim_v..(h + 1) * sh.head_dim_v], &mut bytes[at..at + vr]);
        }
        let complete = slot + 1 == sh.tokens;
        if complete {
            self.spill_queue.push_back((layer, page));
        }
        Ok(complete)
    }

    /// Frees every page of `layer` that ends at or before `pos`.
    pub fn drop_before(&mut self, layer: usize, pos: usize) {
        let sh = self.shape;
        for p in self.pages[layer].iter_mut().take(pos / sh.tokens) {
            match std::mem::replace(p, Page::Dropped) {
                Page::Resident(_) => self.resident -= sh.bytes(),
                Page::Spilled(slot) => {
                    if let Some(s) = &mut self.spill {
                        s.free(slot);
                    }
                }
                Page::Dropped => {}
            }
        }
    }

    fn enforce_cap(&mut self) -> Result<()> {
        let Some(cap) = self.ram_bytes else { return Ok(()) };
        while self.resident + self.reserved > cap {
            let Some((layer, page)) = self.spill_queue.pop_front() else { break };
            let Page::Resident(bytes) = &self.pages[layer][page] else { continue };
            let spill = match &mut self.spill {
                Some(s) => s,
                None => self.spill.insert(SpillFile::create(self.shape.bytes())?),
            };
            let slot = spill.write(bytes)?;
            self.pages[layer][page] = Page::Spilled(slot);
            self.resident -= self.shape.bytes();
        }
        Ok(())
    }

    /// The bytes of a stored page (empty if it was dropped or never written).
    pub fn page(&self, layer: usize, page: usize) -> &[u8] {
        match self.pages[layer].get(page) {
            Some(Page::Resident(b)) => b,
            Some(Page::Spilled(slot)) => self.spill.as_ref().map_or(&[], |s| s.read(*slot)),
            _ => &[],
        }
    }

    /// `r` cut at page boundaries: consecutive runs of positions, each inside one page.
    pub fn page_runs(&self, r: Range<usize>) -> impl Iterator<Item = Range<usize>> {
        let page = self.shape.tokens.max(1);
        let starts = std::iter::successors(Some(r.start), move |&p| Some((p / page + 1) * page));
        starts.take_while(move |&p| p < r.end).map(move |p| p..((p / page + 1) * page).min(r.end))
    }

    /// The keys (n, hd) and values (n, hdv) of KV head `h` at positions `r` (all in one page),
    /// read in place: None unless the pages hold f32 and this one is present and 4-byte aligned
    /// (then the caller gathers instead).
    pub fn f32_rows(&self, layer: usize, h: usize, r: Range<usize>) -> Option<(&[f32], &[f32])> {
        self.rows_in_place(KvType::F32, layer, h, r)
    }

    /// Asks the CPU to bring the keys and values of KV head `h` at positions `r` (all in one
    /// page) into cache, if the page is resident (a spilled one is left to the map's faults,
    /// and its read is not counted against the map's release).
    pub fn prefetch_rows(&self, layer: usize, h: usize, r: Range<usize>) {
        let Some((page, k, v)) = self.row_spans(h, r) else { return };
        if let Some(Page::Resident(bytes)) = self.pages[layer].get(page) {
            for part in [bytes.get(k), bytes.get(v)] {
                fovea_kernels::ops::prefetch(part.unwrap_or_default());
            }
        }
    }

    /// As [`PagedStore::f32_rows`], for pages that hold f16.
    pub fn f16_rows(&self, layer: usize, h: usize, r: Range<usize>) -> Option<(&[f16], &[f16])> {
        self.rows_in_place(KvType::F16, layer, h, r)
    }

    fn rows_in_place<T: bytemuck::Pod>(
        &self,
        ty: KvType,
        layer: usize,
        h: usize,
        r: Range<usize>,
    ) -> Option<(&[T], &[T])> {
        if self.shape.ty != ty || cfg!(target_endian = "big") {
            return None;
        }
        let (page, k, v) = self.row_spans(h, r)?;
        let bytes = self.page(layer, page);
        let (k, v) = (bytes.get(k)?, bytes.get(v)?);
        Some((bytemuck::try_cast_slice(k).ok()?, bytemuck::try_cast_slice(v).ok()?))
    }

    /// The page holding positions `r` and the byte ranges of KV head `h`'s keys and values at
    /// them in it; None if `r` is empty or crosses a page boundary.
    fn row_spans(&self, h: usize, r: Range<usize>) -> Option<(usize, Range<usize>, Range<usize>)> {
        let sh = self.shape;
        if r.is_empty() || r.start / sh.tokens != (r.end - 1) / sh.tokens {
            return None;
        }
        let (s0, s1) = (r.start % sh.tokens, (r.end - 1) % sh.tokens + 1);
        Some((r.start / sh.tokens, sh.k_at(h, s0)..sh.k_at(h, s1), sh.v_at(h, s0)..sh.v_at(h, s1)))
    }

    /// k (hd,) <- the key of KV head `h` at `pos`; zeros if the page is gone.
    pub fn read_key(&self, layer: usize, h: usize, pos: usize, k: &mut [f32]) {
        let sh = self.shape;
        let bytes = self.page(layer, pos / sh.tokens);
        let at = sh.k_at(h, pos % sh.tokens);
        match bytes.get(at..at + sh.k_row()) {
            Some(row) => decode(sh.ty, row, k),
            None => k.fill(0.0),
        }
    }

    /// v (hdv,) <- the value of KV head `h` at `pos`; zeros if the page is gone.
    pub fn read_value(&self, layer: usize, h: usize, pos: usize, v: &mut [f32]) {
        let sh = self.shape;
        let bytes = self.page(layer, pos / sh.tokens);
        let at = sh.v_at(h, pos % sh.tokens);
        match bytes.get(at..at + sh.v_row()) {
            Some(row) => decode(sh.ty, row, v),
            None => v.fill(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(ty: KvType) -> PageShape {
        PageShape { tokens: 4, n_kv: 2, head_dim: 32, head_dim_v: 32, ty }
    }

    fn kv(pos: usize, n: usize) -> Vec<f32> {
        (0..n).map(|i| ((pos * 131 + i * 17) % 97) as f32 * 0.25 - 12.0).collect()
    }

    #[test]
    fn spilled_pages_read_back_byte_exact_and_the_cap_holds() {
        let sh = shape(KvType::F32);
        let cap = 5 * sh.bytes();
        let mut store = PagedStore::new(sh, 2, Some(cap)).unwrap();
        let n = 400;
        for pos in 0..n {
            for layer in 0..2 {
                store.store(layer, pos, &kv(pos + layer, 64), &kv(pos + 7 * layer + 1, 64)).unwrap();
                assert!(store.resident_bytes() <= cap, "resident {} > cap {cap}", store.resident_bytes());
            }
        }
        assert_eq!(store.resident_bytes() + store.spilled_bytes(), 2 * n / 4 * sh.bytes());
        assert!(store.spilled_bytes() > 0);
        let (mut k, mut v) = (vec![0.0; 32], vec![0.0; 32]);
        for pos in 0..n {
            for layer in 0..2 {
                for h in 0..2 {
                    store.read_key(layer, h, pos, &mut k);
                    store.read_value(layer, h, pos, &mut v);
                    assert_eq!(k, kv(pos + layer, 64)[h * 32..(h + 1) * 32], "key {layer} {h} {pos}");
                    assert_eq!(v, kv(pos + 7 * layer + 1, 64)[h * 32..(h + 1) * 32]);
                }
            }
        }
    }

    #[test]
    fn a_cap_below_one_page_per_layer_is_an_error() {
        let sh = shape(KvType::F16);
        assert!(PagedStore::new(sh, 3, Some(2 * sh.bytes())).is_err());
        assert!(PagedStore::new(sh, 3, Some(3 * sh.bytes())).is_ok());
    }
}
