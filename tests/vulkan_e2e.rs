//! The Vulkan backend end to end against the CPU backend and llama.cpp's golden data, with the
//! validation layer on (any validation message fails the test).
//!
//! - Golden prompts: the Vulkan logits pass the same checks as the CPU's quantized path (same
//!   top-1 unless llama.cpp's own top-1/top-2 margin is below 0.1, top-10 sharing at least 8
//!   ids, shared logits within 0.5; see src/checks.rs).
//! - Greedy 16 tokens: the same ids as the CPU backend up to the first step whose CPU top-1/top-2
//!   margin is below 0.1 (there a different but correct summation order may flip the argmax; the
//!   Vulkan matvecs multiply f32 activations while the CPU quantizes them to Q8 first).
//! - Mixed placement: the first half of the layers on the device, the rest on the CPU.
//! - Resource hygiene: creating and dropping models and sessions returns every device byte.
//!
//! Skipped with a notice when no Vulkan device exists, unless FOVEA_REQUIRE_VULKAN=1
//! (`.ci/vulkan.sh`, which runs on Mesa lavapipe).
#![cfg(feature = "vulkan")]

use std::sync::Arc;

use fovea_engine::backend::vulkan::{shared_gpu, VulkanForward};
use fovea_engine::sampler::{argmax, top_k};
use fovea_engine::{Backend, LoadOptions, Logits, Model, Session, SessionOptions};
use fovea_kernels::vulkan::{DeviceOptions, Gpu};
use fovea_suite::checks::{LOW_MARGIN, QUANT_LOGIT_TOL, QUANT_MIN_OVERLAP};
use fovea_suite::{golden, model, model_path};
use serde_json::Value;

/// Greedy steps compared with the CPU.
const STEPS: usize = 16;

/// |device logit - llama.cpp's f32 dequantized reference| on its top-10 (the CPU's own f32
/// reference path is held to 1e-2; mixed placement adds the CPU layers' Q8 activations, so the
/// bound is checked only when every layer is on the device).
const F32_REF_TOL: f64 = 2e-2;

/// Golden prompts longer than this are left out: a 700-token prompt takes minutes on lavapipe
/// (a software device on a CI runner's 2 cores). The four short prompts remain.
const MAX_PROMPT: usize = 64;

/// The golden next-token cases with prompts of at most MAX_PROMPT tokens.
fn short_cases(golden: &Value) -> impl Iterator<Item = &Value> {
    golden["next_token"]
        .as_array()
        .expect("next_token")
        .iter()
        .filter(|c| c["n_prompt_tokens"].as_u64().is_some_and(|n| n as usize <= MAX_PROMPT))
}

/// The shared device with validation on (held by the test so sessions reuse it), or None.
fn device() -> Option<Arc<Gpu>> {
    match shared_gpu(&DeviceOptions { validation: true, device_index: None }) {
        Ok(g) => {
            assert!(g.validation_enabled(), "another test opened the shared device without validation");
            Some(g)
        }
        Err(e) => {
            if std::env::var("FOVEA_REQUIRE_VULKAN").is_ok_and(|v| v == "1") {
                panic!("FOVEA_REQUIRE_VULKAN=1 but: {e}");
            }
            eprintln!("NOTICE: skipping Vulkan end-to-end test: {e}");
            None
        }
    }
}

fn assert_no_validation_messages(gpu: &Gpu) {
    let m = gpu.take_messages();
    assert!(m.is_empty(), "validation messages:\n{}", m.join("\n"));
}

fn session(model: &Model, n_ctx: usize, backend: Backend) -> Session<'_> {
    Session::new(model, &SessionOptions { n_ctx, backend, ..SessionOptions::default() }).expect("session")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// Top-1/top-2 margin of a logit row.
fn margin(logits: &[f32]) -> f64 {
    let t = top_k(logits, 2);
    (t[0].1 - t[1].1) as f64
}

