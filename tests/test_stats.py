"""dra.stats: each interval against an independent computation (textbook formula, scipy called directly, or a
resampling written out here), the documented results on too little data, and clear errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from adversarial import Raises, case, check
from dra import stats
from dra.stats import Interval

ROOT = Path(__file__).resolve().parents[1]
NAN = float("nan")
VALUES = [0.41, 0.38, 0.45, 0.40, 0.47, 0.36, 0.43]


# ----------------------------------------------------------------------------------------------- Interval


def test_interval_is_plain_frozen_and_formats():
    interval = Interval(np.float64(0.15), np.float32(0.05), 0.36, 0.95, "wilson", np.int64(20))
    assert type(interval.estimate) is float and type(interval.low) is float and type(interval.n) is int
    assert interval.format() == "0.150 [0.050, 0.360]" == str(interval)
    assert interval.format(digits=1, percent=True) == "15.0% [5.0%, 36.0%]"
    assert interval.half_width == pytest.approx(0.155) and interval.defined
    assert json.loads(json.dumps(interval.as_dict()))["method"] == "wilson"
    assert not Interval(0.1, NAN, NAN, 0.95, "t", 1).defined
    with pytest.raises(dataclasses.FrozenInstanceError):
        interval.low = 0.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- t interval


def test_t_interval_is_the_textbook_formula():
    x = np.array(VALUES)
    half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    got = stats.t_interval(x)
    assert (got.estimate, got.low, got.high) == pytest.approx((x.mean(), x.mean() - half, x.mean() + half), abs=1e-15)
    assert (got.level, got.method, got.n) == (0.95, "t", 7)
    ninety = stats.t_interval(x, level=0.9)
    assert ninety.half_width == pytest.approx(scipy_stats.t.ppf(0.95, 6) * x.std(ddof=1) / math.sqrt(7))


def test_t_interval_on_too_few_and_identical_values():
    one = stats.t_interval([0.4])
    assert one.estimate == 0.4 and not one.defined and one.n == 1
    none = stats.t_interval([])
    assert math.isnan(none.estimate) and none.n == 0
    same = stats.t_interval([0.3, 0.3, 0.3])
    assert (same.low, same.estimate, same.high) == (0.3, 0.3, 0.3)


# ----------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_hand_computed_and_equal_to_scipy():
    # Two values 0 and 1: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 2.5th and
    # 97.5th percentiles are 0 and 1.
    two = stats.bootstrap_interval([0.0, 1.0])
    assert (two.estimate, two.low, two.high, two.method) == (0.5, 0.0, 1.0, "percentile bootstrap")
    x = np.random.default_rng(4).exponential(size=40)
    for method in stats.BOOTSTRAP_METHODS:
        got = stats.bootstrap_interval(x, np.median, method=method, n_resamples=3000, seed=7)
        want = scipy_stats.bootstrap((x,), np.median, method=method, n_resamples=3000,
                                     rng=np.random.default_rng(7)).confidence_interval
        assert (got.low, got.high) == (want.low, want.high) and got.estimate == np.median(x)


def test_bootstrap_percentile_matches_a_resampling_written_out():
    x = np.random.default_rng(5).normal(1.0, 2.0, size=60)
    rng = np.random.default_rng(123)
    means = x[rng.integers(0, len(x), size=(20_000, len(x)))].mean(axis=1)
    got = stats.bootstrap_interval(x, n_resamples=20_000, seed=1)
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=0.03)


def test_bootstrap_on_too_few_and_identical_values():
    assert not stats.bootstrap_interval([0.7]).defined
    flat = stats.bootstrap_interval([2.0] * 5, method="BCa")  # BCa alone would be undefined here
    assert (flat.low, flat.estimate, flat.high) == (2.0, 2.0, 2.0)


# -------------------------------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize("k, n", [(3, 20), (0, 10), (10, 10), (157, 1000)])
def test_wilson_is_the_textbook_formula(k, n):
    z = scipy_stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    got = stats.wilson_interval(k, n)
    assert (got.estimate, got.low, got.high) == pytest.approx((p, centre - half, centre + half), abs=1e-12)
    assert (got.method, got.n) == ("wilson", n)


def test_wilson_reproduces_the_committed_study_intervals():
    """Every Wilson row of the committed mini study comes out identical from its counts."""
    rows = json.loads((ROOT / "data/study_mini.json").read_text())["result"]["rows"]
    wilson = [r for r in rows if r["ci_method"] == "wilson"]
    assert wilson
    for r in wilson:
        got = stats.wilson_interval(r["n_significant"], r["n_defined"])
        assert (got.estimate, got.low, got.high) == (r["share_significant"], r["ci_low"], r["ci_high"])


def test_wilson_without_trials_is_undefined():
    empty = stats.wilson_interval(0, 0)
    assert math.isnan(empty.estimate) and not empty.defined and empty.n == 0


# --------------------------------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_with_one_value_per_cluster_is_the_ordinary_bootstrap():
    x = np.random.default_rng(1).normal(size=30)
    clustered = stats.cluster_bootstrap_interval(x, np.arange(30), n_resamples=2000, seed=3)
    plain = stats.bootstrap_interval(x, n_resamples=2000, seed=3)
    assert (clustered.estimate, clustered.low, clustered.high) == pytest.approx((plain.estimate, plain.low, plain.high))
    assert clustered.method == "cluster bootstrap" and clustered.n == 30


def test_cluster_bootstrap_matches_a_resampling_of_clusters_written_out():
    """Clusters of unequal size sharing a cluster effect: the interval equals a by-hand resampling of whole
    clusters (ratio of sums) up to Monte Carlo error, and is wider than the bootstrap that ignores clusters."""
    rng = np.random.default_rng(2)
    sizes = rng.integers(2, 9, size=40)
    clusters = np.repeat(np.arange(40), sizes)
    x = rng.normal(size=40)[clusters] + 0.3 * rng.normal(size=len(clusters))
    totals, counts = np.bincount(clusters, weights=x), np.bincount(clusters)
    draws = np.random.default_rng(99).integers(0, 40, size=(20_000, 40))
    ratios = totals[draws].sum(axis=1) / counts[draws].sum(axis=1)
    got = stats.cluster_bootstrap_interval(x, clusters, n_resamples=20_000, seed=0)
    assert got.estimate == pytest.approx(x.mean())
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(ratios, [2.5, 97.5])), abs=0.03)
    assert got.half_width > 1.5 * stats.bootstrap_interval(x, seed=0).half_width


def test_cluster_bootstrap_with_one_cluster_is_undefined():
    one = stats.cluster_bootstrap_interval([1.0, 0.0, 1.0], ["a", "a", "a"])
    assert one.estimate == pytest.approx(2 / 3) and not one.defined and one.n == 1


# -------------------------------------------------------------------------------------------- paired t-test


def test_paired_t_test_is_scipys_ttest_rel():
    x, y = np.array(VALUES), np.array(VALUES[::-1]) - 0.02
    got = stats.paired_t_test(x, y)
    want = scipy_stats.ttest_rel(x, y)
    ci = want.confidence_interval(0.95)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-12)
    assert (got.difference.low, got.difference.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert got.difference.estimate == pytest.approx((x - y).mean()) and got.difference.n == 7
    assert got.sd == pytest.approx(np.std(x - y, ddof=1))


def test_paired_t_test_with_one_pair_is_undefined():
    one = stats.paired_t_test([0.5], [0.4])
    assert one.difference.estimate == pytest.approx(0.1) and not one.difference.defined
    assert math.isnan(one.p_value) and math.isnan(one.sd)


# ---------------------------------------------------------------------------------- Holm, power, pooling


def test_holm_against_hand_computed_values_and_its_definition():
    # p sorted: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04) -> monotone step-down
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    p = np.random.default_rng(3).uniform(0, 0.2, size=9)
    order = np.argsort(p)
    m = len(p)
    by_definition = np.empty(m)  # adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j))
    for i in range(m):
        by_definition[order[i]] = max(min(1.0, (m - j) * p[order[j]]) for j in range(i + 1))
    assert stats.holm(p) == pytest.approx(by_definition.tolist())


def test_seeds_for_power_matches_a_simulation():
    sd, effect = 0.03, 0.02
    n = stats.seeds_for_power(sd, effect, alpha=0.025, power=0.8)
    rng = np.random.default_rng(0)

    def power(k):
        diffs = rng.normal(effect, sd, size=(4000, k))
        return np.mean(scipy_stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.025)

    assert power(n) >= 0.78 and power(n - 1) < 0.81


def direct_dersimonian_laird(y, v, clusters):
    """Textbook DerSimonian-Laird and a CR1 cluster-robust t interval, written out unit by unit."""
    k = len(y)
    w = [1 / vi for vi in v]
    mu_fe = sum(wi * yi for wi, yi in zip(w, y)) / sum(w)
    q = sum(wi * (yi - mu_fe) ** 2 for wi, yi in zip(w, y))
    tau2 = max(0.0, (q - (k - 1)) / (sum(w) - sum(wi**2 for wi in w) / sum(w)))
    ws = [1 / (vi + tau2) for vi in v]
    mu = sum(wi * yi for wi, yi in zip(ws, y)) / sum(ws)
    scores = {}
    for c, wi, yi in zip(clusters, ws, y):
        scores[c] = scores.get(c, 0.0) + wi * (yi - mu)
    n_c = len(scores)
    se = np.sqrt(n_c / (n_c - 1) * sum(s**2 for s in scores.values())) / sum(ws)
    half = scipy_stats.t.ppf(0.975, n_c - 1) * se
    return mu, tau2, max(0.0, (q - (k - 1)) / q), mu - half, mu + half


def test_pool_effects_matches_textbook_dersimonian_laird():
    rng = np.random.default_rng(9)
    y, v = rng.normal(0.3, 0.3, size=40), rng.uniform(0.02, 0.2, size=40)
    y[3], v[5] = np.nan, 0.0  # undefined: counted, not pooled
    keep = ~np.isnan(y) & (v > 0)
    clusters = np.arange(40) // 4
    for c in (None, clusters):
        got = stats.pool_effects(y, v, clusters=c, weighting="inverse_variance")
        want = direct_dersimonian_laird(y[keep], v[keep], np.arange(40)[keep] if c is None else c[keep])
        assert (got.interval.estimate, got.tau2, got.i2, got.interval.low, got.interval.high) == pytest.approx(
            want, abs=1e-12)
        assert (got.n_total, got.interval.n) == (40, 38)
    # equal weighting: the common within variance is the mean, the estimate the plain mean, the interval
    # the one-sample t interval, tau2 the spread beyond that variance
    eq = stats.pool_effects(y, v)
    assert eq.interval.estimate == pytest.approx(y[keep].mean())
    assert eq.tau2 == pytest.approx(max(0.0, y[keep].var(ddof=1) - v[keep].mean()))
    t = stats.t_interval(y[keep])
    assert (eq.interval.low, eq.interval.high) == pytest.approx((t.low, t.high))
    assert set(eq.as_dict()) == {"estimate", "ci_low", "ci_high", "tau2", "i2", "n_prompts", "n_defined", "ci_method"}


def test_pool_effects_with_too_few_units_is_undefined():
    few = stats.pool_effects(np.array([0.2, np.nan]), np.array([0.1, 0.1]))
    assert np.isnan(few.interval.estimate) and few.interval.n == 1 and few.interval.method == "none"


# ----------------------------------------------------------------------------------------------- bad input

OK = [0.1, 0.2, 0.3]
CASES = [
    case("interval-level-95", lambda: Interval(0.5, 0.4, 0.6, 95, "t", 3), Raises(ValueError, "level")),
    case("interval-n-float", lambda: Interval(0.5, 0.4, 0.6, 0.95, "t", 2.5), Raises(TypeError, "n must")),
    case("t-level-95", lambda: stats.t_interval(OK, level=95), Raises(ValueError, "level")),
    case("t-level-1", lambda: stats.t_interval(OK, level=1.0), Raises(ValueError, "level")),
    case("t-nan", lambda: stats.t_interval([0.1, NAN]), Raises(ValueError, "finite")),
    case("t-text", lambda: stats.t_interval("0.1"), Raises(TypeError, "values")),
    case("t-words", lambda: stats.t_interval(["a", "b"]), Raises(TypeError, "values")),
    case("t-2d", lambda: stats.t_interval([[0.1, 0.2]]), Raises(ValueError, "1-D")),
    case("bootstrap-method", lambda: stats.bootstrap_interval(OK, method="bca"), Raises(ValueError, "method")),
    case("bootstrap-resamples-0", lambda: stats.bootstrap_interval(OK, n_resamples=0), Raises(ValueError, "n_resamples")),
    case("bootstrap-seed-float", lambda: stats.bootstrap_interval(OK, seed=0.5), Raises(TypeError, "seed")),
    case("bootstrap-statistic", lambda: stats.bootstrap_interval(OK, statistic="mean"), Raises(TypeError, "statistic")),
    case("bootstrap-inf", lambda: stats.bootstrap_interval([1.0, math.inf]), Raises(ValueError, "finite")),
    case("wilson-more-successes", lambda: stats.wilson_interval(5, 3), Raises(ValueError, "exceed")),
    case("wilson-negative", lambda: stats.wilson_interval(-1, 3), Raises(ValueError, "successes")),
    case("wilson-float", lambda: stats.wilson_interval(1.5, 3), Raises(TypeError, "successes")),
    case("wilson-bool", lambda: stats.wilson_interval(True, 3), Raises(TypeError, "successes")),
    case("cluster-lengths", lambda: stats.cluster_bootstrap_interval(OK, [0, 1]), Raises(ValueError, "one label per value")),
    case("cluster-level", lambda: stats.cluster_bootstrap_interval(OK, [0, 1, 2], level=0), Raises(ValueError, "level")),
    case("paired-lengths", lambda: stats.paired_t_test(OK, [0.1]), Raises(ValueError, "pair up")),
    case("paired-nan", lambda: stats.paired_t_test(OK, [0.1, NAN, 0.2]), Raises(ValueError, "y must be finite")),
    case("holm-95", lambda: stats.holm([0.1, 95]), Raises(ValueError, "p_values")),
    case("holm-nan", lambda: stats.holm([0.1, NAN]), Raises(ValueError, "p_values")),
    case("power-sd-0", lambda: stats.seeds_for_power(0.0), Raises(ValueError, "sd > 0")),
    case("pool-lengths", lambda: stats.pool_effects(np.ones(3), np.ones(4)), Raises(ValueError, "same length")),
    case("pool-level-95", lambda: stats.pool_effects(np.ones(3), np.ones(3), level=95), Raises(ValueError, "level")),
    case("pool-weighting", lambda: stats.pool_effects(np.ones(3), np.ones(3), weighting="fixed"),
         Raises(ValueError, "weighting")),
    case("pool-clusters", lambda: stats.pool_effects(np.ones(3), np.ones(3), clusters=[0, 1]), Raises(ValueError, "clusters")),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_bad_input(call, expected):
    check(call, expected)


def test_as_vector_lets_nan_through_only_when_asked():
    assert np.isnan(stats.as_vector([0.1, NAN], "p", allow_nan=True)[1])
    with pytest.raises(ValueError, match="p must be finite or NaN"):
        stats.as_vector([0.1, math.inf], "p", allow_nan=True)
    with pytest.raises(ValueError, match="p must be finite;"):
        stats.as_vector([0.1, NAN], "p")
