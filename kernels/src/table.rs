//! The quantized-kernel table: one function pointer per weight type and per activation type,
//! chosen once for an [`Isa`], called many times without looking at the ISA again.
//!
//! Entry points take bytes so the engine can call them generically for any weight type:
//! look up `vec_dot_fn(w)` once per matmul, then call it per row. Every entry exists for every
//! ISA: a level without its own version of a kernel gets the scalar reference.
//!
//! Caller contract for every entry (the engine's shapes, checked once at model load): rows hold
//! at least `n` elements of their type, `n` is a multiple of the block size, activation rows
//! come from [`QuantKernels::quantize_activation`] (quants in -127..=127). A row shorter than
//! `n` elements panics (slice indexing), it never reads out of bounds. Misaligned bytes are
//! copied to an aligned buffer first (slow, correct; GGUF tensor data is always aligned).

use alloc::borrow::Cow;
use alloc::vec;
use core::fmt;

use fovea_formats::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K,
    BlockQ8_0, BlockQ8_1, GgmlBlock,
};
use fovea_formats::GgmlType;
use half::{bf16, f16};

use crate::isa::{Isa, UnsupportedIsa};
use crate::quant::reference;

/// Dot of one weight row (`n` elements, bytes of the weight type) with one activation row
/// (bytes of `vec_dot_type(w)`).
pub type VecDotFn = fn(n: usize, w_row: &[u8], act_row: &[u8]) -> f32;

/// Dots of `out.len() / 4` contiguous weight rows (each `n` elements) with four activation rows
/// `acts[t * act_stride..]`, t in 0..4: out (4, rows), out[t * rows + r]. Bit-identical to the
/// [`VecDotFn`] of the same table; only types with a tiled kernel have one.
pub type VecDot4Fn = fn(n: usize, w_rows: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]);

/// Dots of contiguous weight rows (each `n` elements) with `n_tok` contiguous activation rows
/// (each the bytes of `n` elements of the partner type): out (n_tok, rows), out[t * rows + r],
/// rows = out.len() / n_tok. Bit-identical to the [`VecDotFn`] it stands for; a whole row tile
/// against the whole batch in one call, so each weight block is unpacked once per batch.
pub type VecDotTileFn = fn(n: usize, w_rows: &[u8], acts: &[u8], n_tok: usize, out: &mut [f32]);

/// One f32 row x (n,) -> bytes of an activation type (`partner.bytes_for(n)` of them).
pub type QuantizeFn = fn(x: &[f32], out: &mut [u8]);

/// A weight type without a dot kernel, or an activation type without a quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedType(pub GgmlType);

impl fmt::Display for UnsupportedType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no quantized kernel for type {}", self.0)
    }
}

/// A [`VecDot4Fn`] over the typed `#[target_feature]` kernel `$kernel(n, &[$w], [&[$a]; 4])`;
/// built only inside `x86_tables` (see `dot_entry!`).
#[cfg(target_arch = "x86_64")]
macro_rules! dot4_entry {
    (unsafe $kernel:path, $w:ty, $a:ty) => {
        (|n, w_rows, acts, stride, out| {
            let x = as_blocks::<$w>(w_rows, n * (out.len() / 4));
            let y = |t: usize| as_blocks::<$a>(&acts[t * stride..], n);
            let (y0, y1, y2, y3) = (y(0), y(1), y(2), y(3));
            // SAFETY: this entry is only reachable through a table built after the CPU was
            // checked for the kernel's target features (see `QuantKernels::for_isa`).
            unsafe { $kernel(n, &x, [&y0, &y1, &y2, &y3], out) };
        }) as VecDot4Fn
    };
}

/// A [`VecDotTileFn`] over the typed `#[target_feature]` kernel
/// `$kernel(n, &[$w], &[$a], n_tok, out)`; built only inside `x86_tables` (see `dot_entry!`).
#[cfg(target_arch = "x86_64")]
macro_rules! tile_entry {
    (unsafe $kernel:path, $w:ty, $a:ty) => {
        (|n, w_rows, acts, n_tok, out| {
            let rows = if n_tok == 0 { 0 } else { out.len() / n_tok };
            let (x, y) = (as_blocks::<$w>(w_rows, n * rows), as_blocks::<$a>(acts, n * n_tok));
            // SAFETY: this entry is only reachable through a table built after the CPU was
            // checked for the kernel's target features (see `QuantKernels::for_isa`).
            unsafe { $kernel(n, &x, &y, n_tok, out) };
        }) as VecDotTileFn
    };
}

