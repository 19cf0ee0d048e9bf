//! Chat: render a conversation with the model's own template, tokenize it, and reply while
//! keeping the KV cache across turns.
//!
//! - [`template`]: the Jinja environment configured as Hugging Face renders chat templates, and
//!   the choice between the file's `tokenizer.chat_template` and a built-in format.
//! - [`builtin`]: the built-in formats (ChatML, Gemma, Llama 3) for files that carry no template.
//! - [`conversation`]: messages, and one reply per turn that evaluates only the tokens the session
//!   does not already hold.
//!
//! ```no_run
//! use fovea_engine::chat::{ChatTemplate, Conversation, Message};
//! use fovea_engine::generate::GenerateOptions;
//! use fovea_engine::{LoadOptions, Model, Session, SessionOptions};
//! let model = Model::load("model.gguf".as_ref(), &LoadOptions::default())?;
//! let mut session = Session::new(&model, &SessionOptions::default())?;
//! let mut chat = Conversation::new(ChatTemplate::for_model(&model)?);
//! chat.push(Message::user("Hi!"));
//! let opts = GenerateOptions { max_tokens: 64, sampler: Default::default() };
//! let reply = chat.reply(&mut session, &opts, |text| { print!("{text}"); true })?;
//! # Ok::<(), fovea_engine::chat::ChatError>(())
//! ```

pub mod builtin;
pub mod conversation;
pub mod template;

pub use builtin::BuiltinFormat;
pub use conversation::{parse_messages, Conversation, Message, PromptReuse, Reply};
pub use template::{ChatTemplate, TemplateOrigin};

use crate::error::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The template does not compile, or raised an error while rendering (`raise_exception`).
    #[error("chat template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("unknown chat format '{0}' (known: {known})", known = BuiltinFormat::NAMES)]
    UnknownFormat(String),
    /// The conversation given as JSON is not an array of {"role", "content"} strings.
    #[error("messages: {0}")]
    Messages(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}
