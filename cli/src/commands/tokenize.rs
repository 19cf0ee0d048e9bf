//! `fovea tokenize`: token ids as a JSON array.

use anyhow::{Context, Result};

use crate::common::{model_path, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Text to tokenize.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    text: Option<String>,
    /// Read the text from a UTF-8 file instead.
    #[arg(short = 'f', long = "file")]
    file: Option<std::path::PathBuf>,
    /// Do not add BOS/EOS even when the model asks for them.
    #[arg(long = "no-bos")]
    no_bos: bool,
    /// Treat special-token text (e.g. <|im_start|>) as plain text.
    #[arg(long = "no-parse-special")]
    no_parse_special: bool,
}

pub fn main(a: Args) -> Result<()> {
    let path = model_path(&a.model)?;
    let tokenizer = fovea_engine::Model::load_tokenizer(&path)?;
    // clap guarantees exactly one of the text and --file.
    let text = match &a.file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => a.text.clone().unwrap_or_default(),
    };
    let ids = tokenizer.encode(&text, !a.no_bos, !a.no_parse_special);
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