/// A [`VecDotFn`] over the typed kernel `$kernel(n, &[$w], &[$a])`. With `unsafe`, the
/// kernel is a `#[target_feature]` function: such entries are only built inside
/// `x86_tables` and `arm_tables`, whose builders run only after `Isa::require` succeeded for
/// their level (and the extra feature check for the VNNI and dotprod variants).
macro_rules! dot_entry {
    (unsafe $kernel:path, $w:ty, $a:ty) => {
        (|n, w_row, act_row| {
            let (x, y) = (as_blocks::<$w>(w_row, n), as_blocks::<$a>(act_row, n));
            // SAFETY: this entry is only reachable through a table built after the CPU was
            // checked for the kernel's target features (see `QuantKernels::for_isa`).
            unsafe { $kernel(n, &x, &y) }
        }) as VecDotFn
    };
    ($kernel:path, $w:ty, $a:ty) => {
        (|n, w_row, act_row| $kernel(n, &as_blocks::<$w>(w_row, n), &as_blocks::<$a>(act_row, n))) as VecDotFn
    };
}

/// A [`QuantizeFn`] over the typed quantizer `$kernel(&[f32], &mut [$b])`; `unsafe` as in
/// [`dot_entry`].
macro_rules! quantize_entry {
    (unsafe $kernel:path, $b:ty) => {
        (|x, out| {
            quantize_into::<$b>(x, out, |x, y| {
                // SAFETY: as in `dot_entry`: reachable only from a table whose ISA was checked.
                unsafe { $kernel(x, y) }
            })
        }) as QuantizeFn
    };
    ($kernel:path, $b:ty) => {
        (|x, out| quantize_into::<$b>(x, out, $kernel)) as QuantizeFn
    };
}

/// One dot kernel per weight type.
#[derive(Clone, Copy)]
struct DotTable {
    q4_0: VecDotFn,
    q4_1: VecDotFn,
    q5_0: VecDotFn,
    q5_1: VecDotFn,
    q8_0: VecDotFn,
    q2_k: VecDotFn,
    q3_k: VecDotFn,
    q4_k: VecDotFn,
    q5_k: VecDotFn,
    q6_k: VecDotFn,
    f16: VecDotFn,
    bf16: VecDotFn,
    f32: VecDotFn,
}

/// One quantizer per activation type.
#[derive(Clone, Copy)]
struct QuantizeTable {
    q8_0: QuantizeFn,
    q8_1: QuantizeFn,
    q8_k: QuantizeFn,
    f16: QuantizeFn,
    bf16: QuantizeFn,
    f32: QuantizeFn,
}

/// The kernels for one ISA. Cheap to copy; build once with [`QuantKernels::detect`].
#[derive(Clone, Copy)]
pub struct QuantKernels {
    /// The level the table was built for.
    pub isa: Isa,
    /// Whether AVX-512 VNNI (`vpdpbusd`) kernels were chosen: with `Isa::Avx512` the VNNI dot
    /// variants; with `Isa::Avx2` (what `detect` picks on a VNNI CPU) the VNNI prompt tiles, which
    /// give the AVX2 dots' bits.
    pub vnni: bool,
    /// Whether the dotprod (`sdot`) variants were chosen (only with `Isa::Neon`).
    pub dotprod: bool,
    dots: DotTable,
    /// Tiles for prompt processing (four-token and whole-batch), by weight type; `None` where a
    /// type has none.
    dots4: Dot4Table,
    quantizers: QuantizeTable,
}

