//! `fovea`: run, inspect and measure LLMs from GGUF files.

mod commands;
mod common;
mod kv_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{bench, chat, inspect, logits, passkey, perplexity, run, tokenize};

#[derive(Parser)]
#[command(name = "fovea", version, about = "Fovea: fast local LLM inference from GGUF files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt, streamed to stdout (timings on stderr).
    Run(run::Args),
    /// Chat with a model using its chat template (JSON conversation on stdin when not a terminal).
    Chat(chat::Args),
    /// Print the token ids of a text as a JSON array.
    Tokenize(tokenize::Args),
    /// Print the K most likely next tokens after a prompt as JSON.
    Logits(logits::Args),
    /// Print a model's metadata and tensor table.
    Inspect(inspect::Args),
    /// Measure perplexity on a text file (llama-perplexity's method).
    Perplexity(perplexity::Args),
    /// Measure prompt-processing and generation speed (llama-bench style).
    Bench(bench::Args),
    /// Pass-key retrieval accuracy over prompt lengths and key depths (needle in a haystack).
    Passkey(passkey::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::main(a),
        Command::Chat(a) => chat::main(a),
        Command::Tokenize(a) => tokenize::main(a),
        Command::Logits(a) => logits::main(a),
        Command::Inspect(a) => inspect::main(a),
        Command::Perplexity(a) => perplexity::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Passkey(a) => passkey::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, dropping a cause whose text is already shown: several
/// library errors print their source inside their own message and also return it as `source()`.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if line.is_empty() {
            line = cause;
        } else if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}
