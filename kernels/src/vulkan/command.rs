//! Recording and submitting work: a [`Recorder`] records one command buffer and allocates the
//! descriptor sets of its dispatches; `submit` runs it once and waits, then frees both;
//! `finish` keeps them as a [`Recording`] that is submitted again and again (the engine records
//! a forward pass once per batch shape; per-step values are read from buffers, not baked in).
//!
//! Every dispatch and copy is followed by a full compute/transfer memory barrier: the forward
//! pass is a chain where each step reads the previous one's output, so finer barriers would
//! buy little and cost clarity.

// A `no_std` crate: the std prelude is imported explicitly.
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use std::sync::Arc;

use ash::vk;

use super::device::Gpu;
use super::error::{VkCall, VulkanError};
use super::memory::{Buffer, MemKind};
use super::shaders::{ActQuant, Shader};

/// Invocations per workgroup of every shader (a power of two; specialization constant 0).
pub const WORKGROUP: u32 = 64;

/// Tokens per pass over a weight row in the matvec shaders for batches (specialization
/// constant 2): each dequantized block is used this many times.
pub const MATVEC_TOKENS: u32 = 8;

/// Most workgroups in one grid dimension that every device accepts.
const MAX_GROUPS_X: u32 = 65535;

/// Descriptor sets per pool; a full pool is replaced by a fresh one.
const SETS_PER_POOL: u32 = 1024;

/// Recorded commands with the descriptor sets of their dispatches, submitted any number of
/// times ([`Recording::submit`] runs them and waits). Made by [`Recorder::finish`]; dropping it
/// frees the command buffer, the descriptor sets and the fence. The memory blocks its commands
/// use stay allocated while it lives (pinned), so a re-submission never names a destroyed
/// buffer; what the buffers hold at submit time is the caller's business (e.g. the host writes
/// per-step inputs into a staging buffer the recorded copies read).
pub struct Recording {
    gpu: Arc<Gpu>,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    desc_pools: Vec<vk::DescriptorPool>,
    fence: vk::Fence,
    /// Blocks pinned by this recording (indices into the allocator), one pin each.
    pinned: Vec<usize>,
    dispatches: usize,
}

/// Records one command buffer: dispatches (each with its own descriptor set, allocated here
/// once and kept with the recording), copies and fills, each followed by a full barrier.
/// [`Recorder::submit`] runs it once; [`Recorder::finish`] keeps it for re-submission.
pub struct Recorder {
    rec: Recording,
    sets_in_pool: u32,
}

