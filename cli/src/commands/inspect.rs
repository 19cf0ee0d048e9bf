//! `fovea inspect`: metadata and tensor table of a GGUF file.

use anyhow::Result;
use fovea_formats::mmap::MappedGguf;

use crate::common::{model_path, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (GGUF) or known name.
    model: String,
}

pub fn main(a: Args) -> Result<()> {
    let path = model_path(&ModelArg { model: a.model })?;
    let file = MappedGguf::open(&path)?;
    let gguf = file.gguf()?;
    println!("file: {}", path.display());
    println!("gguf version: {}, alignment: {}", gguf.version(), gguf.alignment());
    println!("\nmetadata ({} keys):", gguf.metadata().len());
    for (key, value) in gguf.metadata() {
        println!("  {key} = {value}");
    }
    let tensors = gguf.tensors();
    let total: u64 = tensors.iter().map(|t| t.n_bytes).sum();
    println!("\ntensors ({}, {:.1} MiB):", tensors.len(), total as f64 / (1 << 20) as f64);
    let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!("  {:<width$}  {:<6}  {:<24}  {:>12}", "name", "type", "shape", "bytes");
    for t in tensors {
        let shape = t.shape().iter().map(u64::to_string).collect::<Vec<_>>().join(" x ");
        println!("  {:<width$}  {:<6}  {:<24}  {:>12}", t.name, t.ty.name(), shape, t.n_bytes);
    }
    Ok(())
}
