"""Every cache key and every input of a cached artefact, per profile, as one JSON-able mapping.

Results of the pre-registered mini experiment are found by these keys (base policy, training runs, results
files, evaluation files, study embeddings), so a refactoring must leave each of them byte-identical.
`tests/fixtures/cache_keys.json` holds them as computed at commit 685f54c, before profiles, tasks and run
configuration got one home each, by this file written against that commit's API (the same stubs around its
own run_arm and run_base); `tests/test_cache_keys.py` recomputes them with the current API and compares. Regenerate the fixture only for a change that *means* to move a key, and say so:

    HF_HUB_OFFLINE=1 DRA_RUNS_DIR=/RUNS python tests/cache_keys.py > tests/fixtures/cache_keys.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import numpy as np

from dra import evaluate, experiment, policy, profiles, recipes, study
from dra.config import PROJECT_ROOT, runs_dir
from dra.io import config_key

MINI_PROFILES = ("smoke", "mini")
SEEDS = (0, 1, 2)
SPLITS = ("test", "validation")
SWEEP = {"learning_rate": 3e-5}  # the sweep's override (README): its runs are keyed with it


def digest(value: Any) -> str:
    """A stable hash of a JSON-able value (prompts, records): equal inputs, equal digest."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def relative_to_runs(path: Path) -> str:
    return str(Path(path).relative_to(runs_dir()))


class _Captured(Exception):
    """Stops an evaluation at its call to `dra.evaluate.evaluate`, carrying the arguments it was given."""


def _capture_evaluation(model: Any, items: list[dict[str, Any]], **options: Any) -> None:
    raise _Captured(model, items, options)


def evaluation_identity(start_evaluation: Callable[[], Any]) -> dict[str, Any]:
    """What `dra.evaluate` compares before resuming the evaluation file that `start_evaluation` (the experiment's
    own code path, trained models and results files stubbed out) writes, where that file lives, and its items."""
    with tempfile.TemporaryDirectory() as results, \
            mock.patch.dict(os.environ, {"DRA_RESULTS_DIR": results}), \
            mock.patch.object(experiment, "train_run", lambda run, label=None: run.directory), \
            mock.patch.object(experiment.policy, "base_policy", lambda config: policy.run_dir(config) / "model"), \
            mock.patch.object(experiment.evaluate, "evaluate", _capture_evaluation):
        try:
            start_evaluation()
        except _Captured as captured:
            model, items, options = captured.args
        else:
            raise AssertionError("the experiment did not start an evaluation")
    identity = {"model": relative_to_runs(model), "benchmark": options["benchmark"], "profile": options["profile"],
                "settings": dataclasses.asdict(options["settings"]), "sampling": evaluate.SAMPLING}
    return {"identity_key": config_key(identity), "file": relative_to_runs(options["path"]), "items": digest(items)}


def run_keys(profile: str, arm: str, seed: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    eval_prompts = profiles.get(profile).mini_experiment().eval_prompts
    run = experiment.Run.of(profile, arm, seed, overrides)
    tkey = run.key
    assert run.directory == runs_dir() / profile / arm / f"seed{seed}-{tkey}"
    return {
        "recipe": digest(run.recipe),
        "train_key": tkey,
        "result_keys": {split: experiment.result_key(tkey, split, eval_prompts, profile) for split in SPLITS},
        "evaluations": {split: evaluation_identity(lambda split=split: experiment.run_arm(run, eval_prompts, split))
                        for split in SPLITS},
    }


class _NamedEmbedder:
    """A stand-in embedder with an identity: the study's embedding cache is keyed by identity and texts."""

    def identity(self) -> dict[str, Any]:
        return {"backend": "stand-in", "name": "cache-key-check"}

    def encode(self, texts):
        return np.ones((len(texts), 2), dtype=np.float32)


def study_embedding_key(texts: list[list[str]]) -> str:
    """The file name `study.embed_groups` caches these texts' vectors under."""
    with tempfile.TemporaryDirectory() as cache, mock.patch.dict(os.environ, {"DRA_CACHE_DIR": cache}):
        study.embed_groups(texts, _NamedEmbedder())
        (made,) = (Path(cache) / "embeddings").glob("*.npy")
    return made.stem


def mini_profile_keys(profile: str) -> dict[str, Any]:
    chosen = profiles.get(profile)
    config = chosen.mini_policy()
    task = config.task
    eval_prompts = chosen.mini_experiment().eval_prompts
    study_prompts = task.records(task.splits().test[: chosen.study.mini_prompts])
    return {
        "policy_key": config.key(),
        "policy_config": config.as_dict(),
        "base_result_keys": {split: experiment.result_key(experiment.base_model_key(profile), split, eval_prompts,
                                                          profile) for split in SPLITS},
        "evaluation_items": {split: digest(task.evaluation_items(split, eval_prompts)) for split in SPLITS},
        "base_evaluations": {split: evaluation_identity(lambda split=split: experiment.run_base(profile, eval_prompts,
                                                                                                 split))
                             for split in SPLITS},
        "rl_records": digest(task.training_records()),
        "study_prompts": digest(study_prompts),
        "experiment": {"seeds": list(chosen.mini_experiment().seeds), "eval_prompts": eval_prompts},
        "runs": {f"{arm}/seed{seed}": run_keys(profile, arm, seed) for arm in recipes.arms(profile) for seed in SEEDS},
        "sweep": {"name": experiment.Run.of(profile, "grpo", 0, SWEEP).results_name,
                  **run_keys(profile, "grpo", 0, SWEEP)},
    }


def all_keys() -> dict[str, Any]:
    return {
        "profiles": {profile: mini_profile_keys(profile) for profile in MINI_PROFILES},
        "evaluation_settings": {name: dataclasses.asdict(p.evaluation) for name, p in profiles.PROFILES.items()},
        "study_settings": {name: p.study.as_dict() for name, p in profiles.PROFILES.items()},
        "study_embedding_key": study_embedding_key([["a", "bb", "ccc"], ["dd", "e", "f"]]),
        "paper_recipes": {arm: digest(recipes.recipe("paper", arm)) for arm in recipes.arms("paper")},
        # Values scripts and notebooks read per profile (notebook 02's kernel benchmark, the base policy script).
        "kernel_benchmark_repeats": {name: [p.benchmarks.kernel_repeats, p.benchmarks.kernel_loop_repeats]
                                     for name, p in profiles.PROFILES.items()},
        "base_policy_prompts": {name: p.benchmarks.base_policy_prompts for name, p in profiles.PROFILES.items()
                                if p.benchmarks.base_policy_prompts is not None},
        "committed_results": committed_results(),
    }


def committed_results() -> list[list[Any]]:
    """(arm, seed, key) of the committed results of world version 2's sweep: they still load, with the keys
    they were written with (read from the repository's data/, wherever $DRA_RESULTS_DIR points)."""
    with mock.patch.dict(os.environ, {"DRA_RESULTS_DIR": str(PROJECT_ROOT / "data")}):
        return [[r["arm"], r["seed"], r["key"]] for r in experiment.load_results("world_v2", "validation")]


if __name__ == "__main__":
    if os.environ.get("DRA_RUNS_DIR") != "/RUNS":
        sys.exit("set DRA_RUNS_DIR=/RUNS: paths are recorded relative to it")
    json.dump(all_keys(), sys.stdout, indent=1, sort_keys=True)
    print()
