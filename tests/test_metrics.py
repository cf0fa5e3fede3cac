"""Metrics against values computed by hand or by an independent formula."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from dra import metrics, mini


def test_pass_at_k_hand_computed():
    assert metrics.pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert metrics.pass_at_k(6, 1, 1) == pytest.approx(1 / 6)
    assert metrics.pass_at_k(6, 0, 6) == 0.0
    assert metrics.pass_at_k(6, 1, 6) == 1.0
    assert metrics.pass_at_k(6, 3, 4) == 1.0  # n - c < k: every 4-subset holds a correct sample


def test_pass_at_k_equals_the_subset_definition():
    # pass@k is the chance that a uniformly drawn k-subset of the n samples holds a correct one.
    for n, c, k in [(6, 2, 3), (8, 3, 2), (5, 1, 4), (7, 4, 1)]:
        samples = [True] * c + [False] * (n - c)
        subsets = list(itertools.combinations(samples, k))
        assert metrics.pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_mean_pass_at_k_over_prompts():
    correct = [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert metrics.mean_pass_at_k(correct, 2) == pytest.approx((0.7 + 0.0 + 1.0) / 3)
    assert metrics.mean_pass_at_k(correct, 1) == pytest.approx(metrics.pass_at_1(correct)) == pytest.approx(7 / 15)


@pytest.mark.parametrize("args", [(5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(args):
    with pytest.raises(ValueError, match="pass@k"):
        metrics.pass_at_k(*args)


def test_mean_pass_at_k_rejects_k_above_group_size_and_ragged_groups():
    with pytest.raises(ValueError, match="number of samples"):
        metrics.mean_pass_at_k([[1, 0]], 3)
    with pytest.raises(ValueError, match="equal group sizes"):
        metrics.pass_at_1([[1, 0], [1]])


def test_strategy_shares_entropy_and_dominant():
    labels = ["a", "a", "b", "c", None, "a", "b", "a"]  # recognised: a x4, b x2, c x1
    shares = metrics.strategy_shares(labels)
    assert shares == pytest.approx({"a": 4 / 7, "b": 2 / 7, "c": 1 / 7})
    assert list(shares) == ["a", "b", "c"]
    expected = -sum(p * math.log2(p) for p in (4 / 7, 2 / 7, 1 / 7))
    assert metrics.strategy_entropy(labels) == pytest.approx(expected)
    assert metrics.strategy_entropy(["x"] * 5) == 0.0
    assert metrics.strategy_entropy(["a", "b"]) == pytest.approx(1.0)
    assert metrics.strategy_entropy([None, None]) == 0.0
    assert metrics.dominant_strategy(labels) == ("a", pytest.approx(4 / 7))
    assert metrics.dominant_strategy([None]) == (None, 0.0)
    with_unknown = metrics.strategy_shares(labels, include_unknown=True)
    assert with_unknown["unknown"] == pytest.approx(1 / 8)


def test_distinct_correct_strategies():
    strategies = [["a", "a", "b", None], ["a", "b", "c", "c"], [None, None, "a", "a"]]
    correct = [[1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0]]
    assert metrics.distinct_correct_strategies(strategies, correct).tolist() == [2, 2, 0]
    with pytest.raises(ValueError, match="shape"):
        metrics.distinct_correct_strategies(strategies[:2], correct)


def test_home_metrics_counted_by_hand():
    homes = ["a", "b"]
    strategies = [["a", "a", "b", None], ["a", "b", "b", "c"]]
    correct = [[1, 0, 0, 0], [0, 1, 1, 0]]
    got = metrics.home_metrics(homes, strategies, correct, ("a", "b", "c"))
    assert got["home_share"] == 4 / 8  # a, a in row 0; b, b in row 1
    assert got["accuracy_at_home"] == 3 / 4 and got["accuracy_off_home"] == 0.0
    assert got["accuracy_by_home_type"] == {"a": 1 / 4, "b": 2 / 4}
    assert got["accuracy_at_home_by_strategy"] == {"a": 1 / 2, "b": 1.0, "c": pytest.approx(math.nan, nan_ok=True)}
    assert got["accuracy_off_home_by_strategy"]["a"] == 0.0 and got["accuracy_off_home_by_strategy"]["b"] == 0.0
    assert got["routing_ceiling"] == (1 / 2 + 1.0) / 2  # row a's home at-home accuracy, row b's
    with pytest.raises(ValueError, match="homes"):
        metrics.home_metrics(["a"], strategies, correct, ("a", "b"))


def test_mean_pairwise_distance_hand_computed():
    e = np.array([[1, 0], [0, 1], [1, 0],  # group 1: pairs (1-0, 1-1, 0-1) distances 1, 0, 1
                  [1, 0], [1, 0], [-1, 0]], dtype=np.float32)  # group 2: distances 0, 2, 2
    assert metrics.mean_pairwise_distance(e, 3) == pytest.approx([2 / 3, 4 / 3])
    unnormalised = e * np.array([[2.0], [3.0], [0.5], [1.0], [4.0], [1.0]], dtype=np.float32)
    assert metrics.mean_pairwise_distance(unnormalised, 3) == pytest.approx([2 / 3, 4 / 3])
    with pytest.raises(ValueError, match="group_size >= 2"):
        metrics.mean_pairwise_distance(e, 1)


def test_format_rate_and_lengths():
    good = mini.completion(mini.Problem(11, 34), "grid")
    assert metrics.format_rate([good, "no tags", good, "<think>\n</think>\n x \n</think>\n"]) == 0.5
    assert metrics.completion_lengths(["ab", "", "xyz"]).tolist() == [2, 0, 3]
    with pytest.raises(ValueError, match="at least one"):
        metrics.format_rate([])


def test_group_report_on_known_groups():
    problems = [mini.Problem(11, 34), mini.Problem(59, 78)]
    wrong = mini.completion(problems[1], "plus_five")  # a shortcut off its kind: wrong by construction
    groups = [
        [mini.completion(problems[0], "plus_one"), mini.completion(problems[0], "grid"), "garbage"],
        [mini.completion(problems[1], "minus_one"), wrong, mini.completion(problems[1], "minus_one")],
    ]
    report = metrics.group_report(groups, [p.answer for p in problems], strategy_of=mini.parse_strategy)
    assert report["correct"] == [[True, True, False], [True, False, True]]
    assert report["pass@1"] == pytest.approx(4 / 6)
    assert report["pass@3"] == 1.0
    assert report["format_rate"] == pytest.approx(5 / 6)
    assert report["strategy_shares"] == pytest.approx({"minus_one": 0.4, "plus_one": 0.2, "grid": 0.2, "plus_five": 0.2})
    assert report["dominant_strategy"] == "minus_one"
    assert report["unrecognised_share"] == pytest.approx(1 / 6)
    assert report["distinct_correct_strategies"] == pytest.approx(1.5)
    assert report["accuracy_by_strategy"] == {"grid": 1.0, "minus_one": 1.0, "plus_five": 0.0, "plus_one": 1.0,
                                              "unknown": 0.0}
    with pytest.raises(ValueError, match="one gold answer per group"):
        metrics.group_report(groups, ["1"])


def _metric_keys(record: dict) -> set[str]:
    """The keys of a record that name a metric: without counts, pass@k and per-sample data."""
    others = {"n_prompts", "group_size", "problems", "samples", "correct", "strategies"}
    return {k for k in record if k not in others and not k.startswith("pass@")}


def test_every_producer_of_metrics_uses_the_one_vocabulary(tmp_path):
    """group_report (the base policy's calibration), the experiment's evaluation summary, the trainer's step
    metrics and the experiment's tables and claims name each metric as `metrics.NAMES` does."""
    from dra import experiment, tasks

    problems = [mini.Problem(11, 34), mini.Problem(59, 78)]
    groups = [[mini.completion(p, s) for s in ("plus_one", "grid")] for p in problems]
    report = metrics.group_report(groups, [p.answer for p in problems], strategy_of=mini.parse_strategy)
    assert _metric_keys(report) <= set(metrics.NAMES)
    outcome = {"correct": [True, False], "length": [100, 120],
               "label": [{"strategy": "plus_one", "format": True}, {"strategy": "grid", "format": True}]}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"identity": {}, "problems": {f"{p.a}x{p.b}": outcome for p in problems}}))
    assert _metric_keys(experiment.evaluation_summary(path)) <= set(metrics.NAMES)
    texts = [text for group in groups for text in group]
    logged = tasks.MiniTask.completion_metrics(texts, [{"answer": p.answer, "home_strategy": p.home_strategy}
                                                   for p in problems for _ in range(2)])
    assert all(k.startswith("mini/") for k in logged) and {k[5:] for k in logged} <= set(metrics.NAMES)
    named = {*experiment.METRICS, *(metric for *_, metric in experiment.CLAIMS)}
    assert {m for m in named if not m.startswith("pass@")} <= set(metrics.NAMES)