/// The tiled kernels that exist; other types run as single-token dots.
#[derive(Clone, Copy, Default)]
struct Dot4Table {
    q4_1: Option<VecDot4Fn>,
    q5_0: Option<VecDot4Fn>,
    q8_0: Option<VecDot4Fn>,
    /// Tiles of the batch (tiled-order) K-quant dots; see [`QuantKernels::batch_dot4_fn`].
    batch_q4_k: Option<VecDot4Fn>,
    batch_q6_k: Option<VecDot4Fn>,
    /// Whole-batch tiles of the batch K-quant dots; see [`QuantKernels::batch_dot_tile_fn`].
    batch_tile_q4_k: Option<VecDotTileFn>,
    batch_tile_q6_k: Option<VecDotTileFn>,
    /// Whole-batch tiles of the single-row dots; see [`QuantKernels::vec_dot_tile_fn`].
    tile_q4_1: Option<VecDotTileFn>,
    tile_q5_0: Option<VecDotTileFn>,
}

impl fmt::Debug for QuantKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuantKernels")
            .field("isa", &self.isa)
            .field("vnni", &self.vnni)
            .field("dotprod", &self.dotprod)
            .finish()
    }
}

impl QuantKernels {
    /// The table for the best ISA this CPU runs.
    pub fn detect() -> QuantKernels {
        // `detect` only returns supported levels, so the scalar arm is unreachable in practice.
        // The AVX-512 dot kernels measured no faster than AVX2 on the CPUs we have (see
        // examples/quant_dot_speed.rs), and their 4-block accumulation order moves results further
        // from llama.cpp's (which has no AVX-512 path for these types): default to AVX2 there until
        // they win. `--isa avx512` still selects them. A VNNI CPU gets the AVX2 table with VNNI
        // inside: 256-bit `vpdpbusd` dots and AVX-512 VNNI prompt tiles, all with the AVX2 bits.
        #[cfg(target_arch = "x86_64")]
        if Isa::detect() == Isa::Avx512 && crate::isa::x86_features::avx512_vnni() {
            return x86_tables::avx2_vnni();
        }
        let isa = match Isa::detect() {
            Isa::Avx512 => Isa::Avx2,
            other => other,
        };
        QuantKernels::for_isa(isa).unwrap_or_else(|_| QuantKernels::scalar())
    }

