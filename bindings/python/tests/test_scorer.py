import math

import pytest
from samples import PROMPTS, RESPONSES

import rewardkit

try:
    import numpy as np
except ImportError:
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed")


def test_version_matches_header():
    assert rewardkit.version() == rewardkit.__version__ == "0.1.0"


def test_single_equals_batch(scorer):
    batch = scorer.score_batch(PROMPTS, RESPONSES)
    assert isinstance(batch, list) and all(isinstance(x, float) for x in batch)
    singles = [scorer.score(p, r) for p, r in zip(PROMPTS, RESPONSES)]
    assert batch == pytest.approx(singles, rel=1e-5, abs=1e-6)
    # Different pairs get different rewards (the model is not constant).
    assert len(set(batch)) > 1


@needs_numpy
def test_batch_as_numpy(scorer):
    arr = scorer.score_batch(PROMPTS, RESPONSES, as_numpy=True)
    assert isinstance(arr, np.ndarray) and arr.shape == (len(PROMPTS),) and arr.dtype == np.float32
    assert arr.tolist() == pytest.approx(scorer.score_batch(PROMPTS, RESPONSES), abs=0)


def test_batch_accepts_any_sequence(scorer):
    assert scorer.score_batch(tuple(PROMPTS), iter(RESPONSES)) == scorer.score_batch(
        PROMPTS, RESPONSES
    )


def test_bytes_are_passed_through(scorer):
    assert scorer.score(PROMPTS[0].encode(), RESPONSES[0].encode()) == scorer.score(
        PROMPTS[0], RESPONSES[0]
    )


def test_non_ascii_text(scorer):
    assert math.isfinite(scorer.score("Qu'est-ce que c'est ? 你好 🙂", "Ça va très bien, merci."))


def test_output_names(scorer, scorer5):
    assert scorer.output_names == ("reward",)
    assert scorer.num_outputs == 1
    assert scorer5.output_names == (
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    )


def test_score_outputs_lists(scorer5):
    rows = scorer5.score_outputs(PROMPTS, RESPONSES)
    assert len(rows) == len(PROMPTS) and all(len(r) == 5 for r in rows)
    # The bundle's reward is helpfulness, output 0.
    rewards = [scorer5.score(p, r) for p, r in zip(PROMPTS, RESPONSES)]
    assert [r[0] for r in rows] == pytest.approx(rewards, rel=1e-5, abs=1e-6)


@needs_numpy
def test_score_outputs_numpy(scorer5):
    arr = scorer5.score_outputs(PROMPTS, RESPONSES, as_numpy=True)
    assert arr.shape == (len(PROMPTS), 5) and arr.dtype == np.float32
    assert arr.tolist() == scorer5.score_outputs(PROMPTS, RESPONSES)


def test_score_outputs_one_output(scorer):
    rows = scorer.score_outputs(PROMPTS, RESPONSES)
    assert [r[0] for r in rows] == pytest.approx(
        scorer.score_batch(PROMPTS, RESPONSES), rel=1e-5, abs=1e-6
    )


def test_compare_is_sigmoid_of_difference(scorer):
    p, a, b = PROMPTS[0], RESPONSES[0], RESPONSES[1]
    ra, rb = scorer.score(p, a), scorer.score(p, b)
    expected = 1 / (1 + math.exp(-(ra - rb)))
    assert scorer.compare(p, a, b) == pytest.approx(expected, abs=1e-5)
    assert scorer.compare(p, a, b) + scorer.compare(p, b, a) == pytest.approx(1, abs=1e-5)


def test_options_are_accepted(bundle):
    with rewardkit.Scorer(bundle, threads=1, max_batch=2, max_length=64, max_sessions=2) as s:
        assert math.isfinite(s.score(PROMPTS[0], RESPONSES[0]))
        assert len(s.score_batch(PROMPTS, RESPONSES)) == len(PROMPTS)


def test_pathlike_bundle_dir(bundle):
    from pathlib import Path

    with rewardkit.Scorer(Path(bundle), threads=1) as s:
        assert s.output_names == ("reward",)


def test_close_twice_and_context_manager(bundle):
    s = rewardkit.Scorer(bundle, threads=1)
    s.close()
    s.close()
    assert s.closed
    with rewardkit.Scorer(bundle, threads=1) as s2:
        assert not s2.closed
    assert s2.closed
    assert "closed" in repr(s2)


def test_del_frees_an_open_scorer(bundle):
    s = rewardkit.Scorer(bundle, threads=1)
    s.__del__()
    assert s.closed
    del s


def test_without_numpy(scorer, monkeypatch):
    from rewardkit import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "_np", None)
    assert isinstance(scorer.score_batch(PROMPTS, RESPONSES), list)
    with pytest.raises(ImportError, match="numpy"):
        scorer.score_batch(PROMPTS, RESPONSES, as_numpy=True)
