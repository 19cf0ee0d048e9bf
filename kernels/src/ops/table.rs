//! The float-op table: one function pointer per op, chosen once for an [`Isa`].
//!
//! Every entry of every table computes the reference's operations in the reference's order,
//! so the choice changes speed, never results. RMSNorm has no SIMD version: ggml sums squares
//! sequentially in f64, a chain no vector order reproduces. GeGLU's SIMD versions gather from
//! the same f16 table that the scalar code (and ggml) looks GELU up in.

use core::fmt;

use super::attention::{ValueAcc, ValueOrder};
use super::group_attention::KvRows;
use super::softmax::SoftmaxStats;
use crate::isa::{Isa, UnsupportedIsa};

/// scores (n,) = keys (n, hd) · q (hd,) * scale.
pub type AttnScoresFn = fn(q: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]);
/// acc += Σ_j w[j] * values[j] over the next positions, values (n, hdv), w (n,).
pub type AttnValuesAddFn = fn(acc: &mut ValueAcc, w: &[f32], values: &[f32]);
/// out (hdv,) = the value sum in acc.
pub type AttnValuesFinishFn = fn(acc: &ValueAcc, out: &mut [f32]);
/// x (n,) <- softmax(x), one attention row; returns its max and exp sum.
pub type SoftmaxFn = fn(x: &mut [f32]) -> SoftmaxStats;
/// gate (n,) <- act(gate) * up, one FFN row.
pub type GatedFn = fn(gate: &mut [f32], up: &[f32]);
/// dst (n,) <- src (n,) widened from f16 (exact).
pub type F16ToF32Fn = fn(src: &[half::f16], dst: &mut [f32]);
/// dst (n,) <- src (n,) rounded to f16 (nearest, ties to even).
pub type F32ToF16Fn = fn(src: &[f32], dst: &mut [half::f16]);
/// out (m, 16 n_panels) = q (m, k) against keys in panels (n_panels, k, 16).
pub type PanelDotsFn = fn(q: &[f32], k: usize, panels: &[f32], out: &mut [f32]);
/// out[i * width + at..][..16] = q (m, k) against a panel of two f16 sibling groups.
pub type SiblingDotsFn =
    fn(q: &[f32], lo: &[&[half::f16]], hi: &[&[half::f16]], out: &mut [f32], at: usize, width: usize);
/// scores[g * stride + j] = scale * q_g · key_j for a GQA group's queries q (G, hd).
pub type GroupScoresFn =
    fn(q: &[f32], keys: KvRows<'_>, hd: usize, scale: f32, scores: &mut [f32], stride: usize);
/// acc (G, hdv) += Σ_j w[g * stride + j] * value_j for a GQA group's queries.
pub type GroupValuesAddFn = fn(w: &[f32], stride: usize, values: KvRows<'_>, hdv: usize, acc: &mut [f32]);
/// out (n,) = rmsnorm(x (n,)) * w (n,).
pub type RmsNormFn = fn(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]);

/// The float kernels for one ISA. Cheap to copy; build once with [`OpKernels::detect`].
#[derive(Clone, Copy)]
pub struct OpKernels {
    isa: Isa,
    attn_scores: AttnScoresFn,
    attn_values_add: AttnValuesAddFn,
    attn_values_finish: AttnValuesFinishFn,
    softmax: SoftmaxFn,
    swiglu: GatedFn,
    geglu: GatedFn,
    rms_norm: RmsNormFn,
    f16_to_f32: F16ToF32Fn,
    f32_to_f16: F32ToF16Fn,
    panel_dots: PanelDotsFn,
    sibling_dots: SiblingDotsFn,
    group_scores: GroupScoresFn,
    group_values_add: GroupValuesAddFn,
}

impl fmt::Debug for OpKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpKernels").field("isa", &self.isa).finish()
    }
}

/// Wraps a `#[target_feature]` kernel as a safe fn pointer. Only used inside `x86_tables`,
/// whose builders run after `Isa::require` succeeded for the kernel's level.
#[cfg(target_arch = "x86_64")]
macro_rules! checked {
    ($kernel:path, |$($arg:ident),*|) => {
        |$($arg),*| {
            // SAFETY: reachable only through a table built after the CPU was checked for the
            // kernel's target features (`OpKernels::for_isa`).
            unsafe { $kernel($($arg),*) }
        }
    };
}

