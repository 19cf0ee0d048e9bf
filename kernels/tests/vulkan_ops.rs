//! Every Vulkan shader against the CPU scalar reference on the same inputs, with validation on
//! (any validation message fails the test).
//!
//! Skipped with a notice when there is no Vulkan device, unless FOVEA_REQUIRE_VULKAN=1 (set by
//! `.ci/vulkan.sh`, which runs these on Mesa lavapipe).
//!
//! Tolerance table (|gpu - reference|, the reference computed from the same inputs in f64 or
//! by the fovea_kernels scalar function; S = sum |w_i x_i| of the dot product):
//!
//! | shader                | reference                                   | bound              |
//! |-----------------------|---------------------------------------------|--------------------|
//! | matvec_f32/_f16       | dequantize_row (fovea_formats) · x in f64   | 1e-5 · S + 1e-6    |
//! | quantize_q8           | quant::quantize_activation (CPU)            | identical bytes    |
//! | matvec_<quant type>   | quant::vec_dot per block, summed in f64     | 2e-6 · B + 1e-6    |
//! | rmsnorm               | ops::rms_norm                               | 1e-5 · max(1, |y|) |
//! | rope                  | RopeTable::rotate (same host angles)        | 1e-6 · max(1, |y|) |
//! | softmax               | ops::softmax_in_place                       | 1e-6               |
//! | activation (SiLU)     | ops::silu(g) · u                            | 1e-5 · max(1, |y|) |
//! | activation (GELU)     | ops::gelu_f16_table(g) · u                  | one f16 step · |u| |
//! | axpy                  | ops::axpy                                   | 1e-6 · max(1, |y|) |
//! | attention             | softmax(scale · q·k) · v in f64             | 1e-5 · max(1, |y|) |
//! | attention, window KV mode (ring rows, sinks re-rotated) | the same over the record's entries, keys turned in f64 | 1e-5 · max(1, |y|) |
//! | kv_store              | the rows themselves                         | identical bits     |
//!
//! The quantized matvecs take activations quantized on the device (quantize_q8) and form the
//! CPU's integer block dots and per-block f32 expressions, so their reference is the CPU's own
//! quantized dot (`vec_dot` on the CPU-quantized activation) evaluated one block at a time;
//! B = sum over blocks of |block term|. Only the f32 summation order differs, so 2e-6 · B
//! allows a few ulps of reassociation (measured: see docs/vulkan.md). The float matvecs
//! (F32, F16 weights) take f32 activations against the dequantized weights.
#![cfg(feature = "vulkan")]

use std::sync::Arc;

use fovea_formats::blocks::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ6K, BlockQ8_0};
use fovea_formats::dequant::dequantize_row;
use fovea_formats::GgmlType;
use fovea_kernels::ops::{self, RopeLayout, RopeTable};
use fovea_kernels::quant::{quantize, quantize_activation, quantize_weights as qw, vec_dot, vec_dot_type};
use fovea_kernels::vulkan::{
    attention_groups, ActQuant, Buffer, DeviceOptions, Gpu, MemKind, Recorder, Shader, VulkanError,
    ATTENTION_HEADS_PER_GROUP, WORKGROUP,
};
use half::f16;

/// The device with validation on, or None (with a notice) when there is none.
fn gpu() -> Option<Arc<Gpu>> {
    match Gpu::new(&DeviceOptions { validation: true, device_index: None }) {
        Ok(g) => Some(Arc::new(g)),
        Err(e @ (VulkanError::NoLoader(_) | VulkanError::NoDevice | VulkanError::NoValidationLayer)) => {
            if std::env::var("FOVEA_REQUIRE_VULKAN").is_ok_and(|v| v == "1") {
                panic!("FOVEA_REQUIRE_VULKAN=1 but: {e}");
            }
            eprintln!("NOTICE: skipping Vulkan test: {e}");
            None
        }
        Err(e) => panic!("opening the Vulkan device: {e}"),
    }
}

/// Fails the test if the validation layer said anything.
fn assert_no_validation_messages(gpu: &Gpu) {
    let m = gpu.take_messages();
    assert!(m.is_empty(), "validation messages:\n{}", m.join("\n"));
}

/// Deterministic values in [-1, 1) (xorshift).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn upload(gpu: &Arc<Gpu>, bytes: &[u8]) -> Buffer {
    let b = gpu.alloc(MemKind::Device, bytes.len() as u64).expect("alloc");
    gpu.upload(&b, 0, bytes).expect("upload");
    b
}

fn upload_f32(gpu: &Arc<Gpu>, x: &[f32]) -> Buffer {
    upload(gpu, bytemuck::cast_slice(x))
}

fn download_f32(gpu: &Arc<Gpu>, b: &Buffer, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    gpu.download(b, 0, bytemuck::cast_slice_mut(&mut out)).expect("download");
    out
}

fn run(gpu: &Arc<Gpu>, shader: Shader, bindings: &[&Buffer], push: &[u32], groups: u32) {
    let mut r = Recorder::new(gpu).expect("recorder");
    r.dispatch(shader, bindings, push, groups).expect("dispatch");
    r.submit().expect("submit");
}

/// Largest |a - b| / scale(b) over the pair, asserting each is within `tol`.
fn check(what: &str, got: &[f32], want: &[f64], tol: impl Fn(usize) -> f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(err <= tol(i), "{what}[{i}]: gpu {g} vs reference {w} (error {err:e} > {:e})", tol(i));
        worst = worst.max(err);
    }
    worst
}