impl Recorder {
    pub fn new(gpu: &Arc<Gpu>) -> Result<Recorder, VulkanError> {
        let d = &gpu.device;
        // Handles start null so that Recording's Drop frees exactly what was created when a
        // step fails (destroying a null handle is a no-op in Vulkan).
        let mut rec = Recording {
            gpu: Arc::clone(gpu),
            pool: vk::CommandPool::null(),
            cmd: vk::CommandBuffer::null(),
            desc_pools: Vec::new(),
            fence: vk::Fence::null(),
            pinned: Vec::new(),
            dispatches: 0,
        };
        // SAFETY: object creation on a live device; each object is owned by `rec` at once and
        // destroyed by its Drop.
        unsafe {
            rec.pool = d
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default().queue_family_index(gpu.queue_family),
                    None,
                )
                .call("vkCreateCommandPool")?;
            let ai = vk::CommandBufferAllocateInfo::default()
                .command_pool(rec.pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1);
            rec.cmd = d.allocate_command_buffers(&ai).call("vkAllocateCommandBuffers")?[0];
            rec.fence = d.create_fence(&vk::FenceCreateInfo::default(), None).call("vkCreateFence")?;
            // No ONE_TIME_SUBMIT: a finished recording may be submitted again (never while
            // pending: submit waits).
            d.begin_command_buffer(rec.cmd, &vk::CommandBufferBeginInfo::default())
                .call("vkBeginCommandBuffer")?;
        }
        let mut r = Recorder { rec, sets_in_pool: 0 };
        r.new_desc_pool()?;
        Ok(r)
    }

    /// Pins the block of every buffer the commands name (once per block).
    fn track(&mut self, bufs: &[&Buffer]) {
        for b in bufs {
            if !self.rec.pinned.contains(&b.block) {
                let block = self.rec.gpu.pin(b);
                self.rec.pinned.push(block);
            }
        }
    }

    fn new_desc_pool(&mut self) -> Result<(), VulkanError> {
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: SETS_PER_POOL * 4,
        }];
        let info = vk::DescriptorPoolCreateInfo::default().max_sets(SETS_PER_POOL).pool_sizes(&sizes);
        // SAFETY: creation on a live device; destroyed in Drop.
        let p = unsafe { self.rec.gpu.device.create_descriptor_pool(&info, None) }
            .call("vkCreateDescriptorPool")?;
        self.rec.desc_pools.push(p);
        self.sets_in_pool = 0;
        Ok(())
    }

    /// Dispatches `groups` workgroups of `shader` (laid out as a 2-D grid when more than the
    /// x limit; shaders fold it back with gl_NumWorkGroups.x). `bindings` are bound whole, in
    /// order; `push` are the push-constant words.
    pub fn dispatch(
        &mut self,
        shader: Shader,
        bindings: &[&Buffer],
        push: &[u32],
        groups: u32,
    ) -> Result<(), VulkanError> {
        self.dispatch_with(shader, MATVEC_TOKENS, bindings, push, groups)
    }

    /// [`Recorder::dispatch`] of a matvec shader over `rows` weight rows for `n_tok` activation
    /// rows: one token per pass for generation (n_tok = 1), [`MATVEC_TOKENS`] otherwise.
    pub fn matvec(
        &mut self,
        shader: Shader,
        n_tok: usize,
        bindings: &[&Buffer],
        push: &[u32],
        rows: usize,
    ) -> Result<(), VulkanError> {
        let nt = if n_tok == 1 { 1 } else { MATVEC_TOKENS };
        let groups = self.rec.gpu.matvec_groups(rows);
        self.dispatch_with(shader, nt, bindings, push, groups)
    }

    /// Quantizes `n_tok` activation rows of `cols` floats, starting at float `x_offset` of `x`,
    /// to `act` blocks written from word 0 of `out` ((n_tok, act.row_words(cols)) words).
    pub fn quantize(
        &mut self,
        act: ActQuant,
        x: &Buffer,
        x_offset: usize,
        cols: usize,
        n_tok: usize,
        out: &Buffer,
    ) -> Result<(), VulkanError> {
        let push = [cols as u32, n_tok as u32, x_offset as u32, act as u32];
        self.dispatch(Shader::QuantizeQ8, &[x, out], &push, n_tok as u32)
    }

    fn dispatch_with(
        &mut self,
        shader: Shader,
        nt: u32,
        bindings: &[&Buffer],
        push: &[u32],
        groups: u32,
    ) -> Result<(), VulkanError> {
        if bindings.len() != shader.n_bindings() as usize || push.len() * 4 != shader.push_bytes() as usize {
            return Err(VulkanError::Unsupported(format!(
                "{shader:?}: wrong binding or push-constant count"
            )));
        }
        // Ranges are bound rounded up to whole words (allocations are padded to 256 bytes), so
        // a shader reading a buffer as u32 words sees its last partial word.
        let gpu = Arc::clone(&self.rec.gpu);
        let limit = gpu.info.max_binding_bytes;
        if let Some(b) = bindings.iter().find(|b| b.size() > limit) {
            return Err(VulkanError::BindingTooLarge { bytes: b.size(), limit });
        }
        if groups == 0 {
            return Ok(());
        }
        let p = gpu.pipeline(shader, [WORKGROUP, gpu.matvec_lanes(), nt])?;
        if self.sets_in_pool == SETS_PER_POOL {
            self.new_desc_pool()?;
        }
        self.track(bindings);
        let d = &gpu.device;
        let pool = self.rec.desc_pools[self.rec.desc_pools.len() - 1];
        let cmd = self.rec.cmd;
        // SAFETY: the set and pipeline live as long as the recording (pipelines as long as the
        // device, which it holds); the buffers' blocks are pinned by it.
        unsafe {
            let layouts = [p.set_layout];
            let set = d
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default().descriptor_pool(pool).set_layouts(&layouts),
                )
                .call("vkAllocateDescriptorSets")?[0];
            self.sets_in_pool += 1;
            let infos: Vec<[vk::DescriptorBufferInfo; 1]> = bindings
                .iter()
                .map(|b| {
                    [vk::DescriptorBufferInfo {
                        buffer: b.buffer,
                        offset: b.offset,
                        range: b.size().next_multiple_of(4),
                    }]
                })
                .collect();
            let writes: Vec<_> = infos
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    vk::WriteDescriptorSet::default()
                        .dst_set(set)
                        .dst_binding(i as u32)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(info)
                })
                .collect();
            d.update_descriptor_sets(&writes, &[]);
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, p.pipeline);
            d.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::COMPUTE, p.layout, 0, &[set], &[]);
            let bytes: Vec<u8> = push.iter().flat_map(|w| w.to_le_bytes()).collect();
            d.cmd_push_constants(cmd, p.layout, vk::ShaderStageFlags::COMPUTE, 0, &bytes);
            let gx = groups.min(MAX_GROUPS_X);
            d.cmd_dispatch(cmd, gx, groups.div_ceil(gx), 1);
        }
        self.rec.dispatches += 1;
        self.barrier();
        Ok(())
    }

    /// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off`.
    pub fn copy(
        &mut self,
        src: &Buffer,
        src_off: u64,
        dst: &Buffer,
        dst_off: u64,
        len: u64,
    ) -> Result<(), VulkanError> {
        if src_off + len > src.size() || dst_off + len > dst.size() {
            return Err(VulkanError::Unsupported("copy outside a buffer".into()));
        }
        if len == 0 {
            return Ok(());
        }
        self.track(&[src, dst]);
        let region =
            vk::BufferCopy { src_offset: src.offset + src_off, dst_offset: dst.offset + dst_off, size: len };
        // SAFETY: both buffers' blocks are pinned by the recording; the range was checked.
        unsafe { self.rec.gpu.device.cmd_copy_buffer(self.rec.cmd, src.buffer, dst.buffer, &[region]) };
        self.barrier();
        Ok(())
    }

    /// Sets the whole of `dst` to zero bytes.
    pub fn fill_zero(&mut self, dst: &Buffer) -> Result<(), VulkanError> {
        self.track(&[dst]);
        // SAFETY: the buffer's block is pinned by the recording; the range is its own (rounded
        // up to whole words inside the allocation's padding).
        unsafe {
            self.rec.gpu.device.cmd_fill_buffer(
                self.rec.cmd,
                dst.buffer,
                dst.offset,
                dst.size().next_multiple_of(4),
                0,
            )
        };
        self.barrier();
        Ok(())
    }

    fn barrier(&mut self) {
        let stages = vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER;
        let mb = vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(
                vk::AccessFlags::SHADER_READ
                    | vk::AccessFlags::SHADER_WRITE
                    | vk::AccessFlags::TRANSFER_READ
                    | vk::AccessFlags::TRANSFER_WRITE,
            );
        // SAFETY: recording into our own command buffer.
        unsafe {
            self.rec.gpu.device.cmd_pipeline_barrier(
                self.rec.cmd,
                stages,
                stages,
                vk::DependencyFlags::empty(),
                &[mb],
                &[],
                &[],
            )
        };
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.rec.gpu
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.rec.dispatches
    }

    /// Ends recording (after a host barrier, so device writes are visible to mapped reads once
    /// a submission has waited); the result can be submitted any number of times.
    pub fn finish(self) -> Result<Recording, VulkanError> {
        let rec = self.rec;
        let d = &rec.gpu.device;
        // SAFETY: recording into our own command buffer, which is then complete.
        unsafe {
            let mb = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ);
            d.cmd_pipeline_barrier(
                rec.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[mb],
                &[],
                &[],
            );
            d.end_command_buffer(rec.cmd).call("vkEndCommandBuffer")?;
        }
        Ok(rec)
    }

    /// Ends recording, submits once, and waits for completion (results are then readable from
    /// staging buffers); frees the command buffer and descriptor sets.
    pub fn submit(self) -> Result<(), VulkanError> {
        self.finish()?.submit()
    }
}

