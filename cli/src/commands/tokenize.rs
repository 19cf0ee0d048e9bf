//! `fovea tokenize`: token ids as a JSON array.

use anyhow::Result;

use crate::common::{model_path, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Text to tokenize.
    text: String,
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
    let ids = tokenizer.encode(&a.text, !a.no_bos, !a.no_parse_special);
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