/// Quantized weight rows (rows, cols) of type `ty` from f32 values.
fn quantize_rows(ty: GgmlType, w: &[f32]) -> Vec<u8> {
    macro_rules! q {
        ($block:ty, $f:path) => {{
            let mut out = vec![<$block as bytemuck::Zeroable>::zeroed(); w.len() / ty.block_elems()];
            $f(w, &mut out);
            bytemuck::cast_slice::<$block, u8>(&out).to_vec()
        }};
    }
    match ty {
        GgmlType::F32 => bytemuck::cast_slice(w).to_vec(),
        GgmlType::F16 => {
            let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            bytemuck::cast_slice(&h).to_vec()
        }
        GgmlType::Q4_0 => q!(BlockQ4_0, qw::quantize_row_q4_0),
        GgmlType::Q4_1 => q!(BlockQ4_1, qw::quantize_row_q4_1),
        GgmlType::Q5_0 => q!(BlockQ5_0, qw::quantize_row_q5_0),
        GgmlType::Q8_0 => q!(BlockQ8_0, quantize::quantize_row_q8_0),
        GgmlType::Q4K => q!(BlockQ4K, qw::quantize_row_q4_k),
        GgmlType::Q6K => q!(BlockQ6K, qw::quantize_row_q6_k),
        other => panic!("no quantizer for {other}"),
    }
}

const MATVEC_TYPES: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
];

/// y (n_tok, rows) = x (n_tok, cols) · Wᵀ on the device, the weight rows split into `parts`
/// bindings (each dispatched with its row offset, as the engine does for large tensors). For
/// quantized weights the activations are first quantized on the device, as the engine does.
fn gpu_matvec(
    gpu: &Arc<Gpu>,
    shader: Shader,
    wq: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    parts: usize,
) -> Vec<f32> {
    let n_tok = x.len() / cols;
    let row_bytes = wq.len() / rows;
    let xb = upload_f32(gpu, x);
    let yb = gpu.alloc(MemKind::Device, (n_tok * rows * 4) as u64).expect("alloc");
    let per = rows.div_ceil(parts);
    let chunks: Vec<(usize, usize, Buffer)> = (0..rows)
        .step_by(per)
        .map(|r0| {
            let nr = per.min(rows - r0);
            (r0, nr, upload(gpu, &wq[r0 * row_bytes..(r0 + nr) * row_bytes]))
        })
        .collect();
    let mut r = Recorder::new(gpu).expect("recorder");
    let xq = shader.act_quant().map(|act| {
        let b = gpu.alloc(MemKind::Device, (4 * n_tok * act.row_words(cols)) as u64).expect("alloc");
        r.quantize(act, &xb, 0, cols, n_tok, &b).expect("quantize");
        b
    });
    let act = xq.as_ref().unwrap_or(&xb);
    for (r0, nr, wb) in &chunks {
        let push = [cols as u32, *nr as u32, n_tok as u32, 0, rows as u32, *r0 as u32];
        r.matvec(shader, n_tok, &[wb, act, &yb], &push, *nr).expect("dispatch");
    }
    r.submit().expect("submit");
    download_f32(gpu, &yb, n_tok * rows)
}

/// The CPU's activation bytes in the device layout: Q8_0's 34-byte blocks padded to 36 (two
/// zero bytes after d); Q8_1 and Q8_K are already word-sized.
fn device_layout(act: ActQuant, cpu: &[u8]) -> Vec<u8> {
    match act {
        ActQuant::Q8_0 => {
            cpu.chunks_exact(34).flat_map(|b| [&b[..2], &[0, 0][..], &b[2..]].concat()).collect()
        }
        ActQuant::Q8_1 | ActQuant::Q8K => cpu.to_vec(),
    }
}

/// Per (token, row): the CPU's quantized dot as f64 sum of its per-block terms, and B = the sum
/// of their magnitudes.
fn quantized_reference(ty: GgmlType, wq: &[u8], rows: usize, cols: usize, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let partner = vec_dot_type(ty);
    let (be, wbb, abb) =
        (ty.block_elems(), bytes_for(ty, ty.block_elems()), bytes_for(partner, ty.block_elems()));
    let mut xq = vec![0u8; bytes_for(partner, cols)];
    let (mut want, mut scale) = (Vec::new(), Vec::new());
    for xr in x.chunks_exact(cols) {
        quantize_activation(partner, xr, &mut xq);
        for wr in wq.chunks_exact(wq.len() / rows) {
            let terms: Vec<f64> = (0..cols / be)
                .map(|b| vec_dot(ty, be, &wr[b * wbb..(b + 1) * wbb], &xq[b * abb..(b + 1) * abb]) as f64)
                .collect();
            want.push(terms.iter().sum());
            scale.push(terms.iter().map(|t| t.abs()).sum());
        }
    }
    (want, scale)
}

