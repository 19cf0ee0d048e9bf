//! With the `vulkan` feature: recompile the GLSL compute shaders (src/ops/*.comp,
//! src/quant/*.comp) with `glslangValidator` when it is installed, into OUT_DIR, and warn when
//! the committed SPIR-V under spirv/ differs (the code embeds the committed files, so a build
//! without the tool works; `.ci/vulkan.sh` regenerates them and fails on a difference).
//! Without the feature, or without the tool, this does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shaders(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "comp")).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_VULKAN").is_none() {
        return;
    }
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let dirs = [root.join("src/ops"), root.join("src/quant")];
    for d in &dirs {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    println!("cargo:rerun-if-changed=src/quant/matvec.glsl");
    let have_tool =
        Command::new("glslangValidator").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have_tool {
        return;
    }
    for src in dirs.iter().flat_map(|d| shaders(d)) {
        let Some(stem) = src.file_stem().and_then(|s| s.to_str()) else { continue };
        let spv = out_dir.join(format!("{stem}.spv"));
        let status = Command::new("glslangValidator")
            .args(["-V", "--target-env", "vulkan1.2", "-o"])
            .arg(&spv)
            .arg(&src)
            .output();
        match status {
            Ok(o) if o.status.success() => {
                let committed = root.join("spirv").join(format!("{stem}.spv"));
                if std::fs::read(&committed).ok() != std::fs::read(&spv).ok() {
                    println!(
                        "cargo:warning=spirv/{stem}.spv is stale: run .ci/vulkan.sh (or glslangValidator -V \
                         --target-env vulkan1.2 -o spirv/{stem}.spv {}) and commit it",
                        src.display()
                    );
                }
            }
            Ok(o) => {
                let msg = String::from_utf8_lossy(&o.stdout);
                println!("cargo:warning={} does not compile: {}", src.display(), msg.replace('\n', " | "));
            }
            Err(e) => println!("cargo:warning=glslangValidator failed to run: {e}"),
        }
    }
}
