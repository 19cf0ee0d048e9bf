//! A conversation: its messages, and one reply per turn that reuses the KV cache.
//!
//! Each turn renders the whole conversation, tokenizes it, and compares it with the tokens the
//! session already holds. The session is cut back to the common prefix and only the rest is
//! evaluated, so earlier turns are never processed twice. The prefix is usually everything up to
//! the end of the last reply; it is shorter when the reply's text tokenizes differently from how
//! it was generated, or when the template rewrites earlier turns.

use serde::{Deserialize, Serialize};

use super::template::ChatTemplate;
use super::ChatError;
use crate::generate::{generate, GenerateOptions, GenerationStats};
use crate::session::Session;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// "system", "user" or "assistant" (templates may accept others).
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.to_string(), content: content.to_string() }
    }

    pub fn system(content: &str) -> Message {
        Message::new("system", content)
    }

    pub fn user(content: &str) -> Message {
        Message::new("user", content)
    }

    pub fn assistant(content: &str) -> Message {
        Message::new("assistant", content)
    }
}

/// Messages from JSON: an array of `{"role": ..., "content": ...}` objects (other keys ignored).
pub fn parse_messages(json: &str) -> Result<Vec<Message>, ChatError> {
    serde_json::from_str(json).map_err(|e| {
        ChatError::Messages(format!("expected a JSON array of {{\"role\", \"content\"}} strings: {e}"))
    })
}

/// How much of a turn's prompt the KV cache already held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptReuse {
    /// Tokens of the whole rendered conversation, generation prompt included.
    pub total: usize,
    /// Of those, already in the session from earlier turns.
    pub reused: usize,
    /// Evaluated in this turn before generating (`total - reused`).
    pub evaluated: usize,
}

#[derive(Clone, Debug)]
pub struct Reply {
    /// The reply's text (without the end-of-turn token); partial if generation was stopped.
    pub text: String,
    pub prompt: PromptReuse,
    pub generation: GenerationStats,
}

pub struct Conversation {
    template: ChatTemplate,
    messages: Vec<Message>,
    /// The tokens whose keys and values the session holds, in order (`len() <= n_past`).
    cached: Vec<u32>,
}

impl Conversation {
    pub fn new(template: ChatTemplate) -> Conversation {
        Conversation { template, messages: Vec::new(), cached: Vec::new() }
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// Removes the last message (a user turn whose reply failed).
    pub fn pop(&mut self) -> Option<Message> {
        self.messages.pop()
    }

    /// Forgets every message but the leading system ones; the next turn re-uses what it can.
    pub fn clear(&mut self) {
        let n_system = self.messages.iter().take_while(|m| m.role == "system").count();
        self.messages.truncate(n_system);
    }

    /// Generates the assistant's reply to the conversation so far, appends it as a message and
    /// returns it. `on_text` receives each piece of text and returns false to stop (Ctrl-C); the
    /// partial reply is kept. `session` must be the one this conversation's earlier turns used
    /// (or a fresh one).
    pub fn reply(
        &mut self,
        session: &mut Session<'_>,
        opts: &GenerateOptions,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Reply, ChatError> {
        let rendered = self.template.render(&self.messages, true)?;
        let tokens = self.template.tokenize(&session.model().tokenizer, &rendered);

        self.cached.truncate(session.n_past());
        let mut reused = common_prefix(&self.cached, &tokens);
        // Generation needs the logits of the last prompt token, so evaluate at least one.
        if reused == tokens.len() {
            reused = reused.saturating_sub(1);
        }
        // A sliding-window cache may not be able to step back that far: it then keeps less.
        let reused = session.truncate(reused);
        self.cached.truncate(reused);

        let mut text = String::new();
        let result = generate(session, &tokens[reused..], opts, |piece| {
            text.push_str(piece);
            on_text(piece)
        });
        let generation = match result {
            Ok(stats) => stats,
            Err(e) => {
                // `eval` rejects input before doing any work, so nothing past the prefix is valid.
                session.truncate(reused);
                return Err(e.into());
            }
        };
        // The session evaluated the prompt and every generated token but the last one sampled.
        self.cached.extend_from_slice(&tokens[reused..]);
        self.cached.extend_from_slice(&generation.tokens);
        self.cached.truncate(session.n_past());

        self.messages.push(Message::assistant(&text));
        let prompt = PromptReuse { total: tokens.len(), reused, evaluated: tokens.len() - reused };
        Ok(Reply { text, prompt, generation })
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_lengths() {
        assert_eq!(common_prefix(&[], &[1, 2]), 0);
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2]), 2);
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 5, 3]), 1);
        assert_eq!(common_prefix(&[4], &[1]), 0);
    }

    #[test]
    fn messages_from_json() {
        let m = parse_messages(
            r#"[{"role":"user","content":"hi","name":"x"},{"role":"assistant","content":""}]"#,
        )
        .unwrap();
        assert_eq!(m, vec![Message::user("hi"), Message::assistant("")]);
        for bad in [r#"{"role":"user"}"#, r#"[{"role":"user"}]"#, r#"[{"role":1,"content":"a"}]"#, "nope"] {
            assert!(matches!(parse_messages(bad), Err(ChatError::Messages(_))), "{bad}");
        }
    }
}
