//! Reading training and evaluation data (the formats of DESIGN.md §7).
//!
//! Pairs may come as rewardkit pairs (`prompt`, `chosen`, `rejected`,
//! optional `strength` and `subset`), HelpSteer2-Preference rows
//! (`prompt`, `response_1`, `response_2`, `preference_strength` in −3..3,
//! negative meaning response 1 is better) or TRL conversational pairs
//! (`chosen` and `rejected` message lists sharing their prefix). Ratings come
//! as `prompt`, `response` and HelpSteer2 attributes. A malformed line is an
//! error naming `file:line`, or, when asked, skipped and counted.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// One preference pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// How strongly `chosen` is preferred (|preference_strength|); None when unknown.
    pub strength: Option<f32>,
    pub subset: Option<String>,
}

/// One rated response.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub prompt: String,
    pub response: String,
    /// Per output, in the model's output order; None where the row has no value.
    pub values: Vec<Option<f32>>,
}

/// What to do with a bad line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadLines {
    /// Stop with an error naming the file and line.
    #[default]
    Error,
    /// Skip it and count it in the summary.
    Skip,
}

/// Counts from reading a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataSummary {
    pub path: PathBuf,
    pub lines: usize,
    pub rows: usize,
    /// Skipped lines: (line number, reason).
    pub skipped: Vec<(usize, String)>,
    /// Pairs with strength 0 (a tie), kept for Scaled BT, dropped otherwise.
    pub ties: usize,
}

pub(crate) fn at(path: &Path, line: usize) -> String {
    format!("{}:{line}", path.display())
}

pub(crate) fn string_field(v: &Value, key: &str) -> std::result::Result<Option<String>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "field {key:?} must be a string, found {}",
            kind(other)
        )),
    }
}

pub(crate) fn number_field(v: &Value, key: &str) -> std::result::Result<Option<f64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        // Values end up as f32: one past f32's range would become infinite.
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite() && x.abs() <= f64::from(f32::MAX))
            .map(Some)
            .ok_or_else(|| format!("field {key:?} is not a finite 32-bit number")),
        Some(other) => Err(format!(
            "field {key:?} must be a number, found {}",
            kind(other)
        )),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn require(v: Option<String>, key: &str) -> std::result::Result<String, String> {
    v.ok_or_else(|| format!("missing field {key:?}"))
}

/// Render a message list as rewardkit's plain multi-turn prompt format.
pub(crate) fn render_messages(messages: &[Value]) -> std::result::Result<String, String> {
    let mut turns = Vec::new();
    for m in messages {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or("a message has no \"role\"")?;
        let content = m
            .get("content")
            .and_then(Value::as_str)
            .ok_or("a message has no string \"content\"")?;
        let label = match role {
            "user" => "User",
            "assistant" => "Assistant",
            "system" => "System",
            other => return Err(format!("unknown message role {other:?}")),
        };
        turns.push(format!("{label}: {content}"));
    }
    Ok(turns.join("\n\n"))
}

pub(crate) fn last_assistant(
    messages: &[Value],
) -> std::result::Result<(Vec<Value>, String), String> {
    let (last, prefix) = messages.split_last().ok_or("an empty message list")?;
    if last.get("role").and_then(Value::as_str) != Some("assistant") {
        return Err("the last message must be the assistant's reply".into());
    }
    let content = last
        .get("content")
        .and_then(Value::as_str)
        .ok_or("the last message has no string \"content\"")?;
    Ok((prefix.to_vec(), content.to_string()))
}

