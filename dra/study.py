"""The diversity-quality inconsistency study (the paper's Figure 2), with every unstated choice explicit.

For each prompt, the G sampled completions are compared pairwise (all i < j): the absolute reward difference
|R_i - R_j| against the cosine distance 1 - cos(e_i, e_j) of their embeddings. Spearman's rank correlation
over those G(G-1)/2 pairs gives one p-value per prompt; the paper reports that only ~15.7% of 3,000 prompts
have p < 0.05. The pairs share completions, so they are not independent and that p-value is approximate;
`prompt_pvalues` reproduces the paper's test as it is. The share of significant prompts is the test's power at
the chosen G, not an effect size, so `prompt_effects` adds the per-prompt correlation with an exact
permutation (Mantel) p-value and a within-prompt variance that respect the dependence, optionally partialling
out the length difference, and `dra.stats.pool_effects` pools the correlations across prompts with an interval.

Choices the paper leaves open, made explicit here: which reward (binary accuracy, the length-scaled cosine,
the paper's total, or a length-only control), which embedder, which G, and what to do with prompts where
the test is undefined (every reward difference equal, e.g. all completions correct under a binary reward):
they get NaN and are counted separately, never dropped and never counted as significant.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from dra import checks, rewards
from dra.config import cache_dir
from dra.data import load
from dra.generation import sample_groups
from dra.kernels import adjust_rewards, group_advantages
from dra.io import atomic_path, config_key, folder_fingerprint, package_versions, read_json, text_digest, write_json
from dra.rewards import PAPER_REWARD_WEIGHTS, cosine_value, well_formatted
from dra.stats import (LEVEL, Interval, PooledEffect, as_vector, cluster_bootstrap_interval, pool_effects,
                       wilson_interval)

PAPER_SHARE_SIGNIFICANT = 0.157  # Figure 2: about 15.7% of prompts with p < 0.05
ALPHA = 0.05
SHARE_RESAMPLES = 2_000  # bootstrap resamples of the clustered share (the committed study's setting)
REWARDS: tuple[str, ...] = ("accuracy", "cosine", "paper", "length_only")
SAMPLES_FORMAT = 1  # bump when what a cached sample file holds, or how it is keyed, changes
GRADES_FORMAT = 1


def _pair_index(g: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(g, k=1)


def pairwise_arrays(rewards, embeddings, distances: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(P, G) rewards and (P, G, d) embeddings -> |R_i - R_j| and 1 - cos(e_i, e_j), each (P, G(G-1)/2).

    `distances`: `pair_distances(embeddings)` when already computed (a table that tests several rewards against
    the same embeddings computes them once; with high-dimensional embeddings such as TF-IDF's they are most of
    the work)."""
    r = np.asarray(rewards, dtype=float)
    e_shape = np.shape(embeddings)
    if r.ndim != 2 or len(e_shape) != 3 or r.shape != tuple(e_shape[:2]):
        raise ValueError(f"rewards must be (P, G) and embeddings (P, G, d) with the same P and G; got "
                         f"{r.shape} and {tuple(e_shape)}.")
    if not np.isfinite(r).all():
        raise ValueError("rewards or embeddings contain NaN or inf.")
    i, j = _pair_index(r.shape[1])
    if distances is None:
        distances = pair_distances(embeddings)
    elif np.shape(distances) != (r.shape[0], len(i)):
        raise ValueError(f"distances must be pair_distances(embeddings), shape {(r.shape[0], len(i))}; got "
                         f"{np.shape(distances)}.")
    return np.abs(r[:, i] - r[:, j]), distances


def pair_distances(embeddings) -> np.ndarray:
    """(P, G, d) embeddings -> 1 - cos(e_i, e_j) of every pair i < j of each prompt, (P, G(G-1)/2), in float64."""
    e = np.asarray(embeddings, dtype=float)
    if e.ndim != 3:
        raise ValueError(f"embeddings must be (P, G, d); got shape {e.shape}.")
    if not np.isfinite(e).all():
        raise ValueError("rewards or embeddings contain NaN or inf.")
    norms = np.linalg.norm(e, axis=2, keepdims=True)
    if (norms == 0).any():
        raise ValueError("some embeddings have zero norm; their cosine distance is undefined.")
    unit = e / norms
    cos = np.einsum("pgd,phd->pgh", unit, unit)
    i, j = _pair_index(e.shape[1])
    return 1.0 - cos[:, i, j]


def _unit_ranks(values: np.ndarray) -> np.ndarray:
    """Tie-averaged ranks along the last axis, centred and scaled to unit length (a constant row stays 0), so
    that the dot product of two such rows is Spearman's rho."""
    ranks = stats.rankdata(values, axis=-1)
    ranks -= ranks.mean(axis=-1, keepdims=True)
    norm = np.sqrt((ranks * ranks).sum(axis=-1, keepdims=True))
    return np.divide(ranks, norm, out=np.zeros_like(ranks), where=norm > 0)


