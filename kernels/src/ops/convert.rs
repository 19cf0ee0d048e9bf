//! f16 <-> f32 row conversions. Widening is exact (every f16 is an f32); narrowing rounds to
//! nearest, ties to even, as the F16C instruction does, so every ISA gives the same bits. Used
//! where compact f16 data is read by the f32 kernels (the foveated cache's tree summaries and
//! its kept selections in f16).

use half::f16;

/// dst (n,) <- src (n,) widened to f32; n = the shorter length.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

/// dst (n,) <- src (n,) rounded to f16 (nearest, ties to even; out of range -> inf); n = the
/// shorter length.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(*s);
    }
}
