//! Chat templates: rendering a conversation the way a decoder model's Hugging
//! Face `chat_template` (a Jinja template in `tokenizer_config.json` or
//! `chat_template.jinja`) renders it, so a Llama-3, Qwen2 or Mistral reward
//! model sees the text it was trained on.
//!
//! The template runs in [minijinja] with the environment transformers sets up
//! for `apply_chat_template`: `trim_blocks` and `lstrip_blocks` on, the
//! template's own trailing newline dropped, loop controls, `raise_exception`,
//! `strftime_now`, a `tojson` filter that does not escape HTML, and Python's
//! string/list/dict methods. Its context is `messages`, `add_generation_prompt`,
//! `tools` and `documents` (both none) and the special tokens that are set
//! (`bos_token`, `eos_token`, …). `tests/chat_template.rs` checks the output
//! byte for byte against transformers.
//!
//! Known differences from transformers: `strftime_now` formats UTC time (there
//! is no time-zone database in std) and knows the common directives only;
//! `{% generation %}` blocks are not supported; map literals written in the
//! template iterate in key order unless minijinja's `preserve_order` feature is
//! on; `none` and booleans print as minijinja prints them (`none`, `true`).
//!
//! The work a render may do is bounded by minijinja's fuel ([`DEFAULT_FUEL`]),
//! so a template with a runaway loop fails instead of hanging a scorer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ValueKind};
use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// The largest `tokenizer_config.json` read (some list many added tokens).
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// The fuel a single render may burn (about one unit per template
/// instruction, plus one per 64 bytes of strings built).
///
/// A long conversation costs a few units per message and per 64 bytes of
/// text, far below this (20,000 messages or 20 MB of text render within it);
/// a template looping without end runs out in about 6 s in a debug build,
/// less in release.
pub const DEFAULT_FUEL: u64 = 20_000_000;

/// The name of the file transformers saves a chat template in, next to
/// `tokenizer_config.json`; it takes precedence over the config's own
/// `chat_template`, as it does in transformers.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// The special tokens transformers passes to a chat template when they are
/// set, in its order.
pub const SPECIAL_TOKEN_NAMES: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

const TEMPLATE_NAME: &str = "chat_template";

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// `"user"`, `"assistant"` or `"system"` (templates may accept others).
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Message::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new("assistant", content)
    }

    pub fn system(content: impl Into<String>) -> Self {
        Message::new("system", content)
    }
}

/// Everything needed to rebuild a [`ChatTemplate`] exactly: the template
/// source and the special tokens it is rendered with. This is what a bundle
/// manifest stores; unset tokens are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTemplateSpec {
    /// The Jinja source.
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unk_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sep_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cls_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_token: Option<String>,
}

impl ChatTemplateSpec {
    /// A template with no special tokens set.
    pub fn new(template: impl Into<String>) -> Self {
        ChatTemplateSpec {
            template: template.into(),
            ..Default::default()
        }
    }

    /// The special token called `name` (one of [`SPECIAL_TOKEN_NAMES`]), if set.
    pub fn special_token(&self, name: &str) -> Option<&str> {
        match name {
            "bos_token" => self.bos_token.as_deref(),
            "eos_token" => self.eos_token.as_deref(),
            "unk_token" => self.unk_token.as_deref(),
            "sep_token" => self.sep_token.as_deref(),
            "pad_token" => self.pad_token.as_deref(),
            "cls_token" => self.cls_token.as_deref(),
            "mask_token" => self.mask_token.as_deref(),
            _ => None,
        }
    }

    fn special_token_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "bos_token" => Some(&mut self.bos_token),
            "eos_token" => Some(&mut self.eos_token),
            "unk_token" => Some(&mut self.unk_token),
            "sep_token" => Some(&mut self.sep_token),
            "pad_token" => Some(&mut self.pad_token),
            "cls_token" => Some(&mut self.cls_token),
            "mask_token" => Some(&mut self.mask_token),
            _ => None,
        }
    }

    /// Set the special token called `name` (one of [`SPECIAL_TOKEN_NAMES`]).
    pub fn with_special_token(mut self, name: &str, value: impl Into<String>) -> Result<Self> {
        let slot = self.special_token_mut(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown special token {name:?} (expected one of {SPECIAL_TOKEN_NAMES:?})"
            ))
        })?;
        *slot = Some(value.into());
        Ok(self)
    }

    /// The special tokens that are set, as (name, token).
    pub fn special_tokens(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        SPECIAL_TOKEN_NAMES
            .iter()
            .filter_map(|&name| self.special_token(name).map(|t| (name, t)))
    }
}

/// A full rendering of (prompt, response) and where the response's part
/// begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPair {
    /// The whole conversation, the response as its last assistant message.
    pub text: String,
    /// Byte offset into `text` (always on a character boundary) where the
    /// response's part begins: everything before it renders the prompt, the
    /// generation prompt included.
    pub response_start: usize,
}

