"""Group-sampling metrics shared by the study, the trainer's evaluation and the tables.

Inputs are per-prompt groups: `correct` and `strategies` are (P, G) arrays or nested lists (P prompts, G
samples each), embeddings are (P*G, d) rows in group order (as `dra.similarity` takes them).

- `pass_at_k`: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
  Code", eq. 1): for n samples of which c are correct, ``1 - C(n-c, k) / C(n, k)``, averaged over prompts;
  pass@1 is the mean accuracy.
- Strategy metrics take labels from a parser such as `dra.mini.parse_strategy`; None marks a completion
  whose strategy could not be recognised. Shares and entropy are computed among recognised completions by
  default (``include_unknown=True`` counts None as one more category).
- `distinct_correct_strategies`: per prompt, how many different recognised strategies produced a correct
  answer.
- `mean_pairwise_distance`: per group, the mean cosine distance 1 - cos(e_i, e_j) over pairs i < j.
- `format_rate`: the share of completions that earn `dra.rewards.format_reward`.
- `completion_lengths`: characters, or tokens when a tokenizer is given.

Inputs are checked: outcomes must be booleans or 0/1 (a 2, a 0.5 or a NaN raises instead of counting as
correct), groups must be rectangular, a single string where a list of texts or labels belongs raises
TypeError (it would otherwise be read character by character), and every message names the argument.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from scipy.stats import entropy

from dra import checks
from dra.rewards import format_reward, is_correct

UNKNOWN = "unknown"

# The vocabulary: one name per metric, the key under which results files, tables, the pre-registered claims
# and the trainer's log (as "mini/<name>") store it. pass@k is "pass@<k>" for every k. Counts keep their own
# keys (problems and samples in evaluation summaries, n_prompts and group_size in `group_report`).
# tests/test_metrics.py checks that every producer of metrics uses only these names.
NAMES: dict[str, str] = {
    "pass@1": "mean accuracy over all samples of all prompts (pass@k: Chen et al.'s unbiased estimator)",
    "accuracy": "the training log's pass@1: the share of correct completions among one step's samples",
    "format_rate": "share of completions in the paper's format (`dra.rewards.well_formatted`)",
    "mean_length_chars": "mean completion length in characters",
    "strategy_shares": "share of each recognised strategy, largest first",
    "unrecognised_share": "share of completions whose strategy the parser did not recognise",
    "strategy_entropy": "Shannon entropy of the strategy distribution among recognised completions, in bits",
    "dominant_strategy": "the most frequent recognised strategy",
    "dominant_share": "its share among recognised completions",
    "accuracy_by_strategy": "accuracy of the completions of each strategy ('unknown': unrecognised)",
    "distinct_correct_strategies": "mean over prompts of the number of different strategies with a correct answer",
    "home_share": "share of completions that took their problem's home strategy (mini world)",
    "accuracy_at_home": "accuracy of the completions that took their problem's home strategy",
    "accuracy_off_home": "accuracy of the completions that took another strategy",
    "accuracy_by_home_type": "accuracy on the problems of each home strategy",
    "accuracy_at_home_by_strategy": "per strategy: accuracy of its completions on problems it is home to",
    "accuracy_off_home_by_strategy": "per strategy: accuracy of its completions on the other problems",
    "routing_ceiling": "the same policy's accuracy if every problem took its home strategy (mean over problems of "
                       "that strategy's accuracy at home)",
}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s unbiased pass@k for one prompt: n samples, c correct, 1 <= k <= n (integers)."""
    n, c, k = (checks.integer(value, name) for value, name in ((n, "n"), (c, "c"), (k, "k")))
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}.")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(correct: Any, k: int) -> float:
    """Mean over prompts of the unbiased pass@k; `correct` is (P, G) booleans or 0/1, k <= G."""
    correct = as_outcomes(correct, "correct")
    n = correct.shape[1]
    if not 1 <= checks.integer(k, "k") <= n:
        raise ValueError(f"k={k} must lie between 1 and the number of samples per prompt ({n}).")
    return float(np.mean([pass_at_k(n, int(c), k) for c in correct.sum(axis=1)]))


def pass_at_1(correct: Any) -> float:
    """Mean accuracy over all samples (the unbiased pass@1)."""
    return float(as_outcomes(correct, "correct").mean())


def strategy_shares(labels: Iterable[str | None], include_unknown: bool = False) -> dict[str, float]:
    """Share of each strategy among the labels, largest first (None counted as 'unknown' only if asked)."""
    counts = _strategy_counts(labels, include_unknown)
    total = sum(counts.values())
    return {name: count / total for name, count in counts.most_common()} if total else {}


