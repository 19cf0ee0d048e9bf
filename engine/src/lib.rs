//! The Fovea engine: load a GGUF model, run it, tokenize, sample.
//!
//! ```no_run
//! use fovea_engine::{Model, LoadOptions, Session, SessionOptions, Logits, sampler::argmax};
//! let model = Model::load("model.gguf".as_ref(), &LoadOptions::default())?;
//! let mut session = Session::new(&model, &SessionOptions::default())?;
//! let prompt = model.tokenizer.encode("The capital of France is", true, false);
//! let logits = session.eval(&prompt, Logits::Last)?;
//! let next = argmax(&logits);
//! # Ok::<(), fovea_engine::EngineError>(())
//! ```

pub mod attention;
pub mod attention_tiled;
pub mod backend;
pub mod chat;
pub mod config;
pub mod error;
pub mod forward;
pub mod generate;
pub mod hub;
pub mod kv;
pub mod kv_cache;
pub mod matmul;
pub mod model;
pub mod perplexity;
pub mod perplexity_stream;
pub mod sampler;
pub mod session;
pub mod threadpool;
pub mod tokenizer;
pub mod weights;

pub use backend::Backend;
pub use config::{Arch, ModelConfig};
pub use error::EngineError;
pub use model::{LoadOptions, Model};
pub use session::{Logits, Session, SessionOptions};