impl Recording {
    /// Runs the recorded commands and waits for completion. Host writes to staging buffers made
    /// before the call are visible to the commands (coherent memory, and submission is a host
    /// barrier); their results are readable from staging buffers when it returns.
    pub fn submit(&mut self) -> Result<(), VulkanError> {
        let d = &self.gpu.device;
        // SAFETY: the command buffer is complete and not pending (every submit waits below,
        // and `&mut self` rules out a concurrent one); the fence is unsignalled (reset after
        // each wait); the blocks it names are pinned.
        unsafe {
            let cmds = [self.cmd];
            let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
            match self.gpu.queue.lock() {
                Ok(q) => d.queue_submit(*q, &submit, self.fence).call("vkQueueSubmit")?,
                Err(_) => return Err(VulkanError::Unsupported("queue lock poisoned".into())),
            }
            d.wait_for_fences(&[self.fence], true, u64::MAX).call("vkWaitForFences")?;
            d.reset_fences(&[self.fence]).call("vkResetFences")
        }
    }

    /// Dispatches in the recording.
    pub fn dispatches(&self) -> usize {
        self.dispatches
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let d = &self.gpu.device;
        // SAFETY: every submit waited for completion, so nothing here is pending; freeing the
        // pools frees the command buffer and the descriptor sets.
        unsafe {
            for &p in &self.desc_pools {
                d.destroy_descriptor_pool(p, None);
            }
            d.destroy_command_pool(self.pool, None);
            d.destroy_fence(self.fence, None);
            self.gpu.unpin(&self.pinned);
        }
    }
}