fn check_matvec(gpu: &Arc<Gpu>, ty: GgmlType, rows: usize, blocks: usize, n_tok: usize, parts: usize) -> f64 {
    let cols = blocks * ty.block_elems().max(32);
    let w = values(rows * cols, 1 + blocks as u64);
    let x = values(n_tok * cols, 2 + rows as u64);
    let wq = quantize_rows(ty, &w);
    let shader = Shader::matvec(ty).expect("matvec shader");
    let got = gpu_matvec(gpu, shader, &wq, rows, cols, &x, parts);
    let what = format!("matvec {ty} rows {rows} blocks {blocks} n_tok {n_tok}");
    // The packed-dot variant forms the same integer sums: the same bits, where the device has it.
    if let (Some(dot4), true) = (shader.dot4(), gpu.info.integer_dot) {
        let packed = gpu_matvec(gpu, dot4, &wq, rows, cols, &x, parts);
        let bits = |y: &[f32]| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&packed), bits(&got), "{what}: the dot4 variant differs from the plain one");
    }
    let worst = if Shader::matvec(ty).and_then(Shader::act_quant).is_some() {
        let (want, scale) = quantized_reference(ty, &wq, rows, cols, &x);
        let worst = check(&what, &got, &want, |i| 2e-6 * scale[i] + 1e-6);
        let rel = got.iter().zip(&want).zip(&scale).map(|((&g, &w), &b)| (g as f64 - w).abs() / b.max(1e-30));
        eprintln!("  {what}: max |gpu - cpu| / B = {:.2e}", rel.fold(0.0, f64::max));
        worst
    } else {
        let mut wd = vec![0.0f32; rows * cols];
        dequantize_row(ty, &wq, &mut wd).expect("dequantize");
        let (mut want, mut scale) = (Vec::new(), Vec::new());
        for t in 0..n_tok {
            for r in 0..rows {
                let (wr, xr) = (&wd[r * cols..(r + 1) * cols], &x[t * cols..(t + 1) * cols]);
                want.push(wr.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>());
                scale.push(wr.iter().zip(xr).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum::<f64>());
            }
        }
        check(&what, &got, &want, |i| 1e-5 * scale[i] + 1e-6)
    };
    assert_no_validation_messages(gpu);
    worst
}

/// Bytes of n elements of type `ty`.
fn bytes_for(ty: GgmlType, n: usize) -> usize {
    ty.bytes_for(n as u64).expect("size") as usize
}

/// Activation rows with the awkward cases: a zero block, exact ties after scaling (x * 127 /
/// amax = k + 0.5), a lone large value, negative extremes, and tiny values (subnormal f16
/// scales).
fn awkward_rows(n_tok: usize, cols: usize) -> Vec<f32> {
    let mut x = values(n_tok * cols, 11 + cols as u64);
    for (t, row) in x.chunks_exact_mut(cols).enumerate() {
        row[..32].fill(0.0); // a zero block
        if cols >= 64 {
            // amax 127: every k + 0.5 is a tie.
            for (i, v) in row[32..64].iter_mut().enumerate() {
                *v = if i == 0 { 127.0 } else { i as f32 - 15.5 - t as f32 };
            }
        }
        if cols >= 96 {
            row[64..96].iter_mut().for_each(|v| *v *= 1e-6);
            row[70] = -3.0e4;
        }
        if cols >= 256 {
            row[128..160].iter_mut().for_each(|v| *v *= 1e-7);
        }
    }
    x
}

#[test]
fn quantize_q8_matches_cpu_bytes() {
    let Some(gpu) = gpu() else { return };
    for (act, partner) in
        [(ActQuant::Q8_0, GgmlType::Q8_0), (ActQuant::Q8_1, GgmlType::Q8_1), (ActQuant::Q8K, GgmlType::Q8K)]
    {
        // Odd block counts, more blocks than invocations (64), 1 and 9 rows.
        for (blocks, n_tok) in [(1, 1), (3, 9), (7, 2), (131, 3)] {
            let cols = blocks * act.block();
            let x = awkward_rows(n_tok, cols);
            let mut want = Vec::new();
            let mut row = vec![0u8; bytes_for(partner, cols)];
            for xr in x.chunks_exact(cols) {
                quantize_activation(partner, xr, &mut row);
                want.extend(device_layout(act, &row));
            }
            let xb = upload_f32(&gpu, &x);
            let words = n_tok * act.row_words(cols);
            let qb = gpu.alloc(MemKind::Device, 4 * words as u64).expect("alloc");
            let mut r = Recorder::new(&gpu).expect("recorder");
            r.quantize(act, &xb, 0, cols, n_tok, &qb).expect("quantize");
            r.submit().expect("submit");
            let mut got = vec![0u8; 4 * words];
            gpu.download(&qb, 0, &mut got).expect("download");
            if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                panic!(
                    "quantize {act:?} blocks {blocks} n_tok {n_tok}: first differing byte {i}: gpu {} cpu {}",
                    got[i], want[i]
                );
            }
            assert_eq!(got.len(), want.len());
        }
        // With an offset into x (the engine quantizes the logits' rows from the middle).
        let cols = 2 * act.block();
        let x = awkward_rows(3, cols);
        let xb = upload_f32(&gpu, &x);
        let qb = gpu.alloc(MemKind::Device, 4 * act.row_words(cols) as u64).expect("alloc");
        let mut r = Recorder::new(&gpu).expect("recorder");
        r.quantize(act, &xb, 2 * cols, cols, 1, &qb).expect("quantize");
        r.submit().expect("submit");
        let mut got = vec![0u8; 4 * act.row_words(cols)];
        gpu.download(&qb, 0, &mut got).expect("download");
        let mut row = vec![0u8; bytes_for(partner, cols)];
        quantize_activation(partner, &x[2 * cols..], &mut row);
        assert_eq!(got, device_layout(act, &row), "quantize {act:?} at an offset");
        assert_no_validation_messages(&gpu);
        eprintln!("quantize {act:?}: identical bytes");
    }
}

/// CI's device (Mesa lavapipe 22.3) has shaderIntegerDotProduct, so the packed-dot matvecs
/// are compared there, not skipped.
#[test]
fn lavapipe_runs_the_packed_dot_matvecs() {
    let Some(gpu) = gpu() else { return };
    eprintln!("{}: integer dot product {}", gpu.info.name, gpu.info.integer_dot);
    if gpu.info.name.contains("llvmpipe") {
        assert!(gpu.info.integer_dot, "lavapipe should offer shaderIntegerDotProduct");
    }
}

