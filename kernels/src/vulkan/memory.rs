//! Device memory: a few large blocks (one `VkDeviceMemory` and one `VkBuffer` each),
//! sub-allocated first-fit. A [`Buffer`] is a range of a block; dropping it returns the range,
//! and a block left empty is freed, so [`MemoryStats`] go back to zero when every model and
//! session is gone (the resource-hygiene test checks exactly that).

// A `no_std` crate: the std prelude is imported explicitly.
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use std::sync::Arc;

use ash::vk;

use super::device::Gpu;
use super::error::{VkCall, VulkanError};

/// Blocks are at least this big: a 135M-parameter model's weights fit in a handful.
const BLOCK_BYTES: u64 = 64 << 20;

/// Sub-allocations start on this boundary (≥ any device's minStorageBufferOffsetAlignment and
/// the 4-byte alignment of copies).
const ALIGN: u64 = 256;

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Device-local: weights, KV cache, activations.
    Device,
    /// Host-visible and coherent, mapped: uploads and read-backs.
    Staging,
}

struct Block {
    kind: MemKind,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    size: u64,
    /// Free ranges (offset, len), sorted by offset and coalesced.
    free: Vec<(u64, u64)>,
    /// Address of the mapping (staging blocks), as an integer so the allocator stays Send.
    mapped: usize,
    /// Recordings whose commands use this block: it is not freed while any holds it, even
    /// when empty, so a recorded command never names a destroyed `VkBuffer`.
    pins: u32,
}

impl Block {
    fn is_empty(&self) -> bool {
        self.free.len() == 1 && self.free[0] == (0, self.size)
    }
}

/// Bytes handed out and held, for leak checks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in live [`Buffer`]s (rounded up to the alignment).
    pub live_bytes: u64,
    /// Bytes of device memory held in blocks.
    pub block_bytes: u64,
    pub blocks: usize,
}

#[derive(Default)]
pub(crate) struct Allocator {
    blocks: Vec<Option<Block>>,
    live_bytes: u64,
}

impl Allocator {
    pub(crate) fn stats(&self) -> MemoryStats {
        let blocks = self.blocks.iter().flatten();
        MemoryStats {
            live_bytes: self.live_bytes,
            block_bytes: blocks.clone().map(|b| b.size).sum(),
            blocks: blocks.count(),
        }
    }

    /// Destroys every block (the Gpu is being dropped).
    ///
    /// # Safety
    /// No buffer may be in use by the device.
    pub(crate) unsafe fn destroy_all(&mut self, device: &ash::Device) {
        for b in self.blocks.drain(..).flatten() {
            // SAFETY: the caller guarantees the device no longer uses these.
            unsafe { destroy_block(device, &b) };
        }
    }
}

/// # Safety
/// The block must not be in use by the device.
unsafe fn destroy_block(device: &ash::Device, b: &Block) {
    // SAFETY: the caller guarantees the block is idle; unmapping happens with the free.
    unsafe {
        device.destroy_buffer(b.buffer, None);
        device.free_memory(b.memory, None);
    }
}

/// A range of a block. Bound whole to shaders (offsets inside it go in push constants).
pub struct Buffer {
    gpu: Arc<Gpu>,
    pub(crate) block: usize,
    pub(crate) buffer: vk::Buffer,
    pub(crate) offset: u64,
    size: u64,
    mapped: usize,
}

impl Buffer {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Copies `bytes` into a staging buffer at `offset`.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), VulkanError> {
        let end = offset.checked_add(bytes.len() as u64);
        if self.mapped == 0 || end.is_none_or(|e| e > self.size) {
            return Err(VulkanError::Unsupported("write outside a mapped staging buffer".into()));
        }
        // SAFETY: the mapping covers the whole block, so [offset, offset + len) of this range is
        // mapped host memory owned by this buffer; the device is not using it (callers write
        // before submitting and read after the fence).
        unsafe {
            let dst = (self.mapped as *mut u8).add((self.offset + offset) as usize);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        }
        Ok(())
    }

    /// Copies `out.len()` bytes from a staging buffer at `offset`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), VulkanError> {
        let end = offset.checked_add(out.len() as u64);
        if self.mapped == 0 || end.is_none_or(|e| e > self.size) {
            return Err(VulkanError::Unsupported("read outside a mapped staging buffer".into()));
        }
        // SAFETY: as in `write`; the submission that wrote this memory has completed.
        unsafe {
            let src = (self.mapped as *const u8).add((self.offset + offset) as usize);
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len());
        }
        Ok(())
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let gpu = &self.gpu;
        let Ok(mut a) = gpu.alloc.lock() else { return };
        a.live_bytes -= self.size.next_multiple_of(ALIGN);
        let Some(Some(block)) = a.blocks.get_mut(self.block) else { return };
        insert_free(&mut block.free, self.offset, self.size.next_multiple_of(ALIGN));
        if block.is_empty() && block.pins == 0 {
            // The block is empty: give its memory back. Buffers are dropped only when no
            // submission using them is pending (every submit waits on its fence), and no
            // recording names the block (pins).
            if let Some(b) = a.blocks[self.block].take() {
                // SAFETY: nothing in the block is alive or in flight.
                unsafe { destroy_block(&gpu.device, &b) };
            }
        }
    }
}

fn insert_free(free: &mut Vec<(u64, u64)>, off: u64, len: u64) {
    let i = free.partition_point(|&(o, _)| o < off);
    free.insert(i, (off, len));
    // Coalesce with the next, then with the previous range.
    if i + 1 < free.len() && free[i].0 + free[i].1 == free[i + 1].0 {
        free[i].1 += free[i + 1].1;
        free.remove(i + 1);
    }
    if i > 0 && free[i - 1].0 + free[i - 1].1 == free[i].0 {
        free[i - 1].1 += free[i].1;
        free.remove(i);
    }
}

