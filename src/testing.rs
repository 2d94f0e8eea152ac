//! Small, deterministic fixtures for tests, benches and the C test program:
//! a tiny random BERT backbone with its own WordPiece tokenizer, so the test
//! suite needs no downloaded model.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::init::SeededRng;
use crate::model::weights::{write_safetensors, Weight};

/// Shape of a tiny BERT.
#[derive(Debug, Clone, Copy)]
pub struct TinyBert {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub seed: u64,
}

impl Default for TinyBert {
    fn default() -> Self {
        TinyBert {
            hidden: 32,
            layers: 2,
            heads: 4,
            intermediate: 64,
            max_positions: 128,
            seed: 1,
        }
    }
}

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS: &str = "the a an of to and in is it that for on with as was be this are by or at from but not \
have has had what which who how why when where can could would should will do does did you your i we they he she \
user assistant answer question good bad better best worse help helpful harmless honest correct wrong response prompt \
please thank thanks sorry yes no maybe sure water fire earth air sun moon star cat dog bird fish tree river city \
one two three four five six seven eight nine ten hundred first second last number time day year people world \
write explain list give make tell show find use think know want need like say get go see come take";

/// The tiny vocabulary: specials, words, single characters and `##` pieces.
fn vocab() -> Vec<String> {
    let mut v: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    v.extend(WORDS.split_whitespace().map(str::to_string));
    for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"()-".chars() {
        v.push(c.to_string());
        if c.is_alphanumeric() {
            v.push(format!("##{c}"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

/// A BERT WordPiece `tokenizer.json` over the tiny vocabulary. Like many
/// published tokenizers it has padding and truncation baked in, which
/// rewardkit must clear.
pub fn tiny_tokenizer_json() -> String {
    let vocab = vocab();
    let id = |t: &str| vocab.iter().position(|v| v == t).unwrap_or(0);
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = SPECIALS
        .iter()
        .map(|s| serde_json::json!({"id": id(s), "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let special = |s: &str| serde_json::json!({"SpecialToken": {"id": s, "type_id": 0}});
    let special1 = |s: &str| serde_json::json!({"SpecialToken": {"id": s, "type_id": 1}});
    let seq = |s: &str, t: u32| serde_json::json!({"Sequence": {"id": s, "type_id": t}});
    let doc = serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]"), seq("A", 0), special("[SEP]")],
            "pair": [special("[CLS]"), seq("A", 0), special("[SEP]"), seq("B", 1), special1("[SEP]")],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [id("[CLS]")], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [id("[SEP]")], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": map}
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Write a tiny random BERT backbone (`config.json`, `model.safetensors`,
/// `tokenizer.json`) into `dir`, laid out like a Hugging Face `BertModel`.
pub fn write_tiny_bert(dir: &Path, spec: TinyBert) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let vocab_size = vocab().len();
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": spec.hidden,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "intermediate_size": spec.intermediate,
        "hidden_act": "gelu",
        "max_position_embeddings": spec.max_positions,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute"
    });
    let mut rng = SeededRng::new(spec.seed);
    let mut tensors: Vec<(String, Weight)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, std: f64, mean: f32| {
        let n = shape.iter().product();
        let data = rng
            .normal_vec(n, std)
            .into_iter()
            .map(|v| v + mean)
            .collect();
        tensors.push((name, Weight { shape, data }));
    };
    let h = spec.hidden;
    // Larger-than-usual weights keep the random model's outputs well spread.
    let s = 0.2;
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![vocab_size, h],
        1.0,
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![spec.max_positions, h],
        0.5,
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, h],
        0.5,
        0.0,
    );
    add("embeddings.LayerNorm.weight".into(), vec![h], 0.1, 1.0);
    add("embeddings.LayerNorm.bias".into(), vec![h], 0.1, 0.0);
    for l in 0..spec.layers {
        let p = format!("encoder.layer.{l}");
        for name in ["query", "key", "value"] {
            add(
                format!("{p}.attention.self.{name}.weight"),
                vec![h, h],
                s,
                0.0,
            );
            add(format!("{p}.attention.self.{name}.bias"), vec![h], s, 0.0);
        }
        add(
            format!("{p}.attention.output.dense.weight"),
            vec![h, h],
            s,
            0.0,
        );
        add(format!("{p}.attention.output.dense.bias"), vec![h], s, 0.0);
        add(
            format!("{p}.attention.output.LayerNorm.weight"),
            vec![h],
            0.1,
            1.0,
        );
        add(
            format!("{p}.attention.output.LayerNorm.bias"),
            vec![h],
            0.1,
            0.0,
        );
        add(
            format!("{p}.intermediate.dense.weight"),
            vec![spec.intermediate, h],
            s,
            0.0,
        );
        add(
            format!("{p}.intermediate.dense.bias"),
            vec![spec.intermediate],
            s,
            0.0,
        );
        add(
            format!("{p}.output.dense.weight"),
            vec![h, spec.intermediate],
            s,
            0.0,
        );
        add(format!("{p}.output.dense.bias"), vec![h], s, 0.0);
        add(format!("{p}.output.LayerNorm.weight"), vec![h], 0.1, 1.0);
        add(format!("{p}.output.LayerNorm.bias"), vec![h], 0.1, 0.0);
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors)?;
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    write(
        "config.json",
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    )?;
    write("tokenizer.json", tiny_tokenizer_json())?;
    Ok(())
}

/// Deterministic English-like text of `n` words (the benches' long inputs;
/// the same words and order as `text()` in benches/compare/train_speed.py).
pub fn filler_text(seed: usize, n: usize) -> String {
    const W: &[&str] = &[
        "the",
        "model",
        "answer",
        "question",
        "because",
        "water",
        "system",
        "people",
        "should",
        "would",
        "important",
        "example",
        "data",
        "result",
        "before",
        "after",
        "simple",
        "careful",
        "explain",
        "reason",
        "value",
        "number",
        "often",
        "never",
        "always",
        "first",
        "second",
        "third",
        "small",
        "large",
        "quick",
        "slow",
        "good",
        "better",
        "best",
        "clear",
        "help",
    ];
    (0..n)
        .map(|i| W[(seed * 31 + i * 17 + i / 7) % W.len()])
        .collect::<Vec<_>>()
        .join(" ")
}