#[test]
fn matvec_matches_cpu_reference() {
    let Some(gpu) = gpu() else { return };
    for ty in MATVEC_TYPES {
        let mut worst = 0.0f64;
        // Odd block counts; token counts around the shader's 8-token pass.
        for (blocks, n_tok) in [(1, 1), (7, 3), (31, 9), (7, 8)] {
            worst = worst.max(check_matvec(&gpu, ty, 5, blocks, n_tok, 1));
        }
        eprintln!("matvec {ty}: max |gpu - ref| = {worst:.3e}");
    }
}

#[test]
fn matvec_long_rows_and_split_bindings() {
    let Some(gpu) = gpu() else { return };
    for ty in MATVEC_TYPES {
        // 4097 blocks per row (K-quants: 4097 / 8 super-blocks rounded up), rows split over
        // three bindings of different sizes.
        let blocks = if ty.block_elems() == 256 { 513 } else { 4097 };
        let worst = check_matvec(&gpu, ty, 7, blocks, 2, 3);
        eprintln!("matvec {ty} long rows, 3 bindings: max |gpu - ref| = {worst:.3e}");
    }
}

#[test]
fn rmsnorm_matches_reference() {
    let Some(gpu) = gpu() else { return };
    for n in [1usize, 7, 576, 4097] {
        let rows = 3;
        let x = values(rows * n, n as u64);
        let w = values(n, 7 + n as u64);
        let (xb, wb, ob) =
            (upload_f32(&gpu, &x), upload_f32(&gpu, &w), upload_f32(&gpu, &vec![0.0; rows * n]));
        let eps = 1e-6f32;
        run(&gpu, Shader::RmsNorm, &[&xb, &wb, &ob], &[n as u32, rows as u32, 0, eps.to_bits()], rows as u32);
        let got = download_f32(&gpu, &ob, rows * n);
        let mut want = vec![0.0f32; rows * n];
        for (xr, o) in x.chunks_exact(n).zip(want.chunks_exact_mut(n)) {
            ops::rms_norm(xr, &w, eps, o);
        }
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        let worst = check(&format!("rmsnorm n {n}"), &got, &want, |i| 1e-5 * want[i].abs().max(1.0));
        eprintln!("rmsnorm n {n}: max |gpu - ref| = {worst:.3e}");
        assert_no_validation_messages(&gpu);
    }
}

#[test]
fn rope_matches_reference_in_both_layouts() {
    let Some(gpu) = gpu() else { return };
    for (layout, head_dim, n_rot) in
        [(RopeLayout::Normal, 64, 64), (RopeLayout::NeoX, 256, 256), (RopeLayout::NeoX, 48, 32)]
    {
        let (n_tok, n_heads, pos0) = (5usize, 3usize, 100usize);
        let table = RopeTable::new(n_rot, 10000.0, 1.0, layout);
        let half = n_rot / 2;
        let (mut c, mut s) = (vec![0.0f32; n_tok * half], vec![0.0f32; n_tok * half]); // (n_tok, half)
        for t in 0..n_tok {
            table.angles(pos0 + t, &mut c[t * half..(t + 1) * half], &mut s[t * half..(t + 1) * half]);
        }
        let cs = [c.as_slice(), s.as_slice()].concat(); // (2, n_tok, half)
        let x = values(n_tok * n_heads * head_dim, head_dim as u64);
        let (xb, cb) = (upload_f32(&gpu, &x), upload_f32(&gpu, &cs));
        let neox = (layout == RopeLayout::NeoX) as u32;
        let push = [n_tok as u32, n_heads as u32, head_dim as u32, n_rot as u32, neox];
        let pairs = (n_tok * n_heads * half) as u32;
        run(&gpu, Shader::Rope, &[&xb, &cb], &push, pairs.div_ceil(WORKGROUP));
        let got = download_f32(&gpu, &xb, x.len());
        let mut want = x.clone();
        for (i, head) in want.chunks_exact_mut(head_dim).enumerate() {
            let t = i / n_heads;
            table.rotate(head, &c[t * half..(t + 1) * half], &s[t * half..(t + 1) * half]);
        }
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        let worst = check(&format!("rope {layout:?} {head_dim}/{n_rot}"), &got, &want, |i| {
            1e-6 * want[i].abs().max(1.0)
        });
        eprintln!("rope {layout:?} head_dim {head_dim} n_rot {n_rot}: max |gpu - ref| = {worst:.3e}");
        assert_no_validation_messages(&gpu);
    }
}

#[test]
fn softmax_matches_reference() {
    let Some(gpu) = gpu() else { return };
    for n in [1usize, 7, 31, 4097] {
        let rows = 2;
        let x: Vec<f32> = values(rows * n, n as u64).iter().map(|v| v * 20.0).collect();
        let xb = upload_f32(&gpu, &x);
        run(&gpu, Shader::Softmax, &[&xb], &[n as u32, rows as u32], rows as u32);
        let got = download_f32(&gpu, &xb, rows * n);
        let mut want = x.clone();
        for r in want.chunks_exact_mut(n) {
            ops::softmax_in_place(r);
        }
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        let worst = check(&format!("softmax n {n}"), &got, &want, |_| 1e-6);
        eprintln!("softmax n {n}: max |gpu - ref| = {worst:.3e}");
        assert_no_validation_messages(&gpu);
    }
}