def strategy_entropy(labels: Iterable[str | None], base: float = 2, include_unknown: bool = False) -> float:
    """Shannon entropy (bits by default) of the strategy distribution; 0.0 when no label was recognised."""
    if checks.real(base, "base", 0, low_open=True) == 1:
        raise ValueError("base must be positive and not 1 (2 for bits, e for nats), got 1.")
    counts = _strategy_counts(labels, include_unknown)
    return float(entropy(list(counts.values()), base=base)) if counts else 0.0


def dominant_strategy(labels: Iterable[str | None], include_unknown: bool = False) -> tuple[str | None, float]:
    """(name, share) of the most frequent strategy; (None, 0.0) when no label was recognised."""
    shares = strategy_shares(labels, include_unknown)
    return next(iter(shares.items())) if shares else (None, 0.0)


def distinct_correct_strategies(strategies: Sequence[Sequence[str | None]], correct: Any) -> np.ndarray:
    """Per prompt: the number of different recognised strategies among its correct completions, shape (P,)."""
    correct = as_outcomes(correct, "correct")
    strategies = [_labels(row, "strategies[i]") for row in checks.items(strategies, "strategies", "label rows")]
    if len(strategies) != correct.shape[0] or any(len(row) != correct.shape[1] for row in strategies):
        raise ValueError(f"strategies must have the shape of correct {correct.shape}.")
    return np.array([
        len({s for s, ok in zip(row, flags) if ok and s is not None}) for row, flags in zip(strategies, correct)
    ])


def mean_pairwise_distance(embeddings: Any, group_size: int) -> np.ndarray:
    """Per group, the mean cosine distance over its G(G-1)/2 pairs, shape (P,); needs group_size >= 2."""
    from dra.kernels import similarity  # torch: imported by the one metric that needs it

    if checks.integer(group_size, "group_size") < 2:
        raise ValueError(f"a pairwise distance needs group_size >= 2, got {group_size}.")
    sims = np.asarray(similarity(embeddings, group_size), dtype=np.float64)
    upper = np.triu_indices(group_size, k=1)
    return 1.0 - sims[:, upper[0], upper[1]].mean(axis=1)


def format_rate(completions: Sequence[Any]) -> float:
    """Share of completions with the paper's format (`dra.rewards.format_reward` == 1)."""
    completions = checks.items(completions, "completions", "completions")
    if not completions:
        raise ValueError("format_rate needs at least one completion.")
    return float(np.mean(format_reward(completions)))


def completion_lengths(completions: Sequence[str], tokenizer: Any = None) -> np.ndarray:
    """Length of each completion: characters, or tokens (no special tokens added) with a tokenizer."""
    completions = _texts(completions, "completions")
    if tokenizer is None:
        return np.array([len(text) for text in completions])
    return np.array([len(ids) for ids in tokenizer(list(completions), add_special_tokens=False)["input_ids"]])