/// Parse one pair line. `Ok(None)` is a tie (strength 0) in HelpSteer2 form.
pub(crate) fn parse_pair(v: &Value) -> std::result::Result<Pair, String> {
    if !v.is_object() {
        return Err(format!("expected a JSON object, found {}", kind(v)));
    }
    // TRL conversational: chosen/rejected are message lists.
    if let (Some(Value::Array(c)), Some(Value::Array(r))) = (v.get("chosen"), v.get("rejected")) {
        let (cp, chosen) = last_assistant(c)?;
        let (rp, rejected) = last_assistant(r)?;
        if cp != rp {
            return Err("chosen and rejected conversations differ before their last reply".into());
        }
        let prompt = match string_field(v, "prompt")? {
            Some(p) => p,
            None => render_messages(&cp)?,
        };
        return Ok(Pair {
            prompt,
            chosen,
            rejected,
            strength: None,
            subset: string_field(v, "subset")?,
        });
    }
    let prompt = require(string_field(v, "prompt")?, "prompt")?;
    if v.get("response_1").is_some() || v.get("preference_strength").is_some() {
        let r1 = require(string_field(v, "response_1")?, "response_1")?;
        let r2 = require(string_field(v, "response_2")?, "response_2")?;
        let s = number_field(v, "preference_strength")?
            .ok_or("missing field \"preference_strength\"")?;
        if !(-3.0..=3.0).contains(&s) {
            return Err(format!("preference_strength {s} is outside -3..3"));
        }
        let (chosen, rejected) = if s <= 0.0 { (r1, r2) } else { (r2, r1) };
        return Ok(Pair {
            prompt,
            chosen,
            rejected,
            strength: Some(s.abs() as f32),
            subset: string_field(v, "subset")?,
        });
    }
    let chosen = require(string_field(v, "chosen")?, "chosen")?;
    let rejected = require(string_field(v, "rejected")?, "rejected")?;
    let strength = match number_field(v, "strength")? {
        Some(s) if s < 0.0 => {
            return Err(format!(
                "strength {s} must not be negative (it is |preference strength|)"
            ))
        }
        Some(s) => Some(s as f32),
        None => None,
    };
    Ok(Pair {
        prompt,
        chosen,
        rejected,
        strength,
        subset: string_field(v, "subset")?,
    })
}

pub(crate) fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<()>,
) -> Result<usize> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut n = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                Error::InvalidArgument(format!("{}: not valid UTF-8", at(path, i + 1)))
            } else {
                Error::io(at(path, i + 1), e)
            }
        })?;
        n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        f(i + 1, &line)?;
    }
    Ok(n)
}

/// Read a JSONL file, parsing each non-blank line with `parse`. A line that
/// fails is an error naming `file:line`, or skipped and counted.
fn read_jsonl<T>(
    path: &Path,
    bad: BadLines,
    what: &str,
    parse: impl Fn(&Value) -> std::result::Result<T, String>,
) -> Result<(Vec<T>, DataSummary)> {
    let mut rows = Vec::new();
    let mut summary = DataSummary {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let lines = for_each_line(path, |lineno, line| {
        match serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not valid JSON ({e})"))
            .and_then(|v| parse(&v))
        {
            Ok(row) => {
                rows.push(row);
                Ok(())
            }
            Err(msg) => match bad {
                BadLines::Error => Err(Error::InvalidArgument(format!(
                    "{}: {msg}",
                    at(path, lineno)
                ))),
                BadLines::Skip => {
                    summary.skipped.push((lineno, msg));
                    Ok(())
                }
            },
        }
    })?;
    summary.lines = lines;
    summary.rows = rows.len();
    if rows.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no usable {what} ({} lines, {} skipped)",
            path.display(),
            lines,
            summary.skipped.len()
        )));
    }
    Ok((rows, summary))
}

/// Read preference pairs. Pairs whose chosen and rejected texts are equal are
/// bad lines; ties (strength 0) are kept and counted.
pub fn read_pairs(path: &Path, bad: BadLines) -> Result<(Vec<Pair>, DataSummary)> {
    let (pairs, mut summary) = read_jsonl(path, bad, "pairs", |v| {
        let p = parse_pair(v)?;
        if p.chosen == p.rejected {
            return Err("chosen and rejected are the same text".into());
        }
        Ok(p)
    })?;
    summary.ties = pairs.iter().filter(|p| p.strength == Some(0.0)).count();
    Ok((pairs, summary))
}