impl RenderedPair {
    /// The prompt's part: `text[..response_start]`.
    pub fn prompt_part(&self) -> &str {
        &self.text[..self.response_start]
    }

    /// The response's part, with whatever the template puts after it.
    pub fn response_part(&self) -> &str {
        &self.text[self.response_start..]
    }
}

/// A compiled chat template, ready to render conversations.
///
/// It is `Send + Sync` and rendering takes `&self`: one template may serve
/// many threads at once.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    spec: ChatTemplateSpec,
    origin: String,
    fuel: u64,
    env: Environment<'static>,
}

impl ChatTemplate {
    /// Compile a template stored in a bundle; errors name it `"bundle"`.
    pub fn new(spec: ChatTemplateSpec) -> Result<Self> {
        Self::with_origin(spec, "bundle")
    }

    /// Compile a template; `origin` names where it came from in errors (a
    /// file path, `"bundle"`).
    pub fn with_origin(spec: ChatTemplateSpec, origin: &str) -> Result<Self> {
        Self::build(spec, origin.to_string(), DEFAULT_FUEL)
    }

    /// The same template with another fuel budget per render (see
    /// [`DEFAULT_FUEL`]).
    pub fn with_fuel(self, fuel: u64) -> Result<Self> {
        Self::build(self.spec, self.origin, fuel)
    }

    /// Read the chat template of a Hugging Face tokenizer: `path` is its
    /// `tokenizer_config.json`. A `chat_template.jinja` next to it takes
    /// precedence over the config's `chat_template`, as in transformers; the
    /// special tokens come from the config. `Ok(None)` when there is no
    /// template at all.
    pub fn from_tokenizer_config(path: &Path) -> Result<Option<Self>> {
        let what = path.display().to_string();
        let config = read_bounded(path, MAX_CONFIG_BYTES)?;
        let config: serde_json::Value =
            serde_json::from_slice(&config).map_err(|e| Error::Tokenizer {
                what: what.clone(),
                msg: format!("not valid JSON: {e}"),
            })?;
        let sibling = path
            .parent()
            .map(|dir| dir.join(CHAT_TEMPLATE_FILE))
            .filter(|p| p.is_file());
        match sibling {
            Some(file) => {
                let source = read_bounded(&file, MAX_TEMPLATE_BYTES as u64)?;
                let origin = file.display().to_string();
                let source = String::from_utf8(source).map_err(|e| Error::InvalidUtf8 {
                    what: origin.clone(),
                    offset: e.utf8_error().valid_up_to(),
                })?;
                let mut spec = ChatTemplateSpec::new(source);
                read_special_tokens(&config, &what, &mut spec)?;
                Self::with_origin(spec, &origin).map(Some)
            }
            None => Self::from_config_value(&config, &what),
        }
    }