def group_report(
    groups: Sequence[Sequence[str]],
    answers: Sequence[Any],
    *,
    strategy_of: Callable[[str], str | None] | None = None,
    ks: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Every metric above except embedding distance for sampled `groups` graded against `answers`.

    Grading is `dra.rewards.is_correct`. `strategy_of` (e.g. `dra.mini.parse_strategy`) adds the strategy
    metrics. `ks` defaults to 1 and the group size. Returns a flat JSON-ready dict; the per-sample
    correctness and strategies come back under ``"correct"`` and ``"strategies"`` for further analysis.
    """
    groups = [_texts(group, "groups[i]") for group in checks.items(groups, "groups", "groups of completions")]
    answers = checks.items(answers, "answers", "gold answers, one per group")
    if len(groups) != len(answers) or not len(groups):
        raise ValueError(f"need one gold answer per group and at least one group; got {len(groups)} groups and "
                         f"{len(answers)} answers.")
    if strategy_of is not None and not callable(strategy_of):
        raise TypeError(f"strategy_of must be a function text -> label, got {type(strategy_of).__name__}.")
    correct = as_outcomes([[is_correct(text, gold) for text in group] for group, gold in zip(groups, answers)],
                          "groups")
    flat = [text for group in groups for text in group]
    lengths = completion_lengths(flat)
    report: dict[str, Any] = {
        "n_prompts": correct.shape[0],
        "group_size": correct.shape[1],
        "pass@1": pass_at_1(correct),
        **{f"pass@{k}": mean_pass_at_k(correct, k) for k in (ks or sorted({1, correct.shape[1]}))},
        "format_rate": format_rate(flat),
        "mean_length_chars": float(lengths.mean()),
    }
    if strategy_of is not None:
        strategies = [[strategy_of(text) for text in group] for group in groups]
        labels = [s for row in strategies for s in row]
        name, share = dominant_strategy(labels)
        report.update({
            "strategy_shares": strategy_shares(labels),
            "unrecognised_share": sum(s is None for s in labels) / len(labels),
            "strategy_entropy": strategy_entropy(labels),
            "dominant_strategy": name,
            "dominant_share": share,
            "accuracy_by_strategy": _accuracy_by_strategy(labels, correct.ravel()),
            "distinct_correct_strategies": float(distinct_correct_strategies(strategies, correct).mean()),
            "strategies": strategies,
        })
    report["correct"] = correct.tolist()
    return report


def home_metrics(homes: Sequence[str], strategies: Sequence[Sequence[str | None]], correct: Any,
                 names: Sequence[str]) -> dict[str, Any]:
    """The mini world's routing readouts for P problems with home strategies `homes` (P,), sampled `strategies`
    (P, G labels) and `correct` (P, G); `names` lists every strategy (`dra.mini.STRATEGIES`).

    The share of samples that took their problem's home strategy, accuracy at and off home (overall and per
    strategy), accuracy per home type, and the routing ceiling: the accuracy this policy would reach if every
    problem used its home strategy, the mean over problems of that strategy's at-home accuracy (NaN when some
    home strategy was never sampled at home). Per-strategy entries are NaN where a strategy has no such sample.
    """
    correct = as_outcomes(correct, "correct")
    strategies = [_labels(row, "strategies[i]") for row in checks.items(strategies, "strategies", "label rows")]
    homes = np.array(_labels(homes, "homes"), dtype=object)
    if len(homes) != correct.shape[0] or [len(row) for row in strategies] != [correct.shape[1]] * len(homes):
        raise ValueError(f"homes (P,) and strategies (P, G) must match correct {correct.shape}; got "
                         f"{len(homes)} homes and {len(strategies)} rows of strategies.")
    used = np.array(strategies, dtype=object)
    took_home = used == homes[:, None]

    def accuracy(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else float("nan")

    at_home = {name: accuracy((used == name) & took_home) for name in names}
    return {
        "home_share": float(took_home.mean()),
        "accuracy_at_home": accuracy(took_home),
        "accuracy_off_home": accuracy(~took_home),
        "accuracy_by_home_type": {name: float(correct[homes == name].mean()) for name in names
                                  if (homes == name).any()},
        "accuracy_at_home_by_strategy": at_home,
        "accuracy_off_home_by_strategy": {name: accuracy((used == name) & ~took_home) for name in names},
        "routing_ceiling": float(np.mean([at_home[home] for home in homes])),
    }


def _accuracy_by_strategy(labels: Sequence[str | None], correct: np.ndarray) -> dict[str, float]:
    by_name: dict[str, list[bool]] = {}
    for label, ok in zip(labels, correct):
        by_name.setdefault(label or UNKNOWN, []).append(bool(ok))
    return {name: float(np.mean(flags)) for name, flags in sorted(by_name.items())}


def _strategy_counts(labels: Iterable[str | None], include_unknown: bool) -> Counter:
    include_unknown = checks.flag(include_unknown, "include_unknown")
    return Counter(label if label is not None else UNKNOWN for label in _labels(labels, "labels")
                   if label is not None or include_unknown)


def _labels(labels: Any, name: str) -> list[str | None]:
    labels = checks.items(labels, name, "strategy labels (str, or None for unrecognised)")
    bad = next((label for label in labels if label is not None and not isinstance(label, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must hold strategy names (str) or None, got {type(bad).__name__} {bad!r}.")
    return labels


def _texts(texts: Any, name: str) -> list[str]:
    texts = checks.items(texts, name, "completion texts")
    bad = next((text for text in texts if not isinstance(text, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must hold strings, got {type(bad).__name__} {bad!r:.60}.")
    return texts


def as_outcomes(values: Any, name: str) -> np.ndarray:
    """`values` as a (prompts, samples) bool array; raises unless it holds only booleans or 0/1."""
    array = _as_groups(values, name)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold booleans or 0/1, got values of dtype {array.dtype}.")
    valid = np.isin(array, (0, 1))
    if not valid.all():
        raise ValueError(f"{name} must hold booleans or 0/1 (one outcome per sample), got {array[~valid].flat[0].item()!r}.")
    return array.astype(bool)


def _as_groups(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nested lists
        array = np.empty(0)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (prompts, samples) array with equal group sizes, "
                         f"got shape {array.shape}.")
    return array
