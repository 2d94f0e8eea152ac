//! `rewardkit data convert`: public preference and rating datasets into the
//! project's own formats (DESIGN.md §7).
//!
//! | `--from` | rows in | rows out |
//! | --- | --- | --- |
//! | `helpsteer2` | `prompt`, `response`, the five attributes (0–4) | ratings |
//! | `helpsteer2-pref` | `prompt`, `response_1`, `response_2`, `preference_strength` (−3..3, negative: response 1 better) | pairs with `strength` = \|preference_strength\| |
//! | `trl` | `chosen` / `rejected` message lists (optional `prompt`) | pairs |
//! | `hh-rlhf` | `chosen` / `rejected` dialogues in `\n\nHuman: … \n\nAssistant: …` form | pairs |
//!
//! Conversation prefixes are rendered as `User: …\n\nAssistant: …` turns,
//! the format the readers use for TRL pairs.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use serde_json::{json, Value};

use super::data::{
    at, for_each_line, kind, number_field, parse_pair, render_messages, require, string_field,
};
use crate::error::{Error, Result};

/// A source format of `rewardkit data convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    HelpSteer2,
    HelpSteer2Pref,
    Trl,
    HhRlhf,
}

impl FromStr for SourceFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "helpsteer2" => SourceFormat::HelpSteer2,
            "helpsteer2-pref" => SourceFormat::HelpSteer2Pref,
            "trl" => SourceFormat::Trl,
            "hh-rlhf" => SourceFormat::HhRlhf,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown source format {other:?} (expected helpsteer2, helpsteer2-pref, trl or hh-rlhf)"
                )))
            }
        })
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertSummary {
    pub lines: usize,
    pub written: usize,
    /// Rows with strength 0 (a tie), written with `"strength": 0`.
    pub ties: usize,
    /// Bad rows: (line, reason). Only filled when skipping.
    pub skipped: Vec<(usize, String)>,
}

const HS2_ATTRIBUTES: [&str; 5] = [
    "helpfulness",
    "correctness",
    "coherence",
    "complexity",
    "verbosity",
];

fn helpsteer2(v: &Value) -> std::result::Result<Value, String> {
    let mut out = serde_json::Map::new();
    out.insert(
        "prompt".into(),
        require(string_field(v, "prompt")?, "prompt")?.into(),
    );
    out.insert(
        "response".into(),
        require(string_field(v, "response")?, "response")?.into(),
    );
    for a in HS2_ATTRIBUTES {
        let x = number_field(v, a)?.ok_or_else(|| format!("missing field {a:?}"))?;
        if !(0.0..=4.0).contains(&x) {
            return Err(format!("{a} {x} is outside the HelpSteer2 scale 0..4"));
        }
        out.insert(a.into(), json!(x));
    }
    Ok(Value::Object(out))
}

/// Split an hh-rlhf dialogue into (prompt turns, last assistant reply).
fn hh_dialogue(text: &str, field: &str) -> std::result::Result<(String, String), String> {
    const ASSISTANT: &str = "\n\nAssistant:";
    let cut = text
        .rfind(ASSISTANT)
        .ok_or_else(|| format!("{field:?} has no \"\\n\\nAssistant:\" turn"))?;
    let reply = text[cut + ASSISTANT.len()..].trim().to_string();
    let mut turns = Vec::new();
    for chunk in text[..cut].split("\n\n").filter(|c| !c.trim().is_empty()) {
        if let Some(t) = chunk.strip_prefix("Human:") {
            turns.push(json!({"role": "user", "content": t.trim()}));
        } else if let Some(t) = chunk.strip_prefix("Assistant:") {
            turns.push(json!({"role": "assistant", "content": t.trim()}));
        } else if let Some(last) = turns.last_mut() {
            // A paragraph break inside a turn.
            let joined = format!(
                "{}\n\n{}",
                last["content"].as_str().unwrap_or(""),
                chunk.trim()
            );
            last["content"] = json!(joined);
        } else {
            return Err(format!("{field:?} does not start with a \"Human:\" turn"));
        }
    }
    if turns.is_empty() {
        return Err(format!("{field:?} has no turns before the last reply"));
    }
    Ok((render_messages(&turns)?, reply))
}

