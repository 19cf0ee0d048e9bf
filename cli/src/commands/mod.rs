pub mod bench;
pub mod chat;
pub mod inspect;
pub mod logits;
pub mod passkey;
pub mod perplexity;
pub mod run;
pub mod tokenize;
