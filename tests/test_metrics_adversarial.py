"""dra.metrics: out-of-range and mistyped inputs raise; properties of pass@k and the strategy metrics hold."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adversarial import Raises, case, check
from dra import metrics

GOOD = [[1, 0, 1], [0, 0, 1]]

CASES = [
    case("n-float", lambda: metrics.pass_at_k(5.5, 2, 1), Raises(TypeError, "n must be an integer")),
    case("c-bool", lambda: metrics.pass_at_k(5, True, 1), Raises(TypeError, "c must be an integer")),
    case("k-str", lambda: metrics.pass_at_k(5, 2, "1"), Raises(TypeError, "k must be an integer")),
    case("k-zero", lambda: metrics.pass_at_k(5, 2, 0), Raises(ValueError, "pass@k needs")),
    case("c-above-n", lambda: metrics.pass_at_k(5, 6, 1), Raises(ValueError, "pass@k needs")),
    case("numpy-ints", lambda: metrics.pass_at_k(np.int64(5), np.int32(2), np.int8(2)), pytest.approx(0.7)),
    case("outcome-2", lambda: metrics.mean_pass_at_k([[2, 0], [1, 0]], 1), Raises(ValueError, "correct must hold .*0/1.*got 2")),
    case("outcome-half", lambda: metrics.pass_at_1([[0.5, 1.0]]), Raises(ValueError, "0/1")),
    case("outcome-nan", lambda: metrics.pass_at_1([[np.nan, 1.0]]), Raises(ValueError, "0/1")),
    case("outcome-negative", lambda: metrics.pass_at_1(np.array([[-1, 1]])), Raises(ValueError, "0/1")),
    case("outcome-str", lambda: metrics.pass_at_1([["1", "0"]]), Raises(TypeError, "booleans or 0/1")),
    case("outcome-None", lambda: metrics.pass_at_1([[None, True]]), Raises(TypeError, "booleans or 0/1")),
    case("outcome-float-01", lambda: metrics.pass_at_1(np.array([[1.0, 0.0]])), 0.5),
    case("outcomes-ragged", lambda: metrics.pass_at_1([[1, 0], [1]]), Raises(ValueError, "equal group sizes")),
    case("outcomes-1d", lambda: metrics.pass_at_1([1, 0, 1]), Raises(ValueError, r"\(prompts, samples\)")),
    case("outcomes-empty", lambda: metrics.pass_at_1([]), Raises(ValueError, "non-empty")),
    case("outcomes-3d", lambda: metrics.pass_at_1(np.ones((2, 2, 2))), Raises(ValueError, "shape")),
    case("mean-k-float", lambda: metrics.mean_pass_at_k(GOOD, 2.0), Raises(TypeError, "k must be an integer")),
    case("mean-k-too-big", lambda: metrics.mean_pass_at_k(GOOD, 4), Raises(ValueError, "number of samples")),
    case("shares-str", lambda: metrics.strategy_shares("grid"), Raises(TypeError, "labels.*single str")),
    case("shares-int-labels", lambda: metrics.strategy_shares([1, 2]), Raises(TypeError, "strategy names")),
    case("shares-unknown-flag", lambda: metrics.strategy_shares(["a"], include_unknown="yes"),
         Raises(TypeError, "include_unknown")),
    case("entropy-base-1", lambda: metrics.strategy_entropy(["a", "b"], base=1), Raises(ValueError, "base")),
    case("entropy-base-0", lambda: metrics.strategy_entropy(["a", "b"], base=0), Raises(ValueError, "base")),
    case("entropy-base-nan", lambda: metrics.strategy_entropy(["a"], base=float("nan")), Raises(ValueError, "base")),
    case("entropy-str", lambda: metrics.strategy_entropy("ab"), Raises(TypeError, "labels")),
    case("entropy-empty", lambda: metrics.strategy_entropy([]), 0.0),
    case("entropy-nats", lambda: metrics.strategy_entropy(["a", "b"], base=math.e), pytest.approx(math.log(2))),
    case("dominant-generator", lambda: metrics.dominant_strategy(s for s in ["a", "b", "b"]), ("b", pytest.approx(2 / 3))),
    case("distinct-string-rows", lambda: metrics.distinct_correct_strategies(["ab", "cd"], [[1, 1], [1, 1]]),
         Raises(TypeError, "strategies")),
    case("distinct-bad-outcome", lambda: metrics.distinct_correct_strategies([["a", "b"]], [[1, 3]]),
         Raises(ValueError, "0/1")),
    case("pairwise-float-size", lambda: metrics.mean_pairwise_distance(np.eye(4), 2.0), Raises(TypeError, "group_size")),
    case("pairwise-size-1", lambda: metrics.mean_pairwise_distance(np.eye(4), 1), Raises(ValueError, "group_size >= 2")),
    case("format-str", lambda: metrics.format_rate("<think>\n</think>\n"), Raises(TypeError, "completions")),
    case("format-empty", lambda: metrics.format_rate([]), Raises(ValueError, "at least one")),
    case("lengths-str", lambda: metrics.completion_lengths("abc"), Raises(TypeError, "completions")),
    case("lengths-ints", lambda: metrics.completion_lengths([1, 2]), Raises(TypeError, "completions must hold strings")),
    case("report-groups-str", lambda: metrics.group_report("abc", ["1", "2", "3"]), Raises(TypeError, "groups")),
    case("report-group-str", lambda: metrics.group_report(["ab"], ["1"]), Raises(TypeError, r"groups\[i\]")),
    case("report-answers-str", lambda: metrics.group_report([["a"], ["b"]], "12"), Raises(TypeError, "answers")),
    case("report-answer-None", lambda: metrics.group_report([["\\boxed{1}"]], [None]), Raises(TypeError, "gold")),
    case("report-strategy-int", lambda: metrics.group_report([["a"]], ["1"], strategy_of=3), Raises(TypeError, "strategy_of")),
    case("report-ragged", lambda: metrics.group_report([["a", "b"], ["c"]], ["1", "2"]), Raises(ValueError, "equal group sizes")),
    case("report-k-zero", lambda: metrics.group_report([["a", "b"]], ["1"], ks=[0]), Raises(ValueError, "k=0")),
    case("report-k-str", lambda: metrics.group_report([["a", "b"]], ["1"], ks="2"), Raises(TypeError, "k must be")),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_adversarial_case(call, expected):
    check(call, expected)


# ------------------------------------------------------------------------------------------- properties

counts = st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n)))


@settings(max_examples=300, deadline=None)
@given(counts)
def test_pass_at_k_is_the_exact_combinatorial_probability(nck):
    n, c, k = nck
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    value = metrics.pass_at_k(n, c, k)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(float(exact), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(counts)
def test_pass_at_k_is_monotone_in_k_and_c(nck):
    n, c, k = nck
    value = metrics.pass_at_k(n, c, k)
    if k < n:
        assert metrics.pass_at_k(n, c, k + 1) >= value
    if c < n:
        assert metrics.pass_at_k(n, c + 1, k) >= value
    assert metrics.pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert metrics.pass_at_k(n, c, n) == (1.0 if c else 0.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda g: st.lists(st.lists(st.booleans(), min_size=g, max_size=g),
                                                    min_size=1, max_size=6)), st.data())
def test_mean_pass_at_k_matches_enumeration_and_ignores_sample_order(groups, data):
    g = len(groups[0])
    k = data.draw(st.integers(1, g))
    by_subsets = np.mean([np.mean([any(s) for s in combinations(row, k)]) for row in groups])
    assert metrics.mean_pass_at_k(groups, k) == pytest.approx(by_subsets)
    shuffled = [data.draw(st.permutations(row)) for row in groups]
    assert metrics.mean_pass_at_k(shuffled, k) == pytest.approx(metrics.mean_pass_at_k(groups, k))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), max_size=30))
def test_strategy_shares_and_entropy_bounds(labels):
    shares = metrics.strategy_shares(labels)
    recognised = [label for label in labels if label is not None]
    assert (sum(shares.values()) == pytest.approx(1.0)) if recognised else shares == {}
    assert list(shares.values()) == sorted(shares.values(), reverse=True)
    entropy = metrics.strategy_entropy(labels)
    assert -1e-12 <= entropy <= math.log2(max(len(set(recognised)), 1)) + 1e-12
    assert metrics.dominant_strategy(labels)[1] == (max(shares.values()) if shares else 0.0)
