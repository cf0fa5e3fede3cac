"""Statistics: one interval type and every interval, test and adjustment the notebooks report, on scipy.stats.

Every interval function returns an `Interval` (estimate, low, high, level, method, n), whatever made it:

- `t_interval`: the mean of independent values with Student's t interval (scipy.stats.ttest_1samp), e.g. a
  metric over training seeds.
- `bootstrap_interval`: any statistic of independent values with a percentile, basic or BCa bootstrap
  interval (scipy.stats.bootstrap), e.g. pass@1 over problems.
- `wilson_interval`: a proportion k / n with Wilson's score interval (scipy.stats.binomtest), e.g. the share
  of prompts with p < 0.05.
- `cluster_bootstrap_interval`: the mean of values that come in clusters (several groups of one puzzle),
  with a percentile bootstrap that resamples whole clusters, so that repeated draws of one source do not
  pass for independent evidence.
- `paired_t_test`: the mean paired difference with its t interval and the two-sided paired t-test
  (scipy.stats.ttest_rel), e.g. an arm against its baseline seed by seed.
- `pool_effects`: a random-effects (DerSimonian-Laird) mean of per-unit effects with a cluster-robust t
  interval (the study's pooled correlation).

Plus `holm` (Holm-Bonferroni adjusted p-values) and `seeds_for_power` (the pre-registered power rule).

Conventions: `level` is a probability in (0, 1) (0.95, not 95); an interval the data cannot support (fewer
than two values, seeds or clusters) comes back with NaN bounds and the `n` that explains it, while malformed
input (text, NaN, a level of 95, mismatched lengths) raises TypeError or ValueError naming the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from dra import checks

LEVEL = 0.95  # the two-sided level of every interval unless a caller asks for another
BOOTSTRAP_METHODS: tuple[str, ...] = ("percentile", "basic", "BCa")
POOL_WEIGHTINGS: tuple[str, ...] = ("equal", "inverse_variance")
NAN = float("nan")


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval.

    estimate, low, high: the statistic and the interval's bounds (NaN bounds: too little data for one).
    level: the interval's coverage probability (0.95 for a 95% interval). method: what made it ("t",
    "percentile bootstrap", "wilson", "cluster bootstrap", ...). n: how many units it rests on (values,
    problems, trials, seeds or clusters).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int

    def __post_init__(self) -> None:
        # Plain floats and ints, so that an Interval (or its as_dict) writes as JSON and compares simply.
        for name in ("estimate", "low", "high"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "level", _level(self.level))
        object.__setattr__(self, "n", checks.integer(self.n, "n", minimum=0))

    @property
    def half_width(self) -> float:
        """(high - low) / 2: the "±" of a symmetric interval."""
        return (self.high - self.low) / 2

    @property
    def defined(self) -> bool:
        """Whether both bounds are numbers (False when the data could not support an interval)."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def format(self, digits: int = 3, percent: bool = False) -> str:
        """'0.150 [0.052, 0.360]', or with `percent` '15.0% [5.2%, 36.0%]' (digits after the point)."""
        spec = f".{digits}%" if percent else f".{digits}f"
        return f"{self.estimate:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        return self.format()

    def as_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "method": self.method, "n": self.n}


def _level(level: Any) -> float:
    return checks.real(level, "level (a probability such as 0.95)", 0, 1, low_open=True, high_open=True)