impl Gpu {
    /// Invocations per weight row in the matvec shaders: 4 on CPU devices (lavapipe, where a
    /// workgroup's fixed cost dominates and its invocations are SIMD lanes), 16 on GPUs.
    pub fn matvec_lanes(&self) -> u32 {
        if let Some(l) = std::env::var("FOVEA_VK_LANES").ok().and_then(|s| s.parse().ok()) {
            l
        } else if self.info.kind == vk::PhysicalDeviceType::CPU {
            4
        } else {
            16
        }
    }

    /// Workgroups of a matvec over `rows` weight rows.
    pub fn matvec_groups(&self, rows: usize) -> u32 {
        (rows as u32).div_ceil(WORKGROUP / self.matvec_lanes())
    }

    /// Copies `bytes` into `dst` at `dst_off` through a temporary staging buffer.
    pub fn upload(self: &Arc<Self>, dst: &Buffer, dst_off: u64, bytes: &[u8]) -> Result<(), VulkanError> {
        const CHUNK: u64 = 32 << 20;
        let staging = self.alloc(MemKind::Staging, (bytes.len() as u64).min(CHUNK))?;
        self.upload_with(&staging, dst, dst_off, bytes)
    }

    /// Copies `bytes` into `dst` at `dst_off` through `staging`, one staging-full at a time
    /// (for many uploads, e.g. a model's weights, through one staging buffer).
    pub fn upload_with(
        self: &Arc<Self>,
        staging: &Buffer,
        dst: &Buffer,
        dst_off: u64,
        bytes: &[u8],
    ) -> Result<(), VulkanError> {
        let chunk = staging.size() as usize;
        for (i, part) in bytes.chunks(chunk.max(1)).enumerate() {
            staging.write(0, part)?;
            let mut r = Recorder::new(self)?;
            r.copy(staging, 0, dst, dst_off + (i * chunk) as u64, part.len() as u64)?;
            r.submit()?;
        }
        Ok(())
    }

    /// Copies `out.len()` bytes of `src` at `src_off` to the host.
    pub fn download(self: &Arc<Self>, src: &Buffer, src_off: u64, out: &mut [u8]) -> Result<(), VulkanError> {
        const CHUNK: usize = 32 << 20;
        let staging = self.alloc(MemKind::Staging, out.len().min(CHUNK) as u64)?;
        for (i, part) in out.chunks_mut(CHUNK).enumerate() {
            let mut r = Recorder::new(self)?;
            r.copy(src, src_off + (i * CHUNK) as u64, &staging, 0, part.len() as u64)?;
            r.submit()?;
            staging.read(0, part)?;
        }
        Ok(())
    }
}
