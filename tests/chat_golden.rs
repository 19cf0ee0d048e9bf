//! Chat-template renders against the golden data (Python jinja2 with Hugging Face's settings;
//! Gemma 3 from its official turn format), through the path `fovea chat --render` uses: the
//! template read from the file's metadata alone, then rendered.

use fovea_engine::chat::{parse_messages, BuiltinFormat, ChatTemplate, TemplateOrigin};
use fovea_engine::Model;
use fovea_suite::{golden, model_path};

/// Renders every case of `golden_name` and returns how many there were.
fn check_golden(golden_name: &str, model: &str) -> (ChatTemplate, usize) {
    let doc = golden(golden_name);
    let template = ChatTemplate::from_file(&model_path(model), None).expect("template");
    let cases = doc["cases"].as_object().expect("cases");
    for (name, case) in cases {
        let messages = parse_messages(&case["messages"].to_string()).expect("messages");
        let add_generation_prompt = case["add_generation_prompt"].as_bool().expect("add_generation_prompt");
        let expected = case["rendered"].as_str().expect("rendered");
        let got = template.render(&messages, add_generation_prompt).expect("render");
        assert_eq!(got, expected, "{golden_name} case {name}");
    }
    (template, cases.len())
}

#[test]
fn smollm2_renders_its_file_template_exactly() {
    let (template, n) = check_golden("smollm2.chat.json", "smollm2-135m");
    assert!(n >= 4);
    assert_eq!(template.origin(), TemplateOrigin::File);
}

#[test]
fn gemma3_renders_the_builtin_gemma_format_exactly() {
    let (template, n) = check_golden("gemma3.chat.json", "gemma3-270m");
    assert!(n >= 4);
    assert_eq!(template.origin(), TemplateOrigin::Builtin(BuiltinFormat::Gemma));
}

/// The Gemma render starts with the BOS text: tokenizing it must give exactly one BOS id.
#[test]
fn gemma3_render_tokenizes_with_a_single_bos() {
    let path = model_path("gemma3-270m");
    let tokenizer = Model::load_tokenizer(&path).expect("tokenizer");
    let template = ChatTemplate::from_file(&path, None).expect("template");
    let rendered =
        template.render(&parse_messages(r#"[{"role":"user","content":"Hi"}]"#).unwrap(), true).unwrap();
    let bos = tokenizer.bos().expect("gemma has a BOS");
    assert!(tokenizer.add_bos(), "gemma's tokenizer adds BOS by itself, so the check matters");
    let ids = template.tokenize(&tokenizer, &rendered);
    assert_eq!(ids[0], bos);
    assert_eq!(ids.iter().filter(|&&id| id == bos).count(), 1, "{ids:?}");
    let start_of_turn = tokenizer.token_id("<start_of_turn>").expect("<start_of_turn>");
    assert_eq!(ids[1], start_of_turn, "special-token text must map to its token");
}
