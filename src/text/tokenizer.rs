use std::path::Path;

use tokenizers::{Encoding, Tokenizer, TruncationDirection};

use super::chat::{messages_from_prompt, ChatTemplate};
use crate::error::{Error, Result};

/// Inputs of [`PairTokenizer::encode_pairs`] below this many bytes of text
/// in all are encoded on the calling thread: starting threads costs more
/// than it saves there.
pub const PARALLEL_TEXT_BYTES: usize = 16 * 1024;

/// One encoded (prompt, response) pair, special tokens included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPair {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
}

impl EncodedPair {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A tokenizer that encodes (prompt, response) pairs for a reward model.
///
/// Any padding or truncation configured inside `tokenizer.json` is cleared:
/// rewardkit pads per batch and truncates with its own policy (see
/// [`truncation_split`]).
#[derive(Debug, Clone)]
pub struct PairTokenizer {
    inner: Tokenizer,
    max_length: usize,
    special_tokens: usize,
    pad_id: i64,
    mode: TextMode,
    /// Whether long texts may be encoded from a window at the end they keep
    /// (see [`windowable`]).
    windowed: bool,
}

/// Bytes of text per token budgeted for a first window (English text runs
/// at 4-7 bytes per BERT token); a window that falls short is doubled.
const WINDOW_BYTES_PER_TOKEN: usize = 8;

/// Whether the tokens of text cut at an ASCII whitespace character are
/// exactly the tokens of the text on that side of the cut: normalisation
/// that maps characters one by one, a pre-tokenizer that splits at
/// whitespace, a model that encodes each word alone, and no added token
/// with whitespace inside. Then a long text truncated to a few hundred
/// tokens need only be tokenized near the end it keeps. Other tokenizers
/// (byte-level BPE, SentencePiece, ...) always encode the whole text.
fn windowable(t: &Tokenizer) -> bool {
    use tokenizers::{ModelWrapper as M, NormalizerWrapper as N, PreTokenizerWrapper as P};
    fn per_char(n: &N) -> bool {
        match n {
            N::BertNormalizer(_)
            | N::Lowercase(_)
            | N::NFD(_)
            | N::NFKD(_)
            | N::StripAccents(_) => true,
            N::Sequence(s) => s.as_ref().iter().all(per_char),
            _ => false,
        }
    }
    let normalizer = t.get_normalizer().is_none_or(per_char);
    let pre = matches!(
        t.get_pre_tokenizer(),
        Some(P::BertPreTokenizer(_) | P::Whitespace(_) | P::WhitespaceSplit(_))
    );
    let model = matches!(t.get_model(), M::WordPiece(_) | M::WordLevel(_));
    let added = t
        .get_added_tokens_decoder()
        .values()
        .all(|a| !a.content.chars().any(char::is_whitespace));
    normalizer && pre && model && added
}

/// Which end of a text its encoding keeps when truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeepEnd {
    /// The start (a response).
    Start,
    /// The end (a prompt: its latest turn).
    End,
}

/// About `window` bytes of `text` at the end it keeps, cut just past an
/// ASCII whitespace character; None when there is no whitespace to cut at.
fn window(text: &str, keep: KeepEnd, window: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    match keep {
        KeepEnd::Start => {
            let at = bytes[..window.min(bytes.len())].iter().rposition(space)?;
            Some(&text[..at])
        }
        KeepEnd::End => {
            let from = bytes.len().saturating_sub(window);
            let at = from + bytes[from..].iter().position(space)?;
            Some(&text[at + 1..])
        }
    }
}

/// How a (prompt, response) pair becomes model input.
#[derive(Debug, Clone, Default)]
pub enum TextMode {
    /// The tokenizer's sentence-pair encoding: two segments, special tokens
    /// placed by its post-processor (`[CLS] prompt [SEP] response [SEP]`).
    #[default]
    Pair,
    /// One sequence, for decoder models without a chat template: the
    /// prompt's turns as `User: …` / `Assistant: …` blocks, then
    /// `Assistant: response`, with the tokenizer's own special tokens (BOS).
    Plain,
    /// One sequence rendered by a chat template (the template writes every
    /// special token; the tokenizer adds none, as transformers'
    /// `apply_chat_template` does).
    Chat(Box<ChatTemplate>),
}

