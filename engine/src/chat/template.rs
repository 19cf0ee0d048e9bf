//! The chat template: a Jinja environment set up as Hugging Face transformers renders
//! `tokenizer.chat_template`, and the choice between the file's template and a built-in one.
//!
//! Hugging Face renders with jinja2's `trim_blocks=True, lstrip_blocks=True`, a
//! `raise_exception(msg)` function, `strftime_now(fmt)`, and Python string methods
//! (`.strip()`, `.startswith()`, ...), with the variables `messages`, `add_generation_prompt`,
//! `bos_token` and `eos_token`. Undefined attributes (`message.tool_calls`) are falsy, as in
//! jinja2's default `Undefined`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use fovea_formats::mmap::MappedGguf;
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, Value};

use super::builtin::BuiltinFormat;
use super::conversation::Message;
use super::ChatError;
use crate::error::EngineError;
use crate::model::Model;
use crate::tokenizer::Tokenizer;

const TEMPLATE_NAME: &str = "chat_template";

/// Where a template came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The file's `tokenizer.chat_template`.
    File,
    /// A built-in format, chosen by architecture because the file has no template (or forced).
    Builtin(BuiltinFormat),
}

pub struct ChatTemplate {
    env: Environment<'static>,
    origin: TemplateOrigin,
    /// The BOS and EOS token texts, as templates see them.
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source` (the syntax is checked here, not at the first render).
    pub fn new(
        source: &str,
        origin: TemplateOrigin,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, ChatError> {
        let mut env = Environment::new();
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())?;
        Ok(ChatTemplate { env, origin, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The template for a model: its file's, else the built-in format of its architecture.
    pub fn for_model(model: &Model) -> Result<ChatTemplate, ChatError> {
        ChatTemplate::select(model.chat_template.as_deref(), &model.config.arch_name, &model.tokenizer, None)
    }

    /// The template of a GGUF file, reading only its metadata and tokenizer (no weights): what
    /// `fovea chat --render` uses, so rendering works for any architecture the file names.
    pub fn from_file(path: &Path, forced: Option<BuiltinFormat>) -> Result<ChatTemplate, ChatError> {
        let file = MappedGguf::open(path).map_err(EngineError::from)?;
        let gguf = file.gguf().map_err(EngineError::from)?;
        let fmt = |source| EngineError::Format { path: path.to_path_buf(), source };
        let arch = gguf.get_str("general.architecture").map_err(fmt)?;
        let source = gguf.get_str("tokenizer.chat_template").ok();
        let tokenizer = Model::load_tokenizer(path)?;
        ChatTemplate::select(source, arch, &tokenizer, forced)
    }

    /// The file's template `source` unless a format is `forced` or there is none; then the
    /// built-in format for `arch`.
    pub fn select(
        source: Option<&str>,
        arch: &str,
        tokenizer: &Tokenizer,
        forced: Option<BuiltinFormat>,
    ) -> Result<ChatTemplate, ChatError> {
        let text = |id: Option<u32>| {
            id.map_or(String::new(), |id| {
                String::from_utf8_lossy(tokenizer.token_to_piece(id, true)).into_owned()
            })
        };
        let (bos, eos) = (text(tokenizer.bos()), text(tokenizer.eos()));
        match (forced, source) {
            (None, Some(source)) => ChatTemplate::new(source, TemplateOrigin::File, &bos, &eos),
            (forced, _) => {
                let format = forced.unwrap_or_else(|| BuiltinFormat::for_arch(arch));
                ChatTemplate::new(format.source(), TemplateOrigin::Builtin(format), &bos, &eos)
            }
        }
    }

    pub fn origin(&self) -> TemplateOrigin {
        self.origin
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The conversation as the model's prompt text; with `add_generation_prompt` it ends with
    /// the opening of an assistant turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ChatError> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())]))
            .collect();
        let ctx = Value::from_pairs([
            ("messages", Value::from(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ]);
        Ok(self.env.get_template(TEMPLATE_NAME)?.render(ctx)?)
    }

    /// Token ids of a rendered conversation. Special-token text (`<|im_start|>`) maps to its
    /// token; the tokenizer's BOS is added only if the text does not already begin with the BOS
    /// text, so a template that writes `{{ bos_token }}` does not get a second one (llama.cpp
    /// checks the same way).
    pub fn tokenize(&self, tokenizer: &Tokenizer, rendered: &str) -> Vec<u32> {
        let has_bos = !self.bos_token.is_empty() && rendered.starts_with(&self.bos_token);
        tokenizer.encode(rendered, !has_bos, true)
    }
}

/// `raise_exception(message)`: templates call it to reject a conversation (e.g. roles that do not
/// alternate).
fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// `strftime_now(format)`: the current UTC date and time (Llama 3.x templates print the date).
fn strftime_now(format: String) -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    strftime(&format, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// The subset of C `strftime` that chat templates use, for `secs` since the Unix epoch (UTC).
/// Unknown conversions are copied through unchanged.
fn strftime(format: &str, secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS[(days + 3).rem_euclid(7) as usize]; // 1970-01-01 was a Thursday
    let month_name = MONTHS[(month - 1) as usize];
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &format!("{:02}", year.rem_euclid(100)),
            Some('m') => out += &format!("{month:02}"),
            Some('d') => out += &format!("{day:02}"),
            Some('e') => out += &format!("{day:2}"),
            Some('B') => out += month_name,
            Some('b') => out += &month_name[..3],
            Some('A') => out += weekday,
            Some('a') => out += &weekday[..3],
            Some('H') => out += &format!("{h:02}"),
            Some('M') => out += &format!("{m:02}"),
            Some('S') => out += &format!("{s:02}"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..365
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_template(source: &str) -> ChatTemplate {
        ChatTemplate::new(source, TemplateOrigin::File, "<s>", "</s>").unwrap()
    }

    #[test]
    fn trim_and_lstrip_blocks_as_hugging_face() {
        // lstrip_blocks removes the indentation before a block tag; trim_blocks the newline after.
        let t = file_template(
            "{% for m in messages %}\n    {% if m.role %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}",
        );
        assert_eq!(t.render(&[Message::user("a"), Message::user("b")], false).unwrap(), "[a]\n[b]\n");
    }

    #[test]
    fn variables_and_python_string_methods() {
        let t = file_template(
            "{{ bos_token }}{{ messages[0].content.strip().upper() }}{% if messages[0].content.startswith(' x') %}!{% endif %}\
             {% if add_generation_prompt %}{{ eos_token }}{% endif %}",
        );
        assert_eq!(t.render(&[Message::user(" xy ")], true).unwrap(), "<s>XY!</s>");
        assert_eq!(t.render(&[Message::user(" xy ")], false).unwrap(), "<s>XY!");
    }

    #[test]
    fn loop_controls_and_undefined_attributes() {
        let t = file_template(
            "{% for m in messages %}{% if m.tool_calls %}T{% endif %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.content }}{% endfor %}",
        );
        assert_eq!(t.render(&[Message::user("a"), Message::user("b")], false).unwrap(), "a");
    }

    #[test]
    fn raise_exception_is_an_error_with_its_message() {
        let t = file_template("{{ raise_exception('roles must alternate') }}");
        let err = t.render(&[], true).unwrap_err().to_string();
        assert!(err.contains("roles must alternate"), "{err}");
    }

    #[test]
    fn syntax_errors_show_at_compile_time() {
        assert!(ChatTemplate::new("{% for %}", TemplateOrigin::File, "", "").is_err());
    }

    #[test]
    fn strftime_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday (leap day).
        let secs = 1_709_211_909;
        assert_eq!(strftime("%d %b %Y", secs), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %e %H:%M:%S %y %m %% %q", secs),
            "Thursday February 29 13:05:09 24 02 % %q"
        );
        assert_eq!(strftime("%Y-%m-%d %a", 0), "1970-01-01 Thu");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