    /// Read the chat template from a parsed `tokenizer_config.json`; `what`
    /// names it in errors. `chat_template` may be a string, or a list of
    /// `{"name", "template"}` entries (or a name → template map) of which the
    /// one named `default` is used. Special tokens may be strings or
    /// AddedToken objects (`{"content": …}`). `Ok(None)` when the config has
    /// no `chat_template`.
    pub fn from_config_value(config: &serde_json::Value, what: &str) -> Result<Option<Self>> {
        let bad = |msg: String| Error::Tokenizer {
            what: what.to_string(),
            msg,
        };
        let obj = config.as_object().ok_or_else(|| {
            bad(format!(
                "expected a JSON object, found {}",
                json_kind(config)
            ))
        })?;
        let template = match obj.get("chat_template") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(entries)) => {
                let mut names = Vec::new();
                let mut found = None;
                for entry in entries {
                    let name = entry.get("name").and_then(serde_json::Value::as_str);
                    let source = entry.get("template").and_then(serde_json::Value::as_str);
                    let (Some(name), Some(source)) = (name, source) else {
                        return Err(bad(
                            "each entry of \"chat_template\" must have string \"name\" and \"template\""
                                .into(),
                        ));
                    };
                    if name == "default" {
                        found = Some(source.to_string());
                    }
                    names.push(name.to_string());
                }
                found.ok_or_else(|| {
                    bad(format!(
                        "\"chat_template\" has no template named \"default\" (found {names:?})"
                    ))
                })?
            }
            Some(serde_json::Value::Object(map)) => match map.get("default") {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => {
                    return Err(bad(format!(
                        "\"chat_template\" has no string template named \"default\" (found {:?})",
                        map.keys().collect::<Vec<_>>()
                    )))
                }
            },
            Some(other) => {
                return Err(bad(format!(
                    "\"chat_template\" must be a string or a list of named templates, found {}",
                    json_kind(other)
                )))
            }
        };
        let mut spec = ChatTemplateSpec::new(template);
        read_special_tokens(config, what, &mut spec)?;
        Self::with_origin(spec, what).map(Some)
    }

    /// The template source and special tokens (what a bundle stores).
    pub fn spec(&self) -> &ChatTemplateSpec {
        &self.spec
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.spec.template
    }

    /// Where the template came from, as errors name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The fuel budget of one render.
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// Whether the fuel budget is enforced. It is when minijinja is built
    /// with its `fuel` feature; without it a runaway template is not stopped.
    pub fn fuel_enforced(&self) -> bool {
        self.env.fuel().is_some()
    }

    /// Render `messages`; with `add_generation_prompt` the template appends
    /// what opens the assistant's next turn.
    ///
    /// A template that calls `raise_exception` (for instance because roles do
    /// not alternate) gives [`Error::InvalidArgument`] with its message; any
    /// other failure, running out of fuel included, gives
    /// [`Error::Tokenizer`] naming the template's origin and line.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot apply a chat template to an empty conversation".into(),
            ));
        }
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| self.error(&e, "cannot load"))?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_object(MessageValue {
                    role: Value::from(m.role.as_str()),
                    content: Value::from(m.content.as_str()),
                })
            })
            .collect();
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::from([
            ("messages", Value::from(messages)),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ]);
        ctx.extend(
            self.spec
                .special_tokens()
                .map(|(name, token)| (name, Value::from(token))),
        );
        template
            .render(Value::from(ctx))
            .map_err(|e| self.error(&e, "cannot render"))
    }

    /// Render a (prompt, response) pair: the prompt's messages (see
    /// [`messages_from_prompt`]) followed by the response as an assistant
    /// message. See [`ChatTemplate::render_conversation_pair`] for how the
    /// response's start is found.
    pub fn render_pair(&self, prompt: &str, response: &str) -> Result<RenderedPair> {
        self.render_conversation_pair(&messages_from_prompt(prompt), response)
    }

    /// Render `prompt` messages followed by `response` as an assistant
    /// message, and find where the response's part begins:
    ///
    /// 1. the prompt messages alone are rendered with
    ///    `add_generation_prompt = true`; when that is a prefix of the full
    ///    text (true of the common templates), the response starts where it
    ///    ends;
    /// 2. otherwise at the last occurrence of the response text in the full
    ///    text (or of the response with surrounding whitespace trimmed, for
    ///    templates that trim messages);
    /// 3. otherwise (for instance an empty response) where the full text
    ///    first differs from the prompt rendering.
    ///
    /// Renders the template twice.
    pub fn render_conversation_pair(
        &self,
        prompt: &[Message],
        response: &str,
    ) -> Result<RenderedPair> {
        let mut conversation = prompt.to_vec();
        conversation.push(Message::assistant(response));
        let text = self.render(&conversation, false)?;
        let head = if prompt.is_empty() {
            String::new()
        } else {
            self.render(prompt, true)?
        };
        let response_start = if text.starts_with(&head) {
            head.len()
        } else {
            [response, response.trim()]
                .into_iter()
                .filter(|needle| !needle.is_empty())
                .find_map(|needle| text.rfind(needle))
                .unwrap_or_else(|| common_prefix_len(&head, &text))
        };
        Ok(RenderedPair {
            text,
            response_start,
        })
    }

    fn build(spec: ChatTemplateSpec, origin: String, fuel: u64) -> Result<Self> {
        if spec.template.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::Tokenizer {
                what: format!("chat template {origin}"),
                msg: format!(
                    "the template is {} bytes, more than the {MAX_TEMPLATE_BYTES} accepted",
                    spec.template.len()
                ),
            });
        }
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| Error::Internal(format!("chat template syntax settings: {e}")))?;
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(fuel));
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        let mut template = ChatTemplate {
            spec,
            origin,
            fuel,
            env,
        };
        let source = template.spec.template.clone();
        template
            .env
            .add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| template.error(&e, "cannot compile"))?;
        Ok(template)
    }

    fn error(&self, e: &minijinja::Error, doing: &str) -> Error {
        let line = e.line().map(|l| format!(", line {l}")).unwrap_or_default();
        if let Some(raised) = raised_message(e) {
            return Error::InvalidArgument(format!(
                "chat template ({}{line}) rejected the conversation: {raised}",
                self.origin
            ));
        }
        let what = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        let hint = if what.contains("fuel") {
            format!(
                " (the limit is {} fuel per render: the template does too much work or loops without end)",
                self.fuel
            )
        } else {
            String::new()
        };
        Error::Tokenizer {
            what: format!("chat template {}", self.origin),
            msg: format!("{doing}{line}: {what}{hint}"),
        }
    }
}

