"""Evaluation with confidence intervals: n samples per problem, graded by `dra.rewards.is_correct`.

pass@1 is the mean over all samples of all problems (the mean of per-problem accuracies), with a percentile
bootstrap interval over problems (scipy.stats.bootstrap): the interval says how much the number would move
with another draw of problems of the same kind, which is what matters on a 30-problem benchmark like AIME24
(one problem = 3.3 points). pass@k uses the unbiased estimator of Chen et al. (2021).

One results file per (model, benchmark, profile) holds every problem's per-sample outcomes, the generation
settings, the seed, package versions and hardware. It is rewritten atomically after every chunk of problems,
so an interrupted evaluation resumes where it stopped; a file made with other settings is refused, never
mixed in.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from dra.config import results_dir
from dra.io import provenance, write_json
from dra.metrics import mean_pass_at_k
from dra.rewards import is_correct

# PAPER.md section 5: the evaluation prompt (lighteval's MATH prompt as the authors ran it).
EVAL_PROMPT = (
    "Solve the following math problem efficiently and clearly. The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering."
)
BENCHMARKS: tuple[str, ...] = ("aime24", "math500", "amc23", "minerva", "olympiadbench")


@dataclass(frozen=True)
class EvalSettings:
    """Generation settings of one evaluation; part of the results file's identity."""

    n_samples: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    seed: int = 0
    backend: str = "transformers"
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {self.n_samples}.")


# Per profile: the paper profile uses the paper's sampling (PAPER.md section 5) with 16 samples per problem.
PROFILE_SETTINGS: dict[str, EvalSettings] = {
    "smoke": EvalSettings(n_samples=2, max_new_tokens=24, temperature=0.7, top_p=1.0),
    "mini": EvalSettings(n_samples=16, max_new_tokens=160, temperature=0.7, top_p=1.0),
    "paper": EvalSettings(n_samples=16, backend="vllm"),
}


def benchmark_items(name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Problems of a benchmark as evaluation items: id, prompt (the paper's evaluation prompt), answer."""
    from dra.data import load

    return [{"id": r["id"], "prompt": [{"role": "user", "content": f"{EVAL_PROMPT}\n\n{r['problem']}"}],
             "answer": r["answer"]} for r in load(name)[:limit]]


def results_path(model_label: str, benchmark: str, profile: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_label).strip("_")
    return results_dir() / "evals" / slug / f"{benchmark}_{profile}.json"


def _load_partial(path: Path, identity: dict[str, Any]) -> dict[str, dict[str, list]]:
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("identity") != identity:
        raise ValueError(
            f"{path} was made with other settings ({saved.get('identity')}); it cannot be resumed with "
            f"{identity}. Delete it or evaluate under another model label/profile."
        )
    return saved["problems"]


def evaluate(
    model: Any,
    items: Sequence[dict[str, Any]],
    *,
    benchmark: str,
    profile: str,
    settings: EvalSettings,
    model_label: str | None = None,
    chunk_size: int = 64,
    path: Path | None = None,
    annotate: Callable[[str], Any] | None = None,
) -> Path:
    """Sample `settings.n_samples` completions per item, grade them, and write/extend the results file.

    `model`: local path or Hub id (or a loaded model, with `model_label` naming it). Items need `id`,
    `prompt` (chat messages or a string) and `answer`. Each problem's record keeps, per sample, whether it
    was correct, its length in characters and, with `annotate`, a label of the text (e.g. the mini world's
    strategy). Returns the results file's path.
    """
    from dra.generation import sample_groups

    label = model_label or str(model)
    path = path or results_path(label, benchmark, profile)
    identity = {"model": label, "benchmark": benchmark, "profile": profile, "settings": asdict(settings)}
    done = _load_partial(path, identity)
    todo = [item for item in items if str(item["id"]) not in done]
    ids = [str(item["id"]) for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{benchmark}: item ids are not unique.")
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=benchmark, unit="problem") as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            completions = sample_groups(
                model, [item["prompt"] for item in chunk], settings.n_samples, temperature=settings.temperature,
                top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                seed=settings.seed + len(done), backend=settings.backend, batch_size=settings.batch_size,
            )
            for item, group in zip(chunk, completions):
                done[str(item["id"])] = {
                    "correct": [is_correct(text, item["answer"]) for text in group],
                    "length": [len(text) for text in group],
                    **({"label": [annotate(text) for text in group]} if annotate else {}),
                }
            _write(path, identity, done, settings)
            bar.update(len(chunk))
    if not todo:
        _write(path, identity, done, settings)
    return path


def _write(path: Path, identity: dict[str, Any], done: dict[str, dict[str, list]], settings: EvalSettings) -> None:
    write_json(path, {
        "identity": identity,
        "problems": done,
        **provenance(identity["profile"], settings.seed),
    })


def load_outcomes(path: str | Path, field: str = "correct") -> np.ndarray:
    """(problems, n_samples) array of one per-sample field of a results file: correct, length or label."""
    saved = json.loads(Path(path).read_text())
    values = [outcome[field] for outcome in saved["problems"].values()]
    return np.array(values, dtype=bool) if field == "correct" else np.array(values, dtype=object if field == "label" else float)


def pass_at_1_ci(correct, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(pass@1, low, high): mean accuracy and a percentile bootstrap interval over problems."""
    per_problem = np.asarray(correct, dtype=float).reshape(len(correct), -1).mean(axis=1)
    if len(per_problem) < 2:
        raise ValueError("a bootstrap interval needs at least 2 problems.")
    point = float(per_problem.mean())
    if np.ptp(per_problem) == 0:  # every resample has the same mean
        return point, point, point
    res = stats.bootstrap((per_problem,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=np.random.default_rng(seed))
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(correct, ks: Sequence[int] = (1, 2, 4, 8, 16), seed: int = 0) -> dict[str, Any]:
    """pass@1 with its interval, and unbiased pass@k for each k up to the number of samples."""
    correct = np.asarray(correct, dtype=bool)
    point, low, high = pass_at_1_ci(correct, seed=seed)
    out: dict[str, Any] = {"problems": int(correct.shape[0]), "samples": int(correct.shape[1]),
                           "pass@1": point, "pass@1_ci_low": low, "pass@1_ci_high": high}
    for k in ks:
        if 1 < k <= correct.shape[1]:
            out[f"pass@{k}"] = mean_pass_at_k(correct, k)
    return out


def mini_items(profile: str, limit: int | None = None, split: str = "test") -> list[dict[str, Any]]:
    """The mini world's `split` as evaluation items, one ordering per factor pair (`dra.mini.distinct_pairs`,
    so items are independent), in the training prompt format (the mini policies know no other). Each item
    also carries its `home_strategy`."""
    from dra import mini, policy

    config = policy.policy_config(profile)
    problems = mini.distinct_pairs(config.splits()[split])[:limit]
    records = mini.prompt_records(problems, config.system_prompt)
    return [{"id": f"{p.a}x{p.b}", "prompt": r["prompt"], "answer": r["answer"], "home_strategy": p.home_strategy}
            for p, r in zip(problems, records)]
