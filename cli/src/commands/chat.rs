//! `fovea chat`: talk with a model using its own chat template.
//!
//! Three forms:
//! - on a terminal, a REPL: replies stream to stdout, the KV cache is kept across turns, Ctrl-C
//!   stops the current reply (the session goes on), Ctrl-D or Ctrl-C twice at the prompt exits;
//! - with stdin not a terminal, one reply to a conversation read as JSON (for scripts);
//! - `--render`: print the rendered prompt of a JSON conversation, without running the model.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fovea_engine::chat::{
    parse_messages, BuiltinFormat, ChatTemplate, Conversation, Message, TemplateOrigin,
};
use fovea_engine::generate::{GenerateOptions, StopReason};
use fovea_engine::{Model, Session};

use crate::common::{load_model, model_path, new_session, ComputeArgs, ModelArg, SamplingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// System message opening the conversation (unless the JSON input has one).
    #[arg(long = "system")]
    system: Option<String>,
    /// Print the rendered prompt of the JSON conversation on stdin and exit (no model run).
    #[arg(long = "render")]
    render: bool,
    /// Use a built-in chat format instead of the file's template: chatml, gemma, llama3.
    #[arg(long = "chat-format")]
    chat_format: Option<String>,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n_predict: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    compute: ComputeArgs,
    /// Print per-turn token counts (prompt tokens reused / evaluated) and speeds on stderr.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

pub fn main(a: Args) -> Result<()> {
    let forced = a.chat_format.as_deref().map(BuiltinFormat::from_name).transpose()?;
    if a.render {
        return render(&a, forced);
    }
    let opts = generate_options(&a)?;
    let (model, _) = load_model(&a.model, &a.compute)?;
    let template = ChatTemplate::select(
        model.chat_template.as_deref(),
        &model.config.arch_name,
        &model.tokenizer,
        forced,
    )?;
    note_template(&template);
    let mut session = new_session(&model, &a.compute)?;
    let mut chat = Conversation::new(template);
    if std::io::stdin().is_terminal() {
        if let Some(system) = &a.system {
            chat.push(Message::system(system));
        }
        repl(&mut chat, &mut session, &opts, a.verbose)
    } else {
        for m in with_system(read_messages()?, a.system.as_deref()) {
            chat.push(m);
        }
        reply_once(&mut chat, &mut session, &opts, a.verbose)
    }
}

/// The prompt tokens of one user turn (and an optional system message), for `fovea run --chat`.
pub fn single_turn_prompt(model: &Model, system: Option<&str>, user: &str) -> Result<Vec<u32>> {
    let template = ChatTemplate::for_model(model)?;
    note_template(&template);
    let messages = with_system(vec![Message::user(user)], system);
    let rendered = template.render(&messages, true)?;
    Ok(template.tokenize(&model.tokenizer, &rendered))
}

/// `--render`: the rendered prompt on stdout exactly, nothing added.
fn render(a: &Args, forced: Option<BuiltinFormat>) -> Result<()> {
    let template = ChatTemplate::from_file(&model_path(&a.model)?, forced)?;
    note_template(&template);
    let messages = with_system(read_messages()?, a.system.as_deref());
    let rendered = template.render(&messages, true)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(rendered.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn note_template(template: &ChatTemplate) {
    if let TemplateOrigin::Builtin(format) = template.origin() {
        eprintln!("note: using the built-in '{}' chat format", format.name());
    }
}

fn read_messages() -> Result<Vec<Message>> {
    let mut json = String::new();
    std::io::stdin().read_to_string(&mut json).context("cannot read the conversation from stdin")?;
    Ok(parse_messages(&json)?)
}

/// `messages` opened by a system message, unless they already have one.
fn with_system(mut messages: Vec<Message>, system: Option<&str>) -> Vec<Message> {
    if let Some(system) = system {
        if messages.first().is_none_or(|m| m.role != "system") {
            messages.insert(0, Message::system(system));
        }
    }
    messages
}

fn generate_options(a: &Args) -> Result<GenerateOptions> {
    Ok(GenerateOptions { max_tokens: a.n_predict, sampler: a.sampling.config()? })
}

/// One reply to the JSON conversation, streamed to stdout.
fn reply_once(
    chat: &mut Conversation,
    session: &mut Session<'_>,
    opts: &GenerateOptions,
    verbose: bool,
) -> Result<()> {
    if chat.messages().is_empty() {
        bail!("the conversation on stdin has no messages");
    }
    let mut stdout = std::io::stdout().lock();
    let reply = chat.reply(session, opts, |text| {
        stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_ok()
    })?;
    let _ = writeln!(stdout);
    if verbose {
        report_turn(&reply);
    }
    Ok(())
}

/// What the Ctrl-C handler and the REPL share.
#[derive(Default)]
struct Interrupt {
    /// A reply is being generated: Ctrl-C stops it.
    generating: AtomicBool,
    /// Set by Ctrl-C during a reply, read between tokens.
    stop_reply: AtomicBool,
    /// Ctrl-C was pressed at the prompt once: the next one exits.
    exit_armed: AtomicBool,
}

impl Interrupt {
    /// Runs on the handler's own thread (the `ctrlc` crate waits on a pipe; no polling).
    fn on_ctrl_c(&self) {
        if self.generating.load(Ordering::SeqCst) {
            self.stop_reply.store(true, Ordering::SeqCst);
        } else if self.exit_armed.swap(true, Ordering::SeqCst) {
            eprintln!();
            std::process::exit(0);
        } else {
            // The terminal discarded the typed line; say how to leave and prompt again.
            eprint!("\n(Ctrl-C again or Ctrl-D to exit)\n> ");
        }
    }
}

fn repl(
    chat: &mut Conversation,
    session: &mut Session<'_>,
    opts: &GenerateOptions,
    verbose: bool,
) -> Result<()> {
    let interrupt = Arc::new(Interrupt::default());
    let handler = Arc::clone(&interrupt);
    ctrlc::set_handler(move || handler.on_ctrl_c()).context("cannot install the Ctrl-C handler")?;
    eprintln!(
        "Chatting: Ctrl-C stops a reply; Ctrl-D (or Ctrl-C twice) exits; /clear forgets the conversation."
    );

    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        print!("> ");
        std::io::stdout().flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            println!();
            return Ok(());
        }
        interrupt.exit_armed.store(false, Ordering::SeqCst);
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        if text.trim() == "/clear" {
            chat.clear();
            continue;
        }
        chat.push(Message::user(text));

        interrupt.stop_reply.store(false, Ordering::SeqCst);
        interrupt.generating.store(true, Ordering::SeqCst);
        let mut stdout = std::io::stdout().lock();
        let result = chat.reply(session, opts, |piece| {
            let _ = stdout.write_all(piece.as_bytes()).and_then(|_| stdout.flush());
            !interrupt.stop_reply.load(Ordering::SeqCst)
        });
        interrupt.generating.store(false, Ordering::SeqCst);
        drop(stdout);
        println!();
        match result {
            Ok(reply) => {
                match reply.generation.stop {
                    StopReason::Cancelled => eprintln!("[stopped]"),
                    StopReason::ContextFull => {
                        eprintln!("[the context is full: /clear to start over, or a larger --ctx]")
                    }
                    StopReason::MaxTokens => eprintln!("[reply cut at {} tokens (-n)]", opts.max_tokens),
                    StopReason::EndOfGeneration => {}
                }
                if verbose {
                    report_turn(&reply);
                }
            }
            Err(e) => {
                // The turn did not happen: forget the user's message and keep chatting.
                chat.pop();
                eprintln!("error: {e}");
            }
        }
    }
}

fn report_turn(reply: &fovea_engine::chat::Reply) {
    let (p, g) = (&reply.prompt, &reply.generation);
    eprintln!(
        "[prompt: {} tokens, {} reused, {} evaluated at {:.1} tok/s | reply: {} tokens, {:.1} tok/s]",
        p.total,
        p.reused,
        p.evaluated,
        g.prompt_tokens_per_second(),
        g.generated_tokens,
        g.generation_tokens_per_second()
    );
}
