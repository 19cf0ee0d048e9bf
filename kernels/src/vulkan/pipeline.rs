//! Compute pipelines, created on first use and kept for the device's lifetime: one per
//! (shader, specialization), the workgroup size set through specialization constant 0 and the
//! matvec's invocations per row and tokens per pass through constants 1 and 2 (shaders
//! without them ignore those entries).

// A `no_std` crate: the std prelude is imported explicitly.
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use std::collections::HashMap;

use ash::vk;

use super::device::Gpu;
use super::error::{VkCall, VulkanError};
use super::shaders::Shader;

#[derive(Clone, Copy)]
pub(crate) struct Pipeline {
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    module: vk::ShaderModule,
}

#[derive(Default)]
pub(crate) struct Pipelines {
    map: HashMap<(Shader, [u32; 3]), Pipeline>,
}

impl Pipelines {
    /// # Safety
    /// The device must be idle.
    pub(crate) unsafe fn destroy(&mut self, device: &ash::Device) {
        for (_, p) in self.map.drain() {
            // SAFETY: the caller guarantees no pipeline is in use.
            unsafe {
                device.destroy_pipeline(p.pipeline, None);
                device.destroy_pipeline_layout(p.layout, None);
                device.destroy_descriptor_set_layout(p.set_layout, None);
                device.destroy_shader_module(p.module, None);
            }
        }
    }
}

/// SPIR-V bytes as words (copied: `include_bytes!` data has no 4-byte alignment guarantee).
fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl Gpu {
    /// The pipeline of `shader` with specialization constants `spec` (workgroup size, matvec
    /// lanes per row, matvec tokens per pass).
    pub(crate) fn pipeline(&self, shader: Shader, spec: [u32; 3]) -> Result<Pipeline, VulkanError> {
        if shader.needs_integer_dot() && !self.info.integer_dot {
            return Err(VulkanError::Unsupported(format!(
                "{shader:?} needs shaderIntegerDotProduct, which {} lacks",
                self.info.name
            )));
        }
        let mut cache =
            self.pipelines.lock().map_err(|_| VulkanError::Unsupported("pipeline lock poisoned".into()))?;
        if let Some(p) = cache.map.get(&(shader, spec)) {
            return Ok(*p);
        }
        let d = &self.device;
        let code = words(shader.spirv());
        // SAFETY: object creation on a live device; create infos outlive the calls; partially
        // created objects are destroyed on failure.
        let p = unsafe {
            let module = d
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
                .call("vkCreateShaderModule")?;
            let bindings: Vec<_> = (0..shader.n_bindings())
                .map(|i| {
                    vk::DescriptorSetLayoutBinding::default()
                        .binding(i)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .descriptor_count(1)
                        .stage_flags(vk::ShaderStageFlags::COMPUTE)
                })
                .collect();
            let set_layout = match d.create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                None,
            ) {
                Ok(l) => l,
                Err(result) => {
                    d.destroy_shader_module(module, None);
                    return Err(VulkanError::Call { call: "vkCreateDescriptorSetLayout", result });
                }
            };
            let ranges = [vk::PushConstantRange::default()
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
                .size(shader.push_bytes())];
            let set_layouts = [set_layout];
            let layout = match d.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&set_layouts)
                    .push_constant_ranges(&ranges),
                None,
            ) {
                Ok(l) => l,
                Err(result) => {
                    d.destroy_descriptor_set_layout(set_layout, None);
                    d.destroy_shader_module(module, None);
                    return Err(VulkanError::Call { call: "vkCreatePipelineLayout", result });
                }
            };
            let entries = [
                vk::SpecializationMapEntry { constant_id: 0, offset: 0, size: 4 },
                vk::SpecializationMapEntry { constant_id: 1, offset: 4, size: 4 },
                vk::SpecializationMapEntry { constant_id: 2, offset: 8, size: 4 },
            ];
            let data: Vec<u8> = spec.iter().flat_map(|w| w.to_le_bytes()).collect();
            let spec = vk::SpecializationInfo::default().map_entries(&entries).data(&data);
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(c"main")
                .specialization_info(&spec);
            let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout)];
            match d.create_compute_pipelines(vk::PipelineCache::null(), &info, None) {
                Ok(p) => Pipeline { pipeline: p[0], layout, set_layout, module },
                Err((_, result)) => {
                    d.destroy_pipeline_layout(layout, None);
                    d.destroy_descriptor_set_layout(set_layout, None);
                    d.destroy_shader_module(module, None);
                    return Err(VulkanError::Call { call: "vkCreateComputePipelines", result });
                }
            }
        };
        cache.map.insert((shader, spec), p);
        Ok(p)
    }
}