fn pair_row(
    prompt: String,
    chosen: String,
    rejected: String,
    strength: Option<f64>,
    subset: Option<String>,
) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("prompt".into(), prompt.into());
    out.insert("chosen".into(), chosen.into());
    out.insert("rejected".into(), rejected.into());
    if let Some(s) = strength {
        out.insert("strength".into(), json!(s));
    }
    if let Some(s) = subset {
        out.insert("subset".into(), s.into());
    }
    Value::Object(out)
}

fn convert_row(format: SourceFormat, v: &Value) -> std::result::Result<Value, String> {
    if !v.is_object() {
        return Err(format!("expected a JSON object, found {}", kind(v)));
    }
    let row = convert_fields(format, v)?;
    // A pair of one text twice says nothing, and the readers refuse it.
    if row.get("chosen").is_some() && row.get("chosen") == row.get("rejected") {
        return Err("chosen and rejected are the same text".into());
    }
    Ok(row)
}

fn convert_fields(format: SourceFormat, v: &Value) -> std::result::Result<Value, String> {
    match format {
        SourceFormat::HelpSteer2 => helpsteer2(v),
        SourceFormat::HelpSteer2Pref => {
            for key in ["response_1", "response_2", "preference_strength"] {
                if v.get(key).is_none() {
                    return Err(format!("missing field {key:?}"));
                }
            }
            let p = parse_pair(v)?;
            Ok(pair_row(
                p.prompt,
                p.chosen,
                p.rejected,
                p.strength.map(f64::from),
                p.subset,
            ))
        }
        SourceFormat::Trl => {
            if !matches!(v.get("chosen"), Some(Value::Array(_)))
                || !matches!(v.get("rejected"), Some(Value::Array(_)))
            {
                return Err("\"chosen\" and \"rejected\" must be message lists".into());
            }
            let p = parse_pair(v)?;
            Ok(pair_row(p.prompt, p.chosen, p.rejected, None, p.subset))
        }
        SourceFormat::HhRlhf => {
            let c = require(string_field(v, "chosen")?, "chosen")?;
            let r = require(string_field(v, "rejected")?, "rejected")?;
            let (cp, chosen) = hh_dialogue(&c, "chosen")?;
            let (rp, rejected) = hh_dialogue(&r, "rejected")?;
            if cp != rp {
                return Err("chosen and rejected dialogues differ before their last reply".into());
            }
            Ok(pair_row(
                cp,
                chosen,
                rejected,
                None,
                string_field(v, "subset")?,
            ))
        }
    }
}