def prompt_pvalues(rewards, embeddings, distances: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, Spearman's rho and two-sided p-value between |R_i - R_j| and 1 - cos(e_i, e_j), i < j.

    Args:
        rewards: (P, G). embeddings: (P, G, d). distances: `pair_distances(embeddings)`, if already computed.
    Returns:
        rho, p: float arrays of shape (P,). NaN where the test is undefined: fewer than 3 pairs (G < 3), or
        either variable constant across the pairs (all reward differences equal, or all distances equal).
    """
    diffs, dists = pairwise_arrays(rewards, embeddings, distances)
    rho = np.full(len(diffs), np.nan)
    p = np.full(len(diffs), np.nan)
    n_pairs = diffs.shape[1]
    if n_pairs < 3:
        return rho, p
    defined = (np.ptp(diffs, axis=1) > 0) & (np.ptp(dists, axis=1) > 0)
    # scipy.stats.spearmanr per row, vectorised: Pearson's r of the (tie-averaged) ranks, and its two-sided
    # p-value from the t distribution with n - 2 degrees of freedom, as spearmanr computes it.
    r = np.clip((_unit_ranks(diffs[defined]) * _unit_ranks(dists[defined])).sum(1), -1.0, 1.0)
    rho[defined] = r
    p[defined] = _t_pvalue(r, n_pairs - 2)
    return rho, p


def _t_pvalue(r: np.ndarray, df: int) -> np.ndarray:
    """Two-sided p-value of a correlation r from the t distribution with df degrees of freedom (df = pairs - 2
    for a correlation, pairs - 3 for a partial one), which treats the pairs as independent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    return 2 * stats.t.sf(np.abs(t), df)


@dataclass(frozen=True)
class ShareSummary:
    """Share of prompts with p < alpha among those where the test is defined.

    share: the share with its 95% interval (`dra.stats.Interval`; its n counts what was resampled: defined
    prompts, or clusters for the cluster bootstrap).
    """

    share: Interval
    n_prompts: int
    n_defined: int
    n_significant: int
    alpha: float = ALPHA

    @property
    def share_undefined(self) -> float:
        return 1 - self.n_defined / self.n_prompts if self.n_prompts else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The flat record of the study's tables and results files (their keys since the first study)."""
        return {"n_prompts": self.n_prompts, "n_defined": self.n_defined, "n_significant": self.n_significant,
                "share_significant": self.share.estimate, "ci_low": self.share.low, "ci_high": self.share.high,
                "share_undefined": self.share_undefined, "ci_method": self.share.method, "alpha": self.alpha}


def significant_share(p, alpha: float = ALPHA, clusters: Sequence | None = None, seed: int = 0) -> ShareSummary:
    """Share of significant prompts with a 95% interval.

    Without `clusters`, the prompts are independent and the interval is Wilson's (`dra.stats.wilson_interval`).
    With `clusters` (e.g. several groups drawn from one game-24 puzzle), it is a percentile bootstrap over
    clusters (`dra.stats.cluster_bootstrap_interval`), so repeated groups of one prompt do not pass for
    independent evidence. No defined prompt: NaN share and bounds, method "none".
    """
    p = _p_values(p)
    alpha = checks.real(alpha, "alpha", 0, 1, low_open=True, high_open=True)
    if clusters is not None and len(clusters) != len(p):
        raise ValueError(f"clusters must give one label per p-value: {len(clusters)} labels for {len(p)} p-values.")
    defined = ~np.isnan(p)
    significant = defined & (p < alpha)
    n_def, n_sig = int(defined.sum()), int(significant.sum())
    if n_def == 0:
        share = Interval(float("nan"), float("nan"), float("nan"), LEVEL, "none", 0)
    elif clusters is None:
        share = wilson_interval(n_sig, n_def)
    else:
        share = cluster_bootstrap_interval(significant[defined], np.asarray(clusters)[defined],
                                           n_resamples=SHARE_RESAMPLES, seed=seed)
    return ShareSummary(share, len(p), n_def, n_sig, alpha)


def _p_values(p) -> np.ndarray:
    """1-D p-values in [0, 1], NaN marking an undefined test; anything else raises ValueError."""
    array = as_vector(p, "p", allow_nan=True)  # NaN: a prompt whose test is undefined
    bad = ~np.isnan(array) & ((array < 0) | (array > 1))
    if bad.any():
        raise ValueError(f"p-values must lie in [0, 1] (NaN for undefined); got {array[bad][:5].tolist()} at "
                         f"positions {np.flatnonzero(bad)[:5].tolist()}.")
    return array


def group_rewards(completions: Sequence[Sequence[str]], correct, reward: str, max_len: int = 1000) -> np.ndarray:
    """(P, G) rewards of one kind from the texts and their correctness (graded once, elsewhere).

    accuracy: 1/0. cosine: open-r1's length-scaled accuracy (as trained). paper: 1 x format + 2 x cosine.
    length_only: the cosine schedule with every answer treated as correct, a control in which the reward
    depends on length alone: whatever correlation it shows with embedding distance is length, not quality.
    """
    if reward not in REWARDS:
        raise ValueError(f"unknown reward {reward!r}; choose one of {', '.join(REWARDS)}.")
    correct = np.asarray(correct, dtype=bool)
    lengths = text_lengths(completions)
    if lengths.shape != correct.shape:
        raise ValueError(f"completions {lengths.shape} and correct {correct.shape} must have the same (P, G) shape.")
    if reward == "accuracy":
        return correct.astype(float)
    if reward == "length_only":
        return _cosine_values(np.ones_like(correct), lengths, max_len)
    values = _cosine_values(correct, lengths, max_len)
    if reward == "cosine":
        return values
    fmt = np.array([[float(well_formatted(t)) for t in group] for group in completions])
    format_weight, cosine_weight = PAPER_REWARD_WEIGHTS
    return format_weight * fmt + cosine_weight * values


def _correct_and_labels(sg: StudyGroups, labels: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The groups' (P, G) correctness and `labels` as arrays, the labels checked to have that shape."""
    correct = np.asarray(sg.correct, dtype=bool)
    labels = np.asarray(labels, dtype=object)
    if labels.shape != correct.shape:
        raise ValueError(f"labels {labels.shape} must have the groups' (P, G) shape {correct.shape}.")
    return correct, labels


def _mixed(correct: np.ndarray) -> np.ndarray:
    """Which groups are mixed (some completions right, some wrong): under a 0/1 reward, the only groups with a
    GRPO signal."""
    return correct.any(axis=1) & ~correct.all(axis=1)


def all_wrong_advantages(sg: StudyGroups, embeddings: np.ndarray, labels: Sequence[Sequence[Any]],
                         rewards_: Sequence[str] = ("paper", "accuracy")) -> list[dict[str, Any]]:
    """Where GRPO and DRA-GRPO push inside groups whose completions are all wrong (finding 3 of the mini world).

    For each reward and each label (for example the mini world's strategy of each completion, (P, G) like the
    texts): how many completions of all-wrong groups carry it, and their mean advantage under GRPO and under
    DRA-GRPO (TRL's std-normalised group advantages, `dra.kernels`; DRA with its defaults, MiniLM-style
    `embeddings` of shape (P, G, D)). Under the 0/1 accuracy reward every such group is flat and every advantage
    is 0. Under the paper's reward a well-formatted wrong answer earns a positive total (1 x format + 2 x a
    cosine term near 0), so the group's spread is length noise that std normalisation blows up, and DRA moves
    those advantages toward the completions least like the others: a push toward distinct wrong answers.
    """
    correct, labels = _correct_and_labels(sg, labels)
    embeddings = np.asarray(embeddings)
    if embeddings.shape[:2] != correct.shape:
        raise ValueError(f"embeddings {embeddings.shape[:2]} must have the groups' (P, G) shape {correct.shape}.")
    wrong = ~correct.any(axis=1)
    g = correct.shape[1]
    rows = []
    for reward in rewards_:
        totals = group_rewards(sg.groups, correct, reward)[wrong].reshape(-1)
        if not len(totals):
            continue
        vectors = embeddings[wrong].reshape(len(totals), -1)
        grpo = group_advantages(totals, g)
        dra_grpo = group_advantages(adjust_rewards(totals, vectors, g), g)
        flat_labels = labels[wrong].reshape(-1)
        for label in sorted(set(flat_labels), key=str):
            chosen = flat_labels == label
            rows.append({"reward": reward, "label": label, "completions": int(chosen.sum()),
                         "GRPO advantage": float(grpo[chosen].mean()),
                         "DRA-GRPO advantage": float(dra_grpo[chosen].mean())})
    return rows


def distinct_correct_groups(sg: StudyGroups, labels: Sequence[Sequence[Any]]) -> dict[str, int]:
    """How many groups could DRA-GRPO change at all under a 0/1 reward. Counts the groups, the mixed ones (some
    right, some wrong), and the mixed ones whose correct completions carry two or more distinct `labels` (the
    mini world's strategies). Under std normalisation, rewards {0, w} give the same advantages as {0, 1} when
    every correct completion has the same weight w, so even a perfect partition (the oracle control) changes
    only the groups counted last (and all-right groups whose weights differ)."""
    correct, labels = _correct_and_labels(sg, labels)
    mixed = _mixed(correct)
    distinct = np.array([len(set(row[ok])) >= 2 for row, ok in zip(labels, correct)], dtype=bool)
    return {"groups": len(correct), "mixed": int(mixed.sum()), "mixed_with_distinct_correct": int((mixed & distinct).sum())}


def advantage_by_stratum(sg: StudyGroups, labels: Sequence[Sequence[Any]], strata: Sequence[Any]) -> list[dict[str, Any]]:
    """Where GRPO's 0/1-reward signal points, stratum by stratum (the mini world's routing question).

    `labels` (P, G) name each completion's strategy, `strata` (P,) each prompt's kind (for example its home
    strategy). For each stratum and label: the share of the stratum's completions that carry the label, and the
    sum of their GRPO advantages (TRL's std-normalised group advantages under the 0/1 reward) per group of the
    stratum. Advantages sum to zero in every group, so a label's sum is, to first order, the push the policy
    gradient gives its logit in that stratum: a policy that picks strategies without looking at the kind (equal
    shares in every stratum) feels only the sum of these pushes over strata, and learning to route needs the
    kind-dependent part. Also counts each stratum's groups and its mixed groups (the only ones with a signal).
    """
    correct, labels = _correct_and_labels(sg, labels)
    strata = np.asarray(strata, dtype=object)
    if strata.shape != correct.shape[:1]:
        raise ValueError(f"strata {strata.shape} must give one value per group, ({correct.shape[0]},).")
    advantages = group_advantages(correct.astype(float).reshape(-1), correct.shape[1]).reshape(correct.shape)
    mixed = _mixed(correct)
    rows = []
    for stratum in sorted(set(strata), key=str):
        here = strata == stratum
        for label in sorted(set(labels.reshape(-1)), key=str):
            carried = labels[here] == label
            rows.append({"stratum": stratum, "label": label, "groups": int(here.sum()), "mixed": int(mixed[here].sum()),
                         "share": float(carried.mean()),
                         "advantage per group": float(advantages[here][carried].sum() / here.sum())})
    return rows


def _cosine_values(correct: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
    """`cosine_value` of every (correct, length), called once per distinct pair: lengths repeat a lot, and each
    call checks its arguments, which took most of the study's Spearman tests (the values are the function's)."""
    pairs = np.stack([correct.astype(np.int64), lengths.astype(np.int64)], axis=-1).reshape(-1, 2)
    distinct, inverse = np.unique(pairs, axis=0, return_inverse=True)
    values = np.array([cosine_value(bool(c), int(n), max_len=max_len) for c, n in distinct], dtype=float)
    return values[inverse.reshape(-1)].reshape(correct.shape)


def regroup(items: Sequence[Sequence[Any]], group_size: int, max_groups_per_prompt: int | None = None):
    """Split each prompt's samples into consecutive disjoint groups of `group_size` (leftovers dropped).

    Returns (groups, source_index): the new groups and, for each, the index of the prompt it came from.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}.")
    groups, source = [], []
    for k, samples in enumerate(items):
        n_groups = len(samples) // group_size
        if max_groups_per_prompt is not None:
            n_groups = min(n_groups, max_groups_per_prompt)
        for g in range(n_groups):
            groups.append(list(samples[g * group_size : (g + 1) * group_size]))
            source.append(k)
    if not groups:
        raise ValueError(f"no prompt has {group_size} samples; use a smaller group_size.")
    return groups, np.array(source)


def embed_groups(groups: Sequence[Sequence[str]], embedder, cache: bool = True) -> np.ndarray:
    """Embed (P, G) texts with a `dra.embed` embedder -> (P, G, d). Identical texts are embedded once.

    With `cache`, the vectors are stored under the cache directory, keyed by the embedder's full identity
    (`identity()`: model, revision, dtype, backend, truncation, prefix) and a hash of the texts, so a changed
    model, setting or text never reuses stale vectors. Embedders that cannot be cached (`cacheable` False:
    TF-IDF, fitted per call; the policy embedder, whose weights change) and embedders without an identity are
    embedded every time.
    """
    flat = [t for group in groups for t in group]
    identity = embedder.identity() if hasattr(embedder, "identity") else None
    cacheable = cache and identity is not None and getattr(embedder, "cacheable", True)
    key = {"embedder": identity, "texts": text_digest(flat)} if cacheable else None
    vectors = _cached_array("embeddings", key, lambda: embedder.encode(flat))
    return vectors.reshape(len(groups), len(groups[0]), -1)


def _cached_array(kind: str, key: dict[str, Any] | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`, stored as ``cache_dir()/<kind>/<config_key(key)>.npy`` and read back from there next time;
    no key: computed every time."""
    if key is None:
        return compute()
    path = cache_dir() / kind / f"{config_key(key)}.npy"
    if path.exists():
        return np.load(path)
    array = np.asarray(compute())
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)
    return array


def grade_groups(groups: Sequence[Sequence[str]], answers: Sequence[Any], cache: bool = True,
                 workers: int | None = None) -> np.ndarray:
    """(P, G) bool: `dra.rewards.is_correct` of every completion against its prompt's answer.

    Each distinct (completion, answer) pair is graded once (a group often repeats a completion), by `workers`
    threads at once (default: one per CPU), each with its own grader worker process (`dra._verify`), so grading
    uses every core; the verdicts depend on neither. With `cache`, the result is stored under the cache
    directory keyed by the texts, the answers and the grader: the source of `dra.rewards` and `dra._verify` and
    the versions of math-verify and what it parses with, so any change to grading regrades."""
    from concurrent.futures import ThreadPoolExecutor

    if len(groups) != len(answers):
        raise ValueError(f"{len(groups)} groups for {len(answers)} answers; pass one answer per prompt.")
    key = None
    if cache:
        key = {"format": GRADES_FORMAT, "texts": text_digest([t for g in groups for t in g]),
               "group_sizes": [len(g) for g in groups], "answers": text_digest([repr(a) for a in answers]),
               "grader": _grader_identity()}

    def grade() -> np.ndarray:
        pairs = [(c, repr(a)) for g, a in zip(groups, answers) for c in g]
        gold = {repr(a): a for a in answers}
        distinct = list(dict.fromkeys(pairs))
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1, thread_name_prefix="grade") as pool:
            verdicts = dict(zip(distinct, pool.map(lambda pair: rewards.is_correct(pair[0], gold[pair[1]]), distinct)))
        flat = iter(verdicts[pair] for pair in pairs)
        return np.array([[next(flat) for _ in g] for g in groups], dtype=bool)

    return _cached_array("grades", key, grade)


def _grader_identity() -> dict[str, Any]:
    from dra import _verify, rewards

    sources = [Path(module.__file__).read_bytes() for module in (rewards, _verify)]
    return {"source": hashlib.sha256(b"\x00".join(sources)).hexdigest(),
            "versions": package_versions(("math-verify", "sympy", "latex2sympy2_extended", "antlr4-python3-runtime"))}


def run_study(
    groups: Sequence[Sequence[str]],
    correct,
    embeddings: np.ndarray,
    reward: str,
    clusters: Sequence | None = None,
    max_len: int = 1000,
    distances: np.ndarray | None = None,
) -> tuple[ShareSummary, np.ndarray, np.ndarray]:
    """Rewards of kind `reward` -> per-prompt (rho, p) -> summary. Returns (summary, rho, p). `distances`:
    `pair_distances(embeddings)`, if already computed."""
    rewards = group_rewards(groups, correct, reward, max_len=max_len)
    rho, p = prompt_pvalues(rewards, embeddings, distances)
    return significant_share(p, clusters=clusters), rho, p


def text_lengths(groups: Sequence[Sequence[str]]) -> np.ndarray:
    """(P, G) completion lengths in characters (the unit of the cosine reward's length schedule)."""
    return np.array([[len(t) for t in group] for group in groups], dtype=float)


def length_distance_pvalues(groups: Sequence[Sequence[str]], embeddings: np.ndarray,
                            distances: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, Spearman between |len_i - len_j| and the embedding distance: does distance track length?"""
    return prompt_pvalues(text_lengths(groups), embeddings, distances)


# ------------------------------------------------------------------ effect sizes and exact per-prompt tests
#
# The share of prompts with p < 0.05 is the test's *power* at the chosen G (it rises with G on the same data);
# how strongly reward tracks diversity is the per-prompt correlation itself, pooled across prompts.

MAX_PERMUTATIONS = 10_000  # G <= 7 is enumerated exactly (7! = 5,040); G = 8 (8! = 40,320) is sampled
LENGTH_CONTROL = "|Δlength| (control)"  # the 'reward' row that tests distance against the length difference
CONTROLS: tuple[str, ...] = ("none", "|Δlength|")  # partial out nothing, or the pair's length difference
_CHUNK_ELEMENTS = 4_000_000  # permuted pair values held in memory at once
_TIE_TOLERANCE = 1e-9  # permutation statistics closer than this count as equal (ties of a discrete reward)


def label_permutations(g: int, max_permutations: int = MAX_PERMUTATIONS, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Orderings of G completion labels, the identity first: all G! of them when G! <= `max_permutations`
    (exact test), else the identity and `max_permutations - 1` uniform random ones (Monte Carlo test).

    Returns (permutations (B, G) int array, exact)."""
    if g < 2:
        raise ValueError(f"g must be >= 2 to permute labels, got {g}.")
    if max_permutations < 2:
        raise ValueError(f"max_permutations must be >= 2, got {max_permutations}.")
    if math.factorial(g) <= max_permutations:
        return np.array(list(itertools.permutations(range(g)))), True
    rng = np.random.default_rng(seed)
    drawn = rng.permuted(np.tile(np.arange(g), (max_permutations - 1, 1)), axis=1)
    return np.vstack([np.arange(g), drawn]), False


@dataclass
class PromptEffects:
    """Per-prompt effect sizes and tests over the G(G-1)/2 pairs of each prompt; arrays of shape (P,), NaN
    where undefined (a constant variable, or a partial correlation whose control explains x or y fully).

    rho: Spearman's rho of |R_i - R_j| and 1 - cos(e_i, e_j) (partial rho given the covariate's pair
        difference when one is given).
    p_spearman: two-sided p-value from the t distribution over the pairs (df = pairs - 2, or pairs - 3 for
        the partial), as `prompt_pvalues`: it treats the pairs as independent, which they are not.
    p_permutation: two-sided Mantel permutation p-value (2 x the smaller tail, as scipy.stats.permutation_test):
        the completions' labels are permuted, i.e. rows and columns of the distance matrix jointly, so the
        pairs' dependence is kept. Exact when all G! orderings are enumerated.
    p_floor: the smallest p_permutation this prompt could give (2 x the share of orderings tied with the most
        extreme one): with few distinct orderings (G = 4, or a 0/1 reward) it is above 0.05, and no effect,
        however strong, is significant there.
    null_variance: variance of rho over those permutations: the within-prompt variance used for pooling.
    t_test_size: the share of those permutations in which the pairs' t-test has p < 0.05, i.e. how often it
        rejects when reward and distance are unrelated, given this prompt's values (nominal: 0.05).
    """

    rho: np.ndarray
    p_spearman: np.ndarray
    p_permutation: np.ndarray
    p_floor: np.ndarray
    null_variance: np.ndarray
    t_test_size: np.ndarray
    n_permutations: int
    exact: bool


def _pair_matrix(pair_values: np.ndarray, g: int) -> np.ndarray:
    """(P, G(G-1)/2) values of the pairs i < j -> (P, G, G) symmetric matrices (diagonal 0)."""
    i, j = _pair_index(g)
    out = np.zeros((len(pair_values), g, g))
    out[:, i, j] = pair_values
    out[:, j, i] = pair_values
    return out


def _partial_correlation(r_xy, r_xz, r_yz):
    """Correlation of x and y given z from the three pairwise correlations (NaN where z explains x or y,
    up to rounding)."""
    scale = (1.0 - r_xz**2) * (1.0 - r_yz**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > _TIE_TOLERANCE, (r_xy - r_xz * r_yz) / np.sqrt(scale), np.nan)


def _permutation_statistics(x: np.ndarray, y: np.ndarray, z: np.ndarray | None, perms: np.ndarray) -> np.ndarray:
    """(P, B) statistic under each permutation of the completions behind y (x and z stay fixed).

    x, y, z are unit rank vectors over the pairs (`_unit_ranks`). Relabelling the completions only reorders
    the pair distances, so their ranks are reordered, not recomputed: a gather and a dot product.
    """
    g = perms.shape[1]
    i, j = _pair_index(g)
    y_flat = _pair_matrix(y, g).reshape(len(y), g * g)
    permuted_pairs = perms[:, i] * g + perms[:, j]  # (B, pairs): where pair m lands, as a flat index
    out = np.empty((len(x), len(perms)))
    step = max(1, _CHUNK_ELEMENTS // (len(perms) * len(i)))
    for start in range(0, len(x), step):
        block = slice(start, start + step)
        permuted = np.take(y_flat[block], permuted_pairs, axis=1)  # (c, B, pairs)
        stat = (permuted @ x[block, :, None])[..., 0]
        if z is not None:
            r_xz = (x[block] * z[block]).sum(1, keepdims=True)
            stat = _partial_correlation(stat, r_xz, (permuted @ z[block, :, None])[..., 0])
        out[block] = np.clip(stat, -1.0, 1.0)  # rounding can step past +-1 (NaN, undefined, stays NaN)
    return out


def _two_sided_permutation_pvalue(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """p-value of `observed` (P,) against the permutation statistics `null` (P, B): 2 x the smaller tail share,
    capped at 1 (scipy.stats.permutation_test's two-sided rule); undefined permutations are left out."""
    observed = observed[:, None]
    valid = ~np.isnan(null)
    n = valid.sum(1)
    greater = ((null >= observed - _TIE_TOLERANCE) & valid).sum(1) / n
    less = ((null <= observed + _TIE_TOLERANCE) & valid).sum(1) / n
    return np.minimum(1.0, 2.0 * np.minimum(greater, less))


def _covariate_pairs(covariate, shape: tuple[int, int]) -> np.ndarray:
    """(P, G) per-completion covariate -> (P, G(G-1)/2) absolute differences of the pairs i < j."""
    c = np.asarray(covariate, dtype=float)
    if c.shape != shape or not np.isfinite(c).all():
        raise ValueError(f"covariate must be finite with the rewards' shape {shape}; got {c.shape}.")
    i, j = _pair_index(shape[1])
    return np.abs(c[:, i] - c[:, j])


def prompt_effects(
    rewards,
    embeddings,
    covariate=None,
    max_permutations: int = MAX_PERMUTATIONS,
    seed: int = 0,
    distances: np.ndarray | None = None,
) -> PromptEffects:
    """Per prompt: Spearman's rho over the pairs, its t-test and Mantel permutation p-values, and the variance
    of rho over the permutations.

    Args:
        rewards: (P, G). embeddings: (P, G, d).
        covariate: optional (P, G) per-completion values (e.g. lengths); then rho is the partial Spearman
            correlation of |R_i - R_j| and the distance given |c_i - c_j| (partial Pearson of the pair ranks),
            and the permutation test relabels the distance matrix only (Smouse, Long & Sokal 1986, "method 1";
            approximate, since it also breaks the distance-covariate link).
        max_permutations: enumerate all G! orderings up to this many, else sample this many (seeded).
        distances: `pair_distances(embeddings)`, if already computed.

    Why the permutation variance: the G(G-1)/2 pairs share completions, so 1/(pairs - 3), the Fisher-z
    variance for independent pairs, does not describe rho's sampling noise. Relabelling the completions keeps
    that dependence. Under no association with exchangeable completions the permutation mean of (plain) rho is
    exactly 0 (relabelling only reorders the pair ranks, and each pair is equally likely to land on each
    position), so the expected permutation variance equals rho's sampling variance; under an association, and
    for the partial rho, it is an approximation (the pooled interval's coverage is checked by simulation in the
    tests). A prompt whose statistic no relabelling changes (e.g. duplicate completions) is undefined.
    """
    diffs, dists = pairwise_arrays(rewards, embeddings, distances)
    n_prompts, g = np.shape(rewards)
    controls = None if covariate is None else _covariate_pairs(covariate, (n_prompts, g))
    perms, exact = label_permutations(g, max_permutations, seed)
    n_pairs = diffs.shape[1]
    nan = np.full(n_prompts, np.nan)
    result = PromptEffects(*(nan.copy() for _ in range(6)), len(perms), exact)
    columns = [diffs, dists] + ([] if controls is None else [controls])
    enough = n_pairs >= len(columns) + 1  # 3 pairs for a correlation, 4 for a partial one
    defined = np.all([np.ptp(v, axis=1) > 0 for v in columns], axis=0) & enough
    if not defined.any():
        return result
    x, y = _unit_ranks(diffs[defined]), _unit_ranks(dists[defined])
    z = None if controls is None else _unit_ranks(controls[defined])
    null = _permutation_statistics(x, y, z, perms)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (undefined partials) give NaN, as meant
        variance = np.nanvar(null, axis=1)
    # A prompt whose statistic no relabelling changes (e.g. identical completions) carries no information on
    # the association: undefined, like a constant variable.
    informative = ~np.isnan(null[:, 0]) & (variance > _TIE_TOLERANCE**2)
    rows = np.flatnonzero(defined)[informative]
    null = null[informative]
    df = n_pairs - (2 if z is None else 3)
    result.rho[rows] = null[:, 0]
    result.p_spearman[rows] = _t_pvalue(null[:, 0], df)
    t_critical = stats.t.ppf(1 - ALPHA / 2, df)
    r_critical = t_critical / np.sqrt(df + t_critical**2)  # |rho| at which the t-test's p reaches ALPHA
    rejected = np.abs(null) > r_critical
    result.t_test_size[rows] = np.nanmean(np.where(np.isnan(null), np.nan, rejected), axis=1)
    result.p_permutation[rows] = _two_sided_permutation_pvalue(null, null[:, 0])
    extremes = [np.nanmax(null, axis=1), np.nanmin(null, axis=1)]
    result.p_floor[rows] = np.min([_two_sided_permutation_pvalue(null, e) for e in extremes], axis=0)
    result.null_variance[rows] = variance[informative]
    return result


def plot_effect_distributions(samples: dict[str, np.ndarray], pooled: dict[str, PooledEffect], ax, title: str):
    """Per-prompt rho as one box-and-strip per label, the pooled estimate with its interval beside each."""
    labels = list(samples)
    data = [np.asarray(samples[k], dtype=float)[~np.isnan(samples[k])] for k in labels]
    positions = np.arange(len(labels))
    ax.boxplot(data, positions=positions, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for pos, values in zip(positions, data):
        ax.scatter(pos + rng.uniform(-0.18, 0.18, len(values)), values, s=4, alpha=0.35, color="tab:blue")
    for pos, key in zip(positions, labels):
        iv = pooled[key].interval
        ax.errorbar(pos + 0.35, iv.estimate, yerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]], fmt="o",
                    color="tab:red", capsize=3, ms=4)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("per-prompt Spearman rho (red: pooled, 95% CI)")
    ax.set_title(title, fontsize=10)
    return ax


def plot_share_and_effect_by_g(rows: Sequence[dict[str, Any]], axes, label: Callable[[dict[str, Any]], str]):
    """Two panels against G, one colour per label(row): the share of prompts with p < 0.05 (solid: permutation
    test, dashed: the pairs' t-test), which is power, and the pooled rho with its interval, which is effect."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        lines.setdefault(label(row), []).append(row)
    for name, points in lines.items():
        points = sorted(points, key=lambda r: r["G"])
        gs = [r["G"] for r in points]
        (line,) = axes[0].plot(gs, [r["share_permutation"] for r in points], "o-", label=name)
        axes[0].plot(gs, [r["share_spearman"] for r in points], "s--", color=line.get_color(), alpha=0.7)
        est = np.array([r["pooled_estimate"] for r in points])
        err = [est - [r["pooled_ci_low"] for r in points], [r["pooled_ci_high"] for r in points] - est]
        axes[1].errorbar(gs, est, yerr=err, fmt="o-", capsize=3, color=line.get_color(), label=name)
    axes[0].set_ylabel("share of prompts with p < 0.05\n(solid: permutation, dashed: t-test)")
    axes[1].set_ylabel("pooled Spearman rho (95% CI)")
    for ax in axes:
        ax.set_xlabel("G (completions per prompt)")
        ax.set_xticks(sorted({r["G"] for r in rows}))
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].legend(fontsize=7)
    return axes


def plot_pvalue_agreement(p_spearman, p_permutation, ax, title: str, alpha: float = ALPHA):
    """Scatter of the pairs' t-test p-value against the permutation p-value, per prompt, on log axes."""
    a, b = np.asarray(p_spearman, dtype=float), np.asarray(p_permutation, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    ax.scatter(a[keep], b[keep], s=6, alpha=0.5)
    ax.plot([1e-4, 1], [1e-4, 1], color="black", lw=0.8)
    for f in (ax.axvline, ax.axhline):
        f(alpha, color="grey", ls="--", lw=0.8)
    ax.set(xscale="log", yscale="log", xlim=(1e-4, 1.05), ylim=(1e-4, 1.05),
           xlabel="Spearman t-test p (pairs as independent)", ylabel="Mantel permutation p")
    shares = (f"p<{alpha}: {(a[keep] < alpha).mean():.1%} (t) vs {(b[keep] < alpha).mean():.1%} (permutation)"
              if keep.any() else "no prompt where both tests are defined")
    ax.set_title(f"{title}\n{shares}", fontsize=9)
    return ax


def plot_length_control(rows: Sequence[dict[str, Any]], ax, title: str):
    """Per row with the |Δlength| control: the pooled rho without it (same prompts) and with it, with 95% CIs."""
    labels = [f"{r['scale'].split('_')[0]}\n{r['reward']}" for r in rows]
    positions = np.arange(len(rows))
    for offset, prefix, name, color in [(-0.12, "uncontrolled_same_prompts_", "uncontrolled", "tab:blue"),
                                        (0.12, "pooled_", "given |Δlength| (partial)", "tab:orange")]:
        est = np.array([r[f"{prefix}estimate"] for r in rows])
        err = [est - [r[f"{prefix}ci_low"] for r in rows], [r[f"{prefix}ci_high"] for r in rows] - est]
        ax.errorbar(positions + offset, est, yerr=err, fmt="o", capsize=3, color=color, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(positions, labels, fontsize=8)
    ax.set_ylabel("pooled Spearman rho (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


class StageTimer:
    """Wall time per named stage, for the notebook's stage-by-stage timing table, and this process's CPU time
    per stage (all its threads; not the grader's worker process), which a busy machine inflates far less."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    def __call__(self, stage: str, fn: Callable[[], Any]) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + time.process_time() - cpu
        return out


def plot_pvalue_histogram(p, ax, title: str, alpha: float = ALPHA, bins: int = 20):
    """Figure-2 style: density histogram of the defined p-values, a KDE curve, a dashed line at alpha,
    and the share below alpha next to the paper's 15.7%."""
    p = np.asarray(p, dtype=float)
    defined = p[~np.isnan(p)]
    if len(defined):
        ax.hist(defined, bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.55, edgecolor="white")
    if len(defined) > 2 and np.ptp(defined) > 0:
        grid = np.linspace(0, 1, 200)
        ax.plot(grid, stats.gaussian_kde(defined)(grid), color="tab:blue", lw=1.5)
    ax.axvline(alpha, color="black", ls="--", lw=1)
    share = (defined < alpha).mean() if len(defined) else float("nan")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("per-prompt p-value (Spearman)")
    ax.set_ylabel("density")
    ax.text(0.98, 0.95, f"p<{alpha}: {share:.1%} of {len(defined)} defined\n(undefined: {int(np.isnan(p).sum())})\n"
            f"paper: {PAPER_SHARE_SIGNIFICANT:.1%}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return ax


# ------------------------------------------------------------------------------------------- the three scales


@dataclass
class StudyGroups:
    """Completion groups of one scale, ready for `run_study`: texts (P, G), correctness (P, G), clusters."""

    scale: str
    groups: list[list[str]]
    correct: np.ndarray
    clusters: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def real_text_groups(name: str, group_size: int, max_prompts: int | None = None) -> StudyGroups:
    """Stored real LLM completions (no policy needed), as groups of `group_size`.

    qwen_math_cot_100 (100 MATH prompts x 8 Qwen2.5-Math completions): the first `group_size` (<= 8) of each
    prompt, graded by `dra.rewards.is_correct` (agreement with the source's grades is reported in `info`).
    game24 (100 puzzles x 100 GPT-4 chain-of-thought samples, graded 0/1 by the source): each puzzle's samples
    cut into disjoint groups of `group_size`; groups of one puzzle share a cluster id, so the interval is a
    bootstrap over puzzles.
    """
    records = load(name)[:max_prompts]
    if name == "qwen_math_cot_100":
        if not 2 <= group_size <= 8:
            raise ValueError(f"qwen_math_cot_100 has 8 completions per prompt; group_size must be 2..8, got {group_size}.")
        groups = [r["completions"][:group_size] for r in records]
        correct = grade_groups(groups, [r["answer"] for r in records])
        source = np.array([r["correct"][:group_size] for r in records])
        return StudyGroups(name, groups, correct, None, {"agreement_with_source_grades": float((correct == source).mean())})
    if name == "game24":
        groups, origin = regroup([r["completions"] for r in records], group_size)
        flags, _ = regroup([r["correct"] for r in records], group_size)
        return StudyGroups(name, groups, np.array(flags, dtype=bool), origin, {"puzzles": len(records)})
    raise ValueError(f"no stored completions named {name!r}; choose qwen_math_cot_100 or game24.")


def policy_groups(
    model: Any,
    prompts: Sequence[Any],
    answers: Sequence[str],
    group_size: int,
    *,
    scale: str,
    max_new_tokens: int,
    temperature: float = 0.7,
    seed: int = 0,
    backend: str = "transformers",
    timer: StageTimer | None = None,
    cache: bool = True,
    progress: bool | str = True,
    **sampler_options: Any,
) -> StudyGroups:
    """Sample `group_size` completions per prompt from a policy and grade them with `is_correct`.

    The same function serves the mini scale (the mini world's SFT policy, transformers on CPU) and the paper
    scale (DeepSeek-R1-Distill-Qwen-1.5B with vLLM on a GPU, `backend="vllm"`). Sampling follows the paper's
    training-time settings (temperature 0.7, top_p 1.0), since the study is about training groups. A progress
    bar names the step ("sampling mini: 3000 prompts x 6"); `progress` may give another label, or False.

    With `cache`, the sampled texts of a policy in a local folder are stored under the cache directory, keyed
    by that folder's files (names, sizes, modification times), the prompts and every sampling setting (the
    seed and `batch_size` included: they decide the samples) and the torch/transformers/vLLM versions; a rerun
    with the same key reads them back instead of sampling (a Hub id or a loaded model is sampled every time).
    The grades are cached by `grade_groups`.
    """
    timer = timer or StageTimer()
    if progress is True:
        progress = f"sampling {scale}: {len(prompts)} prompts x {group_size}"
    settings = {"group_size": group_size, "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed,
                "backend": backend, **sampler_options}
    path = _samples_path(model, prompts, settings) if cache else None
    if path is not None and path.exists():
        groups = timer("sampling (cached)", lambda: read_json(path, what="cached samples"))
    else:
        groups = timer("sampling", lambda: sample_groups(model, prompts, group_size, temperature=temperature,
                                                         max_new_tokens=max_new_tokens, seed=seed, backend=backend,
                                                         progress=progress, **sampler_options))
        if path is not None:
            write_json(path, groups)
    correct = timer("grading", lambda: grade_groups(groups, answers, cache=cache))
    return StudyGroups(scale, groups, correct, None, {"backend": backend, "max_new_tokens": max_new_tokens})


def _samples_path(model: Any, prompts: Sequence[Any], settings: dict[str, Any]) -> Path | None:
    """Where the samples of (`model`, `prompts`, `settings`) are cached, or None when they cannot be keyed: a
    model that is not a local folder, or a setting that is not plain JSON."""
    if not isinstance(model, (str, os.PathLike)) or not Path(model).is_dir():
        return None
    try:
        prompts_text = json.dumps(list(prompts), sort_keys=True)
        json.dumps(settings)
    except TypeError:
        return None
    key = {"format": SAMPLES_FORMAT, "model": folder_fingerprint(model), "prompts": text_digest([prompts_text]),
           "settings": settings, "versions": package_versions(("torch", "transformers", "vllm"))}
    return cache_dir() / "samples" / f"{config_key(key)}.json"


def first_members(sg: StudyGroups, group_size: int) -> StudyGroups:
    """The same prompts with only the first `group_size` completions of each group (a nested design: changing
    G changes nothing else)."""
    if group_size > len(sg.groups[0]):
        raise ValueError(f"groups hold {len(sg.groups[0])} completions; cannot take {group_size}.")
    return StudyGroups(sg.scale, [g[:group_size] for g in sg.groups], sg.correct[:, :group_size], sg.clusters, sg.info)


def sensitivity_table(
    sg: StudyGroups,
    embeddings: dict[str, np.ndarray],
    group_sizes: Sequence[int],
    rewards: Sequence[str] = REWARDS,
) -> list[dict[str, Any]]:
    """One row per (G, embedder, reward): the share of significant prompts with its interval; plus, per
    (G, embedder), the control row 'length vs distance' (does embedding distance simply track length?)."""
    rows = []
    for g in group_sizes:
        sub = first_members(sg, g)
        for name, emb in embeddings.items():
            e = emb[:, :g]
            distances = pair_distances(e)  # the same for every reward
            for reward in rewards:
                summary, _, _ = run_study(sub.groups, sub.correct, e, reward, clusters=sub.clusters,
                                          distances=distances)
                rows.append({"scale": sg.scale, "G": g, "embedder": name, "reward": reward, **summary.as_dict()})
            _, p = length_distance_pvalues(sub.groups, e, distances)
            rows.append({"scale": sg.scale, "G": g, "embedder": name, "reward": "|Δlength| (control)",
                         **significant_share(p, clusters=sub.clusters).as_dict()})
    return rows


def effect_inputs(sg: StudyGroups, reward: str, max_len: int = 1000) -> np.ndarray:
    """(P, G) values whose pair differences are compared with distance: a reward, or the lengths for the
    `LENGTH_CONTROL` row."""
    return text_lengths(sg.groups) if reward == LENGTH_CONTROL else group_rewards(sg.groups, sg.correct, reward, max_len)


def group_effects(sg: StudyGroups, embeddings: np.ndarray, reward: str, control: str = "none",
                  max_permutations: int = MAX_PERMUTATIONS, seed: int = 0,
                  distances: np.ndarray | None = None) -> PromptEffects:
    """`prompt_effects` for one reward of a StudyGroups, optionally partialling out the length difference."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; choose one of {', '.join(CONTROLS)}.")
    covariate = text_lengths(sg.groups) if control == "|Δlength|" else None
    return prompt_effects(effect_inputs(sg, reward), embeddings, covariate, max_permutations, seed, distances)


def effect_row(sg: StudyGroups, embeddings: np.ndarray, reward: str, control: str = "none",
               max_permutations: int = MAX_PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """One row of the effect table.

    pooled_*: the pooled per-prompt rho (`dra.stats.pool_effects`, equal weights; over puzzles for clustered
    groups).
    share_spearman / share_permutation: the share of defined prompts with p < 0.05 under the pairs' t-test and
    under the permutation test, with intervals; share_attainable: the share where the permutation test could
    reach p < 0.05 at all. null_variance_mean: the mean permutation variance of rho, beside
    independent_pairs_variance = 1 / (pairs - 1), what it would be if the pairs were independent.
    t_test_size: the mean over prompts of the t-test's rejection rate under relabelling (nominal 0.05).
    With a control, uncontrolled_same_prompts_*: the pooled rho without it on the same prompts (those where
    the partial correlation is defined), so the two estimates compare like with like.
    """
    return _effect_row(sg, embeddings, reward, control, seed,
                       lambda r, c: group_effects(sg, embeddings, r, c, max_permutations, seed))


def _effect_row(sg: StudyGroups, embeddings: np.ndarray, reward: str, control: str, seed: int,
                effects: Callable[[str, str], PromptEffects]) -> dict[str, Any]:
    """`effect_row`, with the per-prompt effects of (reward, control) from `effects`."""
    eff = effects(reward, control)
    pooled = pool_effects(eff.rho, eff.null_variance, clusters=sg.clusters)
    shares = {name: significant_share(p, clusters=sg.clusters, seed=seed) for name, p in
              [("spearman", eff.p_spearman), ("permutation", eff.p_permutation)]}
    defined = ~np.isnan(eff.rho)
    n_pairs = len(_pair_index(embeddings.shape[1])[0])
    def over_defined(reduce, values) -> float:
        return float(reduce(values[defined])) if defined.any() else float("nan")

    row = {"reward": reward, "control": control, **{f"pooled_{k}": v for k, v in pooled.as_dict().items()},
           "median_rho": over_defined(np.median, eff.rho),
           **{f"share_{name}": s.share.estimate for name, s in shares.items()},
           **{f"share_{name}_ci": [s.share.low, s.share.high] for name, s in shares.items()},
           "share_attainable": over_defined(np.mean, eff.p_floor < ALPHA),
           "null_variance_mean": over_defined(np.mean, eff.null_variance),
           "independent_pairs_variance": 1.0 / (n_pairs - 1), "t_test_size": over_defined(np.mean, eff.t_test_size),
           "n_permutations": eff.n_permutations, "exact_permutations": eff.exact}
    if control != "none":
        raw = effects(reward, "none")
        same = pool_effects(np.where(defined, raw.rho, np.nan), raw.null_variance, clusters=sg.clusters)
        row.update({f"uncontrolled_same_prompts_{k}": same.as_dict()[k] for k in ("estimate", "ci_low", "ci_high")})
    return row


def effect_table(
    sg: StudyGroups,
    embeddings: dict[str, np.ndarray],
    group_sizes: Sequence[int],
    rewards: Sequence[str] = REWARDS,
    controls: Sequence[str] = ("none",),
    max_permutations: int = MAX_PERMUTATIONS,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One `effect_row` per (G, embedder, reward, control), plus per (G, embedder) the `LENGTH_CONTROL` row
    (distance against the length difference, no control). The same prompts at every G (`first_members`)."""
    rows = []
    for g, (name, emb) in itertools.product(group_sizes, embeddings.items()):
        sub, vectors = first_members(sg, g), emb[:, :g]
        distances = pair_distances(vectors)  # the same for every row of this (G, embedder)
        # A controlled row also needs the uncontrolled effects of its reward: computed once, for both rows.
        effects = functools.cache(lambda r, c, sub=sub, vectors=vectors, distances=distances: group_effects(
            sub, vectors, r, c, max_permutations, seed, distances))
        cases = [(r, c) for r in rewards for c in controls] + [(LENGTH_CONTROL, "none")]
        for reward, control in cases:
            row = _effect_row(sub, vectors, reward, control, seed, effects)
            rows.append({"scale": sg.scale, "G": g, "embedder": name, **row})
    return rows
