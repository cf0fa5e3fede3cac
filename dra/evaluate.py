"""Evaluation with confidence intervals: n samples per problem, graded by `dra.rewards.is_correct`.

pass@1 is the mean over all samples of all problems (the mean of per-problem accuracies), with a percentile
bootstrap interval over problems (`dra.stats.bootstrap_interval`): the interval says how much the number
would move with another draw of problems of the same kind, which is what matters on a 30-problem benchmark
like AIME24 (one problem = 3.3 points). pass@k uses the unbiased estimator of Chen et al. (2021).

Items (id, prompt, answer) come from a task (`dra.tasks`), the generation settings from the profile
(`dra.profiles.EvalSettings`). One results file per (model, benchmark, profile) holds every problem's per-sample outcomes, the generation
settings, the seed, package versions and hardware. It is rewritten atomically after every chunk of problems,
so an interrupted evaluation resumes where it stopped; a file made with other settings (or by the older
sampler that seeded whole chunks) is refused, never mixed in.

Each problem's samples come from its own seed, derived from the settings' seed and the problem's id
(`problem_seed`), so the outcomes do not depend on `chunk_size`, on `batch_size`, on which other problems are
evaluated or in what order (up to floating-point differences of batched arithmetic).

A results file that is empty, truncated or not one of these raises `dra.io.BadFileError` naming it. Model
labels become safe file names (a Hub id "owner/name" becomes "owner_name"); a benchmark or profile name
that is not a plain name (a "/", "..") is refused.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from dra import checks, generation
from dra.config import results_dir
from dra.io import BadFileError, safe_name, slug
from dra.metrics import as_outcomes, mean_pass_at_k
from dra.profiles import EvalSettings
from dra.reports import MERGED, load_result, save_result
from dra.rewards import is_correct
from dra.stats import LEVEL, Interval, bootstrap_interval

# Part of every results file's identity: files of the older sampler (one seed per chunk) are refused.
SAMPLING = "per-problem seeds"
RESULTS_KIND = "a results file of dra.evaluate"
FIELDS: tuple[str, ...] = ("correct", "length", "label")


def results_path(model_label: str, benchmark: str, profile: str) -> Path:
    """results_dir()/evals/<model label as a safe name>/<benchmark>_<profile>.json; refuses unsafe names."""
    name = f"{safe_name(benchmark, 'benchmark')}_{safe_name(profile, 'profile')}.json"
    return results_dir() / "evals" / slug(model_label, "model_label") / name


def problem_seed(seed: int, problem_id: str) -> int:
    """The sampling seed of one problem: a hash of the evaluation's seed and the problem's id (< 2**63)."""
    digest = hashlib.sha256(f"{checks.integer(seed, 'seed', minimum=0)}/{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _load_partial(path: Path, identity: dict[str, Any]) -> dict[str, dict[str, list]]:
    if not path.exists():
        return {}
    saved = _read_results(path)
    if saved["identity"] != identity:
        raise ValueError(
            f"{path} was made with other settings ({saved['identity']}); it cannot be resumed with "
            f"{identity}. Delete it or evaluate under another model label/profile."
        )
    return saved["problems"]


def _read_results(path: str | Path) -> dict[str, Any]:
    saved = load_result(path=path, keys=("identity", "problems"), what=RESULTS_KIND)
    if not isinstance(saved["problems"], dict) or not all(
            isinstance(record, dict) and isinstance(record.get("correct"), list) for record in saved["problems"].values()):
        raise BadFileError(path, f"not {RESULTS_KIND}: 'problems' must map each problem id to its outcomes.")
    return saved


def _checked_items(items: Any) -> list[dict[str, Any]]:
    items = checks.items(items, "items", "evaluation items ({'id', 'prompt', 'answer'} dicts)")
    for index, item in enumerate(items):
        missing = [key for key in ("id", "prompt", "answer") if not isinstance(item, dict) or key not in item]
        if missing:
            raise ValueError(f"items[{index}] needs the keys 'id', 'prompt' and 'answer'; missing {missing}.")
        if isinstance(item["id"], bool) or not isinstance(item["id"], (str, int)) or str(item["id"]) == "":
            raise ValueError(f"items[{index}]['id'] must be a non-empty string or an integer, got {item['id']!r}.")
        answer = item["answer"]
        if not isinstance(answer, (str, numbers.Real)) or isinstance(answer, bool):
            raise TypeError(f"items[{index}]['answer'] must be a string or a number, got {type(answer).__name__}.")
    ids = [str(item["id"]) for item in items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"item ids must be unique; {duplicate!r} occurs {ids.count(duplicate)} times.")
    return items


def _model_label(model: Any, model_label: str | None) -> str:
    if model_label is not None:
        if not isinstance(model_label, str) or not model_label.strip():
            raise ValueError(f"model_label must be a non-empty string, got {model_label!r}.")
        return model_label
    if isinstance(model, (str, Path)):
        return str(model)
    raise TypeError(f"model is a loaded {type(model).__name__}: pass model_label= to name its results file.")


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
    progress_label: str | None = None,
) -> Path:
    """Sample `settings.n_samples` completions per item, grade them, and write/extend the results file.

    `model`: local path or Hub id (or a loaded model, with `model_label` naming it). Items need `id`,
    `prompt` (chat messages or a string) and `answer`. Each problem's record keeps, per sample, whether it
    was correct, its length in characters and, with `annotate`, a label of the text (e.g. the mini world's
    strategy). `chunk_size` problems are sampled between two saves; it does not change the outcomes. The
    progress bar says `progress_label` (default: the benchmark's name).
    Returns the results file's path.
    """
    label = _model_label(model, model_label)
    if not isinstance(settings, EvalSettings):
        raise TypeError(f"settings must be an EvalSettings, got {type(settings).__name__}.")
    checks.integer(chunk_size, "chunk_size", minimum=1)
    if annotate is not None and not callable(annotate):
        raise TypeError(f"annotate must be a function text -> label, got {type(annotate).__name__}.")
    items = _checked_items(items)
    path = Path(path) if path is not None else results_path(label, benchmark, profile)
    identity = {"model": label, "benchmark": safe_name(benchmark, "benchmark"),
                "profile": safe_name(profile, "profile"), "settings": asdict(settings), "sampling": SAMPLING}
    done = _load_partial(path, identity)
    todo = [item for item in items if str(item["id"]) not in done]
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=progress_label or benchmark,
              unit="problem") as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            completions = generation.sample_groups(
                model, [item["prompt"] for item in chunk], settings.n_samples, temperature=settings.temperature,
                top_p=settings.top_p, max_new_tokens=settings.max_new_tokens, seed=settings.seed,
                seeds=[problem_seed(settings.seed, str(item["id"])) for item in chunk],
                backend=settings.backend, batch_size=settings.batch_size,
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
    save_result(path.stem, {"identity": identity, "problems": done}, identity["profile"], settings.seed, path=path,
                layout=MERGED)


def load_outcomes(path: str | Path, field: str = "correct") -> np.ndarray:
    """(problems, n_samples) array of one per-sample field of a results file: correct, length or label.

    Raises `dra.io.BadFileError` naming the file when it is empty, truncated, holds no problems, or a
    problem lacks `field` or has another number of samples than the rest.
    """
    checks.choice(field, "field", FIELDS)
    saved = _read_results(path)
    problems = saved["problems"]
    if not problems:
        raise BadFileError(path, "holds no problems yet (an evaluation that has not finished a chunk).")
    lacking = next((pid for pid, outcome in problems.items() if not isinstance(outcome.get(field), list)), None)
    if lacking is not None:
        raise BadFileError(path, f"problem {lacking!r} has no per-sample {field!r} list"
                                 f"{' (evaluated without annotate=)' if field == 'label' else ''}.")
    sizes = {len(outcome[field]) for outcome in problems.values()}
    if len(sizes) != 1:
        raise BadFileError(path, f"problems have different numbers of samples {sorted(sizes)} in {field!r}.")
    values = [outcome[field] for outcome in problems.values()]
    if field == "correct":
        return as_outcomes(values, f"{path}: 'correct'")
    return np.array(values, dtype=object if field == "label" else float)


def pass_at_1_interval(correct, level: float = LEVEL, n_resamples: int = 10_000, seed: int = 0) -> Interval:
    """pass@1 (mean accuracy) with a percentile bootstrap interval over problems (`dra.stats.bootstrap_interval`).

    `correct`: (problems, samples) booleans or 0/1, or one outcome per problem; at least 2 problems.
    `level` is a probability in (0, 1) (0.95, not 95).
    """
    if isinstance(correct, (list, tuple, np.ndarray)) and len(correct) and np.isscalar(correct[0]):
        correct = [[value] for value in correct]  # one outcome per problem
    per_problem = as_outcomes(correct, "correct").mean(axis=1)
    if len(per_problem) < 2:
        raise ValueError("a bootstrap interval needs at least 2 problems.")
    return bootstrap_interval(per_problem, np.mean, level, n_resamples=n_resamples, seed=seed)


def pass_at_k_summary(correct, ks: Sequence[int] = (1, 2, 4, 8, 16), seed: int = 0) -> dict[str, Any]:
    """pass@1 with its interval, and unbiased pass@k for each k in `ks` up to the number of samples.

    A k above the number of samples is left out (so the default list fits any n); a k below 1 raises.
    """
    correct = as_outcomes(correct, "correct")
    ks = [checks.integer(k, "k in ks", minimum=1) for k in checks.items(ks, "ks", "integers")]
    pass_at_1 = pass_at_1_interval(correct, seed=seed)
    out: dict[str, Any] = {"problems": int(correct.shape[0]), "samples": int(correct.shape[1]),
                           "pass@1": pass_at_1.estimate, "pass@1_ci_low": pass_at_1.low,
                           "pass@1_ci_high": pass_at_1.high}
    for k in ks:
        if 1 < k <= correct.shape[1]:
            out[f"pass@{k}"] = mean_pass_at_k(correct, k)
    return out
