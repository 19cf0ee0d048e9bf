//! A two-turn conversation on the real SmolLM2: the second turn evaluates only the tokens the
//! session does not hold yet, and replies exactly as a fresh session given the whole
//! conversation does.

use fovea_engine::chat::{ChatTemplate, Conversation, Message};
use fovea_engine::generate::{GenerateOptions, StopReason};
use fovea_engine::sampler::SamplerConfig;
use fovea_engine::{Session, SessionOptions};

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens, sampler: SamplerConfig { temperature: 0.0, ..SamplerConfig::default() } }
}

#[test]
fn second_turn_evaluates_only_new_tokens() {
    let model = fovea_suite::model("smollm2-135m", false);
    let opts = SessionOptions { n_ctx: 512, ..SessionOptions::default() };
    let mut session = Session::new(model, &opts).unwrap();
    let mut chat = Conversation::new(ChatTemplate::for_model(model).unwrap());

    chat.push(Message::user("What is 2+2?"));
    let first = chat.reply(&mut session, &greedy(48), |_| true).unwrap();
    assert_eq!(first.generation.stop, StopReason::EndOfGeneration, "{:?}", first.text);
    assert_eq!((first.prompt.reused, first.prompt.evaluated), (0, first.prompt.total));
    // The session holds the prompt and every reply token but the end-of-turn one (sampled, never fed).
    let held = first.prompt.total + first.generation.tokens.len() - 1;
    assert_eq!(session.n_past(), held);

    chat.push(Message::user("And what is 3+3?"));
    let second = chat.reply(&mut session, &greedy(48), |_| true).unwrap();
    // Everything held is reused: the reply re-tokenizes to the ids it was generated as.
    assert_eq!(second.prompt.reused, held, "second turn re-evaluated part of the first");
    assert_eq!(second.prompt.evaluated, second.prompt.total - held);
    // New: <|im_end|> \n <|im_start|> user \n ... <|im_end|> \n <|im_start|> assistant \n
    let new_turn = model.tokenizer.encode(
        "<|im_end|>\n<|im_start|>user\nAnd what is 3+3?<|im_end|>\n<|im_start|>assistant\n",
        false,
        true,
    );
    assert_eq!(second.prompt.evaluated, new_turn.len());

    // Same reply as a fresh session that processes the whole conversation at once.
    let mut fresh_session = Session::new(model, &opts).unwrap();
    let mut fresh = Conversation::new(ChatTemplate::for_model(model).unwrap());
    for m in &chat.messages()[..chat.messages().len() - 1] {
        fresh.push(m.clone());
    }
    let again = fresh.reply(&mut fresh_session, &greedy(48), |_| true).unwrap();
    assert_eq!(again.prompt.reused, 0);
    assert_eq!(again.text, second.text);
}

#[test]
fn stopped_reply_keeps_the_session_usable() {
    let model = fovea_suite::model("smollm2-135m", false);
    let mut session =
        Session::new(model, &SessionOptions { n_ctx: 512, ..SessionOptions::default() }).unwrap();
    let mut chat = Conversation::new(ChatTemplate::for_model(model).unwrap());
    chat.push(Message::user("Write a long story about a dragon."));
    let mut pieces = 0;
    let stopped = chat
        .reply(&mut session, &greedy(200), |_| {
            pieces += 1;
            pieces < 3
        })
        .unwrap();
    assert_eq!(stopped.generation.stop, StopReason::Cancelled);
    assert_eq!(chat.messages().last(), Some(&Message::assistant(&stopped.text)));

    chat.push(Message::user("What is 2+2?"));
    let next = chat.reply(&mut session, &greedy(48), |_| true).unwrap();
    assert!(next.prompt.reused >= stopped.prompt.total, "{:?}", next.prompt);
    assert!(next.text.contains('4'), "{:?}", next.text);
}