#[test]
fn gated_activations_match_reference() {
    let Some(gpu) = gpu() else { return };
    for (kind, name) in [(0u32, "silu"), (1, "gelu_tanh")] {
        for n in [1usize, 7, 4097] {
            let g: Vec<f32> = values(n, n as u64).iter().map(|v| v * 12.0).collect();
            let u = values(n, 3 + n as u64);
            let (gb, ub) = (upload_f32(&gpu, &g), upload_f32(&gpu, &u));
            run(&gpu, Shader::Activation, &[&gb, &ub], &[n as u32, kind], (n as u32).div_ceil(WORKGROUP));
            let got = download_f32(&gpu, &gb, n);
            let act = if kind == 0 { ops::silu } else { ops::gelu_f16_table };
            let want: Vec<f64> = g.iter().zip(&u).map(|(&a, &b)| (act(a) * b) as f64).collect();
            // GELU: both sides round the same f16 argument and round gelu to f16; the device's
            // tanh may differ from libm's by a few f32 ulps and so, rarely, land on the
            // neighbouring f16 value: allowed, at most one f16 ulp (2^-10 relative) times |u|,
            // and counted.
            let f16_ulp = |i: usize| (act(g[i]).abs() * 2f32.powi(-10) * u[i].abs()) as f64;
            let tol =
                |i: usize| if kind == 0 { 1e-5 * want[i].abs().max(1.0) } else { 1e-6 + 1.001 * f16_ulp(i) };
            let worst = check(&format!("{name} n {n}"), &got, &want, tol);
            let off = got
                .iter()
                .zip(&want)
                .filter(|(&a, &b)| (a as f64 - b).abs() > 1e-6 * b.abs().max(1.0))
                .count();
            eprintln!("{name} n {n}: max |gpu - ref| = {worst:.3e}, {off} of {n} off by one f16 step");
            assert_no_validation_messages(&gpu);
        }
    }
}

#[test]
fn axpy_and_scale_match_reference() {
    let Some(gpu) = gpu() else { return };
    let n = 4097;
    let (y, x) = (values(n, 11), values(n, 12));
    let (yb, xb) = (upload_f32(&gpu, &y), upload_f32(&gpu, &x));
    run(
        &gpu,
        Shader::Axpy,
        &[&yb, &xb],
        &[n as u32, 1.5f32.to_bits(), 1.0f32.to_bits()],
        (n as u32).div_ceil(WORKGROUP),
    );
    run(
        &gpu,
        Shader::Axpy,
        &[&yb, &yb],
        &[n as u32, 0.0f32.to_bits(), 0.25f32.to_bits()],
        (n as u32).div_ceil(WORKGROUP),
    );
    let got = download_f32(&gpu, &yb, n);
    let mut want = y.clone();
    ops::axpy(1.5, &x, &mut want);
    ops::scale_in_place(&mut want, 0.25);
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    let worst = check("axpy + scale", &got, &want, |i| 1e-6 * want[i].abs().max(1.0));
    eprintln!("axpy + scale n {n}: max |gpu - ref| = {worst:.3e}");
    assert_no_validation_messages(&gpu);
}

/// Attention of n_tok queries at pos0.. over a cache of pos0 + n_tok positions, in f64.
#[allow(clippy::too_many_arguments)]
fn attention_reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_tok: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
    pos0: usize,
    window: usize,
    scale: f32,
) -> Vec<f64> {
    let group = n_head / n_kv;
    let mut out = vec![0.0f64; n_tok * n_head * hd];
    for t in 0..n_tok {
        let pos = pos0 + t;
        let first = if window == 0 { 0 } else { (pos + 1).saturating_sub(window) };
        for h in 0..n_head {
            let qh = &q[(t * n_head + h) * hd..][..hd];
            let kvh = h / group;
            let mut s: Vec<f32> =
                (first..=pos).map(|j| ops::dot_f32(qh, &k[(j * n_kv + kvh) * hd..][..hd]) * scale).collect();
            ops::softmax_in_place(&mut s);
            let o = &mut out[(t * n_head + h) * hd..][..hd];
            for (jj, &p) in s.iter().enumerate() {
                let vr = &v[((first + jj) * n_kv + kvh) * hd..][..hd];
                for (od, &vd) in o.iter_mut().zip(vr) {
                    *od += p as f64 * vd as f64;
                }
            }
        }
    }
    out
}

#[test]
fn attention_matches_reference_full_and_windowed() {
    let Some(gpu) = gpu() else { return };
    // (n_tok, n_head, n_kv, head_dim, pos0, window): SmolLM2-like GQA 3:1 heads of 64, a
    // Gemma-like single KV head of 256, sliding windows shorter than the context, and groups
    // that fill or overflow one workgroup's heads.
    for (n_tok, n_head, n_kv, hd, pos0, window) in [
        (1, 9, 3, 64, 0, 0),
        (7, 9, 3, 64, 130, 0),
        (5, 4, 1, 256, 200, 0),
        (9, 4, 1, 256, 300, 64),
        (3, 2, 2, 32, 10, 5),
        // GQA groups of exactly one workgroup's 8 heads, and of 10 (two workgroups per KV head).
        (2, 16, 2, 16, 20, 7),
        (3, 10, 1, 32, 40, 0),
    ] {
        let n_ctx = pos0 + n_tok;
        let q = values(n_tok * n_head * hd, 21);
        let k = values(n_ctx * n_kv * hd, 22);
        let v = values(n_ctx * n_kv * hd, 23);
        let scale = 1.0 / (hd as f32).sqrt();
        let (qb, kb, vb) = (upload_f32(&gpu, &q), upload_f32(&gpu, &k), upload_f32(&gpu, &v));
        let ob = upload_f32(&gpu, &vec![0.0; n_tok * n_head * hd]);
        // pos0 comes from the step buffer (word 0), not a push constant.
        let step = upload(&gpu, &(pos0 as u32).to_le_bytes());
        let vis = upload(&gpu, &[0u8; 4]); // not read: no window-mode records
        let group = n_head / n_kv;
        // One workgroup per query head, and the GQA group's heads sharing one (same bits).
        let mut outs = Vec::new();
        for hpw in [1, group.min(ATTENTION_HEADS_PER_GROUP)] {
            let push = attention_push(n_tok, n_head, n_kv, hd, window, scale, n_ctx, hpw);
            let groups = attention_groups(n_tok, n_head, group, hpw);
            run(&gpu, Shader::Attention, &[&qb, &kb, &vb, &ob, &step, &vis], &push, groups);
            outs.push(download_f32(&gpu, &ob, n_tok * n_head * hd));
        }
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&outs[0]), bits(&outs[1]), "heads per workgroup changed the bits");
        let got = outs.pop().expect("output");
        let want = attention_reference(&q, &k, &v, n_tok, n_head, n_kv, hd, pos0, window, scale);
        let what =
            format!("attention n_tok {n_tok} heads {n_head}/{n_kv} hd {hd} pos0 {pos0} window {window}");
        let worst = check(&what, &got, &want, |i| 1e-5 * want[i].abs().max(1.0));
        eprintln!("{what}: max |gpu - ref| = {worst:.3e}");
        assert_no_validation_messages(&gpu);
    }
}

