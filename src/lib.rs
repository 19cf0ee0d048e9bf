//! Shared support for the cross-crate tests and benches: golden data and models.
//!
//! Golden data lives in `../shared/golden` beside the repository (override with `FOVEA_GOLDEN`);
//! models come through the engine's own cache and fetcher, exactly as users get them.

use std::path::PathBuf;
use std::sync::Mutex;

pub mod checks;
pub mod svg_chart;

use fovea_engine::hub::{resolve_model, FetchOptions};
use fovea_engine::{LoadOptions, Model};
use serde_json::Value;

/// Re-exported for the golden checks.
pub use fovea_engine::sampler::top_k;

/// The golden directory.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("FOVEA_GOLDEN") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"),
    }
}

/// A golden JSON file by name (`smollm2.json`).
pub fn golden(name: &str) -> Value {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} is required for this test: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The path of a known model, fetched into the user's cache on first use.
pub fn model_path(name: &str) -> PathBuf {
    resolve_model(name, &FetchOptions::from_env()).unwrap_or_else(|e| panic!("model {name}: {e}"))
}

/// A loaded model shared by all tests of one test binary (loading is cheap, but the reference
/// path dequantizes hundreds of MB), one per (name, reference_f32).
pub fn model(name: &str, reference_f32: bool) -> &'static Model {
    static LOADED: Mutex<Vec<(String, bool, &'static Model)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, _, m)) = loaded.iter().find(|(n, r, _)| n == name && *r == reference_f32) {
        return m;
    }
    let m = Model::load(&model_path(name), &LoadOptions { reference_f32 })
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let m: &'static Model = Box::leak(Box::new(m));
    loaded.push((name.to_string(), reference_f32, m));
    m
}

/// The golden text used for perplexity.
pub fn golden_text() -> String {
    let path = golden_dir().join("text/pride_and_prejudice_ch01-15.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
