"""The diversity-quality inconsistency study (the paper's Figure 2), with every unstated choice explicit.

For each prompt, the G sampled completions are compared pairwise (all i < j): the absolute reward difference
|R_i - R_j| against the cosine distance 1 - cos(e_i, e_j) of their embeddings. Spearman's rank correlation
over those G(G-1)/2 pairs gives one p-value per prompt; the paper reports that only ~15.7% of 3,000 prompts
have p < 0.05. The pairs share completions, so they are not independent and the per-prompt p-value is
approximate; the paper's test has the same property, and this module reproduces it rather than fixing it.

Choices the paper leaves open, made explicit here: which reward (binary accuracy, the length-scaled cosine,
the paper's total, or a length-only control), which embedder, which G, and what to do with prompts where
the test is undefined (every reward difference equal, e.g. all completions correct under a binary reward):
they get NaN and are counted separately, never dropped and never counted as significant.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from dra.config import cache_dir
from dra.io import atomic_path, config_key
from dra.rewards import THINK_CLOSE, cosine_value

PAPER_SHARE_SIGNIFICANT = 0.157  # Figure 2: about 15.7% of prompts with p < 0.05
ALPHA = 0.05
REWARDS: tuple[str, ...] = ("accuracy", "cosine", "paper", "length_only")


def _pair_index(g: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(g, k=1)


def pairwise_arrays(rewards, embeddings) -> tuple[np.ndarray, np.ndarray]:
    """(P, G) rewards and (P, G, d) embeddings -> |R_i - R_j| and 1 - cos(e_i, e_j), each (P, G(G-1)/2)."""
    r = np.asarray(rewards, dtype=float)
    e = np.asarray(embeddings, dtype=float)
    if r.ndim != 2 or e.ndim != 3 or r.shape != e.shape[:2]:
        raise ValueError(f"rewards must be (P, G) and embeddings (P, G, d) with the same P and G; got "
                         f"{r.shape} and {e.shape}.")
    if not (np.isfinite(r).all() and np.isfinite(e).all()):
        raise ValueError("rewards or embeddings contain NaN or inf.")
    norms = np.linalg.norm(e, axis=2, keepdims=True)
    if (norms == 0).any():
        raise ValueError("some embeddings have zero norm; their cosine distance is undefined.")
    unit = e / norms
    cos = np.einsum("pgd,phd->pgh", unit, unit)
    i, j = _pair_index(r.shape[1])
    return np.abs(r[:, i] - r[:, j]), 1.0 - cos[:, i, j]


def prompt_pvalues(rewards, embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, Spearman's rho and two-sided p-value between |R_i - R_j| and 1 - cos(e_i, e_j), i < j.

    Args:
        rewards: (P, G). embeddings: (P, G, d).
    Returns:
        rho, p: float arrays of shape (P,). NaN where the test is undefined: fewer than 3 pairs (G < 3), or
        either variable constant across the pairs (all reward differences equal, or all distances equal).
    """
    diffs, dists = pairwise_arrays(rewards, embeddings)
    rho = np.full(len(diffs), np.nan)
    p = np.full(len(diffs), np.nan)
    n_pairs = diffs.shape[1]
    if n_pairs < 3:
        return rho, p
    defined = (np.ptp(diffs, axis=1) > 0) & (np.ptp(dists, axis=1) > 0)
    # scipy.stats.spearmanr per row, vectorised: Pearson's r of the (tie-averaged) ranks, and its two-sided
    # p-value from the t distribution with n - 2 degrees of freedom, as spearmanr computes it.
    rx = stats.rankdata(diffs[defined], axis=1)
    ry = stats.rankdata(dists[defined], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    r = np.clip((rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1)), -1.0, 1.0)
    with np.errstate(divide="ignore"):
        t = r * np.sqrt((n_pairs - 2) / ((1.0 - r) * (1.0 + r)))
    rho[defined] = r
    p[defined] = 2 * stats.t.sf(np.abs(t), n_pairs - 2)
    return rho, p


@dataclass
class ShareSummary:
    """Share of prompts with p < alpha among those where the test is defined, with a 95% interval."""

    n_prompts: int
    n_defined: int
    n_significant: int
    share_significant: float
    ci_low: float
    ci_high: float
    share_undefined: float
    ci_method: str
    alpha: float = ALPHA
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**out, **self.extra}


