//! AArch64 SIMD versions of the kernels in `quant::reference`, under the same names.
//!
//! Every function here is a `#[target_feature]` `unsafe fn`: calling it on a CPU without the
//! features is undefined behaviour. Only `table::QuantKernels` calls them, after `isa::Isa` has
//! checked the CPU once. The `_dotprod` variants execute `sdot` (ARMv8.2 dotprod), which raises
//! SIGILL on an ARMv8.0 core such as the Raspberry Pi 4's Cortex-A72; they are only ever chosen
//! when `is_aarch64_feature_detected!("dotprod")` said yes.

pub mod neon;
