"""Every cache key and every input of a cached artefact, per profile, as one JSON-able mapping.

Results of the pre-registered mini experiment are found by these keys (base policy, training runs, results
files, evaluation files, study embeddings), so a refactoring must leave each of them byte-identical.
`tests/fixtures/cache_keys.json` holds them as this file computed them at commit 685f54c (before profiles,
tasks and run configuration got one home each); `tests/test_cache_keys.py` recomputes them with the current
API and compares. Regenerate the fixture only for a change that *means* to move a key, and say so:

    HF_HUB_OFFLINE=1 DRA_RUNS_DIR=/RUNS python -m tests.cache_keys > tests/fixtures/cache_keys.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dra import evaluate, experiment, mini, policy, recipes, study
from dra.config import runs_dir
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


def evaluation_identity(profile: str, arm: str, seed: int, split: str, tkey: str) -> dict[str, Any]:
    """What `dra.evaluate` compares before resuming an evaluation file of one run, and where that file lives."""
    settings = evaluate.PROFILE_SETTINGS[profile]
    model_dir = runs_dir() / profile / arm / f"seed{seed}-{tkey}"
    identity = {"model": relative_to_runs(model_dir), "benchmark": f"mini_{split}", "profile": profile,
                "settings": dataclasses.asdict(settings), "sampling": evaluate.SAMPLING}
    file = runs_dir() / "evals" / profile / f"{arm}_seed{seed}_{tkey}_{split}.json"
    return {"identity_key": config_key(identity), "file": relative_to_runs(file)}


def run_keys(profile: str, arm: str, seed: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    eval_prompts = experiment.EXPERIMENT_PROFILES[profile]["eval_prompts"]
    mapping = experiment.arm_recipe(profile, arm, seed, overrides)
    tkey = experiment.train_key(profile, mapping)
    return {
        "recipe": digest(mapping),
        "train_key": tkey,
        "result_keys": {split: experiment.result_key(tkey, split, eval_prompts, profile) for split in SPLITS},
        "evaluations": {split: evaluation_identity(profile, arm, seed, split, tkey) for split in SPLITS},
    }


class _NamedEmbedder:
    """A stand-in embedder with an identity: the study's embedding cache is keyed by identity and texts."""

    def identity(self) -> dict[str, Any]:
        return {"backend": "stand-in", "name": "cache-key-check"}

    def encode(self, texts):
        return np.ones((len(texts), 2), dtype=np.float32)


def study_embedding_key(texts: list[list[str]]) -> str:
    """The file name `study.embed_groups` caches these texts' vectors under."""
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("DRA_CACHE_DIR")
        os.environ["DRA_CACHE_DIR"] = cache
        try:
            study.embed_groups(texts, _NamedEmbedder())
            (made,) = (Path(cache) / "embeddings").glob("*.npy")
        finally:
            if previous is None:
                os.environ.pop("DRA_CACHE_DIR")
            else:
                os.environ["DRA_CACHE_DIR"] = previous
    return made.stem


def mini_profile_keys(profile: str) -> dict[str, Any]:
    config = policy.policy_config(profile)
    splits = config.splits()
    eval_prompts = experiment.EXPERIMENT_PROFILES[profile]["eval_prompts"]
    study_settings = study.STUDY_PROFILES[profile]
    study_prompts = mini.prompt_records(splits.test[: study_settings["mini_prompts"]], config.system_prompt)
    return {
        "policy_key": config.key(),
        "policy_config": config.as_dict(),
        "base_result_keys": {split: experiment.result_key(f"base-{config.key()}", split, eval_prompts, profile)
                             for split in SPLITS},
        "evaluation_items": {split: digest(evaluate.mini_items(profile, limit=eval_prompts, split=split))
                             for split in SPLITS},
        "rl_records": digest(mini.prompt_records(splits.rl, config.system_prompt)),
        "study_prompts": digest(study_prompts),
        "experiment": {"seeds": list(experiment.EXPERIMENT_PROFILES[profile]["seeds"]), "eval_prompts": eval_prompts},
        "runs": {f"{arm}/seed{seed}": run_keys(profile, arm, seed) for arm in recipes.arms(profile) for seed in SEEDS},
        "sweep": {"name": f"grpo_{experiment.override_tag(SWEEP)}_seed0", **run_keys(profile, "grpo", 0, SWEEP)},
    }


def all_keys() -> dict[str, Any]:
    return {
        "profiles": {profile: mini_profile_keys(profile) for profile in MINI_PROFILES},
        "evaluation_settings": {p: dataclasses.asdict(s) for p, s in evaluate.PROFILE_SETTINGS.items()},
        "study_settings": study.STUDY_PROFILES,
        "study_embedding_key": study_embedding_key([["a", "bb", "ccc"], ["dd", "e", "f"]]),
        "paper_recipes": {arm: digest(recipes.recipe("paper", arm)) for arm in recipes.arms("paper")},
        # Values scripts and notebooks read per profile (notebook 02's kernel benchmark, the base policy script).
        "kernel_benchmark_repeats": {"smoke": [5, 1], "mini": [50, 3], "paper": [200, 3]},
        "base_policy_prompts": {"smoke": 24, "mini": 3000},
        # The committed results of world version 2's sweep still load, with the keys they were written with.
        "committed_results": [[r["arm"], r["seed"], r["key"]] for r in experiment.load_results("world_v2", "validation")],
    }


if __name__ == "__main__":
    if os.environ.get("DRA_RUNS_DIR") != "/RUNS":
        sys.exit("set DRA_RUNS_DIR=/RUNS: paths are recorded relative to it")
    json.dump(all_keys(), sys.stdout, indent=1, sort_keys=True)
    print()