/// Read rated responses for the given output names (HelpSteer2 attributes).
pub fn read_ratings(
    path: &Path,
    outputs: &[String],
    bad: BadLines,
) -> Result<(Vec<Rating>, DataSummary)> {
    read_jsonl(path, bad, "rows", |v| {
        let prompt = require(string_field(v, "prompt")?, "prompt")?;
        let response = require(string_field(v, "response")?, "response")?;
        let values = outputs
            .iter()
            .map(|o| number_field(v, o).map(|x| x.map(|x| x as f32)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if values.iter().all(Option::is_none) {
            return Err(format!("none of the attributes {outputs:?} is present"));
        }
        Ok(Rating {
            prompt,
            response,
            values,
        })
    })
}

/// SHA-256 of a file, hex (recorded in a bundle's provenance).
pub fn file_digest(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {

    #[test]
    fn numbers_past_f32_range_are_refused() {
        // Found by fuzzing: 1e39 is a finite f64 but an infinite f32.
        let e = pair(r#"{"prompt": "p", "chosen": "a", "rejected": "b", "strength": 1e39}"#)
            .unwrap_err();
        assert!(e.contains("strength") && e.contains("32-bit"), "{e}");
    }
    use super::*;

    fn pair(line: &str) -> std::result::Result<Pair, String> {
        parse_pair(&serde_json::from_str(line).expect("json"))
    }

    #[test]
    fn formats() {
        let p = pair(
            r#"{"prompt": "p", "chosen": "a", "rejected": "b", "strength": 2, "subset": "s"}"#,
        )
        .expect("pair");
        assert_eq!(
            (p.chosen.as_str(), p.strength, p.subset.as_deref()),
            ("a", Some(2.0), Some("s"))
        );
        let p = pair(r#"{"prompt": "p", "response_1": "one", "response_2": "two", "preference_strength": -2}"#).expect("hs2");
        assert_eq!(
            (p.chosen.as_str(), p.rejected.as_str(), p.strength),
            ("one", "two", Some(2.0))
        );
        let p = pair(r#"{"prompt": "p", "response_1": "one", "response_2": "two", "preference_strength": 3}"#).expect("hs2");
        assert_eq!(p.chosen, "two");
        let p = pair(
            r#"{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]}"#,
        )
        .expect("trl");
        assert_eq!(
            (p.prompt.as_str(), p.chosen.as_str(), p.rejected.as_str()),
            ("User: hi", "hello", "go away")
        );
    }

    #[test]
    fn bad_rows_say_why() {
        assert!(pair(r#"{"prompt": "p", "chosen": "a"}"#)
            .unwrap_err()
            .contains("rejected"));
        assert!(pair(r#"{"prompt": 1, "chosen": "a", "rejected": "b"}"#)
            .unwrap_err()
            .contains("string"));
        assert!(pair(
            r#"{"prompt": "p", "response_1": "a", "response_2": "b", "preference_strength": 7}"#
        )
        .unwrap_err()
        .contains("-3..3"));
        assert!(
            pair(r#"{"prompt": "p", "chosen": "a", "rejected": "b", "strength": -1}"#)
                .unwrap_err()
                .contains("negative")
        );
        assert!(pair(r#"[1, 2]"#).unwrap_err().contains("object"));
    }

    #[test]
    fn files_report_line_numbers_or_skip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pairs.jsonl");
        std::fs::write(&path, "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n\n{oops\n{\"prompt\": \"p\", \"chosen\": \"x\", \"rejected\": \"x\"}\n").expect("write");
        let err = read_pairs(&path, BadLines::Error).unwrap_err().to_string();
        assert!(err.contains("pairs.jsonl:3"), "{err}");
        let (pairs, summary) = read_pairs(&path, BadLines::Skip).expect("skip");
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            summary.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![3, 4]
        );
        std::fs::write(&path, "\n").expect("write");
        assert!(read_pairs(&path, BadLines::Skip)
            .unwrap_err()
            .to_string()
            .contains("no usable pairs"));
    }
}