/// Split a prompt stored as plain text back into messages.
///
/// rewardkit stores multi-turn prompts as `User: …`, `Assistant: …` (and
/// `System: …`) blocks separated by a blank line, the way the data readers
/// render message lists; a block that does not start with one of these labels
/// continues the previous message (a paragraph break inside a turn).
/// HelpSteer2 prompts mark turns with `<extra_id_1>User` / `<extra_id_1>Assistant`
/// lines, the text before the first marker being the first user turn; a
/// trailing empty assistant marker (the opening of the turn to be judged) is
/// dropped. Any other prompt is one user message.
///
/// The labelled form round-trips exactly with the readers' rendering unless a
/// message itself contains a blank line followed by a label.
pub fn messages_from_prompt(prompt: &str) -> Vec<Message> {
    if prompt.contains(HS2_MARKER) {
        if let Some(messages) = helpsteer2_turns(prompt) {
            return messages;
        }
    }
    labelled_turns(prompt).unwrap_or_else(|| vec![Message::user(prompt)])
}

const LABELS: [(&str, &str); 3] = [
    ("User:", "user"),
    ("Assistant:", "assistant"),
    ("System:", "system"),
];

/// A block's role and content when it starts with a label.
fn labelled(block: &str) -> Option<(&'static str, &str)> {
    LABELS.iter().find_map(|&(label, role)| {
        let rest = block.strip_prefix(label)?;
        if rest.is_empty() {
            Some((role, rest))
        } else {
            rest.strip_prefix(' ').map(|content| (role, content))
        }
    })
}

fn labelled_turns(prompt: &str) -> Option<Vec<Message>> {
    let mut messages: Vec<Message> = Vec::new();
    for block in prompt.split("\n\n") {
        match labelled(block) {
            Some((role, content)) => messages.push(Message::new(role, content)),
            None => {
                let last = messages.last_mut()?;
                last.content.push_str("\n\n");
                last.content.push_str(block);
            }
        }
    }
    Some(messages)
}

const HS2_MARKER: &str = "<extra_id_1>";
const HS2_SYSTEM: &str = "<extra_id_0>System";

fn helpsteer2_turns(prompt: &str) -> Option<Vec<Message>> {
    // Turn texts sit between a marker line and a newline before the next marker.
    fn body(s: &str) -> &str {
        let s = s.strip_prefix('\n').unwrap_or(s);
        s.strip_suffix('\n').unwrap_or(s)
    }
    let mut pieces = prompt.split(HS2_MARKER);
    let first = pieces.next().unwrap_or_default();
    let mut messages = Vec::new();
    if let Some(system) = first.strip_prefix(HS2_SYSTEM) {
        messages.push(Message::system(body(system)));
    } else if !first.trim().is_empty() {
        messages.push(Message::user(body(first)));
    }
    for piece in pieces {
        let (role, rest) = if let Some(rest) = piece.strip_prefix("User") {
            ("user", rest)
        } else if let Some(rest) = piece.strip_prefix("Assistant") {
            ("assistant", rest)
        } else {
            return None;
        };
        if !(rest.is_empty() || rest.starts_with('\n')) {
            return None;
        }
        messages.push(Message::new(role, body(rest)));
    }
    if messages
        .last()
        .is_some_and(|m| m.role == "assistant" && m.content.is_empty())
    {
        messages.pop();
    }
    (!messages.is_empty()).then_some(messages)
}

/// A message as the template sees it: a map whose keys iterate in the order
/// transformers' dicts have (`role`, then `content`), so `tojson` and
/// `.items()` match.
#[derive(Debug)]
struct MessageValue {
    role: Value,
    content: Value,
}

impl Object for MessageValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(self.role.clone()),
            "content" => Some(self.content.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["role", "content"])
    }
}

/// The error `raise_exception` produces; found again in the render error.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

fn raised_message(e: &minijinja::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(raised) = s.downcast_ref::<Raised>() {
            return Some(raised.0.clone());
        }
        source = s.source();
    }
    None
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(
        minijinja::Error::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(Raised(message)),
    )
}