/// Convert `input` (JSONL in `format`) into `output` (the project's JSONL).
/// A bad row is an error naming `file:line` and how many rows were bad in
/// all, unless `skip_bad` (then rows are skipped and counted). The output is
/// written to a temporary file and renamed, so a failed run leaves no
/// partial file.
pub fn convert(
    format: SourceFormat,
    input: &Path,
    output: &Path,
    skip_bad: bool,
) -> Result<ConvertSummary> {
    let mut summary = ConvertSummary::default();
    let mut text = Vec::new();
    let mut first_bad: Option<String> = None;
    summary.lines = for_each_line(input, |line_no, line| {
        let row = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not valid JSON ({e})"))
            .and_then(|v| convert_row(format, &v));
        match row {
            Ok(row) => {
                if row.get("strength").and_then(Value::as_f64) == Some(0.0) {
                    summary.ties += 1;
                }
                writeln!(text, "{row}").map_err(|e| Error::io(output, e))?;
                summary.written += 1;
            }
            Err(msg) => {
                if first_bad.is_none() {
                    first_bad = Some(format!("{}: {msg}", at(input, line_no)));
                }
                summary.skipped.push((line_no, msg));
            }
        }
        Ok(())
    })?;
    if let Some(first) = first_bad {
        if !skip_bad {
            return Err(Error::InvalidArgument(format!(
                "{first} ({} of {} rows are bad; --skip-bad skips them)",
                summary.skipped.len(),
                summary.lines
            )));
        }
    }
    if summary.written == 0 {
        return Err(Error::InvalidArgument(format!(
            "{}: no row could be converted",
            input.display()
        )));
    }
    let tmp = output.with_extension("jsonl.tmp");
    std::fs::write(&tmp, &text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, output).map_err(|e| Error::io(output, e))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(format: SourceFormat, line: &str) -> std::result::Result<Value, String> {
        convert_row(format, &serde_json::from_str(line).unwrap())
    }

    #[test]
    fn hh_rlhf_dialogues() {
        let v = one(
            SourceFormat::HhRlhf,
            r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: what is 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: what is 2+2?\n\nAssistant: 5"}"#,
        )
        .unwrap();
        assert_eq!(
            v["prompt"],
            "User: hi\n\nAssistant: hello\n\nUser: what is 2+2?"
        );
        assert_eq!(
            (v["chosen"].as_str(), v["rejected"].as_str()),
            (Some("4"), Some("5"))
        );
        let e = one(
            SourceFormat::HhRlhf,
            r#"{"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"}"#,
        )
        .unwrap_err();
        assert!(e.contains("differ"), "{e}");
        assert!(one(
            SourceFormat::HhRlhf,
            r#"{"chosen": "no turns", "rejected": "x"}"#
        )
        .unwrap_err()
        .contains("Assistant"));
    }

    #[test]
    fn helpsteer2_pref_sign_and_ties() {
        let v = one(
            SourceFormat::HelpSteer2Pref,
            r#"{"prompt": "p", "response_1": "one", "response_2": "two", "preference_strength": -2}"#,
        )
        .unwrap();
        assert_eq!(
            (v["chosen"].as_str(), v["strength"].as_f64()),
            (Some("one"), Some(2.0))
        );
        let v = one(
            SourceFormat::HelpSteer2Pref,
            r#"{"prompt": "p", "response_1": "one", "response_2": "two", "preference_strength": 3}"#,
        )
        .unwrap();
        assert_eq!(v["chosen"], "two");
        let e = one(
            SourceFormat::HelpSteer2Pref,
            r#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#,
        )
        .unwrap_err();
        assert!(e.contains("response_1"), "{e}");
    }

    #[test]
    fn pairs_of_one_text_are_refused() {
        // Found by fuzzing: these were converted, then refused by read_pairs.
        let e = one(
            SourceFormat::HelpSteer2Pref,
            r#"{"prompt": "p", "response_1": "same", "response_2": "same", "preference_strength": 1}"#,
        )
        .unwrap_err();
        assert!(e.contains("same text"), "{e}");
        let e = one(
            SourceFormat::Trl,
            r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("same text"), "{e}");
    }

    #[test]
    fn helpsteer2_ratings_are_checked() {
        let ok = r#"{"prompt": "p", "response": "r", "helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}"#;
        assert_eq!(
            one(SourceFormat::HelpSteer2, ok).unwrap()["helpfulness"],
            3.0
        );
        let e = one(
            SourceFormat::HelpSteer2,
            &ok.replace("\"verbosity\": 2", "\"verbosity\": 7"),
        )
        .unwrap_err();
        assert!(e.contains("verbosity"), "{e}");
        let e = one(
            SourceFormat::HelpSteer2,
            &ok.replace("\"helpfulness\": 3", "\"helpfulness\": \"3\""),
        )
        .unwrap_err();
        assert!(e.contains("helpfulness") && e.contains("string"), "{e}");
    }

    #[test]
    fn bad_rows_name_line_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let output = dir.path().join("out.jsonl");
        std::fs::write(
            &input,
            "{\"chosen\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n{\"chosen\": \"x\"}\nnot json\n",
        )
        .unwrap();
        let e = convert(SourceFormat::Trl, &input, &output, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in.jsonl:2") && e.contains("2 of 3 rows"), "{e}");
        assert!(!output.exists(), "a failed conversion leaves no output");
        let s = convert(SourceFormat::Trl, &input, &output, true).unwrap();
        assert_eq!((s.written, s.skipped.len()), (1, 2));
        let (pairs, _) = crate::train::read_pairs(&output, Default::default()).unwrap();
        assert_eq!(pairs[0].prompt, "User: q");
    }
}