/// The attention shader's push constants (head_dim = head_dim_v = hd) for a cache of `rows`
/// rows, row = position (no sinks, a ring that never wraps, no window-mode records).
#[allow(clippy::too_many_arguments)]
fn attention_push(
    n_tok: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
    window: usize,
    scale: f32,
    rows: usize,
    hpw: usize,
) -> [u32; 14] {
    let group = (n_head / n_kv) as u32;
    let (hd, rows) = (hd as u32, rows as u32);
    [
        n_tok as u32,
        n_head as u32,
        group,
        hd,
        hd,
        window as u32,
        scale.to_bits(),
        0,
        rows,
        0,
        hd,
        0,
        0,
        hpw as u32,
    ]
}

/// The window KV mode's attention: K/V rows in a ring after `sinks` rows of their own, each
/// token seeing sinks 0..n_sink (their keys turned by per-sink cos/sin when re-numbered) and
/// positions lo..=p from its record, for both RoPE pair layouts and a partial rotation. The
/// reference turns the keys in f64 and attends over exactly those entries; the ring is filled
/// with kv_store so the two shaders' row mappings are checked together.
#[test]
fn attention_over_window_records_and_ring_rows_matches_reference() {
    let Some(gpu) = gpu() else { return };
    // (n_head, n_kv, hd, n_rot, neox, sinks, ring, pos0, n_tok)
    let cases = [
        (9, 3, 64, 64, false, 4, 40, 300, 5),
        (4, 1, 32, 16, true, 3, 23, 150, 9),
        (2, 2, 16, 16, false, 0, 20, 45, 3),
    ];
    for ((n_head, n_kv, hd, n_rot, neox, sinks, ring, pos0, n_tok), kv_f16) in
        cases.into_iter().flat_map(|c| [(c, false), (c, true)])
    {
        let (kv_len, q_len) = (n_kv * hd, n_head * hd);
        let end = pos0 + n_tok;
        // Every position's k and v; the cache holds the sinks and the last `ring` positions.
        let (k_all, v_all) = (values(end * kv_len, 41), values(end * kv_len, 42));
        // What the cache holds: the values themselves, or rounded to f16 as the CPU's pages.
        let held = |x: &[f32]| -> Vec<f32> {
            if kv_f16 {
                x.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
            } else {
                x.to_vec()
            }
        };
        let (k_held, v_held) = (held(&k_all), held(&v_all));
        let q = values(n_tok * q_len, 43);
        let scale = 1.0 / (hd as f32).sqrt();
        let rows = sinks + ring;
        let row_of = |j: usize| if j < sinks { j } else { sinks + (j - sinks) % ring };
        let dev = |floats: usize| gpu.alloc(MemKind::Device, 4 * floats as u64).expect("alloc");
        let cache_words = if kv_f16 { rows * kv_len / 2 } else { rows * kv_len };
        let (k_cache, v_cache) = (dev(cache_words), dev(cache_words));
        // Store positions 0..end in batches of n_tok through kv_store, as the engine does.
        for b0 in (0..end).step_by(n_tok) {
            let nb = n_tok.min(end - b0);
            let step = upload(&gpu, &(b0 as u32).to_le_bytes());
            let push = [kv_len as u32, nb as u32, sinks as u32, ring as u32, kv_f16 as u32];
            let groups = ((nb * kv_len) as u32).div_ceil(WORKGROUP);
            for (all, cache) in [(&k_all, &k_cache), (&v_all, &v_cache)] {
                let src = upload_f32(&gpu, &all[b0 * kv_len..(b0 + nb) * kv_len]);
                run(&gpu, Shader::KvStore, &[&src, cache, &step], &push, groups);
            }
        }
        // The rings hold the sinks and the last `ring` positions, bit for bit.
        let words = download_f32(&gpu, &k_cache, cache_words);
        let stored: Vec<f32> = if kv_f16 {
            words
                .iter()
                .flat_map(|w| {
                    let b = w.to_bits();
                    [f16::from_bits(b as u16).to_f32(), f16::from_bits((b >> 16) as u16).to_f32()]
                })
                .collect()
        } else {
            words
        };
        for j in (0..sinks).chain(end.saturating_sub(ring).max(sinks)..end) {
            let (got, want) = (&stored[row_of(j) * kv_len..][..kv_len], &k_held[j * kv_len..][..kv_len]);
            assert!(got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "row of position {j}");
        }
        // Records: token t sees n_sink sinks (re-rotated for odd t) and lo..=p.
        let half = n_rot / 2;
        let mut words = vec![0u32; 4 * n_tok];
        let mut turns: Vec<Option<Vec<(f32, f32)>>> = Vec::new();
        for t in 0..n_tok {
            let p = pos0 + t;
            let lo = p + 1 - (ring - n_tok).min(p + 1 - sinks);
            let n_sink = sinks.saturating_sub(t % 2);
            let cs = if t % 2 == 1 && n_sink > 0 {
                let at = words.len() as u32;
                let pairs: Vec<(f32, f32)> = (0..n_sink * half)
                    .map(|i| ((i as f32 * 0.37 + t as f32).cos(), (i as f32 * 0.37 + t as f32).sin()))
                    .collect();
                words.extend(pairs.iter().flat_map(|(c, s)| [c.to_bits(), s.to_bits()]));
                turns.push(Some(pairs));
                at
            } else {
                turns.push(None);
                u32::MAX
            };
            // With f16 caches, every other turned token rounds its turned keys to f16 (decoding).
            let round = (kv_f16 && t % 4 == 1) as u32;
            words[4 * t..4 * t + 4].copy_from_slice(&[lo as u32, n_sink as u32, cs, round]);
        }
        let vis = upload(&gpu, bytemuck::cast_slice(&words));
        let step = upload(&gpu, &(pos0 as u32).to_le_bytes());
        let (qb, ob) = (upload_f32(&gpu, &q), dev(n_tok * q_len));
        let group = n_head / n_kv;
        let hpw = group.min(ATTENTION_HEADS_PER_GROUP);
        let push = [
            n_tok as u32,
            n_head as u32,
            group as u32,
            hd as u32,
            hd as u32,
            0,
            scale.to_bits(),
            sinks as u32,
            ring as u32,
            1,
            n_rot as u32,
            neox as u32,
            kv_f16 as u32,
            hpw as u32,
        ];
        let bindings = [&qb, &k_cache, &v_cache, &ob, &step, &vis];
        run(&gpu, Shader::Attention, &bindings, &push, attention_groups(n_tok, n_head, group, hpw));
        let got = download_f32(&gpu, &ob, n_tok * q_len);
        // Reference in f64 over the record's entries, from the positions' own rows.
        let mut want = vec![0.0f64; n_tok * q_len];
        for t in 0..n_tok {
            let p = pos0 + t;
            let (lo, n_sink) = (words[4 * t] as usize, words[4 * t + 1] as usize);
            let entries: Vec<usize> = (0..n_sink).chain(lo..=p).collect();
            assert!(entries.iter().all(|&j| j < sinks || p - j < ring), "entry outside the ring");
            for h in 0..n_head {
                let kvh = h / group;
                let qh = &q[(t * n_head + h) * hd..][..hd];
                let key = |e: usize, j: usize| -> Vec<f64> {
                    let mut k: Vec<f64> =
                        k_held[(j * n_kv + kvh) * hd..][..hd].iter().map(|&x| x as f64).collect();
                    if let (Some(pairs), true) = (&turns[t], e < n_sink) {
                        let round = words[4 * t + 3] != 0;
                        for f in 0..half {
                            let (a, b) = if neox { (f, f + half) } else { (2 * f, 2 * f + 1) };
                            let (c, s) = pairs[e * half + f];
                            if round {
                                // The CPU's f16 copy of a turned key: f32 plain products, rounded.
                                let (k0, k1) = (k[a] as f32, k[b] as f32);
                                let r = |x: f32| f16::from_f32(x).to_f32() as f64;
                                (k[a], k[b]) = (r(k0 * c - k1 * s), r(k0 * s + k1 * c));
                            } else {
                                let (c, s) = (c as f64, s as f64);
                                (k[a], k[b]) = (k[a] * c - k[b] * s, k[a] * s + k[b] * c);
                            }
                        }
                    }
                    k
                };
                let s: Vec<f64> = entries
                    .iter()
                    .enumerate()
                    .map(|(e, &j)| {
                        key(e, j).iter().zip(qh).map(|(k, &q)| k * q as f64).sum::<f64>() * scale as f64
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let z: f64 = w.iter().sum();
                let o = &mut want[(t * n_head + h) * hd..][..hd];
                for (&j, wj) in entries.iter().zip(&w) {
                    for (od, &vd) in o.iter_mut().zip(&v_held[(j * n_kv + kvh) * hd..][..hd]) {
                        *od += wj / z * vd as f64;
                    }
                }
            }
        }
        let what = format!(
            "window attention heads {n_head}/{n_kv} hd {hd} rot {n_rot} neox {neox} sinks {sinks} ring {ring} pos0 {pos0} f16 {kv_f16}"
        );
        let worst = check(&what, &got, &want, |i| 1e-5 * want[i].abs().max(1.0));
        eprintln!("{what}: max |gpu - ref| = {worst:.3e}");
        assert_no_validation_messages(&gpu);
    }
}

/// Generation as the engine runs it: one command buffer recorded once (inputs copied in from
/// staging, the token's K and V stored at pos0 with kv_store, attention, result copied out)
/// and re-submitted for positions 0..n_ctx with only the staging contents changed (pos0 and
/// the token's q, k, v). Every step matches the reference over the positions stored so far
/// (the KV length grows by one per submission, crossing the 64-key chunk), the cache ends up
/// holding every stored row bit for bit, and the recording keeps its memory blocks: buffers
/// dropped before it are only returned when it drops.
#[test]
fn recorded_generation_step_resubmitted_per_position() {
    let Some(gpu) = gpu() else { return };
    let baseline = gpu.memory_stats();
    for (n_head, n_kv, hd, window) in [(4, 2, 32, 0), (3, 1, 64, 5)] {
        let n_ctx = 70;
        let (q_len, kv_len) = (n_head * hd, n_kv * hd);
        // Every position's q, k, v, fed one position per submission.
        let (q_all, k_all, v_all) =
            (values(n_ctx * q_len, 31), values(n_ctx * kv_len, 32), values(n_ctx * kv_len, 33));
        let scale = 1.0 / (hd as f32).sqrt();
        let dev = |floats: usize| gpu.alloc(MemKind::Device, 4 * floats as u64).expect("alloc");
        let (step, q, k, v, out) = (dev(1), dev(q_len), dev(kv_len), dev(kv_len), dev(q_len));
        let (k_cache, v_cache) = (dev(n_ctx * kv_len), dev(n_ctx * kv_len));
        // Staging in: pos0 (one word), q, k, v; staging out: the attention output.
        let stage_in = gpu.alloc(MemKind::Staging, 4 * (1 + q_len + 2 * kv_len) as u64).expect("alloc");
        let stage_out = gpu.alloc(MemKind::Staging, 4 * q_len as u64).expect("alloc");
        let mut r = Recorder::new(&gpu).expect("recorder");
        let at = |floats: usize| 4 * floats as u64;
        r.copy(&stage_in, 0, &step, 0, 4).expect("copy");
        r.copy(&stage_in, at(1), &q, 0, at(q_len)).expect("copy");
        r.copy(&stage_in, at(1 + q_len), &k, 0, at(kv_len)).expect("copy");
        r.copy(&stage_in, at(1 + q_len + kv_len), &v, 0, at(kv_len)).expect("copy");
        let groups = (kv_len as u32).div_ceil(WORKGROUP);
        let store = [kv_len as u32, 1, 0, n_ctx as u32, 0];
        r.dispatch(Shader::KvStore, &[&k, &k_cache, &step], &store, groups).expect("store k");
        r.dispatch(Shader::KvStore, &[&v, &v_cache, &step], &store, groups).expect("store v");
        let push = attention_push(1, n_head, n_kv, hd, window, scale, n_ctx, 1);
        let vis = dev(1); // not read: no window-mode records
        let bindings = [&q, &k_cache, &v_cache, &out, &step, &vis];
        r.dispatch(Shader::Attention, &bindings, &push, attention_groups(1, n_head, n_head / n_kv, 1))
            .expect("attention");
        r.copy(&out, 0, &stage_out, 0, at(q_len)).expect("copy");
        let mut rec = r.finish().expect("finish");
        assert_eq!(rec.dispatches(), 3);
        let mut worst = 0.0f64;
        for pos in 0..n_ctx {
            stage_in.write(0, &(pos as u32).to_le_bytes()).expect("write");
            stage_in.write(at(1), bytemuck::cast_slice(&q_all[pos * q_len..][..q_len])).expect("write");
            stage_in
                .write(at(1 + q_len), bytemuck::cast_slice(&k_all[pos * kv_len..][..kv_len]))
                .expect("write");
            let v_at = at(1 + q_len + kv_len);
            stage_in.write(v_at, bytemuck::cast_slice(&v_all[pos * kv_len..][..kv_len])).expect("write");
            rec.submit().expect("submit");
            let mut got = vec![0.0f32; q_len];
            stage_out.read(0, bytemuck::cast_slice_mut(&mut got)).expect("read");
            let q_pos = &q_all[pos * q_len..][..q_len];
            let want = attention_reference(q_pos, &k_all, &v_all, 1, n_head, n_kv, hd, pos, window, scale);
            let what = format!("recorded step heads {n_head}/{n_kv} hd {hd} window {window} at pos {pos}");
            worst = worst.max(check(&what, &got, &want, |i| 1e-5 * want[i].abs().max(1.0)));
        }
        let stored =
            (download_f32(&gpu, &k_cache, n_ctx * kv_len), download_f32(&gpu, &v_cache, n_ctx * kv_len));
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&stored.0), bits(&k_all), "k cache after {n_ctx} stores");
        assert_eq!(bits(&stored.1), bits(&v_all), "v cache after {n_ctx} stores");
        eprintln!("recorded step heads {n_head}/{n_kv} hd {hd} window {window}: {n_ctx} submissions, max |gpu - ref| = {worst:.3e}");
        drop((step, q, k, v, out, k_cache, v_cache, vis, stage_in, stage_out));
        assert_ne!(gpu.memory_stats().blocks, baseline.blocks, "the recording pins its blocks");
        drop(rec);
        assert_eq!(gpu.memory_stats(), baseline, "memory not returned after the recording dropped");
        assert_no_validation_messages(&gpu);
    }
}

#[test]
fn memory_is_returned_when_buffers_drop() {
    let Some(gpu) = gpu() else { return };
    let before = gpu.memory_stats();
    for round in 0..3 {
        let a = gpu.alloc(MemKind::Device, 100 << 20).expect("alloc");
        let b = gpu.alloc(MemKind::Device, 1000).expect("alloc");
        let c = gpu.alloc(MemKind::Staging, 5000).expect("alloc");
        assert!(gpu.memory_stats().live_bytes >= (100 << 20) + 6000, "round {round}");
        drop((a, b, c));
        assert_eq!(gpu.memory_stats(), before, "round {round}: memory not returned");
    }
}