fn strftime_now(format: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_utc(now, format)
}

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01, in the
/// proleptic Gregorian calendar.
fn civil_date(days: i64) -> (i64, u32, u32) {
    // Count in 400-year eras starting on 0000-03-01, so leap days fall last.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Format a Unix time (UTC) with the common `strftime` directives: `%Y %y %m
/// %d %e %j %H %I %M %S %p %a %A %b %h %B %F %T %%`, and glibc's `%-d` style
/// for no padding. Other directives are written as they are.
fn format_utc(unix_seconds: i64, format: &str) -> String {
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
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
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_date(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    let before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let day_of_year =
        before_month[(month - 1) as usize] + i64::from(day) + i64::from(month > 2 && is_leap(year));
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let unpadded = chars.next_if_eq(&'-').is_some();
        let Some(d) = chars.next() else {
            out.push('%');
            if unpadded {
                out.push('-');
            }
            break;
        };
        let num = |out: &mut String, n: i64, width: usize| {
            let _ = if unpadded {
                write!(out, "{n}")
            } else {
                write!(out, "{n:0width$}")
            };
        };
        match d {
            'Y' => {
                let _ = write!(out, "{year}");
            }
            'y' => num(&mut out, year.rem_euclid(100), 2),
            'm' => num(&mut out, i64::from(month), 2),
            'd' => num(&mut out, i64::from(day), 2),
            'e' => {
                let _ = if unpadded {
                    write!(out, "{day}")
                } else {
                    write!(out, "{day:>2}")
                };
            }
            'j' => num(&mut out, day_of_year, 3),
            'H' => num(&mut out, hour, 2),
            'I' => num(&mut out, hour12, 2),
            'M' => num(&mut out, minute, 2),
            'S' => num(&mut out, second, 2),
            'p' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            'a' => out.push_str(&weekday[..3]),
            'A' => out.push_str(weekday),
            'b' | 'h' => out.push_str(&month_name[..3]),
            'B' => out.push_str(month_name),
            'F' => {
                let _ = write!(out, "{year:04}-{month:02}-{day:02}");
            }
            'T' => {
                let _ = write!(out, "{hour:02}:{minute:02}:{second:02}");
            }
            '%' => out.push('%'),
            other => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
        }
    }
    out
}

/// The `tojson` filter as transformers defines it: Python's `json.dumps` with
/// `ensure_ascii=False` by default, and the keyword arguments `ensure_ascii`,
/// `indent`, `separators` and `sort_keys`. Unlike minijinja's own filter it
/// does not escape HTML characters.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match (v.as_i64(), v.as_str()) {
            (Some(n), _) => " ".repeat(usize::try_from(n).unwrap_or(0).min(64)),
            (None, Some(s)) => s.to_string(),
            _ => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                ))
            }
        }),
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => match (a.as_str(), b.as_str()) {
                    (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                    _ => return Err(bad_separators()),
                },
                _ => return Err(bad_separators()),
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let mut writer = JsonWriter {
        out: String::new(),
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
    };
    writer.value(value, 0)?;
    Ok(Value::from(writer.out))
}

fn bad_separators() -> minijinja::Error {
    minijinja::Error::new(
        ErrorKind::InvalidOperation,
        "tojson: separators must be a pair of strings",
    )
}

/// Nesting deeper than this is refused (Python's own limit is about 1000).
const MAX_JSON_DEPTH: usize = 256;

struct JsonWriter {
    out: String,
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonWriter {
    fn newline(&mut self, depth: usize) {
        if let Some(indent) = &self.indent {
            self.out.push('\n');
            for _ in 0..depth {
                self.out.push_str(indent);
            }
        }
    }

    fn value(&mut self, v: &Value, depth: usize) -> std::result::Result<(), minijinja::Error> {
        if depth > MAX_JSON_DEPTH {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "tojson: value nested too deeply",
            ));
        }
        match v.kind() {
            ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self
                .out
                .push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => self.number(v),
            ValueKind::String => self.string(v.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                self.seq(&items, depth)?;
            }
            ValueKind::Map => {
                let mut entries = Vec::new();
                for key in v.try_iter()? {
                    let item = v.get_item(&key)?;
                    entries.push((json_key(&key)?, item));
                }
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.map(&entries, depth)?;
            }
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: a value of type {other} is not JSON serializable"),
                ))
            }
        }
        Ok(())
    }

    fn seq(&mut self, items: &[Value], depth: usize) -> std::result::Result<(), minijinja::Error> {
        if items.is_empty() {
            self.out.push_str("[]");
            return Ok(());
        }
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                let sep = std::mem::take(&mut self.item_sep);
                self.out.push_str(&sep);
                self.item_sep = sep;
            }
            self.newline(depth + 1);
            self.value(item, depth + 1)?;
        }
        self.newline(depth);
        self.out.push(']');
        Ok(())
    }

    fn map(
        &mut self,
        entries: &[(String, Value)],
        depth: usize,
    ) -> std::result::Result<(), minijinja::Error> {
        if entries.is_empty() {
            self.out.push_str("{}");
            return Ok(());
        }
        self.out.push('{');
        for (i, (key, item)) in entries.iter().enumerate() {
            if i > 0 {
                let sep = std::mem::take(&mut self.item_sep);
                self.out.push_str(&sep);
                self.item_sep = sep;
            }
            self.newline(depth + 1);
            self.string(key);
            let sep = std::mem::take(&mut self.key_sep);
            self.out.push_str(&sep);
            self.key_sep = sep;
            self.value(item, depth + 1)?;
        }
        self.newline(depth);
        self.out.push('}');
        Ok(())
    }

    fn number(&mut self, v: &Value) {
        if let Some(n) = v.as_i64() {
            let _ = write!(self.out, "{n}");
        } else if let Ok(n) = i128::try_from(v.clone()) {
            let _ = write!(self.out, "{n}");
        } else if let Ok(x) = f64::try_from(v.clone()) {
            self.out.push_str(&python_float(x));
        } else {
            let _ = write!(self.out, "{v}");
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(self.out, "\\u{unit:04x}");
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

/// A map key as Python's `json.dumps` writes it (keys become strings).
fn json_key(key: &Value) -> std::result::Result<String, minijinja::Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::None => Ok("null".into()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number => {
            let mut w = JsonWriter {
                out: String::new(),
                ensure_ascii: false,
                indent: None,
                item_sep: String::new(),
                key_sep: String::new(),
                sort_keys: false,
            };
            w.number(key);
            Ok(w.out)
        }
        other => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: keys must be strings, numbers, booleans or none, not {other}"),
        )),
    }
}

