//! `Q5_0 x Q8_0` for one weight row against four activation rows at once (prompt processing).
//!
//! The fifth bits and nibbles of each weight block are unpacked once for all four tokens instead
//! of once per token (the unpack costs as much as the multiply). Per (row, token) the arithmetic
//! is exactly that of `q5::vec_dot_q5_0_q8_0` (same integer lanes, same f32 scale product, same
//! FMA per block, same final reduction), so results are bit-identical to it.

use core::arch::x86_64::*;

use alloc::vec;

use fovea_formats::blocks::{BlockQ5_0, BlockQ8_0, QK};

use super::common::{bits_to_bytes_u8x32, dot_u8_i8, f16_to_f32, hsum_f32x8, load_i8x32, nibbles_u8x32};

/// Rows x (nr, n) against four tokens y[t] (n,): out (4, nr), out[t * nr + r] = dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. x holds nr * n / 32 blocks and each y[t] n / 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot4_rows_q5_0_q8_0(n: usize, x: &[BlockQ5_0], y: [&[BlockQ8_0]; 4], out: &mut [f32]) {
    let nb = n / QK;
    let nr = out.len() / 4;
    // The tokens' scales as f32, converted once for all rows: dy (nb, 4 tokens); on the stack
    // for rows up to 64 blocks (an allocation per call measured at 10% of prompt processing).
    let (mut stack, mut heap) = ([0.0f32; 4 * 64], vec![]);
    let dy: &mut [f32] = if nb <= 64 {
        &mut stack[..4 * nb]
    } else {
        heap.resize(4 * nb, 0.0);
        &mut heap
    };
    for (b, d) in dy.chunks_exact_mut(4).enumerate() {
        for t in 0..4 {
            d[t] = f16_to_f32(y[t][b].d);
        }
    }
    for r in 0..nr {
        let quad = vec_dot4_q5_0_q8_0(&x[r * nb..(r + 1) * nb], y, dy);
        for (t, v) in quad.into_iter().enumerate() {
            out[t * nr + r] = v;
        }
    }
}

/// out[t] = dot(x (nb blocks), y[t]) for t in 0..4, `dy` (nb, 4) the tokens' scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_dot4_q5_0_q8_0(x: &[BlockQ5_0], y: [&[BlockQ8_0]; 4], dy: &[f32]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    for (b, bx) in x.iter().enumerate() {
        // q - 16 as a signed byte (see `vec_dot_q5_0_q8_0`), then |q - 16| once for all tokens;
        // each token's y takes the weight's signs (the `dot_i8_i8` identity).
        let high_clear = _mm256_andnot_si256(
            bits_to_bytes_u8x32(u32::from_le_bytes(bx.qh)),
            _mm256_set1_epi8(0xF0u8 as i8),
        );
        let qx = _mm256_or_si256(nibbles_u8x32(&bx.qs), high_clear);
        let ax = _mm256_sign_epi8(qx, qx);
        let dx = f16_to_f32(bx.d);
        for t in 0..4 {
            let sumi = dot_u8_i8(ax, _mm256_sign_epi8(load_i8x32(&y[t][b].qs), qx));
            let d = _mm256_set1_ps(dx * dy[4 * b + t]);
            acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    core::array::from_fn(|t| hsum_f32x8(acc[t]))
}