impl OpKernels {
    /// The table for the best ISA this CPU runs (all levels give identical results).
    pub fn detect() -> OpKernels {
        OpKernels::for_isa(Isa::detect()).unwrap_or_else(|_| OpKernels::scalar())
    }

    /// The table for `isa`, or an error when this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Result<OpKernels, UnsupportedIsa> {
        Ok(match isa.require()? {
            Isa::Scalar => OpKernels::scalar(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_tables::avx2(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_tables::avx512(),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => return Err(UnsupportedIsa(isa)),
            // No NEON float ops yet: the scalar references (exact ggml emulations) under the
            // Neon label, so a NEON session reports the level its quantized kernels use.
            Isa::Neon => OpKernels { isa: Isa::Neon, ..OpKernels::scalar() },
        })
    }

    /// The portable reference table; always available.
    pub fn scalar() -> OpKernels {
        OpKernels {
            isa: Isa::Scalar,
            attn_scores: super::attn_scores,
            attn_values_add: super::attn_values_add,
            attn_values_finish: super::attn_values_finish,
            softmax: super::softmax_in_place,
            swiglu: super::swiglu_row,
            geglu: super::geglu_in_place,
            rms_norm: super::rms_norm,
            f16_to_f32: super::f16_to_f32,
            f32_to_f16: super::f32_to_f16,
            panel_dots: super::panel_dots,
            sibling_dots: super::sibling_dots,
            group_scores: super::group_scores,
            group_values_add: super::group_values_add,
        }
    }

    /// The level the table was built for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// scores (n,) = keys (n, hd) · q (hd,) * scale, each dot in ggml's `vec_dot_f32` order.
    #[inline]
    pub fn attn_scores(&self, q: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
        (self.attn_scores)(q, keys, scale, scores)
    }

    /// out (hdv,) = Σ_j w[j] * values[j] over values (n, hdv), summed in `order`: one
    /// [`ValueAcc`] over all positions.
    pub fn attn_values(&self, w: &[f32], values: &[f32], order: ValueOrder, out: &mut [f32]) {
        let mut acc = ValueAcc::new(order, out.len());
        self.attn_values_add(&mut acc, w, values);
        self.attn_values_finish(&acc, out);
    }

    /// acc += Σ_j w[j] * values[j] over the next positions, values (n, hdv), w (n,). Adding
    /// consecutive chunks gives the bits of one [`OpKernels::attn_values`] over all of them.
    #[inline]
    pub fn attn_values_add(&self, acc: &mut ValueAcc, w: &[f32], values: &[f32]) {
        (self.attn_values_add)(acc, w, values)
    }

    /// out (hdv,) = the value sum in acc (positions never added count as zero weights).
    #[inline]
    pub fn attn_values_finish(&self, acc: &ValueAcc, out: &mut [f32]) {
        (self.attn_values_finish)(acc, out)
    }

    /// x (n,) <- softmax(x) of one attention row (-inf = masked); returns the row's max and
    /// exp sum, which callers that split a row over segments need to merge them.
    #[inline]
    pub fn softmax(&self, x: &mut [f32]) -> SoftmaxStats {
        (self.softmax)(x)
    }

    /// gate (n,) <- silu(gate) * up, ONE row (the last partial group of 16 is per row).
    #[inline]
    pub fn swiglu(&self, gate: &mut [f32], up: &[f32]) {
        (self.swiglu)(gate, up)
    }

    /// gate (n,) <- gelu(gate) * up.
    #[inline]
    pub fn geglu(&self, gate: &mut [f32], up: &[f32]) {
        (self.geglu)(gate, up)
    }

    /// out (n,) = x (n,) / rms(x) * w (n,).
    #[inline]
    pub fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        (self.rms_norm)(x, w, eps, out)
    }

    /// dst (n,) <- src (n,) widened from f16 (exact, so every ISA agrees); n = the shorter.
    #[inline]
    pub fn f16_to_f32(&self, src: &[half::f16], dst: &mut [f32]) {
        (self.f16_to_f32)(src, dst)
    }

    /// dst (n,) <- src (n,) rounded to f16, nearest with ties to even (every ISA the same bits);
    /// n = the shorter.
    #[inline]
    pub fn f32_to_f16(&self, src: &[f32], dst: &mut [half::f16]) {
        (self.f32_to_f16)(src, dst)
    }

    /// out (m, 16 n_panels) = q (m, k) against keys in panels (n_panels, k, 16): each dot an
    /// in-order chain of fused multiply-adds, the same bits on every ISA (`ops::panel_dots`).
    #[inline]
    pub fn panel_dots(&self, q: &[f32], k: usize, panels: &[f32], out: &mut [f32]) {
        (self.panel_dots)(q, k, panels, out)
    }

