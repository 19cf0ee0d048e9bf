//! f16 -> f32 row conversion: exact (every f16 is an f32), so every ISA gives the same bits.
//! Used where compact f16 data is scored with the f32 kernels (the foveated cache's tree
//! summaries).

use half::f16;

/// dst (n,) <- src (n,) widened to f32; n = the shorter length.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}
