"""Interop: rewardkit bundles are plain ONNX that stock tools accept.

With nothing but ``onnx``, ``onnxruntime`` and ``numpy`` (no rewardkit code,
no tokenizer library), every bundle written by ``rewardkit init``

* passes ``onnx.checker.check_model(..., full_check=True)``,
* loads in a stock ``onnxruntime.InferenceSession``, and
* gives, for the same token ids, the same scores as ``rewardkit score``, and
  the same scores for a row in a padded batch as for the row alone.

Token ids on the Python side: for all-MiniLM-L6-v2 they are the ids recorded in
tests/fixtures/minilm_parity.json (tests/parity.rs checks that rewardkit's
tokenizer produces exactly those); for the tiny test backbone they are made by
hand from plain lowercase words of its vocabulary, each a whole WordPiece token.

Run through ``scripts/test-python.sh``, which builds ``target/release/rewardkit``
and a venv with the pinned packages. ``REWARDKIT_BIN`` overrides the binary.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("REWARDKIT_BIN", ROOT / "target" / "release" / "rewardkit"))
MINILM = ROOT / ".rewardkit" / "models" / "all-MiniLM-L6-v2"
FIXTURE = ROOT / "tests" / "fixtures" / "minilm_parity.json"
TOL = 1e-5

TINY_BUNDLES = {
    # name: (--outputs, --pooling, n_outputs); names ending in -portable are
    # written with --portable (standard ONNX ops only), the others with
    # ONNX Runtime's fused contrib ops.
    "tiny-reward-mean": ("reward", "mean", 1),
    "tiny-reward-cls": ("reward", "cls", 1),
    "tiny-helpsteer2-mean": ("helpsteer2", "mean", 5),
    "tiny-helpsteer2-cls": ("helpsteer2", "cls", 5),
    "tiny-reward-mean-portable": ("reward", "mean", 1),
    "tiny-helpsteer2-cls-portable": ("helpsteer2", "cls", 5),
}
MINILM_BUNDLE = "minilm-helpsteer2-mean"
ALL_BUNDLES = list(TINY_BUNDLES) + [MINILM_BUNDLE]

# (prompt, response) pairs of whole words from the tiny vocabulary.
TINY_PAIRS = [
    ("what is the sun", "the sun is a star"),
    (
        "user tell what a cat and a dog are assistant",
        "the dog and the cat are good and they like to help people find water in the city",
    ),
    ("help", "yes"),
    ("why", "no"),
]


def rk(*args):
    """Run the rewardkit binary; return its standard output."""
    if not BIN.is_file():
        pytest.fail(f"{BIN} is missing: run scripts/test-python.sh (it runs cargo build --release)")
    proc = subprocess.run(
        [str(BIN), *map(str, args)], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"rewardkit {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """Every bundle under test, by name -> directory."""
    work = tmp_path_factory.mktemp("bundles")
    tiny = work / "tiny-backbone"
    rk("dev", "tiny-backbone", tiny)
    out = {}
    for name, (outputs, pooling, _) in TINY_BUNDLES.items():
        out[name] = work / name
        portable = ["--portable"] if name.endswith("-portable") else []
        rk("init", "--backbone", tiny, "--out", out[name],
           "--outputs", outputs, "--pooling", pooling, "--seed", "5", *portable)
    if not (MINILM / "model.safetensors").is_file():
        pytest.fail(f"the all-MiniLM-L6-v2 backbone is missing at {MINILM}: run `make setup`")
    out[MINILM_BUNDLE] = work / MINILM_BUNDLE
    rk("init", "--backbone", MINILM, "--out", out[MINILM_BUNDLE],
       "--outputs", "helpsteer2", "--pooling", "mean", "--seed", "5")
    return out


def manifest(bundle):
    return json.loads((bundle / "rewardkit.json").read_text())


def session(bundle):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(bundle / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )


def pad(rows):
    """Right-pad [(ids, type_ids)] with id 0 into the graph's three int64 inputs."""
    n = max(len(ids) for ids, _ in rows)
    feed = {
        "input_ids": np.zeros((len(rows), n), np.int64),
        "attention_mask": np.zeros((len(rows), n), np.int64),
        "token_type_ids": np.zeros((len(rows), n), np.int64),
    }
    for i, (ids, types) in enumerate(rows):
        feed["input_ids"][i, : len(ids)] = ids
        feed["attention_mask"][i, : len(ids)] = 1
        feed["token_type_ids"][i, : len(ids)] = types
    return feed


def run_scores(sess, rows):
    feed = pad(rows)
    names = {i.name for i in sess.get_inputs()}
    (scores,) = sess.run(["scores"], {k: v for k, v in feed.items() if k in names})
    return scores


def cli_scores(bundle, pairs, tmp_path):
    """Scores from `rewardkit score --input`, [n_pairs, n_outputs] in manifest order."""
    src, dst = tmp_path / "pairs.jsonl", tmp_path / "scores.jsonl"
    with src.open("w", encoding="utf-8") as f:
        for p, r in pairs:
            f.write(json.dumps({"prompt": p, "response": r}, ensure_ascii=False) + "\n")
    rk("score", "--model", bundle, "--input", src, "--output", dst, "--batch-size", "3")
    m = manifest(bundle)
    rows = [json.loads(line) for line in dst.read_text().splitlines() if line.strip()]
    assert len(rows) == len(pairs)
    for row in rows:
        assert row["reward"] == row[m["reward_output"]]
    return np.array([[row[o] for o in m["outputs"]] for row in rows], np.float64)


