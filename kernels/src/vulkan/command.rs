//! Recording and submitting work: a [`Recorder`] owns one command buffer and the descriptor
//! sets of its dispatches; `submit` runs it and waits, then frees both.
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

pub struct Recorder {
    gpu: Arc<Gpu>,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    desc_pools: Vec<vk::DescriptorPool>,
    sets_in_pool: u32,
    dispatches: usize,
}

impl Recorder {
    pub fn new(gpu: &Arc<Gpu>) -> Result<Recorder, VulkanError> {
        let d = &gpu.device;
        // SAFETY: object creation on a live device; the pool is destroyed on failure.
        unsafe {
            let pool = d
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(gpu.queue_family)
                        .flags(vk::CommandPoolCreateFlags::TRANSIENT),
                    None,
                )
                .call("vkCreateCommandPool")?;
            let ai = vk::CommandBufferAllocateInfo::default()
                .command_pool(pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1);
            let cmd = match d.allocate_command_buffers(&ai) {
                Ok(c) => c[0],
                Err(result) => {
                    d.destroy_command_pool(pool, None);
                    return Err(VulkanError::Call { call: "vkAllocateCommandBuffers", result });
                }
            };
            let begin =
                vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            let mut r = Recorder {
                gpu: Arc::clone(gpu),
                pool,
                cmd,
                desc_pools: Vec::new(),
                sets_in_pool: 0,
                dispatches: 0,
            };
            d.begin_command_buffer(cmd, &begin).call("vkBeginCommandBuffer")?;
            r.new_desc_pool()?;
            Ok(r)
        }
    }

    fn new_desc_pool(&mut self) -> Result<(), VulkanError> {
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: SETS_PER_POOL * 4,
        }];
        let info = vk::DescriptorPoolCreateInfo::default().max_sets(SETS_PER_POOL).pool_sizes(&sizes);
        // SAFETY: creation on a live device; destroyed in Drop.
        let p =
            unsafe { self.gpu.device.create_descriptor_pool(&info, None) }.call("vkCreateDescriptorPool")?;
        self.desc_pools.push(p);
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
        let groups = self.gpu.matvec_groups(rows);
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
        let limit = self.gpu.info.max_binding_bytes;
        if let Some(b) = bindings.iter().find(|b| b.size() > limit) {
            return Err(VulkanError::BindingTooLarge { bytes: b.size(), limit });
        }
        if groups == 0 {
            return Ok(());
        }
        let p = self.gpu.pipeline(shader, [WORKGROUP, self.gpu.matvec_lanes(), nt])?;
        if self.sets_in_pool == SETS_PER_POOL {
            self.new_desc_pool()?;
        }
        let d = &self.gpu.device;
        let pool = self.desc_pools[self.desc_pools.len() - 1];
        // SAFETY: the set, pipeline and buffers are live and stay so until submit() has waited.
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
            d.cmd_bind_pipeline(self.cmd, vk::PipelineBindPoint::COMPUTE, p.pipeline);
            d.cmd_bind_descriptor_sets(self.cmd, vk::PipelineBindPoint::COMPUTE, p.layout, 0, &[set], &[]);
            let bytes: Vec<u8> = push.iter().flat_map(|w| w.to_le_bytes()).collect();
            d.cmd_push_constants(self.cmd, p.layout, vk::ShaderStageFlags::COMPUTE, 0, &bytes);
            let gx = groups.min(MAX_GROUPS_X);
            d.cmd_dispatch(self.cmd, gx, groups.div_ceil(gx), 1);
        }
        self.dispatches += 1;
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
        let region =
            vk::BufferCopy { src_offset: src.offset + src_off, dst_offset: dst.offset + dst_off, size: len };
        // SAFETY: both buffers are live until submit() has waited; the range was checked.
        unsafe { self.gpu.device.cmd_copy_buffer(self.cmd, src.buffer, dst.buffer, &[region]) };
        self.barrier();
        Ok(())
    }

    /// Sets the whole of `dst` to zero bytes.
    pub fn fill_zero(&mut self, dst: &Buffer) -> Result<(), VulkanError> {
        // SAFETY: the buffer is live until submit() has waited; the range is its own (rounded
        // up to whole words inside the allocation's padding).
        unsafe {
            self.gpu.device.cmd_fill_buffer(
                self.cmd,
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
            self.gpu.device.cmd_pipeline_barrier(
                self.cmd,
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
        &self.gpu
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.dispatches
    }

    /// Ends recording, submits, and waits for completion (results are then readable from
    /// staging buffers). A host barrier makes device writes visible to mapped reads.
    pub fn submit(self) -> Result<(), VulkanError> {
        let d = &self.gpu.device;
        // SAFETY: the command buffer is ours and fully recorded; we wait on the fence before
        // returning, so nothing it uses is freed while in flight.
        unsafe {
            let mb = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ);
            d.cmd_pipeline_barrier(
                self.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[mb],
                &[],
                &[],
            );
            d.end_command_buffer(self.cmd).call("vkEndCommandBuffer")?;
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).call("vkCreateFence")?;
            let cmds = [self.cmd];
            let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
            let submitted = match self.gpu.queue.lock() {
                Ok(q) => d.queue_submit(*q, &submit, fence).call("vkQueueSubmit"),
                Err(_) => Err(VulkanError::Unsupported("queue lock poisoned".into())),
            };
            let waited =
                submitted.and_then(|()| d.wait_for_fences(&[fence], true, u64::MAX).call("vkWaitForFences"));
            d.destroy_fence(fence, None);
            waited
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // SAFETY: submit() waited for completion (or the buffer was never submitted), so the
        // pools are idle.
        unsafe {
            for &p in &self.desc_pools {
                self.gpu.device.destroy_descriptor_pool(p, None);
            }
            self.gpu.device.destroy_command_pool(self.pool, None);
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
