//! Built-in chat formats, for model files that carry no `tokenizer.chat_template`.
//!
//! llama.cpp keeps a list of known formats (llama-chat.cpp) and falls back to ChatML when it
//! cannot tell. We write each format as a small Jinja template so that built-in and file
//! templates go through the same renderer and the same Hugging Face settings.

use super::ChatError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinFormat {
    /// `<|im_start|>role\n...<|im_end|>\n`: llama.cpp's fallback for unknown models.
    ChatMl,
    /// Gemma 1-3: no system role (its text opens the first user turn, then a blank line), the
    /// assistant is "model", contents stripped, the BOS text first.
    Gemma,
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>`, contents stripped.
    Llama3,
}

impl BuiltinFormat {
    pub const NAMES: &'static str = "chatml, gemma, llama3";

    /// The format for a file of architecture `arch` (`general.architecture`) without a template.
    pub fn for_arch(arch: &str) -> BuiltinFormat {
        if arch.starts_with("gemma") {
            BuiltinFormat::Gemma
        } else {
            BuiltinFormat::ChatMl
        }
    }

    pub fn from_name(name: &str) -> Result<BuiltinFormat, ChatError> {
        match name {
            "chatml" => Ok(BuiltinFormat::ChatMl),
            "gemma" => Ok(BuiltinFormat::Gemma),
            "llama3" => Ok(BuiltinFormat::Llama3),
            other => Err(ChatError::UnknownFormat(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BuiltinFormat::ChatMl => "chatml",
            BuiltinFormat::Gemma => "gemma",
            BuiltinFormat::Llama3 => "llama3",
        }
    }

    /// The Jinja source, rendered with trim_blocks and lstrip_blocks like a file's template.
    pub fn source(self) -> &'static str {
        match self {
            BuiltinFormat::ChatMl => CHATML,
            BuiltinFormat::Gemma => GEMMA,
            BuiltinFormat::Llama3 => LLAMA3,
        }
    }
}

const CHATML: &str = "\
{%- for message in messages -%}
{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<|im_start|>assistant\\n' }}
{%- endif -%}";

// System turns are collected (llama.cpp concatenates several) and emitted at the start of the
// next non-model turn, followed by a blank line.
const GEMMA: &str = "\
{{- bos_token -}}
{%- set pending = namespace(system='') -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- set pending.system = pending.system + message.content | trim -%}
{%- else -%}
{%- set role = 'model' if message.role == 'assistant' else message.role -%}
{{ '<start_of_turn>' + role + '\\n' }}
{%- if pending.system and role != 'model' -%}
{{ pending.system + '\\n\\n' }}
{%- set pending.system = '' -%}
{%- endif -%}
{{ message.content | trim + '<end_of_turn>\\n' }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<start_of_turn>model\\n' }}
{%- endif -%}";

const LLAMA3: &str = "\
{{- bos_token -}}
{%- for message in messages -%}
{{ '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif -%}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatTemplate, Message, TemplateOrigin};

    fn render(format: BuiltinFormat, bos: &str, messages: &[Message]) -> String {
        let t = ChatTemplate::new(format.source(), TemplateOrigin::Builtin(format), bos, "</s>").unwrap();
        t.render(messages, true).unwrap()
    }

    #[test]
    fn arch_picks_gemma_for_every_gemma_generation() {
        for arch in ["gemma", "gemma2", "gemma3"] {
            assert_eq!(BuiltinFormat::for_arch(arch), BuiltinFormat::Gemma);
        }
        assert_eq!(BuiltinFormat::for_arch("llama"), BuiltinFormat::ChatMl);
    }

    #[test]
    fn names_round_trip() {
        for f in [BuiltinFormat::ChatMl, BuiltinFormat::Gemma, BuiltinFormat::Llama3] {
            assert_eq!(BuiltinFormat::from_name(f.name()).unwrap(), f);
            assert!(BuiltinFormat::NAMES.contains(f.name()));
        }
        assert!(BuiltinFormat::from_name("vicuna").is_err());
    }

    #[test]
    fn chatml_keeps_contents_verbatim() {
        let got = render(BuiltinFormat::ChatMl, "<s>", &[Message::system(" S "), Message::user("hi\n")]);
        assert_eq!(
            got,
            "<|im_start|>system\n S <|im_end|>\n<|im_start|>user\nhi\n<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_merges_system_into_first_user_turn_only() {
        let got = render(
            BuiltinFormat::Gemma,
            "<bos>",
            &[
                Message::system(" Be brief. "),
                Message::user(" a "),
                Message::assistant(" b "),
                Message::user("c"),
            ],
        );
        assert_eq!(
            got,
            "<bos><start_of_turn>user\nBe brief.\n\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n\
             <start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn llama3_headers() {
        let got = render(BuiltinFormat::Llama3, "<|begin_of_text|>", &[Message::user(" hi ")]);
        assert_eq!(
            got,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}