/// A float as Python's `repr` writes it: the shortest digits that read back
/// the same, positional between 1e-4 and 1e16, scientific (`1e+16`) outside.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let plain = format!("{x}");
        if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Copy the special tokens set in a tokenizer config into `spec`: strings, or
/// AddedToken objects whose `content` is the token.
fn read_special_tokens(
    config: &serde_json::Value,
    what: &str,
    spec: &mut ChatTemplateSpec,
) -> Result<()> {
    for name in SPECIAL_TOKEN_NAMES {
        let token = match config.get(name) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(obj @ serde_json::Value::Object(_)) => match obj.get("content") {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => {
                    return Err(Error::Tokenizer {
                        what: what.to_string(),
                        msg: format!("{name:?} is an object without a string \"content\""),
                    })
                }
            },
            Some(other) => {
                return Err(Error::Tokenizer {
                    what: what.to_string(),
                    msg: format!(
                        "{name:?} must be a string or an AddedToken object, found {}",
                        json_kind(other)
                    ),
                })
            }
        };
        if let Some(slot) = spec.special_token_mut(name) {
            *slot = Some(token);
        }
    }
    Ok(())
}

/// Read a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Tokenizer {
            what: path.display().to_string(),
            msg: format!("larger than the {limit} bytes accepted"),
        });
    }
    Ok(bytes)
}

/// minijinja limits a render's work only when built with its `fuel` feature.
/// Without it these stand in for `Environment::set_fuel` and `fuel` (the
/// inherent methods win when they exist), so the crate builds either way and
/// [`ChatTemplate::fuel_enforced`] reports which it is.
#[allow(dead_code)]
trait FuelFallback {
    fn set_fuel(&mut self, _fuel: Option<u64>) {}
    fn fuel(&self) -> Option<u64> {
        None
    }
}

