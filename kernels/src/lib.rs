//! Compute kernels: a scalar reference for every op, and SIMD versions chosen once at run time.
//!
//! `quant` holds the quantized dot products and activation quantizers (scalar reference),
//! `ops` the float ops of a transformer layer, `table` the kernel table picked by `isa`.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(target_arch = "aarch64")]
pub mod arm;
pub mod isa;
pub mod ops;
pub mod quant;
pub mod table;
#[cfg(feature = "vulkan")]
pub mod vulkan;
#[cfg(target_arch = "x86_64")]
pub mod x86;
