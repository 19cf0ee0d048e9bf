//! Gated activations of the feed-forward block, with llama.cpp's arithmetic.
//!
//! SwiGLU (`ggml_vec_swiglu_f32`, x86 AVX-512 build): groups of 16 compute
//! silu(x) = x / (1 + exp(0 - x)) with ggml's polynomial exp ([`exp_poly`]); the elements past
//! the last whole group use the C library's `expf` (here `libm::expf`).
//! GeGLU: ggml looks GELU up in a table indexed by x rounded to f16, holding f16 values, for
//! -10 < x < 10; we build the same table (once per process) and look it up the same way.

use core::sync::atomic::{AtomicU16, AtomicU8, Ordering};

use half::f16;

use super::expf::exp_poly;
use super::reduce::LANES;

/// SiLU (swish): x * sigmoid(x), written as ggml's scalar `ggml_silu_f32`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// One lane of ggml's vector SiLU.
#[inline]
pub fn silu_poly(x: f32) -> f32 {
    x / (1.0 + exp_poly(0.0 - x))
}

/// gate (n,) <- silu(gate) * up for ONE row (n = n_ff): the SwiGLU of llama-family FFNs.
/// Rows must be passed one at a time because the last partial group of 16 of each row takes
/// the scalar path.
pub fn swiglu_row(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    let whole = gate.len() / LANES * LANES;
    let (g_vec, g_tail) = gate.split_at_mut(whole);
    for (g, u) in g_vec.iter_mut().zip(up) {
        *g = silu_poly(*g) * u;
    }
    swiglu_tail(g_tail, &up[whole..]);
}

/// The part of a SwiGLU row past its last whole group of 16: ggml's scalar form.
#[inline]
pub(crate) fn swiglu_tail(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// Alias kept for callers of the old name: one row of SwiGLU.
pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) {
    swiglu_row(gate, up);
}

/// sqrt(2/pi) and the cubic coefficient, as the f32 constants ggml rounds them to.
const SQRT_2_OVER_PI: f32 = f32::from_bits(0x3f4c_422a);
const GELU_COEF_A: f32 = f32::from_bits(0x3d37_2713);

/// GELU, tanh approximation, in f32 (ggml's `ggml_gelu_f32`; gcc fuses the `1 + a*x*x`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    let inner = libm::fmaf(GELU_COEF_A * x, x, 1.0);
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * x * inner))
}

/// GELU as ggml evaluates it on the CPU: 0 below -10, identity above 10, and in between the
/// f16 table entry gelu(f16(x)) rounded to f16.
#[inline]
pub fn gelu_f16_table(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let h = f16::from_f32(x).to_f32();
        f16::from_f32(gelu_tanh(h)).to_f32()
    }
}

/// gelu(f16) as f16 bits, indexed by the f16 bits of the input (ggml's `ggml_table_gelu_f16`).
/// Computing the entry per element costs a `tanhf` each — a fifth of Gemma's prompt time — so
/// the 65536 entries (128 KiB) are computed once. Two padding entries after them let a SIMD
/// kernel gather 32 bits at any index and keep the low 16. Atomics make the lazy fill safe
/// without `std`: one thread fills (`GELU_STATE` empty -> filling -> ready), any other waits
/// for it, and nothing writes the table once it is ready.
static GELU_TABLE: [AtomicU16; GELU_ENTRIES + 2] = [const { AtomicU16::new(0) }; GELU_ENTRIES + 2];
const GELU_ENTRIES: usize = 1 << 16;
static GELU_STATE: AtomicU8 = AtomicU8::new(GELU_EMPTY);
const GELU_EMPTY: u8 = 0;
const GELU_FILLING: u8 = 1;
const GELU_READY: u8 = 2;

/// The filled table (about 2 ms the first time in a process).
fn gelu_table() -> &'static [AtomicU16; GELU_ENTRIES + 2] {
    if GELU_STATE.load(Ordering::Acquire) != GELU_READY {
        if GELU_STATE.compare_exchange(GELU_EMPTY, GELU_FILLING, Ordering::Acquire, Ordering::Acquire).is_ok()
        {
            for (bits, entry) in GELU_TABLE.iter().take(GELU_ENTRIES).enumerate() {
                let x = f16::from_bits(bits as u16).to_f32();
                entry.store(f16::from_f32(gelu_tanh(x)).to_bits(), Ordering::Relaxed);
            }
            GELU_STATE.store(GELU_READY, Ordering::Release);
        }
        while GELU_STATE.load(Ordering::Acquire) != GELU_READY {
            core::hint::spin_loop();
        }
    }
    &GELU_TABLE
}

/// The filled table as plain f16 bits for SIMD gathers: 65536 entries and two of padding.
/// Nothing writes the table after it is filled, so plain loads through the pointer are sound.
pub(crate) fn gelu_table_bits() -> *const u16 {
    // AtomicU16 has the size and alignment of u16.
    gelu_table().as_ptr().cast()
}

/// gate (n,) <- gelu(gate) * up: GeGLU (Gemma), any number of rows. Same values as
/// [`gelu_f16_table`] per element, through the table.
pub fn geglu_in_place(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    let table = gelu_table();
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            let h = f16::from_f32(x).to_bits();
            f16::from_bits(table[h as usize].load(Ordering::Relaxed)).to_f32() * u
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((silu(-20.0)).abs() < 1e-7);
        assert!((silu_poly(1.0) - 0.731_058_6).abs() < 2e-7);
        assert_eq!(silu_poly(-200.0), -0.0);
        assert_eq!(silu_poly(200.0), 200.0);
        assert_eq!(gelu_tanh(0.0), 0.0);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert!((gelu_tanh(-10.0)).abs() < 1e-6);
        // The f16 table keeps 11 significant bits.
        assert!((gelu_f16_table(1.0) - 0.841_192).abs() < 1e-3);
        assert_eq!(gelu_f16_table(-12.0), 0.0);
        assert_eq!(gelu_f16_table(12.5), 12.5);
    }

    #[test]
    fn geglu_table_equals_the_direct_entry_for_every_f16_input() {
        // Every f16 value in (-10, 10) and the clamps on both sides, times an `up` of 1 and 3.
        let xs: alloc::vec::Vec<f32> = (0..=u16::MAX)
            .map(|b| f16::from_bits(b).to_f32())
            .filter(|x| x.is_finite())
            .chain([-10.0, 10.0, -1e30, 1e30, 9.999, -9.999])
            .collect();
        for up in [1.0f32, 3.0] {
            let mut g = xs.clone();
            geglu_in_place(&mut g, &alloc::vec![up; xs.len()]);
            for (x, got) in xs.iter().zip(&g) {
                let want = if *x <= -10.0 { 0.0 } else { gelu_f16_table(*x) * up };
                assert_eq!(got.to_bits(), want.to_bits(), "gelu({x}) * {up}");
            }
        }
    }

    #[test]
    fn swiglu_row_uses_the_polynomial_on_whole_groups_only() {
        let x: [f32; 17] = core::array::from_fn(|i| i as f32 * 0.37 - 3.0);
        let up = [2.0f32; 17];
        let mut g = x;
        swiglu_row(&mut g, &up);
        for i in 0..16 {
            assert_eq!(g[i], silu_poly(x[i]) * 2.0);
        }
        assert_eq!(g[16], silu(x[16]) * 2.0);
    }
}
