import re
from pathlib import Path

import pytest
from samples import PROMPTS, RESPONSES

import rewardkit
from rewardkit import ErrorCode, RewardkitError, ScorerClosedError, _loader

HEADER = Path(__file__).resolve().parents[3] / "include" / "rewardkit.h"


def test_every_header_code_is_mapped():
    codes = dict(re.findall(r"#define RK_ERR_(\w+) (\d+)", HEADER.read_text()))
    assert codes, "no RK_ERR_* in the header"
    assert {name: int(v) for name, v in codes.items()} == {c.name: c.value for c in ErrorCode}
    for name, value in codes.items():
        err = RewardkitError(int(value), "m")
        assert err.code is ErrorCode[name] and str(err) == f"m (rewardkit error {value} {name})"


def test_unknown_code_is_kept():
    err = RewardkitError(777, "new")
    assert err.code == 777 and not isinstance(err.code, ErrorCode)


def test_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(RewardkitError(ErrorCode.IO, "disk")))
    assert err.code is ErrorCode.IO and err.message == "disk"


def code_of(excinfo):
    return excinfo.value.code


def test_nonexistent_bundle(tmp_path):
    with pytest.raises(RewardkitError) as e:
        rewardkit.Scorer(tmp_path / "no-such-bundle")
    assert code_of(e) is ErrorCode.INVALID_BUNDLE
    assert "no-such-bundle" in str(e.value)


def test_broken_bundle(broken_bundle):
    with pytest.raises(RewardkitError) as e:
        rewardkit.Scorer(broken_bundle)
    assert code_of(e) is ErrorCode.INVALID_BUNDLE
    assert "model.onnx" in str(e.value)


def test_calls_after_close(bundle):
    s = rewardkit.Scorer(bundle, threads=1)
    s.close()
    for call in (
        lambda: s.score("p", "r"),
        lambda: s.score_batch(["p"], ["r"]),
        lambda: s.score_outputs(["p"], ["r"]),
        lambda: s.compare("p", "a", "b"),
    ):
        with pytest.raises(ScorerClosedError) as e:
            call()
        assert isinstance(e.value, RewardkitError) and code_of(e) is ErrorCode.NULL_ARGUMENT


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.score(None, "r"),
        lambda s: s.score("p", None),
        lambda s: s.compare("p", None, "b"),
        lambda s: s.score_batch(None, ["r"]),
        lambda s: s.score_batch(["p"], None),
        lambda s: s.score_batch(["p", None], ["r", "r"]),
        lambda s: s.score_outputs(["p"], [None]),
        lambda s: s.score_batch("p", "r"),  # a str is not a batch
        lambda s: s.score(1, "r"),
    ],
)
def test_none_and_wrong_types_raise_type_error(scorer, call):
    with pytest.raises(TypeError):
        call(scorer)


def test_none_bundle_dir():
    with pytest.raises(TypeError):
        rewardkit.Scorer(None)


def test_mismatched_lengths(scorer):
    for fn in (scorer.score_batch, scorer.score_outputs):
        with pytest.raises(RewardkitError) as e:
            fn(PROMPTS, RESPONSES[:-1])
        assert code_of(e) is ErrorCode.LENGTH_MISMATCH


def test_empty_batch(scorer):
    for fn in (scorer.score_batch, scorer.score_outputs):
        with pytest.raises(RewardkitError) as e:
            fn([], [])
        assert code_of(e) is ErrorCode.EMPTY_BATCH


def test_lone_surrogate_is_invalid_utf8(scorer):
    with pytest.raises(RewardkitError) as e:
        scorer.score("bad \ud800 text", "r")
    assert code_of(e) is ErrorCode.INVALID_UTF8
    with pytest.raises(RewardkitError) as e:
        scorer.score_batch(["p", "p"], ["r", "\udfff"])
    assert code_of(e) is ErrorCode.INVALID_UTF8


def test_invalid_utf8_bytes(scorer):
    with pytest.raises(RewardkitError) as e:
        scorer.score(b"\xff\xfe", "r")
    assert code_of(e) is ErrorCode.INVALID_UTF8


def test_nul_character(scorer):
    with pytest.raises(ValueError):
        scorer.score("a\0b", "r")


def test_bad_options(bundle):
    with pytest.raises(RewardkitError) as e:
        rewardkit.Scorer(bundle, threads=-1)
    assert code_of(e) is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(TypeError):
        rewardkit.Scorer(bundle, max_batch="8")
    with pytest.raises(ValueError):
        rewardkit.Scorer(bundle, device="tpu")


def test_every_error_is_freed(scorer, broken_bundle, monkeypatch):
    lib = _loader.lib()
    freed = []
    real_free = lib.rk_error_free

    def counting_free(err):
        freed.append(True)
        real_free(err)

    monkeypatch.setattr(lib, "rk_error_free", counting_free)
    raised = 0
    for call in (
        lambda: rewardkit.Scorer(broken_bundle),
        lambda: scorer.score_batch([], []),
        lambda: scorer.score("\ud800", "r"),
        lambda: scorer.compare(b"\xff", "a", "b"),
    ):
        with pytest.raises(RewardkitError):
            call()
        raised += 1
    assert len(freed) == raised


def test_library_not_found_lists_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("REWARDKIT_LIB", str(tmp_path / "librewardkit.so"))
    with pytest.raises(rewardkit.LibraryNotFoundError) as e:
        _loader._open()
    assert "REWARDKIT_LIB" in str(e.value) and str(tmp_path) in str(e.value)
    monkeypatch.delenv("REWARDKIT_LIB")
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    tried = [where for where, _ in _loader._candidates()]
    assert tried[0] == "bundled" and tried[-1] == "system loader"


def test_device_options_reach_the_library(bundle):
    # With a CPU-only ONNX Runtime (the one `make setup` fetches) CUDA is
    # refused, naming the device ordinal it was asked for; with CUDA it opens.
    try:
        s = rewardkit.Scorer(bundle, device="cuda", device_id=3)
    except RewardkitError as e:
        assert e.code in (ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.RUNTIME)
        if e.code is ErrorCode.PROVIDER_UNAVAILABLE:
            assert "device 3" in e.message
    else:
        s.close()