    /// out[i * width + at..][..16] = each query of q (m, k) against the panel of two sibling
    /// groups `lo` | `hi` stored f16 dimension-major, read in place (`ops::sibling_dots`: the
    /// bits of [`OpKernels::panel_dots`] on the widened panel, on every ISA).
    #[inline]
    pub fn sibling_dots(
        &self,
        q: &[f32],
        lo: &[&[half::f16]],
        hi: &[&[half::f16]],
        out: &mut [f32],
        at: usize,
        width: usize,
    ) {
        (self.sibling_dots)(q, lo, hi, out, at, width)
    }

    /// scores[g * stride + j] = scale * (q_g · key_j) for the queries q (G, hd) of one GQA group
    /// against key rows (n, hd), each row read once for the group (`ops::group_scores`, the same
    /// bits on every ISA). Columns n.. of each score row are left as they are.
    #[inline]
    pub fn group_scores(
        &self,
        q: &[f32],
        keys: KvRows<'_>,
        hd: usize,
        scale: f32,
        scores: &mut [f32],
        stride: usize,
    ) {
        (self.group_scores)(q, keys, hd, scale, scores, stride)
    }

    /// acc (G, hdv) += Σ_j w[g * stride + j] * value_j over value rows (n, hdv), each row read
    /// once for the group (`ops::group_values_add`, the same bits on every ISA).
    #[inline]
    pub fn group_values_add(
        &self,
        w: &[f32],
        stride: usize,
        values: KvRows<'_>,
        hdv: usize,
        acc: &mut [f32],
    ) {
        (self.group_values_add)(w, stride, values, hdv, acc)
    }
}

/// Tables for the x86 levels.
#[cfg(target_arch = "x86_64")]
mod x86_tables {
    use super::*;
    use crate::ops::x86::{avx2, avx512, group_avx2, group_avx512};

    /// Caller must have checked `Isa::Avx2.require()`.
    pub(super) fn avx2() -> OpKernels {
        OpKernels {
            isa: Isa::Avx2,
            attn_scores: checked!(avx2::attn_scores, |q, k, s, o|),
            attn_values_add: checked!(avx2::attn_values_add, |acc, w, v|),
            attn_values_finish: checked!(avx2::attn_values_finish, |acc, o|),
            softmax: checked!(avx2::softmax_in_place, |x|),
            swiglu: checked!(avx2::swiglu_row, |g, u|),
            geglu: checked!(avx2::geglu, |g, u|),
            f16_to_f32: checked!(avx2::f16_to_f32, |s, d|),
            f32_to_f16: checked!(avx2::f32_to_f16, |s, d|),
            panel_dots: checked!(avx2::panel_dots, |q, k, p, o|),
            sibling_dots: checked!(avx2::sibling_dots, |q, lo, hi, o, at, w|),
            group_scores: checked!(group_avx2::group_scores, |q, k, hd, sc, o, st|),
            group_values_add: checked!(group_avx2::group_values_add, |w, st, v, hdv, acc|),
            ..OpKernels::scalar()
        }
    }

    /// Caller must have checked `Isa::Avx512.require()`.
    pub(super) fn avx512() -> OpKernels {
        OpKernels {
            isa: Isa::Avx512,
            attn_scores: checked!(avx512::attn_scores, |q, k, s, o|),
            attn_values_add: checked!(avx512::attn_values_add, |acc, w, v|),
            attn_values_finish: checked!(avx512::attn_values_finish, |acc, o|),
            softmax: checked!(avx512::softmax_in_place, |x|),
            swiglu: checked!(avx512::swiglu_row, |g, u|),
            geglu: checked!(avx512::geglu, |g, u|),
            f16_to_f32: checked!(avx512::f16_to_f32, |s, d|),
            f32_to_f16: checked!(avx512::f32_to_f16, |s, d|),
            panel_dots: checked!(avx512::panel_dots, |q, k, p, o|),
            sibling_dots: checked!(avx512::sibling_dots, |q, lo, hi, o, at, w|),
            group_scores: checked!(group_avx512::group_scores, |q, k, hd, sc, o, st|),
            group_values_add: checked!(group_avx512::group_values_add, |w, st, v, hdv, acc|),
            ..OpKernels::scalar()
        }
    }
}