/// The golden next-token checks of the quantized path on `backend`, and the f32-reference
/// top-10 within F32_REF_TOL; returns the largest differences from llama.cpp's quantized and
/// f32 reference runs.
///
/// With `f32_ref` off (mixed placement) the shared logits may be up to twice QUANT_LOGIT_TOL
/// from llama.cpp: f32-activation device layers followed by Q8-activation CPU layers are a mix
/// of two valid arithmetics, and the mix is not bounded by either one's distance (Gemma 3
/// code_python, one logit: quantized golden 12.517, f32 reference 12.753, mixed 13.056).
fn golden_next_token(model: &Model, golden: &Value, backend: Backend, f32_ref: bool) -> (f64, f64) {
    let tol = if f32_ref { QUANT_LOGIT_TOL } else { 2.0 * QUANT_LOGIT_TOL };
    let (mut worst, mut worst_ref) = (0.0f64, 0.0f64);
    for case in short_cases(golden) {
        let name = case["name"].as_str().unwrap_or("?");
        let tokens = ids(&case["prompt_tokens"]);
        let mut s = session(model, tokens.len() + 1, backend);
        let logits = s.eval(&tokens, Logits::Last).expect("eval");
        let ours = top_k(&logits, 10);
        let gold: Vec<(u32, f64)> = case["top10"]
            .as_array()
            .expect("top10")
            .iter()
            .map(|e| (e["id"].as_u64().expect("id") as u32, e["logit"].as_f64().expect("logit")))
            .collect();
        let gold_margin = case["greedy"]["top1_margin"][0].as_f64().expect("margin");
        if gold_margin >= LOW_MARGIN {
            assert_eq!(ours[0].0, gold[0].0, "{name} on {backend:?}: top-1 differs from llama.cpp");
        }
        let mut shared = 0;
        for &(id, logit) in &ours {
            if let Some(&(_, g)) = gold.iter().find(|(gid, _)| *gid == id) {
                shared += 1;
                let diff = (logit as f64 - g).abs();
                assert!(diff <= tol, "{name} on {backend:?}: token {id} logit {logit} vs golden {g}");
                worst = worst.max(diff);
            }
        }
        assert!(shared >= QUANT_MIN_OVERLAP, "{name} on {backend:?}: only {shared} top-10 ids shared");
        // The device multiplies dequantized weights with f32 activations: llama.cpp's f32
        // reference run (weights dequantized, f32 products) is the same arithmetic up to
        // summation order, so its top-10 must agree closely.
        let reference = &case["f32_dequantized_reference"]["top10"];
        let mut ref_diff = 0.0f64;
        for (i, e) in reference.as_array().expect("top10").iter().enumerate().filter(|_| f32_ref) {
            let (id, g) = (e["id"].as_u64().expect("id") as usize, e["logit"].as_f64().expect("logit"));
            let diff = (logits[id] as f64 - g).abs();
            assert!(
                diff <= F32_REF_TOL,
                "{name} on {backend:?}: f32-reference top-10 #{i} (token {id}): {} vs {g}",
                logits[id]
            );
            ref_diff = ref_diff.max(diff);
        }
        let vs_ref = if f32_ref { format!("{ref_diff:.4}") } else { "(not checked)".into() };
        eprintln!(
            "{backend:?} {name:>22}: top-1 {} (golden {}), margin {gold_margin:.3}; |logit - llama.cpp f32 reference| {vs_ref}",
            ours[0].0, gold[0].0
        );
        worst_ref = worst_ref.max(ref_diff);
    }
    (worst, worst_ref)
}