def summarize(p, alpha: float = ALPHA, clusters: Sequence | None = None, seed: int = 0) -> ShareSummary:
    """Share of significant prompts with a 95% interval.

    Without `clusters`, the prompts are independent and the interval is Wilson's (scipy.stats.binomtest).
    With `clusters` (e.g. several groups drawn from one game-24 puzzle), it is a percentile bootstrap over
    clusters (scipy.stats.bootstrap), so repeated groups of one prompt do not pass for independent evidence.
    """
    p = np.asarray(p, dtype=float)
    defined = ~np.isnan(p)
    significant = defined & (p < alpha)
    n_def, n_sig = int(defined.sum()), int(significant.sum())
    share = n_sig / n_def if n_def else float("nan")
    if n_def == 0:
        low = high = float("nan")
        method = "none"
    elif clusters is None:
        ci = stats.binomtest(n_sig, n_def).proportion_ci(confidence_level=0.95, method="wilson")
        low, high, method = ci.low, ci.high, "wilson"
    else:
        low, high = _cluster_bootstrap_ci(significant, defined, np.asarray(clusters), seed)
        method = "cluster bootstrap"
    return ShareSummary(len(p), n_def, n_sig, share, float(low), float(high), 1 - n_def / len(p) if len(p) else 0.0, method,
                        alpha)