/// A (prompt, response) pair as one text, with the byte range of the
/// response inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedText {
    pub text: String,
    /// Where the response's part begins (everything before renders the prompt).
    pub response_start: usize,
    /// Where the response itself ends; what follows is the template's
    /// end-of-turn suffix, which truncation never cuts.
    pub response_end: usize,
}

/// `User: …` / `Assistant: …` blocks for [`TextMode::Plain`].
fn plain_text(prompt: &str, response: &str) -> RenderedText {
    let mut text = String::new();
    for m in messages_from_prompt(prompt) {
        let role = match m.role.as_str() {
            "user" => "User",
            "assistant" => "Assistant",
            "system" => "System",
            other => other,
        };
        text.push_str(role);
        text.push_str(": ");
        text.push_str(&m.content);
        text.push_str("\n\n");
    }
    text.push_str("Assistant: ");
    let response_start = text.len();
    text.push_str(response);
    let response_end = text.len();
    RenderedText {
        text,
        response_start,
        response_end,
    }
}

/// How many prompt and response tokens to keep within `budget` tokens.
///
/// The response is what is being judged, so it keeps priority: it may use
/// everything except a reserve of up to a quarter of the budget for the
/// prompt. The prompt then fills what is left. Callers keep the *end* of the
/// prompt (the latest turn) and the *start* of the response.
pub fn truncation_split(prompt_len: usize, response_len: usize, budget: usize) -> (usize, usize) {
    if prompt_len
        .checked_add(response_len)
        .is_some_and(|total| total <= budget)
    {
        return (prompt_len, response_len);
    }
    let prompt_reserve = prompt_len.min(budget / 4);
    let keep_response = response_len.min(budget - prompt_reserve);
    let keep_prompt = prompt_len.min(budget - keep_response);
    (keep_prompt, keep_response)
}