impl FuelFallback for Environment<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::new(ChatTemplateSpec::new(source)).expect("template")
    }

    fn hi() -> Vec<Message> {
        vec![Message::user("hi")]
    }

    /// The plain-text format the data readers write (render_messages in
    /// src/train/data.rs): `Label: content` blocks joined by a blank line.
    fn as_prompt_text(messages: &[Message]) -> String {
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
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ChatTemplate>();
    }

    #[test]
    fn renders_messages_and_special_tokens() {
        let spec = ChatTemplateSpec::new(
            "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}{{ pad_token }}",
        )
        .with_special_token("bos_token", "<s>")
        .expect("token");
        let t = ChatTemplate::new(spec).expect("template");
        let messages = [Message::user("a"), Message::assistant("b")];
        assert_eq!(
            t.render(&messages, true).expect("render"),
            "<s><user>a<assistant>b<assistant>"
        );
        assert!(t.render(&[], false).is_err());
        assert!(ChatTemplateSpec::new("x")
            .with_special_token("nope", "x")
            .is_err());
    }

    #[test]
    fn syntax_errors_name_origin_and_line() {
        let spec = ChatTemplateSpec::new("line one\n{% for m in messages %}\n{{ m.content }\n");
        let e = ChatTemplate::with_origin(spec, "models/x/tokenizer_config.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("models/x/tokenizer_config.json") && e.contains("line 3"),
            "{e}"
        );
        assert!(e.contains("syntax error"), "{e}");
        let e = ChatTemplate::new(ChatTemplateSpec::new("{% if %}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bundle") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn raise_exception_carries_its_message() {
        let t = template(
            "{% for m in messages %}\n{% if m.role == 'tool' %}\n{{ raise_exception('no tools here: ' + m.content) }}\n{% endif %}\n{% endfor %}",
        );
        let e = t
            .render(&[Message::user("q"), Message::new("tool", "42")], false)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("no tools here: 42") && e.contains("bundle") && e.contains("line 3"),
            "{e}"
        );
    }

    #[test]
    fn render_errors_name_the_line() {
        let t = template("ok\n{{ messages[0].content.no_such_method() }}");
        let e = t.render(&hi(), false).unwrap_err();
        assert!(matches!(e, Error::Tokenizer { .. }), "{e:?}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let t = template(
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
        );
        assert!(
            t.fuel_enforced(),
            "minijinja's `fuel` feature is off: add \"fuel\" to its features in Cargo.toml, \
             or runaway chat templates are not stopped"
        );
        let t = t.with_fuel(200_000).expect("fuel");
        let e = t.render(&hi(), false).unwrap_err().to_string();
        assert!(e.contains("fuel") && e.contains("line 1"), "{e}");
        // An ordinary render fits the default budget many times over.
        let t = template("{% for m in messages %}{{ m.content * 10 }}{% endfor %}");
        let long = vec![Message::user("x".repeat(10_000)); 100];
        assert_eq!(t.render(&long, false).expect("render").len(), 10_000_000);
    }

    #[test]
    fn oversize_templates_are_refused() {
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        let e = ChatTemplate::new(ChatTemplateSpec::new(big))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bytes"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tokenizer_config.json"), "{}").expect("write");
        std::fs::write(
            dir.path().join(CHAT_TEMPLATE_FILE),
            "y".repeat(MAX_TEMPLATE_BYTES + 1),
        )
        .expect("write");
        let e = ChatTemplate::from_tokenizer_config(&dir.path().join("tokenizer_config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(CHAT_TEMPLATE_FILE) && e.contains("larger"),
            "{e}"
        );
    }

    #[test]
    fn config_forms() {
        let v = serde_json::json!({
            "chat_template": [
                {"name": "tool_use", "template": "T"},
                {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}{{ unk_token }}"}
            ],
            "bos_token": {"__type": "AddedToken", "content": "<s>", "special": true},
            "eos_token": "</s>",
            "unk_token": null,
        });
        let t = ChatTemplate::from_config_value(&v, "cfg")
            .expect("config")
            .expect("some");
        assert_eq!(t.render(&hi(), false).expect("render"), "<s>D</s>");
        assert_eq!(t.spec().bos_token.as_deref(), Some("<s>"));
        assert_eq!(t.spec().unk_token, None);
        assert!(
            ChatTemplate::from_config_value(&serde_json::json!({"bos_token": "<s>"}), "cfg")
                .expect("config")
                .is_none()
        );
        let e = ChatTemplate::from_config_value(
            &serde_json::json!({"chat_template": [{"name": "rag", "template": "x"}]}),
            "cfg",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("default") && e.contains("rag"), "{e}");
        let e = ChatTemplate::from_config_value(
            &serde_json::json!({"chat_template": "x", "eos_token": 3}),
            "cfg",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("eos_token"), "{e}");
    }

    #[test]
    fn spec_round_trips_through_json() {
        let t = ChatTemplate::from_config_value(
            &serde_json::json!({"chat_template": "{{ eos_token }}", "eos_token": "</s>"}),
            "cfg",
        )
        .expect("config")
        .expect("some");
        let stored = serde_json::to_string(t.spec()).expect("json");
        assert_eq!(
            stored,
            r#"{"template":"{{ eos_token }}","eos_token":"</s>"}"#
        );
        let back: ChatTemplateSpec = serde_json::from_str(&stored).expect("spec");
        let restored = ChatTemplate::new(back).expect("template");
        assert_eq!(restored.spec(), t.spec());
        assert_eq!(restored.render(&hi(), false).expect("render"), "</s>");
    }

    #[test]
    fn python_methods_and_tojson() {
        let t = template(
            "{{ messages[0].content.strip().upper() }}|{{ messages[0] | tojson }}|{{ messages[0].items() | list | length }}|{{ {'b': [1, 2.5, 1e20, none, true], 'a': '<é>'} | tojson(indent=2, sort_keys=true) }}",
        );
        assert_eq!(
            t.render(&[Message::user("  hi\t\"x\" ")], false)
                .expect("render"),
            "HI\t\"X\"|{\"role\": \"user\", \"content\": \"  hi\\t\\\"x\\\" \"}|2|{\n  \"a\": \"<é>\",\n  \"b\": [\n    1,\n    2.5,\n    1e+20,\n    null,\n    true\n  ]\n}"
        );
        let t = template("{{ messages[0].content | tojson(ensure_ascii=true, separators=(',', ':')) }}{{ [] | tojson }}{{ [1, 2] | tojson(separators=[';', '=']) }}");
        assert_eq!(
            t.render(&[Message::user("é🎉\u{1}")], false)
                .expect("render"),
            "\"\\u00e9\\ud83c\\udf89\\u0001\"[][1;2]"
        );
        let t = template("{{ messages | tojson(bad=1) }}");
        assert!(t.render(&hi(), false).is_err());
    }

    #[test]
    fn python_float_repr() {
        for (x, s) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(python_float(x), s);
        }
    }

    #[test]
    fn strftime_formats_utc() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(format_utc(t, "%Y-%m-%d %H:%M:%S"), "2024-02-29 13:05:09");
        assert_eq!(
            format_utc(t, "%d %b %Y, %A %B %-d %e %I%p %j %y %F %T %% %Q"),
            "29 Feb 2024, Thursday February 29 29 01PM 060 24 2024-02-29 13:05:09 % %Q"
        );
        assert_eq!(format_utc(0, "%a %-m/%-d/%Y %-H"), "Thu 1/1/1970 0");
        assert_eq!(format_utc(-1, "%F %T"), "1969-12-31 23:59:59");
        assert_eq!(format_utc(951_782_400, "%F %j"), "2000-02-29 060");
        assert_eq!(format_utc(4_107_542_400, "%F %a"), "2100-03-01 Mon");
        let t = template("{{ strftime_now('%Y') }}");
        assert_eq!(t.render(&hi(), false).expect("render").len(), 4);
    }

    #[test]
    fn prompts_split_into_messages() {
        assert_eq!(
            messages_from_prompt("What is 2+2?"),
            vec![Message::user("What is 2+2?")]
        );
        assert_eq!(messages_from_prompt(""), vec![Message::user("")]);
        // Text that only mentions a label later on stays one message.
        assert_eq!(
            messages_from_prompt("Explain this:\n\nUser: hi"),
            vec![Message::user("Explain this:\n\nUser: hi")]
        );
        assert_eq!(
            messages_from_prompt("User: hi\n\nAssistant: hello\n\nUser: what is 2+2?"),
            vec![
                Message::user("hi"),
                Message::assistant("hello"),
                Message::user("what is 2+2?")
            ]
        );
        // A blank line inside a turn stays inside it.
        assert_eq!(
            messages_from_prompt("User: one\n\ntwo\n\nAssistant: three"),
            vec![Message::user("one\n\ntwo"), Message::assistant("three")]
        );
    }

    #[test]
    fn prompt_format_round_trips() {
        let conversations = [
            vec![Message::user("hi")],
            vec![
                Message::system("Be brief."),
                Message::user("a"),
                Message::assistant(""),
                Message::user("  spaced \n"),
            ],
            vec![
                Message::user("para one\n\npara two"),
                Message::assistant("Sure:\n\n- x\n- y"),
                Message::user("日本語 🎉"),
            ],
        ];
        for messages in conversations {
            let text = as_prompt_text(&messages);
            assert_eq!(messages_from_prompt(&text), messages, "{text:?}");
        }
    }

    #[test]
    fn helpsteer2_markers() {
        let p = "What is X?\n<extra_id_1>Assistant\nX is a letter.\n<extra_id_1>User\nAnd Y?";
        assert_eq!(
            messages_from_prompt(p),
            vec![
                Message::user("What is X?"),
                Message::assistant("X is a letter."),
                Message::user("And Y?")
            ]
        );
        let p = "<extra_id_0>System\nBe kind.\n<extra_id_1>User\nhi\n<extra_id_1>Assistant\n";
        assert_eq!(
            messages_from_prompt(p),
            vec![Message::system("Be kind."), Message::user("hi")]
        );
        // An unknown marker label: the prompt is taken as it is.
        let p = "a\n<extra_id_1>Robot\nb";
        assert_eq!(messages_from_prompt(p), vec![Message::user(p)]);
    }

    #[test]
    fn pair_response_start() {
        let t = template(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
        );
        let r = t
            .render_pair("User: q\n\nAssistant: a\n\nUser: r", "resp")
            .expect("pair");
        assert_eq!(
            r.prompt_part(),
            "<user>q</s><assistant>a</s><user>r</s><assistant>"
        );
        assert_eq!(r.response_part(), "resp</s>");
        // The generation prompt differs from the assistant header: found by
        // the response's text, then (empty response) by the common prefix.
        let t = template(
            "{% for m in messages %}[{{ m.role }}] {{ m.content | trim }}\n{% endfor %}{% if add_generation_prompt %}[bot] {% endif %}",
        );
        let r = t.render_pair("q", "  é answer ").expect("pair");
        assert_eq!(r.response_part(), "é answer\n");
        let r = t.render_pair("q", "").expect("pair");
        assert_eq!(r.prompt_part(), "[user] q\n[");
        assert_eq!(r.text, "[user] q\n[assistant] \n");
    }
}