def as_vector(values: Any, name: str, allow_nan: bool = False) -> np.ndarray:
    """`values` as 1-D floats (possibly empty); raises TypeError for text and ValueError for another shape or
    for NaN/inf (NaN passes with `allow_nan`, where it marks an undefined value such as an untestable prompt)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got a single {type(values).__name__}.")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}.") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}.")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} must be finite{' or NaN' if allow_nan else ''}; got {array[bad][:5].tolist()} at "
                         f"positions {np.flatnonzero(bad)[:5].tolist()}.")
    return array


def _too_few(estimate: float, level: float, method: str, n: int) -> Interval:
    return Interval(estimate, NAN, NAN, level, method, n)


def t_interval(values: Any, level: float = LEVEL) -> Interval:
    """The mean of independent `values` with Student's t interval (scipy.stats.ttest_1samp), n - 1 df.

    Fewer than 2 values: NaN bounds (the estimate is the mean, NaN for none). Identical values: a zero-width
    interval at their mean (scipy would divide 0 by 0).
    """
    level = _level(level)
    x = as_vector(values, "values")
    if len(x) < 2:
        return _too_few(float(x.mean()) if len(x) else NAN, level, "t", len(x))
    mean = float(x.mean())
    if np.ptp(x) == 0:
        return Interval(mean, mean, mean, level, "t", len(x))
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence_level=level)
    return Interval(mean, ci.low, ci.high, level, "t", len(x))


def bootstrap_interval(
    values: Any,
    statistic: Callable[..., Any] = np.mean,
    level: float = LEVEL,
    method: str = "percentile",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """`statistic` of independent `values` with a bootstrap interval (scipy.stats.bootstrap).

    `statistic` takes an array and an `axis` keyword (np.mean, np.median, ...). `method`: "percentile"
    (default), "basic" or "BCa". `seed` fixes the resampling (numpy's default_rng). Fewer than 2 values: NaN
    bounds. Identical values: every resample gives the same statistic, so the interval is that point (BCa
    would be undefined).
    """
    level = _level(level)
    checks.choice(method, "method", BOOTSTRAP_METHODS)
    checks.integer(n_resamples, "n_resamples", minimum=1)
    checks.integer(seed, "seed", minimum=0)
    if not callable(statistic):
        raise TypeError(f"statistic must be a function such as np.mean, got {type(statistic).__name__}.")
    x = as_vector(values, "values")
    label = f"{method} bootstrap"
    if len(x) < 2:
        return _too_few(float(statistic(x)) if len(x) else NAN, level, label, len(x))
    point = float(statistic(x))
    if np.ptp(x) == 0:
        return Interval(point, point, point, level, label, len(x))
    res = stats.bootstrap((x,), statistic, confidence_level=level, n_resamples=n_resamples, method=method,
                          rng=np.random.default_rng(seed))
    return Interval(point, res.confidence_interval.low, res.confidence_interval.high, level, label, len(x))


def wilson_interval(successes: int, trials: int, level: float = LEVEL) -> Interval:
    """The proportion successes / trials with Wilson's score interval (scipy.stats.binomtest).

    No trials: NaN estimate and bounds.
    """
    level = _level(level)
    k = checks.integer(successes, "successes", minimum=0)
    n = checks.integer(trials, "trials", minimum=0)
    if k > n:
        raise ValueError(f"successes ({k}) cannot exceed trials ({n}).")
    if n == 0:
        return _too_few(NAN, level, "wilson", 0)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return Interval(k / n, ci.low, ci.high, level, "wilson", n)


def cluster_bootstrap_interval(
    values: Any,
    clusters: Sequence[Any],
    level: float = LEVEL,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """The mean of `values` with a percentile bootstrap over clusters (scipy.stats.bootstrap, paired).

    Each resample draws whole clusters with replacement and recomputes sum(values) / count over the drawn
    clusters, so clusters of unequal size weigh by their size, as in the overall mean. `clusters` gives one
    label per value. `n` of the interval is the number of clusters; fewer than 2: NaN bounds.
    """
    level = _level(level)
    checks.integer(n_resamples, "n_resamples", minimum=1)
    checks.integer(seed, "seed", minimum=0)
    x = as_vector(values, "values")
    labels = np.asarray(clusters)
    if labels.shape != x.shape:
        raise ValueError(f"clusters must give one label per value: {labels.shape} labels for {x.shape} values.")
    ids, inverse = np.unique(labels, return_inverse=True)
    totals = np.bincount(inverse, weights=x, minlength=len(ids))
    counts = np.bincount(inverse, weights=np.ones_like(x), minlength=len(ids))
    estimate = float(totals.sum() / counts.sum()) if len(x) else NAN
    if len(ids) < 2:
        return _too_few(estimate, level, "cluster bootstrap", len(ids))
    res = stats.bootstrap((totals, counts), lambda a, b, axis=-1: a.sum(axis) / b.sum(axis), paired=True,
                          vectorized=True, n_resamples=n_resamples, confidence_level=level, method="percentile",
                          rng=np.random.default_rng(seed))
    return Interval(estimate, res.confidence_interval.low, res.confidence_interval.high, level, "cluster bootstrap",
                    len(ids))


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of x against y: the mean of x - y with its t interval (`difference`), the two-sided
    paired t-test's p-value and the standard deviation of the differences (NaN with fewer than 2 pairs)."""

    difference: Interval
    p_value: float
    sd: float


def paired_t_test(x: Any, y: Any, level: float = LEVEL) -> PairedTest:
    """Paired t-test of x against y (scipy.stats.ttest_rel) with the t interval of the mean difference.

    x and y hold one value per unit (seed) in the same order. Fewer than 2 pairs: NaN bounds, p-value and SD.
    """
    a, b = as_vector(x, "x"), as_vector(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must pair up: {len(a)} values against {len(b)}.")
    difference = t_interval(a - b, level)
    if len(a) < 2:
        return PairedTest(difference, NAN, NAN)
    return PairedTest(difference, float(stats.ttest_rel(a, b).pvalue), float(np.std(a - b, ddof=1)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; monotone; capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.isnan(p).any() or ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_values must be a 1-D list of numbers in [0, 1], got {list(p_values)}.")
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def seeds_for_power(sd: float, effect: float = 0.02, alpha: float = 0.025, power: float = 0.8,
                    max_seeds: int = 200) -> int:
    """Seeds a two-sided paired t-test at level `alpha` needs to detect a mean difference `effect` with
    `power`, given the SD of the paired differences (noncentral t, scipy.stats.nct). The pre-registered
    alpha is 0.05 / 2 (two primary comparisons, Bonferroni as the conservative bound of Holm)."""
    if not (sd > 0 and effect > 0 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"need sd > 0, effect > 0, alpha and power in (0, 1); got {sd}, {effect}, {alpha}, {power}.")
    for n in range(2, max_seeds + 1):
        df = n - 1
        critical = stats.t.ppf(1 - alpha / 2, df)
        noncentrality = effect / sd * math.sqrt(n)
        achieved = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
        if achieved >= power:
            return n
    return max_seeds


@dataclass(frozen=True)
class PooledEffect:
    """A random-effects pooled effect: its `interval` (estimate = the DerSimonian-Laird mean, n = the units
    pooled), tau2 (the between-unit variance of the true effects), i2 (the share of the spread across units
    that is not within-unit noise) and n_total (units given, pooled or not)."""

    interval: Interval
    tau2: float
    i2: float
    n_total: int

    def as_dict(self) -> dict[str, Any]:
        """The flat record the study's tables and results files hold (their keys since the first study)."""
        return {"estimate": self.interval.estimate, "ci_low": self.interval.low, "ci_high": self.interval.high,
                "tau2": self.tau2, "i2": self.i2, "n_prompts": self.n_total, "n_defined": self.interval.n,
                "ci_method": self.interval.method}


def _dersimonian_laird(y: np.ndarray, v: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """DerSimonian-Laird fit of effects y (k,) with within variances v (k,).

    Returns (mu, tau2, Cochran's Q, random-effects weights 1 / (v + tau2))."""
    w = 1.0 / v
    mu_fixed = float((w * y).sum() / w.sum())
    q_stat = float((w * (y - mu_fixed) ** 2).sum())
    tau2 = max(0.0, (q_stat - (len(y) - 1)) / (w.sum() - (w * w).sum() / w.sum()))
    w_star = 1.0 / (v + tau2)
    return float((w_star * y).sum() / w_star.sum()), tau2, q_stat, w_star


def pool_effects(
    effects: Any,
    variances: Any,
    clusters: Sequence[Any] | None = None,
    level: float = LEVEL,
    weighting: str = "equal",
) -> PooledEffect:
    """Random-effects (DerSimonian-Laird) pooled effect across units, with a cluster-robust interval.

    Args:
        effects: (P,) per-unit effects (the study: per-prompt rho); variances: (P,) their within-unit
            variances. Units with a NaN effect or a non-positive variance are undefined: counted, not pooled.
        clusters: (P,) source of each unit. The interval is a cluster-robust (sandwich, CR1) t interval with
            C - 1 degrees of freedom for C clusters (robust variance estimation, Hedges, Tipton & Jackson 2010):
            without clusters every unit is its own, and with equal weights this is the one-sample t interval
            of the mean; with clusters (groups of one game-24 puzzle) it does not count repeated groups of one
            source as independent evidence. It needs no within variance, so it stays valid however rough the
            variances are; with few clusters (about 20) it undercovers somewhat.
        weighting: "equal" (default): one common within-unit variance, the mean of `variances`; the estimate
            is then the plain mean of the effects, and the variances only split the spread into noise and
            tau2. "inverse_variance": textbook DerSimonian-Laird weights 1 / (v_i + tau2). A permutation
            variance is noisy and depends on the same data as rho (at G = 4 strongly), so those weights bias
            the estimate: in the study's simulation at G = 4 with a 0/1 reward the inverse-variance interval
            misses the mean correlation in most runs.
    Fewer than 2 defined units or clusters: NaN estimate, bounds, tau2 and i2, method "none".
    """
    y, v = np.asarray(effects, dtype=float), np.asarray(variances, dtype=float)
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError(f"effects and variances must be 1-D of the same length; got {y.shape} and {v.shape}.")
    if clusters is not None and np.shape(clusters) != y.shape:
        raise ValueError(f"clusters must have the effects' shape {y.shape}; got {np.shape(clusters)}.")
    level = _level(level)
    checks.choice(weighting, "weighting", POOL_WEIGHTINGS)
    defined = np.isfinite(y) & np.isfinite(v) & (v > 0)
    k = int(defined.sum())
    source = np.arange(len(y)) if clusters is None else np.asarray(clusters)
    ids, group = np.unique(source[defined], return_inverse=True)
    if k < 2 or len(ids) < 2:
        return PooledEffect(_too_few(NAN, level, "none", k), NAN, NAN, len(y))
    y, v = y[defined], v[defined]
    mu, tau2, q_stat, w = _dersimonian_laird(y, np.full(k, v.mean()) if weighting == "equal" else v)
    score = np.bincount(group, weights=w * (y - mu))  # each cluster's weighted residual
    se = np.sqrt(len(ids) / (len(ids) - 1) * (score**2).sum()) / w.sum()
    half = stats.t.ppf((1 + level) / 2, len(ids) - 1) * se
    i2 = max(0.0, (q_stat - (k - 1)) / q_stat) if q_stat > 0 else 0.0
    method = f"DerSimonian-Laird ({weighting} weights), cluster-robust t over {len(ids)} " + (
        "prompts" if clusters is None else "clusters")
    return PooledEffect(Interval(mu, mu - half, mu + half, level, method, k), tau2, i2, len(defined))