impl Gpu {
    pub fn memory_stats(&self) -> MemoryStats {
        self.alloc.lock().map(|a| a.stats()).unwrap_or_default()
    }

    /// Keeps `buf`'s block alive until [`Gpu::unpin`] (a recording using it); returns the
    /// block's index.
    pub(crate) fn pin(&self, buf: &Buffer) -> usize {
        if let Ok(mut a) = self.alloc.lock() {
            if let Some(Some(block)) = a.blocks.get_mut(buf.block) {
                block.pins += 1;
            }
        }
        buf.block
    }

    /// Releases pins taken by [`Gpu::pin`], freeing blocks left empty and unpinned.
    ///
    /// # Safety
    /// No submission using these blocks may be pending.
    pub(crate) unsafe fn unpin(&self, blocks: &[usize]) {
        let Ok(mut a) = self.alloc.lock() else { return };
        for &i in blocks {
            let Some(Some(block)) = a.blocks.get_mut(i) else { continue };
            block.pins = block.pins.saturating_sub(1);
            if block.is_empty() && block.pins == 0 {
                if let Some(b) = a.blocks[i].take() {
                    // SAFETY: no buffer lives in the block, no recording names it, and the
                    // caller guarantees no submission using it is pending.
                    unsafe { destroy_block(&self.device, &b) };
                }
            }
        }
    }

    /// A buffer of `size` bytes (contents undefined) of the given kind.
    pub fn alloc(self: &Arc<Self>, kind: MemKind, size: u64) -> Result<Buffer, VulkanError> {
        let size = size.max(4);
        let need = size.next_multiple_of(ALIGN);
        let mut a =
            self.alloc.lock().map_err(|_| VulkanError::Unsupported("allocator lock poisoned".into()))?;
        let found = a.blocks.iter_mut().enumerate().find_map(|(i, b)| {
            let b = b.as_mut().filter(|b| b.kind == kind)?;
            let j = b.free.iter().position(|&(_, len)| len >= need)?;
            let (off, len) = b.free[j];
            if len == need {
                b.free.remove(j);
            } else {
                b.free[j] = (off + need, len - need);
            }
            Some((i, off, b.buffer, b.mapped))
        });
        let (block, offset, buffer, mapped) = match found {
            Some(f) => f,
            None => {
                let mut b = self.new_block(kind, need.max(BLOCK_BYTES))?;
                b.free = if need == b.size { Vec::new() } else { vec![(need, b.size - need)] };
                let slot = a.blocks.iter().position(Option::is_none).unwrap_or(a.blocks.len());
                let f = (slot, 0, b.buffer, b.mapped);
                if slot == a.blocks.len() {
                    a.blocks.push(Some(b));
                } else {
                    a.blocks[slot] = Some(b);
                }
                f
            }
        };
        a.live_bytes += need;
        Ok(Buffer { gpu: Arc::clone(self), block, buffer, offset, size, mapped })
    }

    fn memory_type(&self, bits: u32, kind: MemKind) -> Result<u32, VulkanError> {
        let props = &self.mem_props;
        let want = match kind {
            MemKind::Device => vk::MemoryPropertyFlags::DEVICE_LOCAL,
            MemKind::Staging => {
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT
            }
        };
        (0..props.memory_type_count)
            .find(|&i| bits & (1 << i) != 0 && props.memory_types[i as usize].property_flags.contains(want))
            .ok_or(VulkanError::NoMemoryType(match kind {
                MemKind::Device => "device-local",
                MemKind::Staging => "host-visible coherent",
            }))
    }

    fn new_block(&self, kind: MemKind, size: u64) -> Result<Block, VulkanError> {
        let d = &self.device;
        let usage = vk::BufferUsageFlags::STORAGE_BUFFER
            | vk::BufferUsageFlags::TRANSFER_SRC
            | vk::BufferUsageFlags::TRANSFER_DST;
        // SAFETY: creating, binding and mapping objects of a live device; each is destroyed
        // on the error paths or owned by the returned Block.
        unsafe {
            let info = vk::BufferCreateInfo::default().size(size).usage(usage);
            let buffer = d.create_buffer(&info, None).call("vkCreateBuffer")?;
            let req = d.get_buffer_memory_requirements(buffer);
            let memory = match self.memory_type(req.memory_type_bits, kind).and_then(|t| {
                let ai = vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(t);
                d.allocate_memory(&ai, None).call("vkAllocateMemory")
            }) {
                Ok(m) => m,
                Err(e) => {
                    d.destroy_buffer(buffer, None);
                    return Err(e);
                }
            };
            let bound = d.bind_buffer_memory(buffer, memory, 0).call("vkBindBufferMemory");
            let mapped = match (bound, kind) {
                (Err(e), _) => Err(e),
                (Ok(()), MemKind::Device) => Ok(0),
                (Ok(()), MemKind::Staging) => d
                    .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                    .call("vkMapMemory")
                    .map(|p| p as usize),
            };
            match mapped {
                Ok(mapped) => Ok(Block { kind, buffer, memory, size, free: Vec::new(), mapped, pins: 0 }),
                Err(e) => {
                    d.destroy_buffer(buffer, None);
                    d.free_memory(memory, None);
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::insert_free;
    use std::vec;

    #[test]
    fn free_ranges_coalesce() {
        let mut f = vec![(0, 256), (1024, 256)];
        insert_free(&mut f, 256, 256);
        assert_eq!(f, vec![(0, 512), (1024, 256)]);
        insert_free(&mut f, 512, 512);
        assert_eq!(f, vec![(0, 1280)]);
    }
}
