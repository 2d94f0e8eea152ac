import pytest
from samples import PROMPTS, RESPONSES

from rewardkit import ErrorCode, RewardkitError
from rewardkit.trl import render_messages, reward_func


def test_standard_format(scorer):
    f = reward_func(scorer)
    assert f.__name__ == "rewardkit"
    got = f(
        prompts=PROMPTS,
        completions=RESPONSES,
        completion_ids=[[1]] * len(PROMPTS),
        trainer_state=None,
    )
    assert got == scorer.score_batch(PROMPTS, RESPONSES)
    assert all(isinstance(x, float) for x in got)


def test_conversational_format(scorer):
    prompts = [
        [{"role": "user", "content": PROMPTS[0]}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": PROMPTS[2]},
        ],
    ]
    completions = [
        [{"role": "assistant", "content": RESPONSES[0]}],
        [{"role": "assistant", "content": RESPONSES[2]}],
    ]
    f = reward_func(scorer, name="rk_helpful")
    assert f.__name__ == "rk_helpful"
    rendered = [
        f"User: {PROMPTS[0]}",
        f"System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: {PROMPTS[2]}",
    ]
    assert render_messages(prompts[1]) == rendered[1]
    assert f(prompts, completions) == scorer.score_batch(rendered, [RESPONSES[0], RESPONSES[2]])


def test_bundle_dir_opens_a_scorer(bundle, scorer):
    f = reward_func(bundle)
    try:
        assert f([PROMPTS[0]], [RESPONSES[0]]) == pytest.approx(
            [scorer.score(PROMPTS[0], RESPONSES[0])], abs=1e-6
        )
    finally:
        f.scorer.close()


def test_bad_samples(scorer):
    f = reward_func(scorer)
    assert f([], []) == []
    with pytest.raises(RewardkitError) as e:
        f(["a", "b"], ["c"])
    assert e.value.code is ErrorCode.LENGTH_MISMATCH
    with pytest.raises(ValueError, match="assistant"):
        f([[{"role": "user", "content": "q"}]], [[{"role": "user", "content": "not a reply"}]])
    with pytest.raises(ValueError, match="role"):
        f([[{"role": "robot", "content": "q"}]], ["a"])
    with pytest.raises(ValueError):
        f(["q"], [[]])