def _cluster_bootstrap_ci(significant: np.ndarray, defined: np.ndarray, clusters: np.ndarray, seed: int):
    ids, inverse = np.unique(clusters, return_inverse=True)
    k = np.bincount(inverse, weights=significant, minlength=len(ids))
    n = np.bincount(inverse, weights=defined, minlength=len(ids))
    keep = n > 0
    if keep.sum() < 2:
        return float("nan"), float("nan")
    res = stats.bootstrap((k[keep], n[keep]), lambda a, b, axis=-1: a.sum(axis) / b.sum(axis), paired=True,
                          vectorized=True, n_resamples=2000, method="percentile", rng=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


def group_rewards(completions: Sequence[Sequence[str]], correct, reward: str, max_len: int = 1000) -> np.ndarray:
    """(P, G) rewards of one kind from the texts and their correctness (graded once, elsewhere).

    accuracy: 1/0. cosine: open-r1's length-scaled accuracy (as trained). paper: 1 x format + 2 x cosine.
    length_only: the cosine schedule with every answer treated as correct, a control in which the reward
    depends on length alone: whatever correlation it shows with embedding distance is length, not quality.
    """
    if reward not in REWARDS:
        raise ValueError(f"unknown reward {reward!r}; choose one of {', '.join(REWARDS)}.")
    correct = np.asarray(correct, dtype=bool)
    lengths = np.array([[len(t) for t in group] for group in completions])
    if lengths.shape != correct.shape:
        raise ValueError(f"completions {lengths.shape} and correct {correct.shape} must have the same (P, G) shape.")
    if reward == "accuracy":
        return correct.astype(float)
    cos = np.vectorize(lambda c, n: cosine_value(bool(c), int(n), max_len=max_len))
    if reward == "length_only":
        return cos(np.ones_like(correct), lengths)
    values = cos(correct, lengths)
    if reward == "cosine":
        return values
    fmt = np.array([[float(t.count(THINK_CLOSE) == 1) for t in group] for group in completions])
    return fmt + 2.0 * values


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

    With `cache`, the vectors are stored under the cache directory, keyed by the embedder (name, maximum
    sequence length) and a hash of the texts, so a changed model or text never reuses stale vectors. The
    TF-IDF embedder is fitted per call and is never cached (it is fast anyway).
    """
    flat = [t for group in groups for t in group]
    name = getattr(embedder, "name", None)  # an embedder without a name has no stable cache identity
    cacheable = cache and name not in (None, "tfidf")
    path = None
    if cacheable:
        texts_hash = hashlib.sha256("\x00".join(flat).encode()).hexdigest()
        key = config_key({"embedder": name, "max_seq_length": embedder.max_seq_length, "texts": texts_hash})
        path = cache_dir() / "embeddings" / f"{key}.npy"
        if path.exists():
            return np.load(path).reshape(len(groups), len(groups[0]), -1)
    vectors = embedder.encode(flat)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, vectors)
    return vectors.reshape(len(groups), len(groups[0]), -1)


def run_study(
    groups: Sequence[Sequence[str]],
    correct,
    embeddings: np.ndarray,
    reward: str,
    clusters: Sequence | None = None,
    max_len: int = 1000,
) -> tuple[ShareSummary, np.ndarray, np.ndarray]:
    """Rewards of kind `reward` -> per-prompt (rho, p) -> summary. Returns (summary, rho, p)."""
    rewards = group_rewards(groups, correct, reward, max_len=max_len)
    rho, p = prompt_pvalues(rewards, embeddings)
    return summarize(p, clusters=clusters), rho, p


def length_distance_pvalues(groups: Sequence[Sequence[str]], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, Spearman between |len_i - len_j| and the embedding distance: does distance track length?"""
    lengths = np.array([[len(t) for t in group] for group in groups], dtype=float)
    return prompt_pvalues(lengths, embeddings)


class StageTimer:
    """Wall time per named stage, for the notebook's stage-by-stage timing table."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
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
    from dra.data import load
    from dra.rewards import is_correct

    records = load(name)[:max_prompts]
    if name == "qwen_math_cot_100":
        if not 2 <= group_size <= 8:
            raise ValueError(f"qwen_math_cot_100 has 8 completions per prompt; group_size must be 2..8, got {group_size}.")
        groups = [r["completions"][:group_size] for r in records]
        correct = np.array([[is_correct(c, r["answer"]) for c in g] for g, r in zip(groups, records)])
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
    **sampler_options: Any,
) -> StudyGroups:
    """Sample `group_size` completions per prompt from a policy and grade them with `is_correct`.

    The same function serves the mini scale (the mini world's SFT policy, transformers on CPU) and the paper
    scale (DeepSeek-R1-Distill-Qwen-1.5B with vLLM on a GPU, `backend="vllm"`). Sampling follows the paper's
    training-time settings (temperature 0.7, top_p 1.0), since the study is about training groups.
    """
    from dra.generation import sample_groups
    from dra.rewards import is_correct

    timer = timer or StageTimer()
    groups = timer("sampling", lambda: sample_groups(model, prompts, group_size, temperature=temperature,
                                                     max_new_tokens=max_new_tokens, seed=seed, backend=backend,
                                                     **sampler_options))
    correct = timer("grading", lambda: np.array([[is_correct(c, a) for c in g] for g, a in zip(groups, answers)]))
    return StudyGroups(scale, groups, correct, None, {"backend": backend, "max_new_tokens": max_new_tokens})


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
            for reward in rewards:
                summary, _, _ = run_study(sub.groups, sub.correct, e, reward, clusters=sub.clusters)
                rows.append({"scale": sg.scale, "G": g, "embedder": name, "reward": reward, **summary.as_dict()})
            _, p = length_distance_pvalues(sub.groups, e)
            rows.append({"scale": sg.scale, "G": g, "embedder": name, "reward": "|Δlength| (control)",
                         **summarize(p, clusters=sub.clusters).as_dict()})
    return rows


# What each profile runs in notebook 01. Real text is always offline; the mini scale needs the mini world's
# base policy (trained on first use); the paper scale needs a GPU with vLLM.
STUDY_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"real_prompts": 12, "real_embedders": ["tfidf"], "mini_prompts": 40, "mini_embedders": ["tfidf"],
              "group_sizes": [4, 6], "max_group": 6, "mini_max_new_tokens": 64},
    "mini": {"real_prompts": None, "real_embedders": ["minilm", "tfidf"], "mini_prompts": 3000,
             "mini_embedders": ["minilm", "tfidf"], "group_sizes": [4, 6, 8], "max_group": 8,
             "mini_max_new_tokens": 160},
    "paper": {"real_prompts": None, "real_embedders": ["minilm", "tfidf"], "mini_prompts": 3000,
              "mini_embedders": ["minilm", "tfidf"], "group_sizes": [4, 6, 8], "max_group": 8,
              "mini_max_new_tokens": 160, "paper_model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
              "paper_prompts": 3000, "paper_max_new_tokens": 3584, "paper_embedder": "jina"},
}