impl PairTokenizer {
    /// Load `tokenizer.json`. `max_length` bounds every encoded pair,
    /// special tokens included.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, max_length, &path.display().to_string())
    }

    /// Load a tokenizer from the bytes of a `tokenizer.json`; `what` names it in errors.
    pub fn from_bytes(bytes: &[u8], max_length: usize, what: &str) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            what: what.to_string(),
            msg: format!("cannot load: {e}"),
        })?;
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id as i64)
            .or_else(|| inner.token_to_id("[PAD]").map(i64::from))
            .or_else(|| inner.token_to_id("<pad>").map(i64::from))
            .unwrap_or(0);
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| Error::Tokenizer {
            what: what.to_string(),
            msg: e.to_string(),
        })?;
        let special_tokens = inner.get_post_processor().map_or(0, |p| {
            use tokenizers::PostProcessor;
            p.added_tokens(true)
        });
        if max_length <= special_tokens {
            return Err(Error::InvalidArgument(format!(
                "max_length {max_length} leaves no room for text ({special_tokens} special tokens per pair)"
            )));
        }
        let windowed = windowable(&inner);
        Ok(PairTokenizer {
            inner,
            max_length,
            special_tokens,
            pad_id,
            mode: TextMode::Pair,
            windowed,
        })
    }

    /// The same tokenizer with another way of presenting pairs.
    pub fn with_mode(mut self, mode: TextMode) -> Result<Self> {
        use tokenizers::PostProcessor;
        self.special_tokens = match &mode {
            TextMode::Pair => self
                .inner
                .get_post_processor()
                .map_or(0, |p| p.added_tokens(true)),
            TextMode::Plain => self
                .inner
                .get_post_processor()
                .map_or(0, |p| p.added_tokens(false)),
            TextMode::Chat(_) => 0,
        };
        self.mode = mode;
        let max_length = self.max_length;
        self.with_max_length(max_length)
    }

    /// How pairs are presented to the model.
    pub fn mode(&self) -> &TextMode {
        &self.mode
    }

    /// The text a single-sequence mode ([`TextMode::Plain`], [`TextMode::Chat`])
    /// tokenizes for a pair; `None` in [`TextMode::Pair`], which encodes the
    /// two texts as separate segments.
    pub fn render(&self, prompt: &str, response: &str) -> Result<Option<RenderedText>> {
        match &self.mode {
            TextMode::Pair => Ok(None),
            TextMode::Plain => Ok(Some(plain_text(prompt, response))),
            TextMode::Chat(t) => {
                let r = t.render_pair(prompt, response)?;
                let tail = &r.text[r.response_start..];
                let located = [response, response.trim()]
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .find_map(|n| tail.find(n).map(|at| at + n.len()));
                let response_end = r.response_start + located.unwrap_or(0);
                Ok(Some(RenderedText {
                    response_start: r.response_start,
                    response_end,
                    text: r.text,
                }))
            }
        }
    }

    /// The id used to pad batches.
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// The largest encoded length, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// A copy with a different length bound.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        if max_length <= self.special_tokens {
            return Err(Error::InvalidArgument(format!(
                "max_length {max_length} leaves no room for text ({} special tokens per pair)",
                self.special_tokens
            )));
        }
        self.max_length = max_length;
        Ok(self)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    fn encode_plain(&self, text: &str, what: &str) -> Result<Encoding> {
        self.inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer {
                what: what.to_string(),
                msg: format!("cannot encode: {e}"),
            })
    }

    /// Encode a (prompt, response) pair: special tokens as the tokenizer's
    /// post-processor places them, truncated to `max_length` by
    /// [`truncation_split`].
    pub fn encode_pair(&self, prompt: &str, response: &str) -> Result<EncodedPair> {
        match self.render(prompt, response)? {
            None => self.encode_segments(prompt, response),
            Some(r) => self.encode_rendered(&r),
        }
    }

    /// Encode many pairs, in order, on up to `threads` threads (0 = one per
    /// core). Tokenizing is single-threaded per text, and long texts cost
    /// more than a forward pass's share: 32 pairs of two 512-word texts took
    /// about 77 ms on one core. Small inputs (under [`PARALLEL_TEXT_BYTES`]
    /// in all) stay on the calling thread. On failure, the error of the
    /// first failing pair in input order is returned, as when encoding one
    /// by one.
    pub fn encode_pairs<P, R>(
        &self,
        prompts: &[P],
        responses: &[R],
        threads: usize,
    ) -> Result<Vec<EncodedPair>>
    where
        P: AsRef<str> + Sync,
        R: AsRef<str> + Sync,
    {
        if prompts.len() != responses.len() {
            return Err(Error::LengthMismatch {
                what: "prompts vs responses",
                left: prompts.len(),
                right: responses.len(),
            });
        }
        let n = prompts.len();
        let one = |i: usize| self.encode_pair(prompts[i].as_ref(), responses[i].as_ref());
        let bytes: usize = (0..n)
            .map(|i| prompts[i].as_ref().len() + responses[i].as_ref().len())
            .sum();
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            t => t,
        }
        .min(n);
        if threads < 2 || bytes < PARALLEL_TEXT_BYTES {
            return (0..n).map(one).collect();
        }
        // Pairs are handed out one at a time, so one long text does not
        // leave the other threads idle.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut all: Vec<(usize, Result<EncodedPair>)> = Vec::with_capacity(n);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                break done;
                            }
                            done.push((i, one(i)));
                        }
                    })
                })
                .collect();
            for w in workers {
                // A panic in the tokenizer is re-raised here, as it would be
                // on the calling thread.
                all.extend(w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
        });
        // Every index was handed out exactly once.
        all.sort_unstable_by_key(|&(i, _)| i);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Encode a rendered pair as one sequence. Tokens split into the
    /// prompt's part, the response and the suffix after it (by their byte
    /// offsets; special tokens the post-processor adds go with the part
    /// they are next to). Past `max_length`, the suffix and the first token
    /// (BOS or the template's opening) are kept, and the rest shares the
    /// budget by [`truncation_split`]: the end of the prompt, the start of
    /// the response.
    pub fn encode_rendered(&self, r: &RenderedText) -> Result<EncodedPair> {
        let add_special = matches!(self.mode, TextMode::Plain);
        let enc = self
            .inner
            .encode(r.text.as_str(), add_special)
            .map_err(|e| Error::Tokenizer {
                what: "pair".to_string(),
                msg: format!("cannot encode: {e}"),
            })?;
        let ids = enc.get_ids();
        let offsets = enc.get_offsets();
        let special = enc.get_special_tokens_mask();
        let n = ids.len();
        let first_text = (0..n).find(|&i| special[i] == 0).unwrap_or(n);
        // The first token of the response and of the suffix.
        let part = |i: usize| -> u8 {
            if special[i] != 0 {
                return if i < first_text { 0 } else { 2 };
            }
            let start = offsets[i].0;
            if start < r.response_start {
                0
            } else if start < r.response_end {
                1
            } else {
                2
            }
        };
        let a = (0..n).find(|&i| part(i) >= 1).unwrap_or(n);
        let b = (a..n).find(|&i| part(i) >= 2).unwrap_or(n);
        let to_i64 = |s: &[u32]| s.iter().map(|&i| i64::from(i)).collect::<Vec<_>>();
        let kept: Vec<i64> = if n <= self.max_length {
            to_i64(ids)
        } else {
            let suffix = n - b;
            if suffix + 1 >= self.max_length {
                to_i64(&ids[n - self.max_length..])
            } else {
                let (head, prompt) = if a > 0 { (1, a - 1) } else { (0, 0) };
                let budget = self.max_length - suffix - head;
                let (kp, kr) = truncation_split(prompt, b - a, budget);
                let mut v = to_i64(&ids[..head]);
                v.extend(to_i64(&ids[a - kp..a]));
                v.extend(to_i64(&ids[a..a + kr]));
                v.extend(to_i64(&ids[b..]));
                v
            }
        };
        Ok(EncodedPair {
            type_ids: vec![0; kept.len()],
            ids: kept,
        })
    }

    /// Encode one segment of a pair whose truncation keeps `keep` and at
    /// most `budget` tokens. A long text is first encoded from a window at
    /// that end (when the tokenizer allows it, see [`windowable`]); if the
    /// window holds at least `budget` tokens, its encoding serves: the
    /// tokens kept are the same, and [`truncation_split`] gives the same
    /// split for any length of `budget` or more. Otherwise the window
    /// doubles, up to the whole text.
    fn encode_segment(
        &self,
        text: &str,
        keep: KeepEnd,
        budget: usize,
        what: &str,
    ) -> Result<Encoding> {
        if self.windowed {
            let mut size = budget.saturating_mul(WINDOW_BYTES_PER_TOKEN).max(64);
            while size < text.len() {
                let Some(part) = window(text, keep, size) else {
                    break;
                };
                let enc = self.encode_plain(part, what)?;
                if enc.len() >= budget {
                    return Ok(enc);
                }
                size = size.saturating_mul(2);
            }
        }
        self.encode_plain(text, what)
    }

    fn encode_segments(&self, prompt: &str, response: &str) -> Result<EncodedPair> {
        let budget = self.max_length - self.special_tokens;
        let mut p = self.encode_segment(prompt, KeepEnd::End, budget, "prompt")?;
        let mut r = self.encode_segment(response, KeepEnd::Start, budget, "response")?;
        let (keep_p, keep_r) = truncation_split(p.len(), r.len(), budget);
        if keep_p < p.len() {
            p.truncate(keep_p, 0, TruncationDirection::Left);
            p.take_overflowing();
        }
        if keep_r < r.len() {
            r.truncate(keep_r, 0, TruncationDirection::Right);
            r.take_overflowing();
        }
        let enc = self
            .inner
            .post_process(p, Some(r), true)
            .map_err(|e| Error::Tokenizer {
                what: "pair".to_string(),
                msg: e.to_string(),
            })?;
        Ok(EncodedPair {
            ids: enc.get_ids().iter().map(|&i| i64::from(i)).collect(),
            type_ids: enc.get_type_ids().iter().map(|&i| i64::from(i)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn lengths_near_usize_max_do_not_overflow() {
        // Found by fuzzing: the sum of the two lengths used to overflow.
        assert_eq!(truncation_split(usize::MAX, 94, 0), (0, 0));
        // A quarter of the budget is kept for the prompt, the rest for the response.
        assert_eq!(truncation_split(usize::MAX, 94, 100), (25, 75));
        assert_eq!(truncation_split(3, usize::MAX, 100), (3, 97));
    }
    use super::*;

    fn word_tokenizer(max_length: usize) -> PairTokenizer {
        let mut vocab = serde_json::Map::new();
        for (i, w) in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"].iter().enumerate() {
            vocab.insert(w.to_string(), i.into());
        }
        for (i, w) in WORDS.iter().enumerate() {
            vocab.insert(w.to_string(), (i + 4).into());
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        });
        PairTokenizer::from_bytes(json.to_string().as_bytes(), max_length, "test").unwrap()
    }

    const WORDS: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta",
    ];

    fn text(seed: usize, words: usize) -> String {
        (0..words)
            .map(|i| WORDS[(seed * 5 + i * 3 + i / 7) % WORDS.len()])
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn encode_pairs_on_threads_equals_one_by_one_in_order() {
        let tok = word_tokenizer(64);
        // Lengths vary so threads finish out of order; well over
        // PARALLEL_TEXT_BYTES in all, so the threaded path runs.
        let prompts: Vec<String> = (0..40).map(|i| text(i, 5 + (i * 37) % 90)).collect();
        let responses: Vec<String> = (0..40).map(|i| text(i + 3, 1 + (i * 53) % 400)).collect();
        let bytes: usize = prompts.iter().chain(&responses).map(String::len).sum();
        assert!(bytes > PARALLEL_TEXT_BYTES, "{bytes} bytes");
        let one_by_one: Vec<EncodedPair> = prompts
            .iter()
            .zip(&responses)
            .map(|(p, r)| tok.encode_pair(p, r).unwrap())
            .collect();
        for threads in [1, 2, 3, 0] {
            let all = tok.encode_pairs(&prompts, &responses, threads).unwrap();
            assert_eq!(all, one_by_one, "threads = {threads}");
        }
        assert!(one_by_one.iter().all(|e| e.len() <= 64));
        assert!(matches!(
            tok.encode_pairs(&prompts, &responses[1..], 2),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(tok
            .encode_pairs::<&str, &str>(&[], &[], 2)
            .unwrap()
            .is_empty());
    }

    /// A BERT-style WordPiece tokenizer over a small vocabulary.
    fn wordpiece_tokenizer(max_length: usize) -> PairTokenizer {
        let mut vocab = serde_json::Map::new();
        let pieces = [
            "[UNK]", "[CLS]", "[SEP]", "[PAD]", "the", "model", "answer", "un", "##able", "##s",
            "water", "re", "##ason", ",", ".", "!", "(", ")", "é", "cafe", "中", "文", "a", "##b",
        ];
        for (i, w) in pieces.iter().enumerate() {
            vocab.insert(w.to_string(), i.into());
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true}],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
            "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 12, "vocab": vocab}
        });
        PairTokenizer::from_bytes(json.to_string().as_bytes(), max_length, "test").unwrap()
    }

    /// Texts of every kind of piece the windows could cut badly: subwords,
    /// punctuation glued to words, accents, CJK without spaces, words too
    /// long for WordPiece, runs of mixed whitespace.
    fn messy_text(seed: u64, words: usize) -> String {
        const PARTS: [&str; 16] = [
            "the",
            "Model",
            "unable",
            "answers",
            "water,",
            "(reason)",
            "Café",
            "中文中文",
            "ab",
            "abababababababab",
            "zzz",
            "!",
            "re-ason.",
            "THE",
            "ababab",
            "xyzzy",
        ];
        const GAPS: [&str; 5] = [" ", "  ", "\n", "\t ", " \r\n"];
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        let mut t = String::new();
        for i in 0..words {
            if i > 0 {
                t.push_str(GAPS[next() % GAPS.len()]);
            }
            t.push_str(PARTS[next() % PARTS.len()]);
        }
        t
    }

    #[test]
    fn windowed_encoding_equals_whole_text_encoding() {
        for max_length in [8, 17, 64, 130] {
            let tok = wordpiece_tokenizer(max_length);
            assert!(tok.windowed, "a BERT tokenizer is windowable");
            let mut whole = tok.clone();
            whole.windowed = false;
            for seed in 0..60u64 {
                // From shorter than the window to many times longer.
                let p = messy_text(seed, 1 + (seed as usize * 7) % 300);
                let r = messy_text(seed + 1000, 1 + (seed as usize * 13) % 500);
                for (a, b) in [(&p, &r), (&r, &p), (&p, &p)] {
                    assert_eq!(
                        tok.encode_pair(a, b).unwrap(),
                        whole.encode_pair(a, b).unwrap(),
                        "max_length {max_length}, seed {seed}"
                    );
                }
            }
            // One token per 17 bytes (words too long for WordPiece): the
            // first window falls short and has to grow.
            let sparse = "abababababababab ".repeat(300);
            let short = messy_text(7, 3);
            for (a, b) in [(&sparse, &sparse), (&sparse, &short), (&short, &sparse)] {
                assert_eq!(
                    tok.encode_pair(a, b).unwrap(),
                    whole.encode_pair(a, b).unwrap()
                );
            }
            // Text with no whitespace to cut at is encoded whole.
            let cjk = "中文".repeat(400);
            assert_eq!(
                tok.encode_pair(&cjk, &cjk).unwrap(),
                whole.encode_pair(&cjk, &cjk).unwrap()
            );
        }
    }

    #[test]
    fn only_word_by_word_tokenizers_are_windowed() {
        assert!(word_tokenizer(16).windowed);
        let json = |pre: serde_json::Value| {
            serde_json::json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
                "normalizer": null, "pre_tokenizer": pre, "post_processor": null, "decoder": null,
                "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}
            })
            .to_string()
        };
        let metaspace = json(serde_json::json!({"type": "Metaspace", "replacement": "▁",
            "prepend_scheme": "always", "split": true}));
        let t = PairTokenizer::from_bytes(metaspace.as_bytes(), 16, "test").unwrap();
        assert!(!t.windowed);
        let none = json(serde_json::Value::Null);
        assert!(
            !PairTokenizer::from_bytes(none.as_bytes(), 16, "test")
                .unwrap()
                .windowed
        );
    }

    #[test]
    fn windows_cut_at_whitespace() {
        assert_eq!(window("ab cd ef", KeepEnd::Start, 5), Some("ab"));
        assert_eq!(window("ab cd ef", KeepEnd::Start, 6), Some("ab cd"));
        assert_eq!(window("ab cd ef", KeepEnd::End, 4), Some("ef"));
        assert_eq!(window("ab cd ef", KeepEnd::End, 6), Some("cd ef"));
        assert_eq!(window("abcdef", KeepEnd::Start, 3), None);
        assert_eq!(window("abcdef", KeepEnd::End, 3), None);
        // Multi-byte characters next to the cut stay whole.
        assert_eq!(window("éé éé", KeepEnd::Start, 5), Some("éé"));
        assert_eq!(window("éé éé", KeepEnd::End, 5), Some("éé"));
    }

    #[test]
    fn split_keeps_everything_that_fits() {
        assert_eq!(truncation_split(10, 20, 30), (10, 20));
        assert_eq!(truncation_split(0, 0, 5), (0, 0));
    }

    #[test]
    fn split_prefers_the_response_but_keeps_some_prompt() {
        // A long response leaves the prompt a quarter of the budget.
        assert_eq!(truncation_split(100, 1000, 100), (25, 75));
        // A short prompt is kept whole, the response takes the rest.
        assert_eq!(truncation_split(10, 1000, 100), (10, 90));
        // A long prompt with a short response: the response is kept whole.
        assert_eq!(truncation_split(1000, 30, 100), (70, 30));
        for (p, r, b) in [(7, 9, 10), (1, 50, 3), (500, 500, 509), (3, 0, 2)] {
            let (kp, kr) = truncation_split(p, r, b);
            assert!(
                kp + kr <= b && kp <= p && kr <= r,
                "{p} {r} {b} -> {kp} {kr}"
            );
        }
    }
}
