"""The inconsistency study: per-prompt Spearman tests, NaN accounting, intervals, rewards and the cache."""

import itertools

import numpy as np
import pytest
from scipy import stats

from dra import study
from dra.rewards import paper_reward


def direct_pvalue(rewards_row, emb_group):
    """Spearman over explicit pairs i < j, written without any of the module's code."""
    xs, ys = [], []
    for i, j in itertools.combinations(range(len(rewards_row)), 2):
        xs.append(abs(rewards_row[i] - rewards_row[j]))
        a, b = emb_group[i], emb_group[j]
        ys.append(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    res = stats.spearmanr(xs, ys)
    return res.statistic, res.pvalue


def test_prompt_pvalues_match_direct_scipy():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(25, 6))
    emb = rng.normal(size=(25, 6, 16))
    rho, p = study.prompt_pvalues(rewards, emb)
    assert rho.shape == p.shape == (25,)
    for k in range(25):
        want_rho, want_p = direct_pvalue(rewards[k], emb[k])
        assert rho[k] == pytest.approx(want_rho, abs=1e-12)
        assert p[k] == pytest.approx(want_p, abs=1e-12)


def test_ties_in_binary_rewards_match_direct_scipy():
    rng = np.random.default_rng(1)
    rewards = rng.integers(0, 2, size=(40, 6)).astype(float)
    emb = rng.normal(size=(40, 6, 8))
    rho, p = study.prompt_pvalues(rewards, emb)
    for k in range(40):
        if np.ptp(rewards[k]) == 0:
            assert np.isnan(p[k]) and np.isnan(rho[k])
        else:
            assert p[k] == pytest.approx(direct_pvalue(rewards[k], emb[k])[1], abs=1e-12)


def test_undefined_prompts_are_nan_and_counted_separately():
    rng = np.random.default_rng(2)
    rewards = rng.normal(size=(10, 6))
    rewards[:4] = 1.0  # all completions equally rewarded: every difference is 0
    emb = rng.normal(size=(10, 6, 8))
    rho, p = study.prompt_pvalues(rewards, emb)
    assert np.isnan(p[:4]).all() and not np.isnan(p[4:]).any()
    summary = study.summarize(p)
    assert summary.n_prompts == 10 and summary.n_defined == 6
    assert summary.share_undefined == pytest.approx(0.4)
    assert summary.n_significant == int((p[4:] < 0.05).sum())


def test_fewer_than_three_pairs_is_undefined():
    rho, p = study.prompt_pvalues(np.array([[0.0, 1.0]]), np.random.default_rng(0).normal(size=(1, 2, 4)))
    assert np.isnan(rho).all() and np.isnan(p).all()


def test_wilson_interval_and_share():
    p = np.array([0.01] * 3 + [0.5] * 17 + [np.nan] * 5)
    s = study.summarize(p)
    ci = stats.binomtest(3, 20).proportion_ci(method="wilson")
    assert (s.share_significant, s.ci_low, s.ci_high) == pytest.approx((0.15, ci.low, ci.high))


def test_cluster_bootstrap_interval_brackets_share():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=300)
    clusters = np.repeat(np.arange(50), 6)
    s = study.summarize(p, clusters=clusters)
    assert s.ci_method == "cluster bootstrap"
    assert s.ci_low <= s.share_significant <= s.ci_high


def test_group_rewards_agree_with_the_reward_functions():
    texts = [
        "<think>\n5 times 1\n</think>\n<answer> \\boxed{5} </answer>",
        "<think>\nguess\n</think>\n<answer> \\boxed{6} </answer>",
        "no tags \\boxed{5}",
        "<think>\n" + "long " * 300 + "\n</think>\n<answer> \\boxed{5} </answer>",
    ]
    from dra.rewards import is_correct

    correct = np.array([[is_correct(t, "5") for t in texts]])
    got = study.group_rewards([texts], correct, "paper")[0]
    np.testing.assert_allclose(got, paper_reward(texts, answer=["5"] * 4))
    np.testing.assert_array_equal(study.group_rewards([texts], correct, "accuracy")[0], [1, 0, 1, 1])
    only_length = study.group_rewards([texts], correct, "length_only")[0]
    np.testing.assert_allclose(only_length, study.group_rewards([texts], np.ones((1, 4), bool), "cosine")[0])


def test_group_rewards_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown reward"):
        study.group_rewards([["a"]], [[True]], "bleu")
    with pytest.raises(ValueError, match="same"):
        study.group_rewards([["a", "b"]], [[True]], "accuracy")


def test_pairwise_arrays_rejects_bad_shapes_and_values():
    with pytest.raises(ValueError, match=r"\(P, G\)"):
        study.pairwise_arrays(np.ones((2, 3)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        study.pairwise_arrays(np.array([[np.nan, 1, 2]]), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match="zero norm"):
        study.pairwise_arrays(np.ones((1, 3)), np.zeros((1, 3, 2)))


def test_regroup_splits_into_disjoint_groups():
    groups, source = study.regroup([list(range(13)), list(range(5))], 6)
    assert groups == [list(range(6)), list(range(6, 12))]
    np.testing.assert_array_equal(source, [0, 0])
    with pytest.raises(ValueError, match="no prompt"):
        study.regroup([[1, 2]], 3)


class CountingEmbedder:
    name = "counting"
    max_seq_length = 8

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.stack([np.array([len(t), 1.0, t.count("a")], dtype=np.float32) for t in texts])


def test_embedding_cache_is_keyed_by_texts_and_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path))
    emb = CountingEmbedder()
    groups = [["a", "bb", "ccc"], ["aa", "b", "c"]]
    first = study.embed_groups(groups, emb)
    second = study.embed_groups(groups, emb)
    assert emb.calls == 1 and first.shape == (2, 3, 3)
    np.testing.assert_array_equal(first, second)
    study.embed_groups([["a", "bb", "cccc"], ["aa", "b", "c"]], emb)
    assert emb.calls == 2  # other texts: recomputed
    emb.max_seq_length = 16
    study.embed_groups(groups, emb)
    assert emb.calls == 3  # other embedder settings: recomputed


@pytest.mark.slow
def test_policy_groups_sample_and_grade_at_smoke_scale():
    """The mini/paper-scale path end to end with the smoke policy on the transformers backend."""
    from dra import mini, policy

    config = policy.policy_config("smoke")
    path = policy.base_policy(config=config)
    problems = mini.make_splits(config.split_seed, n_test=config.n_test, n_validation=config.n_validation).test[:4]
    records = mini.prompt_records(problems, config.system_prompt)
    timer = study.StageTimer()
    sg = study.policy_groups(str(path), [r["prompt"] for r in records], [r["answer"] for r in records], 3,
                             scale="smoke", max_new_tokens=12, seed=0, timer=timer)
    assert len(sg.groups) == 4 and all(len(g) == 3 and all(isinstance(t, str) for t in g) for g in sg.groups)
    assert sg.correct.shape == (4, 3) and sg.correct.dtype == bool
    assert set(timer.seconds) == {"sampling", "grading"}
    with pytest.raises(ImportError, match="gpu"):
        study.policy_groups(str(path), [records[0]["prompt"]], ["1"], 2, scale="paper", max_new_tokens=4, backend="vllm")