def tiny_ids(bundle, prompt, response):
    """[CLS] prompt [SEP] response [SEP] by hand, from the bundle's vocabulary."""
    vocab = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]

    def words(text):
        return [vocab[w] for w in text.split()]

    a, b = words(prompt), words(response)
    ids = [vocab["[CLS]"], *a, vocab["[SEP]"], *b, vocab["[SEP]"]]
    types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return ids, types


@pytest.mark.parametrize("name", ALL_BUNDLES)
def test_onnx_checker_full(bundles, name):
    model = onnx.load(str(bundles[name] / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("name", ALL_BUNDLES)
def test_graph_form(bundles, name):
    """Portable graphs use the default ONNX domain only; the others use
    ONNX Runtime's fused attention and GELU (float32 bundles keep the
    standard LayerNormalization, which ORT's CPU kernels run faster than
    SkipLayerNormalization)."""
    model = onnx.load(str(bundles[name] / "model.onnx"))
    contrib = {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}
    assert {n.domain for n in model.graph.node} <= {"", "com.microsoft"}
    if name.endswith("-portable"):
        assert not contrib
        assert [o.domain for o in model.opset_import] == [""]
    else:
        assert {"Attention", "BiasGelu"} <= contrib
        assert "SkipLayerNormalization" not in contrib


def test_portable_and_fused_score_alike(bundles):
    """The same weights in either form give the same scores in stock ORT."""
    for fused, portable in [
        ("tiny-reward-mean", "tiny-reward-mean-portable"),
        ("tiny-helpsteer2-cls", "tiny-helpsteer2-cls-portable"),
    ]:
        rows = [tiny_ids(bundles[fused], p, r) for p, r in TINY_PAIRS]
        a = run_scores(session(bundles[fused]), rows)
        b = run_scores(session(bundles[portable]), rows)
        assert np.abs(a - b).max() <= TOL, (fused, np.abs(a - b).max())


@pytest.mark.parametrize("name", ALL_BUNDLES)
def test_loads_in_stock_onnxruntime(bundles, name):
    bundle = bundles[name]
    m = manifest(bundle)
    sess = session(bundle)
    inputs = sess.get_inputs()
    assert [i.name for i in inputs] == m["inputs"]
    assert all(i.type == "tensor(int64)" for i in inputs)
    assert all(len(i.shape) == 2 for i in inputs)
    scores = [o for o in sess.get_outputs() if o.name == "scores"]
    assert scores, [o.name for o in sess.get_outputs()]
    assert scores[0].type == "tensor(float)"
    assert scores[0].shape[1] == len(m["outputs"])


@pytest.mark.parametrize("name", list(TINY_BUNDLES))
def test_tiny_padded_batch_matches_rows_alone(bundles, name, tmp_path):
    bundle = bundles[name]
    n_outputs = TINY_BUNDLES[name][2]
    sess = session(bundle)
    rows = [tiny_ids(bundle, p, r) for p, r in TINY_PAIRS]
    lengths = [len(ids) for ids, _ in rows]
    assert min(lengths) < max(lengths)

    batched = run_scores(sess, rows)
    assert batched.shape == (len(rows), n_outputs)
    assert batched.dtype == np.float32
    assert np.isfinite(batched).all()
    # A random model still tells different inputs apart.
    assert np.ptp(batched[:, 0]) > 1e-3, batched
    for i, row in enumerate(rows):
        alone = run_scores(sess, [row])
        np.testing.assert_allclose(alone[0], batched[i], rtol=0, atol=TOL)

    # The hand-made ids are what rewardkit's tokenizer makes of these words,
    # so the command line agrees with stock onnxruntime too.
    cli = cli_scores(bundle, TINY_PAIRS, tmp_path)
    np.testing.assert_allclose(cli, batched, rtol=0, atol=TOL)


def test_minilm_stock_onnxruntime_matches_rewardkit_score(bundles, tmp_path):
    bundle = bundles[MINILM_BUNDLE]
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    pairs = [(p["prompt"], p["response"]) for p in fixture["pairs"]]
    rows = [(p["input_ids"], p["token_type_ids"]) for p in fixture["pairs"]]
    n_outputs = len(manifest(bundle)["outputs"])

    sess = session(bundle)
    batched = run_scores(sess, rows)
    assert batched.shape == (len(rows), n_outputs)
    assert np.isfinite(batched).all()
    alone = np.concatenate([run_scores(sess, [row]) for row in rows])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=TOL)

    cli = cli_scores(bundle, pairs, tmp_path)
    diff = np.abs(cli - batched).max()
    print(f"MiniLM: max |rewardkit score - stock onnxruntime| = {diff:.3e}")
    np.testing.assert_allclose(cli, batched, rtol=0, atol=TOL)

    # One pair through --prompt/--response as well.
    line = json.loads(rk("score", "--model", bundle, "--prompt", pairs[1][0],
                         "--response", pairs[1][1]))
    m = manifest(bundle)
    one = np.array([line[o] for o in m["outputs"]])
    np.testing.assert_allclose(one, batched[1], rtol=0, atol=TOL)