    /// The table for `isa`, or an error when this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Result<QuantKernels, UnsupportedIsa> {
        Ok(match isa.require()? {
            Isa::Scalar => QuantKernels::scalar(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_tables::avx2(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_tables::avx512(crate::isa::x86_features::avx512_vnni()),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => return Err(UnsupportedIsa(isa)),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => arm_tables::neon(crate::isa::arm_features::dotprod()),
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon => return Err(UnsupportedIsa(isa)),
        })
    }

    /// The portable reference table; always available.
    pub fn scalar() -> QuantKernels {
        QuantKernels {
            isa: Isa::Scalar,
            vnni: false,
            dotprod: false,
            dots4: Dot4Table::default(),
            dots: DotTable {
                q4_0: dot_entry!(reference::vec_dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0),
                q4_1: dot_entry!(reference::vec_dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1),
                q5_0: dot_entry!(reference::vec_dot_q5_0_q8_0, BlockQ5_0, BlockQ8_0),
                q5_1: dot_entry!(reference::vec_dot_q5_1_q8_1, BlockQ5_1, BlockQ8_1),
                q8_0: dot_entry!(reference::vec_dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0),
                q2_k: dot_entry!(reference::vec_dot_q2_k_q8_k, BlockQ2K, BlockQ8K),
                q3_k: dot_entry!(reference::vec_dot_q3_k_q8_k, BlockQ3K, BlockQ8K),
                q4_k: dot_entry!(reference::vec_dot_q4_k_q8_k, BlockQ4K, BlockQ8K),
                q5_k: dot_entry!(reference::vec_dot_q5_k_q8_k, BlockQ5K, BlockQ8K),
                q6_k: dot_entry!(reference::vec_dot_q6_k_q8_k, BlockQ6K, BlockQ8K),
                f16: dot_entry!(reference::vec_dot_f16_f16, f16, f16),
                bf16: dot_entry!(reference::vec_dot_bf16_bf16, bf16, bf16),
                f32: dot_entry!(reference::vec_dot_f32, f32, f32),
            },
            quantizers: QuantizeTable {
                q8_0: quantize_entry!(reference::quantize_row_q8_0, BlockQ8_0),
                q8_1: quantize_entry!(reference::quantize_row_q8_1, BlockQ8_1),
                q8_k: quantize_entry!(reference::quantize_row_q8_k, BlockQ8K),
                f16: quantize_entry!(reference::quantize_row_f16, f16),
                bf16: quantize_entry!(reference::quantize_row_bf16, bf16),
                f32: |x, out| out[..size_of_val(x)].copy_from_slice(bytemuck::cast_slice(x)),
            },
        }
    }

    /// Every table this build knows, labelled, each with the reason when this CPU cannot run
    /// it: the AVX-512 level with and without VNNI, the AVX2 table with VNNI dots and tiles (what
    /// `detect` picks on a VNNI CPU), and NEON with and without dotprod, are separate entries.
    /// For tests and benches, which run every available entry and report the skipped ones.
    pub fn variants() -> [(&'static str, Result<QuantKernels, UnsupportedIsa>); 7] {
        #[cfg(target_arch = "x86_64")]
        let (avx512, avx512_vnni, avx2_vnni) = {
            let avx512 = Isa::Avx512.require().map(|_| x86_tables::avx512(false));
            let (vnni, tiles) = match avx512 {
                Ok(_) if crate::isa::x86_features::avx512_vnni() => {
                    (Ok(x86_tables::avx512(true)), Ok(x86_tables::avx2_vnni()))
                }
                _ => (Err(UnsupportedIsa(Isa::Avx512)), Err(UnsupportedIsa(Isa::Avx512))),
            };
            (avx512, vnni, tiles)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (avx512, avx512_vnni, avx2_vnni) = (
            Err(UnsupportedIsa(Isa::Avx512)),
            Err(UnsupportedIsa(Isa::Avx512)),
            Err(UnsupportedIsa(Isa::Avx512)),
        );
        #[cfg(target_arch = "aarch64")]
        let (neon, neon_dotprod) = {
            let neon = Isa::Neon.require().map(|_| arm_tables::neon(false));
            let dotprod = match neon {
                Ok(_) if crate::isa::arm_features::dotprod() => Ok(arm_tables::neon(true)),
                _ => Err(UnsupportedIsa(Isa::Neon)),
            };
            (neon, dotprod)
        };
        #[cfg(not(target_arch = "aarch64"))]
        let (neon, neon_dotprod) = (Err(UnsupportedIsa(Isa::Neon)), Err(UnsupportedIsa(Isa::Neon)));
        [
            ("scalar", Ok(QuantKernels::scalar())),
            ("avx2", QuantKernels::for_isa(Isa::Avx2)),
            ("avx2-vnni", avx2_vnni),
            ("avx512", avx512),
            ("avx512-vnni", avx512_vnni),
            ("neon", neon),
            ("neon-dotprod", neon_dotprod),
        ]
    }

    /// The dot kernel for weight type `w`; look it up once per matmul.
    pub fn vec_dot_fn(&self, w: GgmlType) -> Result<VecDotFn, UnsupportedType> {
        let d = &self.dots;
        Ok(match w {
            GgmlType::Q4_0 => d.q4_0,
            GgmlType::Q4_1 => d.q4_1,
            GgmlType::Q5_0 => d.q5_0,
            GgmlType::Q5_1 => d.q5_1,
            GgmlType::Q8_0 => d.q8_0,
            GgmlType::Q2K => d.q2_k,
            GgmlType::Q3K => d.q3_k,
            GgmlType::Q4K => d.q4_k,
            GgmlType::Q5K => d.q5_k,
            GgmlType::Q6K => d.q6_k,
            GgmlType::F16 => d.f16,
            GgmlType::BF16 => d.bf16,
            GgmlType::F32 => d.f32,
            GgmlType::Q8_1 | GgmlType::Q8K => return Err(UnsupportedType(w)),
        })
    }

    /// The dot llama.cpp uses for weight type `w` in batches of 8+ rows, when it differs from the
    /// single-row one (ggml's tiled K-quant matmul; see `quant::tiled_k`).
    pub fn batch_dot_fn(&self, w: GgmlType) -> Option<VecDotFn> {
        use crate::quant::tiled_k;
        #[cfg(target_arch = "x86_64")]
        if matches!(self.isa, Isa::Avx2 | Isa::Avx512) {
            use crate::x86::avx2;
            // The table exists, so `for_isa` checked this CPU for AVX2 (AVX-512 implies it).
            return match w {
                GgmlType::Q4K => Some(dot_entry!(unsafe avx2::vec_dot_q4_k_q8_k_tiled, BlockQ4K, BlockQ8K)),
                GgmlType::Q6K => Some(dot_entry!(unsafe avx2::vec_dot_q6_k_q8_k_tiled, BlockQ6K, BlockQ8K)),
                _ => None,
            };
        }
        match w {
            GgmlType::Q4K => Some(dot_entry!(tiled_k::vec_dot_q4_k_q8_k_tiled, BlockQ4K, BlockQ8K)),
            GgmlType::Q6K => Some(dot_entry!(tiled_k::vec_dot_q6_k_q8_k_tiled, BlockQ6K, BlockQ8K)),
            _ => None,
        }
    }

    /// The four-token tile of [`QuantKernels::batch_dot_fn`] (bit-identical to it), when this ISA
    /// has one.
    pub fn batch_dot4_fn(&self, w: GgmlType) -> Option<VecDot4Fn> {
        match w {
            GgmlType::Q4K => self.dots4.batch_q4_k,
            GgmlType::Q6K => self.dots4.batch_q6_k,
            _ => None,
        }
    }

    /// The whole-batch tile of [`QuantKernels::batch_dot_fn`] (bit-identical to it), when this
    /// table has one; preferred over [`QuantKernels::batch_dot4_fn`].
    pub fn batch_dot_tile_fn(&self, w: GgmlType) -> Option<VecDotTileFn> {
        match w {
            GgmlType::Q4K => self.dots4.batch_tile_q4_k,
            GgmlType::Q6K => self.dots4.batch_tile_q6_k,
            _ => None,
        }
    }

    /// The whole-batch tile of `vec_dot_fn(w)` (bit-identical to it), when this table has one;
    /// preferred over [`QuantKernels::vec_dot4_fn`] for batches of 2+ rows.
    pub fn vec_dot_tile_fn(&self, w: GgmlType) -> Option<VecDotTileFn> {
        match w {
            GgmlType::Q4_1 => self.dots4.tile_q4_1,
            GgmlType::Q5_0 => self.dots4.tile_q5_0,
            _ => None,
        }
    }

    /// The four-token tile kernel for weight type `w`, when this ISA has one.
    pub fn vec_dot4_fn(&self, w: GgmlType) -> Option<VecDot4Fn> {
        match w {
            GgmlType::Q4_1 => self.dots4.q4_1,
            GgmlType::Q5_0 => self.dots4.q5_0,
            GgmlType::Q8_0 => self.dots4.q8_0,
            _ => None,
        }
    }

    /// The quantizer producing activation type `partner` (a `vec_dot_type`).
    pub fn quantize_fn(&self, partner: GgmlType) -> Result<QuantizeFn, UnsupportedType> {
        let q = &self.quantizers;
        Ok(match partner {
            GgmlType::Q8_0 => q.q8_0,
            GgmlType::Q8_1 => q.q8_1,
            GgmlType::Q8K => q.q8_k,
            GgmlType::F16 => q.f16,
            GgmlType::BF16 => q.bf16,
            GgmlType::F32 => q.f32,
            _ => return Err(UnsupportedType(partner)),
        })
    }

    /// One activation row x (n,) -> `partner.bytes_for(n)` bytes at the start of `out`.
    pub fn quantize_activation(
        &self,
        partner: GgmlType,
        x: &[f32],
        out: &mut [u8],
    ) -> Result<(), UnsupportedType> {
        (self.quantize_fn(partner)?)(x, out);
        Ok(())
    }

    /// Dot of one weight row (n elements of type `w`) with one activation row of `vec_dot_type(w)`.
    pub fn vec_dot(
        &self,
        w: GgmlType,
        n: usize,
        w_row: &[u8],
        act_row: &[u8],
    ) -> Result<f32, UnsupportedType> {
        Ok((self.vec_dot_fn(w)?)(n, w_row, act_row))
    }

    /// out[r] = dot(weight row r, act_row) for r in 0..out.len(); the weight rows are contiguous,
    /// `row_bytes` each: W (rows, n) @ act (n,) -> out (rows,).
    pub fn vec_dot_rows(
        &self,
        w: GgmlType,
        n: usize,
        w_rows: &[u8],
        row_bytes: usize,
        act_row: &[u8],
        out: &mut [f32],
    ) -> Result<(), UnsupportedType> {
        let dot = self.vec_dot_fn(w)?;
        for (o, w_row) in out.iter_mut().zip(w_rows.chunks(row_bytes.max(1))) {
            *o = dot(n, w_row, act_row);
        }
        Ok(())
    }
}

/// The first `n / B::ELEMS` blocks of `bytes`, borrowed when aligned, copied when not.
#[inline]
fn as_blocks<B: GgmlBlock>(bytes: &[u8], n: usize) -> Cow<'_, [B]> {
    let bytes = &bytes[..n / B::ELEMS * size_of::<B>()];
    match bytemuck::try_cast_slice(bytes) {
        Ok(blocks) => Cow::Borrowed(blocks),
        Err(_) => {
            let mut owned = vec![B::zeroed(); n / B::ELEMS];
            bytemuck::cast_slice_mut::<B, u8>(&mut owned).copy_from_slice(bytes);
            Cow::Owned(owned)
        }
    }
}

/// Runs a typed quantizer of x (n,) into the first `n / B::ELEMS` blocks' bytes of `out`,
/// through an aligned buffer when `out` is misaligned.
#[inline]
fn quantize_into<B: GgmlBlock>(x: &[f32], out: &mut [u8], quantize: impl FnOnce(&[f32], &mut [B])) {
    let nb = x.len() / B::ELEMS;
    let x = &x[..nb * B::ELEMS];
    let out = &mut out[..nb * size_of::<B>()];
    match bytemuck::try_cast_slice_mut(out) {
        Ok(blocks) => quantize(x, blocks),
        Err(_) => {
            let mut blocks = vec![B::zeroed(); nb];
            quantize(x, &mut blocks);
            out.copy_from_slice(bytemuck::cast_slice(&blocks));
        }
    }
}

/// Tables for the x86 levels: the scalar table with the kernels each level has replaced.
#[cfg(target_arch = "x86_64")]
mod x86_tables {
    use super::*;
    use crate::x86::{avx2, avx512};

    /// Caller must have checked `Isa::Avx2.require()`.
    pub(super) fn avx2() -> QuantKernels {
        let scalar = QuantKernels::scalar();
        QuantKernels {
            isa: Isa::Avx2,
            vnni: false,
            dotprod: false,
            dots4: Dot4Table {
                q4_1: Some(dot4_entry!(unsafe avx2::vec_dot4_rows_q4_1_q8_1, BlockQ4_1, BlockQ8_1)),
                q5_0: Some(dot4_entry!(unsafe avx2::vec_dot4_rows_q5_0_q8_0, BlockQ5_0, BlockQ8_0)),
                q8_0: Some(dot4_entry!(unsafe avx2::vec_dot4_rows_q8_0_q8_0, BlockQ8_0, BlockQ8_0)),
                batch_q4_k: Some(dot4_entry!(unsafe avx2::vec_dot4_rows_q4_k_q8_k_tiled, BlockQ4K, BlockQ8K)),
                batch_q6_k: Some(dot4_entry!(unsafe avx2::vec_dot4_rows_q6_k_q8_k_tiled, BlockQ6K, BlockQ8K)),
                tile_q4_1: None,
                tile_q5_0: None,
                batch_tile_q4_k: None,
                batch_tile_q6_k: None,
            },
            dots: DotTable {
                q4_0: dot_entry!(unsafe avx2::vec_dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0),
                q4_1: dot_entry!(unsafe avx2::vec_dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1),
                q5_0: dot_entry!(unsafe avx2::vec_dot_q5_0_q8_0, BlockQ5_0, BlockQ8_0),
                q5_1: dot_entry!(unsafe avx2::vec_dot_q5_1_q8_1, BlockQ5_1, BlockQ8_1),
                q8_0: dot_entry!(unsafe avx2::vec_dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0),
                q4_k: dot_entry!(unsafe avx2::vec_dot_q4_k_q8_k, BlockQ4K, BlockQ8K),
                q5_k: dot_entry!(unsafe avx2::vec_dot_q5_k_q8_k, BlockQ5K, BlockQ8K),
                q6_k: dot_entry!(unsafe avx2::vec_dot_q6_k_q8_k, BlockQ6K, BlockQ8K),
                f16: dot_entry!(unsafe avx2::vec_dot_f16_f16, f16, f16),
                f32: dot_entry!(unsafe avx2::vec_dot_f32, f32, f32),
                ..scalar.dots
            },
            quantizers: QuantizeTable {
                q8_0: quantize_entry!(unsafe avx2::quantize_row_q8_0, BlockQ8_0),
                q8_1: quantize_entry!(unsafe avx2::quantize_row_q8_1, BlockQ8_1),
                q8_k: quantize_entry!(unsafe avx2::quantize_row_q8_k, BlockQ8K),
                ..scalar.quantizers
            },
        }
    }

    /// Caller must have checked `Isa::Avx512.require()`; `vnni` only when the CPU has it.
    pub(super) fn avx512(vnni: bool) -> QuantKernels {
        let base = avx2();
        let dots = if vnni {
            DotTable {
                q4_1: dot_entry!(unsafe avx512::vec_dot_q4_1_q8_1_vnni, BlockQ4_1, BlockQ8_1),
                q8_0: dot_entry!(unsafe avx512::vec_dot_q8_0_q8_0_vnni, BlockQ8_0, BlockQ8_0),
                ..base.dots
            }
        } else {
            DotTable {
                q4_1: dot_entry!(unsafe avx512::vec_dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1),
                q8_0: dot_entry!(unsafe avx512::vec_dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0),
                ..base.dots
            }
        };
        // The legacy tiles mirror the AVX2 single-row kernels bit for bit, not these; the batch
        // K-quant tiles mirror the batch dots, which are the same at both levels.
        let dots4 = Dot4Table {
            batch_q4_k: base.dots4.batch_q4_k,
            batch_q6_k: base.dots4.batch_q6_k,
            batch_tile_q4_k: if vnni { avx2_vnni().dots4.batch_tile_q4_k } else { None },
            batch_tile_q6_k: if vnni { avx2_vnni().dots4.batch_tile_q6_k } else { None },
            ..Default::default()
        };
        QuantKernels { isa: Isa::Avx512, vnni, dots, dots4, ..base }
    }

    /// The AVX2 table on a VNNI CPU: the legacy-quant dots take their `_vnni` twins (one 256-bit
    /// `vpdpbusd` per block, the same lanes and bits; llama.cpp's native build does the same) and
    /// the prompt-processing tiles AVX-512 VNNI versions that give the same bits as the dots they
    /// stand for (llama.cpp's order). Caller must have checked `Isa::Avx512.require()` and
    /// `x86_features::avx512_vnni()`.
    pub(super) fn avx2_vnni() -> QuantKernels {
        let base = avx2();
        let dots = DotTable {
            q4_0: dot_entry!(unsafe avx2::vec_dot_q4_0_q8_0_vnni, BlockQ4_0, BlockQ8_0),
            q4_1: dot_entry!(unsafe avx2::vec_dot_q4_1_q8_1_vnni, BlockQ4_1, BlockQ8_1),
            q5_0: dot_entry!(unsafe avx2::vec_dot_q5_0_q8_0_vnni, BlockQ5_0, BlockQ8_0),
            q5_1: dot_entry!(unsafe avx2::vec_dot_q5_1_q8_1_vnni, BlockQ5_1, BlockQ8_1),
            q8_0: dot_entry!(unsafe avx2::vec_dot_q8_0_q8_0_vnni, BlockQ8_0, BlockQ8_0),
            ..base.dots
        };
        let dots4 = Dot4Table {
            tile_q4_1: Some(tile_entry!(unsafe avx512::vec_dot_tile_q4_1_q8_1_vnni, BlockQ4_1, BlockQ8_1)),
            tile_q5_0: Some(tile_entry!(unsafe avx512::vec_dot_tile_q5_0_q8_0_vnni, BlockQ5_0, BlockQ8_0)),
            batch_tile_q4_k: Some(tile_entry!(
                unsafe avx512::vec_dot_tile_q4_k_q8_k_tiled_vnni,
                BlockQ4K,
                BlockQ8K
            )),
            batch_tile_q6_k: Some(tile_entry!(
                unsafe avx512::vec_dot_tile_q6_k_q8_k_tiled_vnni,
                BlockQ6K,
                BlockQ8K
            )),
            ..base.dots4
        };
        QuantKernels { vnni: true, dots, dots4, ..base }
    }
}

/// The table for AArch64: the scalar table with the kernels NEON has replaced. The float ops
/// (`ops::OpKernels`) stay scalar there.
#[cfg(target_arch = "aarch64")]
mod arm_tables {
    use super::*;
    use crate::arm::neon;

    /// Caller must have checked `Isa::Neon.require()`, and `arm_features::dotprod()` for
    /// `dotprod`: the `_dotprod` kernels execute `sdot`, which is SIGILL on ARMv8.0.
    pub(super) fn neon(dotprod: bool) -> QuantKernels {
        let scalar = QuantKernels::scalar();
        let dots = if dotprod {
            DotTable {
                q4_0: dot_entry!(unsafe neon::vec_dot_q4_0_q8_0_dotprod, BlockQ4_0, BlockQ8_0),
                q4_1: dot_entry!(unsafe neon::vec_dot_q4_1_q8_1_dotprod, BlockQ4_1, BlockQ8_1),
                q5_0: dot_entry!(unsafe neon::vec_dot_q5_0_q8_0_dotprod, BlockQ5_0, BlockQ8_0),
                q5_1: dot_entry!(unsafe neon::vec_dot_q5_1_q8_1_dotprod, BlockQ5_1, BlockQ8_1),
                q8_0: dot_entry!(unsafe neon::vec_dot_q8_0_q8_0_dotprod, BlockQ8_0, BlockQ8_0),
                q4_k: dot_entry!(unsafe neon::vec_dot_q4_k_q8_k_dotprod, BlockQ4K, BlockQ8K),
                q6_k: dot_entry!(unsafe neon::vec_dot_q6_k_q8_k_dotprod, BlockQ6K, BlockQ8K),
                ..scalar.dots
            }
        } else {
            DotTable {
                q4_0: dot_entry!(unsafe neon::vec_dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0),
                q4_1: dot_entry!(unsafe neon::vec_dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1),
                q5_0: dot_entry!(unsafe neon::vec_dot_q5_0_q8_0, BlockQ5_0, BlockQ8_0),
                q5_1: dot_entry!(unsafe neon::vec_dot_q5_1_q8_1, BlockQ5_1, BlockQ8_1),
                q8_0: dot_entry!(unsafe neon::vec_dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0),
                q4_k: dot_entry!(unsafe neon::vec_dot_q4_k_q8_k, BlockQ4K, BlockQ8K),
                q6_k: dot_entry!(unsafe neon::vec_dot_q6_k_q8_k, BlockQ6K, BlockQ8K),
                ..scalar.dots
            }
        };
        QuantKernels {
            isa: Isa::Neon,
            vnni: false,
            dotprod,
            dots,
            dots4: Dot4Table::default(),
            quantizers: QuantizeTable {
                q8_0: quantize_entry!(unsafe neon::quantize_row_q8_0, BlockQ8_0),
                q8_1: quantize_entry!(unsafe neon::quantize_row_q8_1, BlockQ8_1),
                q8_k: quantize_entry!(unsafe neon::quantize_row_q8_k, BlockQ8K),
                ..scalar.quantizers
            },
        }
    }
}
