"""The evaluator: pass@k and bootstrap against hand-computed values, resume, stale files, a smoke run."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from dra import evaluate, generation, profiles, tasks


def test_pass_at_1_bootstrap_hand_computed():
    # Two problems, accuracies 0 and 1: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5th and 97.5th percentiles are 0 and 1.
    interval = evaluate.pass_at_1_interval([[False, False], [True, True]])
    assert (interval.estimate, interval.low, interval.high, interval.n) == (0.5, 0.0, 1.0, 2)
    assert interval.method == "percentile bootstrap" and interval.level == 0.95


def test_bootstrap_degenerate_and_narrowing():
    degenerate = evaluate.pass_at_1_interval(np.ones((5, 3), bool))
    assert (degenerate.estimate, degenerate.low, degenerate.high) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(0)
    small = rng.uniform(size=(30, 16)) < 0.4
    large = rng.uniform(size=(480, 16)) < 0.4
    s, l = evaluate.pass_at_1_interval(small), evaluate.pass_at_1_interval(large)
    assert s.low <= s.estimate <= s.high and l.low <= l.estimate <= l.high
    assert l.half_width < s.half_width / 2  # 16x the problems: about a quarter of the width
    with pytest.raises(ValueError, match="at least 2 problems"):
        evaluate.pass_at_1_interval([[True]])


def test_summary_pass_at_k_hand_computed():
    correct = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    out = evaluate.pass_at_k_summary(correct, ks=(2, 4, 8))
    assert out["pass@1"] == pytest.approx(0.2)
    assert out["pass@2"] == pytest.approx((1 - 3 / 10 + 0) / 2)  # 1 - C(3,2)/C(5,2) = 0.7 for the first
    assert out["pass@4"] == pytest.approx((1 - 0 + 0) / 2)
    assert "pass@8" not in out  # k above the number of samples is not reported


@pytest.mark.skipif(not os.environ.get("DRA_DATA_DIR"), reason="DRA_DATA_DIR is not set")
def test_benchmark_items_use_the_paper_eval_prompt():
    items = tasks.MathTask("aime24").evaluation_items(limit=3)
    assert len(items) == 3 and items[0]["prompt"][0]["content"].startswith(tasks.EVAL_PROMPT)
    assert all(item["answer"] for item in items)


@pytest.mark.slow
def test_smoke_evaluation_resumes_and_refuses_stale_files(smoke_policy_dir, tmp_path, monkeypatch):
    smoke_policy = str(smoke_policy_dir)
    smoke = profiles.get("smoke")
    items = smoke.mini_policy().task.evaluation_items("test", 6)
    settings = smoke.evaluation
    path = tmp_path / "eval.json"
    real_sampler = generation.sample_groups
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # killed during the second chunk
        return real_sampler(*args, **kwargs)

    monkeypatch.setattr(generation, "sample_groups", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate(smoke_policy, items, benchmark="mini", profile="smoke", settings=settings, chunk_size=2, path=path)
    partial = json.loads(path.read_text())["problems"]
    assert len(partial) == 2

    monkeypatch.setattr(generation, "sample_groups", real_sampler)
    evaluate.evaluate(smoke_policy, items, benchmark="mini", profile="smoke", settings=settings, chunk_size=2, path=path)
    saved = json.loads(path.read_text())
    assert list(saved["problems"]) == [item["id"] for item in items]
    assert all(saved["problems"][pid] == partial[pid] for pid in partial)  # resumed, not redone
    assert saved["profile"] == "smoke" and "torch" in saved["versions"]
    outcomes = evaluate.load_outcomes(path)
    assert outcomes.shape == (6, settings.n_samples)
    summary = evaluate.pass_at_k_summary(outcomes)
    assert 0.0 <= summary["pass@1_ci_low"] <= summary["pass@1"] <= summary["pass@1_ci_high"] <= 1.0

    with pytest.raises(ValueError, match="other settings"):
        evaluate.evaluate(smoke_policy, items, benchmark="mini", profile="smoke",
                          settings=replace(settings, temperature=0.3), path=path)
