//! Chat templates render byte for byte as transformers renders them.
//!
//! `tests/fixtures/chat/parity.json` holds what `apply_chat_template(...,
//! tokenize=False)` produced for each (template, conversation) in transformers
//! (see `tests/fixtures/make_chat_parity.py`), or the error it raised;
//! `tests/fixtures/chat/<name>/` the tokenizer files transformers saved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewardkit::text::chat::{ChatTemplate, ChatTemplateSpec, Message};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    transformers: String,
    templates: Vec<TemplateEntry>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct TemplateEntry {
    name: String,
    template: String,
    special_tokens: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    messages: Vec<Message>,
    add_generation_prompt: bool,
    expected: Option<String>,
    error: Option<String>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat")
}

fn fixture() -> Fixture {
    let path = fixture_dir().join("parity.json");
    let text = std::fs::read_to_string(&path).expect("read parity.json");
    serde_json::from_str(&text).expect("parse parity.json")
}

fn spec(entry: &TemplateEntry) -> ChatTemplateSpec {
    entry.special_tokens.iter().fold(
        ChatTemplateSpec::new(entry.template.as_str()),
        |s, (k, v)| s.with_special_token(k, v.as_str()).expect("special token"),
    )
}

/// Each template, built from its source and from the files transformers saved.
fn templates(fx: &Fixture) -> BTreeMap<String, ChatTemplate> {
    let mut out = BTreeMap::new();
    for entry in &fx.templates {
        let from_spec = ChatTemplate::with_origin(spec(entry), &entry.name).expect("compile");
        let config = fixture_dir()
            .join(&entry.name)
            .join("tokenizer_config.json");
        let from_disk = ChatTemplate::from_tokenizer_config(&config)
            .expect("load tokenizer_config.json")
            .expect("a chat template");
        assert_eq!(from_disk.spec(), from_spec.spec(), "{}", config.display());
        out.insert(entry.name.clone(), from_disk);
    }
    out
}

#[test]
fn renders_like_transformers() {
    let fx = fixture();
    let templates = templates(&fx);
    assert!(fx.cases.len() >= 80, "only {} cases", fx.cases.len());
    let mut failures = Vec::new();
    for case in &fx.cases {
        let t = &templates[&case.template];
        let got = t.render(&case.messages, case.add_generation_prompt);
        match (&case.expected, &case.error, got) {
            (Some(want), None, Ok(got)) if *want == got => {}
            (Some(want), None, got) => {
                failures.push(format!("{}: want {want:?}, got {got:?}", case.name))
            }
            (None, Some(raised), Err(e)) => {
                // transformers reports "TemplateError: <message>".
                let message = raised.split_once(": ").map_or(raised.as_str(), |p| p.1);
                if !e.to_string().contains(message) {
                    failures.push(format!("{}: want error {raised:?}, got {e}", case.name));
                }
            }
            (None, Some(raised), Ok(got)) => failures.push(format!(
                "{}: transformers raised {raised:?}, rewardkit rendered {got:?}",
                case.name
            )),
            _ => failures.push(format!("{}: malformed case", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from transformers {}:\n{}",
        failures.len(),
        fx.cases.len(),
        fx.transformers,
        failures.join("\n")
    );
}

/// The plain-text prompt format of the data readers: `Label: content` blocks
/// separated by a blank line.
fn prompt_text(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| {
            let label = match m.role.as_str() {
                "user" => "User",
                "assistant" => "Assistant",
                _ => "System",
            };
            format!("{label}: {}", m.content)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn pairs_split_where_transformers_prompt_ends() {
    let fx = fixture();
    let templates = templates(&fx);
    let expected: BTreeMap<&str, &Case> = fx.cases.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut checked = 0;
    for case in fx.cases.iter().filter(|c| c.name.ends_with("/full")) {
        let (Some(full), Some((last, prompt))) = (&case.expected, case.messages.split_last())
        else {
            continue;
        };
        let prompt_case = expected[case.name.replace("/full", "/prompt").as_str()];
        let Some(head) = &prompt_case.expected else {
            continue;
        };
        let t = &templates[&case.template];
        let pair = t
            .render_conversation_pair(prompt, &last.content)
            .expect("pair");
        assert_eq!(&pair.text, full, "{}", case.name);
        if full.starts_with(head.as_str()) {
            assert_eq!(pair.prompt_part(), head, "{}", case.name);
        }
        assert!(
            pair.response_part().contains(last.content.trim()),
            "{}: {:?}",
            case.name,
            pair.response_part()
        );
        // The same pair stored as rewardkit's plain-text prompt (which has
        // labels for these roles only).
        if !prompt
            .iter()
            .all(|m| ["user", "assistant", "system"].contains(&m.role.as_str()))
        {
            checked += 1;
            continue;
        }
        let from_text = t
            .render_pair(&prompt_text(prompt), &last.content)
            .expect("pair from text");
        assert_eq!(from_text, pair, "{}", case.name);
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} pairs checked");
}

#[test]
fn bundle_round_trip_and_threads() {
    let fx = fixture();
    let templates = templates(&fx);
    let case = fx
        .cases
        .iter()
        .find(|c| c.name == "chatml/multi_turn/full")
        .expect("case");
    // What a bundle manifest stores, and what scoring rebuilds from it.
    let stored = serde_json::to_value(templates["chatml"].spec()).expect("to json");
    let spec: ChatTemplateSpec = serde_json::from_value(stored).expect("from json");
    let restored = Arc::new(ChatTemplate::new(spec).expect("restore"));
    assert_eq!(restored.source(), templates["chatml"].source());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let t = Arc::clone(&restored);
            let messages = case.messages.clone();
            std::thread::spawn(move || t.render(&messages, false).expect("render"))
        })
        .collect();
    for h in threads {
        assert_eq!(Some(h.join().expect("thread")), case.expected);
    }
}

#[test]
fn missing_template_is_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(&config, r#"{"bos_token": "<s>"}"#).expect("write");
    assert!(ChatTemplate::from_tokenizer_config(&config)
        .expect("load")
        .is_none());
    std::fs::write(&config, "{not json").expect("write");
    let e = ChatTemplate::from_tokenizer_config(&config)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer_config.json") && e.contains("JSON"),
        "{e}"
    );
}