/// Greedy STEPS tokens on the CPU and on `backend` from each of the first `cases` golden
/// prompts: equal up to the first low-margin CPU step. Returns (steps compared, steps total,
/// largest |logit| difference at compared steps).
fn greedy_vs_cpu(model: &Model, golden: &Value, backend: Backend, cases: usize) -> (usize, usize, f32) {
    let (mut compared, mut total, mut worst) = (0, 0, 0.0f32);
    for case in short_cases(golden).take(cases) {
        let name = case["name"].as_str().unwrap_or("?");
        let tokens = ids(&case["prompt_tokens"]);
        let n_ctx = tokens.len() + STEPS + 1;
        let run = |backend: Backend| {
            let mut s = session(model, n_ctx, backend);
            let mut logits = s.eval(&tokens, Logits::Last).expect("eval");
            let mut steps = Vec::new(); // (id, margin, logits)
            for _ in 0..STEPS {
                let next = argmax(&logits);
                steps.push((next, margin(&logits), logits.clone()));
                logits = s.eval(&[next], Logits::Last).expect("eval");
            }
            steps
        };
        let cpu = run(Backend::Cpu);
        let dev = run(backend);
        let check = cpu.iter().position(|(_, m, _)| *m < LOW_MARGIN).unwrap_or(STEPS);
        for i in 0..check {
            assert_eq!(dev[i].0, cpu[i].0, "{name} on {backend:?}: greedy step {i} differs from the CPU");
            let d = dev[i].2.iter().zip(&cpu[i].2).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            worst = worst.max(d);
        }
        let all_equal = dev.iter().zip(&cpu).all(|(a, b)| a.0 == b.0);
        eprintln!(
            "{backend:?} {name:>22}: greedy ids equal over {check} confident steps of {STEPS}; all {STEPS} equal: {all_equal}"
        );
        compared += check;
        total += STEPS;
    }
    (compared, total, worst)
}

fn end_to_end(name: &str, golden_file: &str, greedy_cases: usize) {
    let Some(gpu) = device() else { return };
    let m = model(name, false);
    let golden = golden(golden_file);
    let all = Backend::Vulkan { gpu_layers: None };
    let (d, r) = golden_next_token(m, &golden, all, true);
    eprintln!(
        "{name} vulkan: golden top-10 within {d:.4} of llama.cpp (quantized run), {r:.4} (f32 reference run)"
    );
    let (c, t, w) = greedy_vs_cpu(m, &golden, all, greedy_cases);
    eprintln!("{name} vulkan: {c} of {t} greedy steps compared, all equal; max |logit - cpu| {w:.4}");
    assert_no_validation_messages(&gpu);

    let half = Backend::Vulkan { gpu_layers: Some(m.config.n_layer / 2) };
    let (d, _) = golden_next_token(m, &golden, half, false);
    eprintln!("{name} mixed {half:?}: golden top-10 shared logits within {d:.4} of llama.cpp");
    let (c, t, w) = greedy_vs_cpu(m, &golden, half, 1);
    eprintln!("{name} mixed: {c} of {t} greedy steps compared, all equal; max |logit - cpu| {w:.4}");
    assert_no_validation_messages(&gpu);
}

#[test]
fn smollm2_on_vulkan_matches_cpu_and_golden() {
    end_to_end("smollm2-135m", "smollm2.json", 3);
}

#[test]
fn gemma3_on_vulkan_matches_cpu_and_golden() {
    end_to_end("gemma3-270m", "gemma3.json", 2);
}

#[test]
fn models_and_device_forwards_return_device_memory() {
    if device().is_none() {
        return;
    }
    // A device of its own (not the shared one other tests use), so its byte counts are exact.
    let gpu = Arc::new(Gpu::new(&DeviceOptions { validation: true, device_index: None }).expect("device"));
    let path = model_path("smollm2-135m");
    let baseline = gpu.memory_stats();
    let mut held = None;
    for round in 0..3 {
        let m = Model::load(&path, &LoadOptions::default()).expect("load");
        for gpu_layers in [m.config.n_layer, m.config.n_layer / 3] {
            let mut dev = VulkanForward::with_gpu(Arc::clone(&gpu), &m, gpu_layers, 64, 8).expect("upload");
            dev.forward(&m, &[1, 2, 3], 0, 2).expect("forward");
            let live = gpu.memory_stats();
            assert!(live.live_bytes > baseline.live_bytes, "the device forward holds device memory");
            if gpu_layers == m.config.n_layer {
                // Every round holds the same amount: nothing accumulates across rounds.
                assert_eq!(*held.get_or_insert(live), live, "round {round}");
            }
        }
        drop(m);
        assert_eq!(gpu.memory_stats(), baseline, "round {round}: device memory not returned");
    }
    eprintln!("hygiene: 3 rounds x 2 placements, held {held:?}, back to {baseline:?}");
    assert_no_validation_messages(&gpu);
}
