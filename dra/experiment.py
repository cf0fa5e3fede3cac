"""The mini-world training experiment: the paper's four arms and the controls x seeds, trained and evaluated alike.

Each (arm, seed) is a `Run`: trained with `dra.train` from the recipe mapping of the profile
(`dra.recipes.recipe`, the same table the YAML files are written from; no file is read), resuming an
interrupted run, then evaluated on a split of the mini world's task (`dra.tasks.MiniTask`: one ordering per
factor pair, n samples per prompt at the profile's `EvalSettings`, graded by the real grader, each sample's
strategy parsed) with `dra.evaluate`. The base policy is evaluated the same way as the step-0 reference.

Every artefact is identified by the configuration that made it (issue: nothing stale may be reused):

- a training run lives in ``runs/<profile>/<arm>/seed<seed>-<train_key>/``, where the key hashes the full
  recipe (with the seed and any override), the base policy's key and `EXPERIMENT_FORMAT`; a run counts as
  finished only when its ``training_done.json`` names that key;
- its evaluation file is named by the run's key and the split, and `dra.evaluate` refuses to mix settings;
- the results file ``data/mini_training/<profile>/[<split>/]<name>.json`` holds the key of everything above
  and is recomputed when any of it changes.

The primary comparisons, their statistics and the power rule are pre-registered in
docs/preregistration_mini_v2.md; `compare_arms` (`dra.stats.paired_t_test`) and `dra.stats.holm` implement that
analysis, and `dra.stats.seeds_for_power` its power rule.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
import yaml

from dra import evaluate, metrics, mini, policy, profiles, recipes
from dra.config import results_dir, runs_dir
from dra.io import (config_key, folder_in_use, folder_lock, hardware, hardware_summary, read_json, read_jsonl,
                    to_json, write_json)
from dra.profiles import Profile
from dra.reports import MERGED, load_result, save_result
from dra.stats import LEVEL, Interval, PairedTest, holm, paired_t_test, seeds_for_power, t_interval
from dra.threads import result_threads

EXPERIMENT_FORMAT = 2  # 2: world version 2, config-keyed run folders, distinct-pair evaluation
PRIMARY_ARMS: tuple[str, ...] = tuple(recipes.ARMS)
ARM_LABELS = {"base": "base", "grpo": "GRPO", "dr_grpo": "Dr. GRPO", "dra_grpo": "DRA-GRPO",
              "dra_dr_grpo": "DRA-Dr. GRPO", "dra_dr_grpo_meannorm": "DRA-Dr. GRPO, mean-normalised",
              "dr_grpo_scale": "Dr. GRPO x group-mean weight", "dra_grpo_shuffled": "DRA-GRPO, shuffled weights",
              "grpo_entropy": "GRPO + entropy bonus", "dra_grpo_oracle": "DRA-GRPO, oracle partition",
              "dra_grpo_policy_embed": "DRA-GRPO, policy embedder",
              "grpo_paper_reward": "GRPO, paper reward", "dra_grpo_paper_reward": "DRA-GRPO, paper reward"}
# The pre-registered primary comparisons: (arm, baseline).
PRIMARY_COMPARISONS: tuple[tuple[str, str], ...] = (("dra_grpo", "grpo"), ("dra_dr_grpo", "dr_grpo"))
CURVE_KEYS = ("raw_reward", "reward", "mini/accuracy", "mini/home_share", "completions/mean_length",
              "mini/strategy_entropy", "mini/dominant_share", "dra/weight_mean", "dra/weight_std",
              "dra/group_similarity", "dra/embed_seconds", "groups/zero_variance_share",
              "groups/zero_variance_abs_advantage", "groups/abs_advantage", "step_time", "kl", "entropy")
PASS_AT_K = tuple(range(1, 17))

# The profiles with a mini experiment (the paper profile trains a real model; its arms run outside this module).
EXPERIMENT_PROFILES: tuple[str, ...] = tuple(name for name, p in profiles.PROFILES.items() if p.experiment)


def results_file(profile: str, name: str, split: str = "test") -> Path:
    folder = results_dir() / "mini_training" / profile
    return (folder if split == "test" else folder / split) / f"{name}.json"


def _cached(path: Path, key: str) -> dict[str, Any] | None:
    if path.exists():
        saved = load_result(path=path)
        if saved.get("key") == key:
            return saved
    return None


def _save(path: Path, result: dict[str, Any], profile: str, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """Write a run's results file (MERGED: its "key" is read at the top level by `_cached`) and return what
    it holds, read back, so a first run returns the same values as a cached one (a NaN reads back as None)."""
    save_result(path.stem, result, profile, seed, path=path, layout=MERGED, **extra)
    return load_result(path=path)


def evaluation_summary(eval_path: Path) -> dict[str, Any]:
    """pass@1 (with CI), pass@k for k = 1..16 and the mini-world metrics of one evaluation file, including
    the routing readouts of `metrics.home_metrics` (home share, accuracy at and off home, per home type, the
    routing ceiling)."""
    saved = load_result(path=eval_path, keys=("problems",), what="evaluation file")["problems"]
    problems = [mini.Problem(*map(int, pid.split("x"))) for pid in saved]
    correct = evaluate.load_outcomes(eval_path)
    labels = evaluate.load_outcomes(eval_path, "label")
    strategies = [[label["strategy"] for label in row] for row in labels]
    flat = [s for row in strategies for s in row]
    dominant, share = metrics.dominant_strategy(flat)
    return {
        **evaluate.pass_at_k_summary(correct, ks=PASS_AT_K),
        "strategy_entropy": metrics.strategy_entropy(flat),
        "dominant_strategy": dominant,
        "dominant_share": share,
        "strategy_shares": metrics.strategy_shares(flat, include_unknown=True),
        "distinct_correct_strategies": float(metrics.distinct_correct_strategies(strategies, correct).mean()),
        **metrics.home_metrics([p.home_strategy for p in problems], strategies, correct, mini.STRATEGIES),
        "format_rate": float(np.mean([label["format"] for row in labels for label in row])),
        "mean_length_chars": float(evaluate.load_outcomes(eval_path, "length").mean()),
    }


def _evaluate_model(model_dir: Path, label: str, profile: Profile, eval_prompts: int, split: str,
                    progress_label: str | None = None) -> dict[str, Any]:
    task = profile.mini_policy().task
    path = runs_dir() / "evals" / profile.name / f"{label}_{split}.json"
    evaluate.evaluate(str(model_dir), task.evaluation_items(split, eval_prompts), benchmark=f"mini_{split}",
                      profile=profile.name, settings=profile.evaluation, path=path, annotate=task.label,
                      progress_label=f"evaluating {progress_label or label} on {split}")
    return evaluation_summary(path)


def training_curve(run_dir: Path) -> list[dict[str, Any]]:
    lines = read_jsonl(run_dir / "metrics.jsonl", objects=True)
    return [{"step": line["step"], **{k: line[k] for k in CURVE_KEYS if k in line}} for line in lines if "loss" in line]


def arm_recipe(profile: str | Profile, arm: str, seed: int, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full recipe mapping of one run: the profile's recipe of `arm`, the seed, then `overrides`."""
    mapping = {**recipes.recipe(profile, arm), "seed": seed, **(overrides or {})}
    mapping.pop("output_dir")
    return mapping


def train_key(profile: str | Profile, mapping: dict[str, Any]) -> str:
    """A training run's identity: its full recipe mapping and the base policy it starts from."""
    return config_key({"format": EXPERIMENT_FORMAT, "recipe": mapping,
                       "base_policy": profiles.get(profile).mini_policy().key()})


def base_model_key(profile: str | Profile) -> str:
    """What made the base policy, in the form `result_key` takes for a trained run's key."""
    return f"base-{profiles.get(profile).mini_policy().key()}"


def run_label(arm: str, seed: int, position: tuple[int, int] | None = None) -> str:
    """What the progress bars call a run: "DRA-GRPO seed 1", with "run 5/24" when it is part of a grid."""
    label = f"{ARM_LABELS.get(arm, arm)} seed {seed}"
    return f"{label}, run {position[0]}/{position[1]}" if position else label


@dataclass(frozen=True)
class Run:
    """One training run of the grid: `arm` of the profile's recipes at `seed`, with recipe `overrides` (e.g. a
    sweep's learning rate). Its recipe mapping and key are computed once, here."""

    profile: Profile
    arm: str
    seed: int
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, profile: str | Profile, arm: str, seed: int, overrides: Mapping[str, Any] | None = None) -> Run:
        return cls(profiles.get(profile), arm, seed, dict(overrides or {}))

    @cached_property
    def recipe(self) -> dict[str, Any]:
        return arm_recipe(self.profile, self.arm, self.seed, self.overrides)

    @cached_property
    def key(self) -> str:
        return train_key(self.profile, self.recipe)

    @property
    def directory(self) -> Path:
        """runs/<profile>/<arm>/seed<seed>-<key>: a changed configuration trains into a new folder."""
        return runs_dir() / self.profile.name / self.arm / f"seed{self.seed}-{self.key}"

    @property
    def results_name(self) -> str:
        """The results file's name: <arm>_seed<seed>, with the overrides' tag when there are any."""
        if self.overrides:
            return f"{self.arm}_{override_tag(self.overrides)}_seed{self.seed}"
        return f"{self.arm}_seed{self.seed}"


def train_run(run: Run, progress_label: str | None = None) -> Path:
    """Train `run`, or resume it, or return its folder when it was finished by the same configuration."""
    from dra import train  # TRL: imported only when a run trains

    done = run.directory / "training_done.json"
    if done.exists() and read_json(done, what="training marker").get("key") == run.key:
        return run.directory
    train.train(train.run_config({**run.recipe, "output_dir": str(run.directory)}),
                progress_label=progress_label or run_label(run.arm, run.seed))
    write_json(done, {"key": run.key, "recipe": run.recipe})
    return run.directory


def run_arm(run: Run, eval_prompts: int, split: str = "test", progress_label: str | None = None) -> dict[str, Any]:
    """Train (or resume, or reuse) one run, evaluate it on `split`, and write its results file; the progress
    bars say `progress_label` (default: `run_label`)."""
    key = result_key(run.key, split, eval_prompts, run.profile)
    out = results_file(run.profile.name, run.results_name, split)
    if (saved := _cached(out, key)) is not None:
        return saved
    progress_label = progress_label or run_label(run.arm, run.seed)
    with _exclusive(run), result_threads():  # the thread count changes the numbers; its key cannot see it
        check_base_policy(run.profile)
        run_dir = train_run(run, progress_label)
        result = {
            "key": key, "arm": run.arm, "seed": run.seed, "split": split, "overrides": dict(run.overrides),
            "evaluation": _evaluate_model(run_dir, f"{run.arm}_seed{run.seed}_{run.key}", run.profile,
                                          eval_prompts, split, progress_label),
            "curve": training_curve(run_dir),
        }
        return _save(out, result, run.profile.name, run.seed, recipe=run.recipe, train_key=run.key,
                     base_policy=run.profile.mini_policy().key())


def _in_use(run: Run) -> bool:
    """Whether another process holds the run (`_exclusive`)."""
    return folder_in_use(run.directory)


def _exclusive(run: Run) -> AbstractContextManager[None]:
    """Hold the run's folder lock (`dra.io.folder_lock`) while this process trains and evaluates it, so that a
    second process given the same run (two terminals, a notebook beside --workers) stops with a clear error
    (`FolderInUse`, a RuntimeError) instead of writing the same checkpoints."""
    return folder_lock(run.directory, busy=f"{run_label(run.arm, run.seed)} is being trained or evaluated by "
                                           f"another process ({run.directory}); let it finish, or stop it, then "
                                           "run this again.")


def run_base(profile: str | Profile, eval_prompts: int, split: str = "test") -> dict[str, Any]:
    """Evaluate the SFT base policy (the step-0 reference of every arm)."""
    profile = profiles.get(profile)
    config = profile.mini_policy()
    key = result_key(base_model_key(profile), split, eval_prompts, profile)
    out = results_file(profile.name, "base", split)
    if (saved := _cached(out, key)) is not None:
        return saved
    model_dir = policy.base_policy(config)
    with result_threads():  # as run_arm's evaluations; its provenance records the count it ran on
        result = {"key": key, "arm": "base", "seed": None, "split": split,
                  "evaluation": _evaluate_model(model_dir, f"base_{config.key()}", profile, eval_prompts, split,
                                                "the base policy")}
        return _save(out, result, profile.name, base_policy=config.key())


class BasePolicyMismatch(RuntimeError):
    """The base policy this checkout trained is not the one the stored runs of its profile started from."""


def check_base_policy(profile: str | Profile) -> None:
    """Refuse to train runs from a base policy other than the one the stored runs started from.

    The base policy lives in runs/ (never committed): a fresh checkout retrains it, and its cache key sees the
    configuration, not the CPU. The CPU changes the numbers: float32 matrix products round differently with
    other kernels (AVX2 against AVX-512), and TRL's SFT autocasts to bfloat16, emulated where the CPU has no
    native bfloat16. A base policy retrained elsewhere can therefore be a different model, and runs trained
    from it would be paired with runs that started from another. So, when a base evaluation of the profile is
    stored (results_file "base", test split, current key), the local base policy is evaluated too (once: the
    evaluation file in runs/evals is reused) and must give the same numbers, every one of them exactly;
    otherwise `BasePolicyMismatch` says what differs and on which machines. Without a stored base evaluation
    there is nothing to match: `run_base` makes one from this model."""
    profile = profiles.get(profile)
    settings, config = profile.mini_experiment(), profile.mini_policy()
    stored_path = results_file(profile.name, "base", "test")
    stored = _cached(stored_path, result_key(base_model_key(profile), "test", settings.eval_prompts, profile))
    model_dir = policy.base_policy(config)
    if stored is None:
        return
    with result_threads():  # as run_base evaluated it
        here = _evaluate_model(model_dir, f"base_{config.key()}", profile, settings.eval_prompts, "test",
                               "the base policy (does it reproduce the stored one?)")
        machine = hardware()
    here = json.loads(to_json(here))  # as the stored result reads back (NaN as None)
    differ = [name for name in stored["evaluation"] if stored["evaluation"][name] != here.get(name)]
    if differ:
        raise BasePolicyMismatch(
            f"The base policy trained here ({model_dir}) is not the one the stored results of profile "
            f"{profile.name!r} started from: {len(differ)} of {len(stored['evaluation'])} numbers of its test "
            f"evaluation differ from {stored_path} (pass@1 {here.get('pass@1')} here, "
            f"{stored['evaluation'].get('pass@1')} stored). Runs trained from it would not be paired with the "
            f"stored runs. The CPU is the usual cause (this machine: {hardware_summary(machine)}; the stored "
            f"evaluation's: {hardware_summary(stored.get('hardware', {}))}). Train on a machine of the stored "
            "kind, or point DRA_RESULTS_DIR at an empty folder to start results of this machine's own.")


def run_experiment(profile: str | Profile, arms: Sequence[str] = PRIMARY_ARMS, seeds: Sequence[int] | None = None,
                   base: bool = True, split: str = "test", overrides: Mapping[str, Any] | None = None,
                   report: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The base evaluation and every (arm, seed) on `split` (with recipe `overrides`, e.g. a sweep's learning
    rate), each read back from its results file when it is current; `report` is called with each result.
    Without `seeds` on the test split, then also the seeds the power rule adds to these arms once it has
    applied (`collect`'s missing runs, read from every current results file, so runs made by other processes
    count)."""
    profile = profiles.get(profile)
    settings = profile.mini_experiment()
    results = [run_base(profile, settings.eval_prompts, split)] if base else []
    arm_seeds = _arm_seeds(settings, arms, seeds)
    order = list(seeds) if seeds is not None else sorted({seed for chosen in arm_seeds.values() for seed in chosen})

    def run_all(runs: Sequence[tuple[str, int]]) -> None:
        for position, (arm, seed) in enumerate(runs, start=1):
            run = Run.of(profile, arm, seed, overrides)
            results.append(run_arm(run, settings.eval_prompts, split, run_label(arm, seed, (position, len(runs)))))
            if report is not None:
                report(results[-1])

    grid = [(arm, seed) for seed in order for arm in arms if seed in arm_seeds[arm]]
    run_all(grid)
    if seeds is None and split == "test":  # the grid is in: now the seeds the power rule added, if any
        run_all([run for run in collect(profile, arms, train_missing=False, overrides=overrides)[1] if run not in grid])
    return results


def collect(profile: str | Profile, arms: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
            train_missing: bool = True, overrides: Mapping[str, Any] | None = None,
            ) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """(results, missing): the base evaluation and every (arm, seed) with recipe `overrides` (a grid's, e.g. a
    longer horizon) on the test split. With `train_missing` each missing or stale run is trained and evaluated;
    without it only current results files are read, and the (arm, seed) pairs without one are returned as
    `missing` (so a notebook can show a partial grid without starting hours of training). A results file counts
    only when its key is the one these overrides make, so runs of other grids in the same folder never enter.
    Without `seeds`, each arm's are the profile's, plus the seeds the power rule adds to the primary arms
    (`extension_seeds`) once it has applied; `missing` is in the pre-registered order (`run_order`)."""
    profile = profiles.get(profile)
    settings = profile.mini_experiment()
    arms = recipes.arms(profile) if arms is None else arms
    if train_missing:
        return run_experiment(profile, arms, seeds, overrides=overrides), []

    def current_key(r: dict[str, Any]) -> str:
        made_by = (base_model_key(profile) if r["arm"] == "base"
                   else Run.of(profile, r["arm"], r["seed"], overrides).key)
        return result_key(made_by, "test", settings.eval_prompts, profile)

    found = {(r["arm"], r["seed"]): r for r in load_results(profile.name)
             if r["arm"] in ("base", *arms) and r.get("key") == current_key(r)}

    def chosen(wanted: dict[str, tuple[int, ...]]) -> list[dict[str, Any]]:
        return [r for (arm, seed), r in found.items() if arm == "base" or seed in wanted[arm]]

    wanted = _arm_seeds(settings, arms, seeds)
    if seeds is None:
        wanted = _arm_seeds(settings, arms, None, extension_seeds(settings, chosen(wanted)))
    missing = [(arm, seed) for arm, arm_seeds in wanted.items() for seed in arm_seeds if (arm, seed) not in found]
    return chosen(wanted), run_order(missing)


def _arm_seeds(settings: profiles.ExperimentSettings, arms: Sequence[str], seeds: Sequence[int] | None,
               extension: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, tuple[int, ...]]:
    """Each arm's seeds: `seeds` for every arm when given, else the profile's (`ExperimentSettings.seeds_of`)
    followed by the arm's `extension` seeds."""
    extension = extension or {}
    return {arm: tuple(seeds) if seeds is not None else settings.seeds_of(arm) + extension.get(arm, ())
            for arm in arms}


def run_order(runs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """(arm, seed) runs in the pre-registered order: the primary arms seed by seed (the power rule's seeds
    included), then the arms of the other claims (the verdict controls) seed by seed, then the rest."""
    verdict_arms = {arm for pair in CLAIM_PAIRS for arm in pair}
    arm_order = list(ARM_LABELS)

    def position(run: tuple[str, int]) -> tuple[int, int, int]:
        arm, seed = run
        group = 0 if arm in PRIMARY_ARMS else 1 if arm in verdict_arms else 2
        return group, seed, arm_order.index(arm) if arm in arm_order else len(arm_order)

    return sorted(runs, key=position)


def result_key(made_by: str, split: str, eval_prompts: int, profile: str | Profile) -> str:
    """The identity of a results file: what made the model (a run's training key, or `base_model_key`) and
    everything about its evaluation."""
    return config_key({"format": EXPERIMENT_FORMAT, "model": made_by, "split": split, "eval_prompts": eval_prompts,
                       "eval": profiles.get(profile).evaluation.__dict__, "sampling": evaluate.SAMPLING})


def load_results(profile: str, split: str = "test") -> list[dict[str, Any]]:
    """Every results file of `profile` on `split` made by the current experiment format."""
    folder = results_file(profile, "x", split).parent
    found = [load_result(path=p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return [r for r in found if r.get("split", "test") == split and "evaluation" in r]


METRICS = ("pass@1", "pass@16", "home_share", "strategy_entropy", "dominant_share", "distinct_correct_strategies",
           "routing_ceiling", "format_rate")


def arm_table(results: Sequence[dict[str, Any]], metrics_: Sequence[str] = METRICS) -> pd.DataFrame:
    """Arm x metric: mean over seeds and the half-width of its 95% t-interval (`dra.stats.t_interval`) in the
    column "<metric> ±", and the number of seeds."""
    rows = []
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_arm.setdefault(r["arm"], []).append(r["evaluation"])
    for arm, evals in by_arm.items():
        row: dict[str, Any] = {"arm": ARM_LABELS.get(arm, arm), "seeds": len(evals)}
        for m in metrics_:
            values = np.array([e[m] for e in evals if m in e], dtype=float)
            if len(values) == 0:
                continue
            # A value a seed could not compute (null in its file) leaves the arm's mean undefined.
            interval = (t_interval(values) if np.isfinite(values).all()
                        else Interval(np.nan, np.nan, np.nan, LEVEL, "t", len(values)))
            row[m], row[f"{m} ±"] = interval.estimate, interval.half_width
        rows.append(row)
    present = {r["arm"] for r in rows}
    return pd.DataFrame(rows).set_index("arm").reindex([label for label in ARM_LABELS.values() if label in present])


def metric_value(evaluation: dict[str, Any], metric: str) -> Any:
    """`evaluation[metric]`, where "<key>/<name>" reads one entry of a nested table (for example
    "accuracy_by_home_type/plus_one"); None when the evaluation has no such value."""
    key, _, name = metric.partition("/")
    value = evaluation.get(key)
    if name:
        return value.get(name) if isinstance(value, dict) else None
    return value


def _paired(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(arm values, baseline values) of `metric` (see `metric_value`) on the seeds both have, in seed order."""
    values = {(r["arm"], r["seed"]): metric_value(r["evaluation"], metric) for r in results
              if r["arm"] in (arm, baseline)}
    by = {key: value for key, value in values.items() if value is not None}
    seeds = sorted({s for (a, s) in by if a == arm} & {s for (a, s) in by if a == baseline})
    return (np.array([by[(arm, s)] for s in seeds], dtype=float),
            np.array([by[(baseline, s)] for s in seeds], dtype=float))


def compare_arms(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str = "pass@1") -> PairedTest:
    """The pre-registered paired test: `arm` against `baseline` on `metric`, seed by seed on the seeds both
    have (`dra.stats.paired_t_test`: the mean difference with its 95% t-interval, the two-sided paired
    t-test's p-value and the SD of the differences)."""
    return paired_t_test(*_paired(results, arm, baseline, metric))


def difference_columns(test: PairedTest) -> dict[str, float]:
    """A paired comparison as table columns: mean, low, high (the 95% t-interval), seeds, p_value, sd."""
    d = test.difference
    return {"mean": d.estimate, "low": d.low, "high": d.high, "seeds": d.n, "p_value": test.p_value, "sd": test.sd}


def verdict(difference: Interval) -> str:
    """How to read a paired difference: its interval above 0, below 0, around 0, or not computable."""
    if difference.n < 2 or not difference.defined:
        return "too few seeds"
    if difference.low > 0:
        return "higher"
    if difference.high < 0:
        return "lower"
    return "no clear difference"


# (claim, arm, baseline, metric) as pre-registered in docs/preregistration_mini_v2.md.
CLAIMS: tuple[tuple[str, str, str, str], ...] = (
    ("DRA keeps diversity", "dra_grpo", "grpo", "strategy_entropy"),
    ("DRA keeps diversity", "dra_dr_grpo", "dr_grpo", "strategy_entropy"),
    ("DRA raises pass@1", "dra_grpo", "grpo", "pass@1"),
    ("DRA raises pass@1", "dra_dr_grpo", "dr_grpo", "pass@1"),
    ("DRA raises pass@k", "dra_grpo", "grpo", "pass@16"),
    ("DRA raises pass@k", "dra_dr_grpo", "dr_grpo", "pass@16"),
    ("more than a step-size change", "dra_dr_grpo", "dr_grpo_scale", "pass@1"),
    ("more than a step-size change", "dra_dr_grpo_meannorm", "dr_grpo", "pass@1"),
    ("the gain comes from redundancy", "dra_grpo", "dra_grpo_shuffled", "pass@1"),
)
# Each (arm, baseline) the claims compare, once, in the claims' order.
CLAIM_PAIRS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((arm, baseline) for _, arm, baseline, _ in CLAIMS))
PRIMARY_CLAIM = "DRA raises pass@1"  # the claim whose two comparisons share the Holm adjustment
# The pre-registration computes no verdict before both arms of a comparison have this many seeds (Deviation 4).
VERDICT_MIN_SEEDS = 8


def comparison_label(arm: str, baseline: str) -> str:
    """How tables and figures name a paired comparison: "DRA-GRPO - GRPO"."""
    return f"{ARM_LABELS[arm]} - {ARM_LABELS[baseline]}"


# Exploratory comparisons outside the pre-registered claims: described with intervals, never given a verdict.
# The arms the pre-registration runs without a verdict rule: the oracle partition (DRA with perfect embeddings)
# against DRA-GRPO and GRPO, the entropy bonus against GRPO, the policy embedder (issue 16) against DRA-GRPO with
# MiniLM, and the paper's reward (secondary: DRA with it against GRPO with it, and GRPO with it against GRPO).
EXPLORATORY_PAIRS: tuple[tuple[str, str], ...] = (
    ("dra_grpo_oracle", "dra_grpo"), ("dra_grpo_oracle", "grpo"), ("grpo_entropy", "grpo"),
    ("dra_grpo_policy_embed", "dra_grpo"), ("dra_grpo_policy_embed", "grpo"),
    ("dra_grpo_paper_reward", "grpo_paper_reward"), ("grpo_paper_reward", "grpo"))
EXPLORATORY: tuple[tuple[str, str, str], ...] = tuple(
    (arm, baseline, metric) for arm, baseline in EXPLORATORY_PAIRS
    for metric in ("pass@1", "pass@16", "strategy_entropy", "home_share"))


def comparison_table(results: Sequence[dict[str, Any]],
                     rows: Sequence[tuple[str, str, str]] = EXPLORATORY) -> pd.DataFrame:
    """One row per (arm, baseline, metric) with results on both sides: the paired difference over the seeds
    both arms have (`compare_arms`), as `difference_columns`. Descriptive: no verdict, no multiplicity
    correction."""
    present = {r["arm"] for r in results}
    return pd.DataFrame([
        {"comparison": comparison_label(arm, baseline), "metric": metric,
         **difference_columns(compare_arms(results, arm, baseline, metric))}
        for arm, baseline, metric in rows if {arm, baseline} <= present])


# The pre-registration's secondary endpoints, as paired differences (besides pass@k, which has its own figure).
SECONDARY_METRICS = ("pass@1", "pass@16", "strategy_entropy", "home_share", "distinct_correct_strategies",
                     "accuracy_at_home", "accuracy_off_home")


def secondary_table(results: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, str]] = CLAIM_PAIRS,
                    metrics_: Sequence[str] = SECONDARY_METRICS) -> pd.DataFrame:
    """`comparison_table` over every (arm, baseline) of the pre-registered claims (or `pairs`) and every
    secondary endpoint, accuracy per home type included ("accuracy_by_home_type/<type>"). Exploratory: paired
    intervals, no verdict, no multiplicity correction."""
    home_types = sorted({t for r in results for t in r["evaluation"].get("accuracy_by_home_type", {})})
    names = [*metrics_, *(f"accuracy_by_home_type/{t}" for t in home_types)]
    return comparison_table(results, [(arm, baseline, name) for arm, baseline in pairs for name in names])


def claims_table(results: Sequence[dict[str, Any]], min_seeds: int = VERDICT_MIN_SEEDS) -> pd.DataFrame:
    """One row per pre-registered (claim, comparison): paired mean difference, 95% t-interval, seeds, the
    paired t-test's p-value (Holm-adjusted over the two primary pass@1 comparisons) and the verdict by the
    pre-registered rule ("yes" / "no" / "not shown" / "too few seeds"), or "interim (n of 8 seeds)" while a
    comparison has fewer paired seeds than it needs (`min_seeds`, or the power rule's target for a primary
    comparison the rule extended): its numbers are descriptive, not a verdict. The primary claim
    also waits for the other primary comparison, because Holm's adjustment reads both p-values."""
    tests = [compare_arms(results, arm, baseline, metric) for _, arm, baseline, metric in CLAIMS]
    required = applied_targets(results, min_seeds)
    needs = [required.get((arm, baseline), min_seeds) for _, arm, baseline, _ in CLAIMS]
    holm_ready = all(test.difference.n >= need for (claim, *_), test, need in zip(CLAIMS, tests, needs)
                     if claim == PRIMARY_CLAIM)
    table = pd.DataFrame([{"claim": claim, "comparison": comparison_label(arm, baseline),
                           "metric": metric, **difference_columns(test)}
                          for (claim, arm, baseline, metric), test in zip(CLAIMS, tests)])
    primary = (table.claim == PRIMARY_CLAIM) & table.p_value.notna()
    table["p_holm"] = np.nan
    if primary.any():
        table.loc[primary, "p_holm"] = holm(table.loc[primary, "p_value"].tolist())
    table["verdict"] = [_claim_verdict(claim, test, p_holm, need, holm_ready)
                        for (claim, *_), test, p_holm, need in zip(CLAIMS, tests, table.p_holm, needs)]
    return table


def _claim_verdict(claim: str, test: PairedTest, p_holm: float, need: int, holm_ready: bool) -> str:
    """The pre-registered rule: the primary claim needs a Holm-adjusted p < 0.05 and a positive mean; the
    others need their interval above 0; "no" when the interval lies below 0. Interim below `need` seeds."""
    reading = verdict(test.difference)
    if reading == "too few seeds":
        return reading
    if test.difference.n < need:
        return f"interim ({test.difference.n} of {need} seeds)"
    if claim == PRIMARY_CLAIM:
        if not holm_ready:
            return "interim (Holm's adjustment waits for the other primary comparison)"
        if p_holm < 0.05 and test.difference.estimate > 0:
            return "yes"
        return "no" if reading == "lower" else "not shown"
    return {"higher": "yes", "lower": "no"}.get(reading, "not shown")


# The pre-registered power rule: after 8 seeds, extend both arms of a primary comparison to
# min(max(n, 8), 20) seeds, n from the SD of its paired pass@1 differences (effect 0.02, alpha 0.025, power 0.8).
POWER_RULE = {"effect": 0.02, "alpha": 0.025, "power": 0.8, "max_seeds": 20}


def power_rule(results: Sequence[dict[str, Any]], min_seeds: int = VERDICT_MIN_SEEDS) -> pd.DataFrame:
    """Per primary comparison: the paired seeds so far, the SD of the paired pass@1 differences, the seeds the
    power rule asks for (`dra.stats.seeds_for_power`, then clipped to [min_seeds, 20]) and what to do. The rule
    looks at the variance only, never at the effect, and is applied once: at `min_seeds` seeds, to the first
    `min_seeds` paired seeds (0-7), so the seeds it adds never change its answer. Before then, the SD of the
    seeds so far previews it."""
    rows = []
    for arm, baseline in PRIMARY_COMPARISONS:
        values, reference = _paired(results, arm, baseline, "pass@1")
        n = len(values)
        test = paired_t_test(values[:min_seeds], reference[:min_seeds])
        needed = (seeds_for_power(test.sd, POWER_RULE["effect"], POWER_RULE["alpha"], POWER_RULE["power"])
                  if n >= 2 and test.sd > 0 else None)
        # identical differences on every seed (SD 0) need no more seeds than the minimum
        target = None if n < 2 else min(max(needed or min_seeds, min_seeds), POWER_RULE["max_seeds"])
        if n < min_seeds:
            action = f"wait: the rule applies at {min_seeds} seeds"
        else:
            action = "stop: enough seeds" if n >= target else f"extend both arms to {target} seeds"
        rows.append({"comparison": comparison_label(arm, baseline), "seeds": n, "sd": test.sd,
                     "seeds_for_power": needed, "target": target, "action": action})
    return pd.DataFrame(rows).astype({"seeds_for_power": "Int64", "target": "Int64"})


def applied_targets(results: Sequence[dict[str, Any]], min_seeds: int = VERDICT_MIN_SEEDS) -> dict[tuple[str, str], int]:
    """(arm, baseline) -> the seeds the power rule asks for, for each primary comparison it has applied to
    (both arms at `min_seeds` seeds); comparisons it has not reached yet are absent."""
    return {pair: int(row.target) for pair, row in zip(PRIMARY_COMPARISONS, power_rule(results, min_seeds).itertuples())
            if row.seeds >= min_seeds}


def extension_seeds(settings: profiles.ExperimentSettings, results: Sequence[dict[str, Any]],
                    ) -> dict[str, tuple[int, ...]]:
    """The seeds the power rule adds after the profile's (e.g. 8-13 for a target of 14): for both arms of
    each primary comparison it extended; none before it has applied."""
    start, count = max(settings.seeds) + 1, len(settings.seeds)
    extra = {}
    for (arm, baseline), target in applied_targets(results).items():
        if target > count:
            extra |= dict.fromkeys((arm, baseline), tuple(range(start, start + target - count)))
    return extra


def world_check(results: Sequence[dict[str, Any]], arms: Sequence[str] = ("grpo", "dr_grpo"),
                metric: str = "pass@1") -> pd.DataFrame:
    """Does RL help at all in this world? Per arm: its test `metric` minus the base policy's, per seed, with a
    95% t-interval over seeds (the base policy is one fixed model, so the difference varies only with the RL
    seed). The pre-registration's goal: GRPO at least +5 points with the interval above 0. `metric` may name a
    nested entry (`metric_value`), for example "accuracy_by_home_type/plus_five": the same check on one kind."""
    base = [r for r in results if r["arm"] == "base"]
    rows = {}
    if base:
        reference = metric_value(base[0]["evaluation"], metric)
        for arm in arms:
            values = [metric_value(r["evaluation"], metric) - reference for r in results if r["arm"] == arm]
            if values:
                interval = t_interval(values)
                rows[ARM_LABELS[arm]] = {"base": reference, "mean difference": interval.estimate,
                                         "low": interval.low, "high": interval.high, "seeds": interval.n}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("arm")


def pass_at_k_curve(results: Sequence[dict[str, Any]], arm: str, baseline: str, ks: Sequence[int] = PASS_AT_K) -> pd.DataFrame:
    """Paired difference (arm - baseline) of pass@k for each k, with 95% t-intervals over seeds."""
    rows = [{"k": k, **difference_columns(compare_arms(results, arm, baseline, f"pass@{k}"))} for k in ks]
    return pd.DataFrame(rows).set_index("k")


def breakdown_table(results: Sequence[dict[str, Any]], readout: str = "accuracy_by_home_type") -> pd.DataFrame:
    """Arm x entry of a per-type readout of the evaluation, mean over seeds: "accuracy_by_home_type" (test
    accuracy on the problems whose home strategy is each type) or "strategy_shares" (the share of test samples
    that use each strategy, whether a rare strategy survives RL). A strategy an arm never used counts as 0."""
    rows = [{"arm": ARM_LABELS.get(r["arm"], r["arm"]), **r["evaluation"].get(readout, {})} for r in results]
    frame = pd.DataFrame(rows)
    if not len(frame):
        return frame
    if readout != "strategy_shares":
        return frame.groupby("arm", sort=False).mean()
    table = frame.fillna(0.0).groupby("arm", sort=False).mean()  # each result lists only the strategies it saw
    return table[table.mean().sort_values(ascending=False).index]


# Per-step values kept by the overhead benchmark (besides the step's wall time).
STEP_KEYS = ("step_time", "completions/mean_length", "dra/embed_seconds", "dra/policy_pass_reused",
             "dra/weight_mean", "dra/weight_std", "dra/weight_min", "dra/weight_max", "dra/reward_after")
Configuration = tuple[str, dict[str, Any]]  # (arm, recipe overrides)


def overhead_configurations(embedders: Sequence[str] = ("minilm", "tfidf")) -> dict[str, Configuration]:
    """GRPO and DRA-GRPO with each named embedder, as the overhead benchmark's configurations."""
    return {"GRPO": ("grpo", {}), **{f"DRA-GRPO ({e})": ("dra_grpo", {"dra_embedder": e}) for e in embedders}}


def overhead_steps(profile: str, configurations: dict[str, Configuration], steps: int = 4, rounds: int = 1,
                   seed: int = 0, warmup: bool = True,
                   report: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Wall seconds of every optimiser step of each configuration, interleaved step by step, in one process.

    Each round builds one trainer per configuration (the profile's recipe of its arm plus its overrides, seed
    ``seed + round``) and trains them in lockstep (`_lockstep`): step 1 of every configuration, then step 2 of
    every one, ..., one at a time, so the steps compared were taken seconds apart and a slow phase of a loaded
    machine hits every configuration alike; the order rotates by one each round. Every trainer starts its first
    step from the same random state, so within a round all configurations sample the same first batch. A step's
    time runs from the trainer's ``on_step_begin`` to ``on_step_end`` (generation, scoring with DRA, loss,
    backward, optimiser). With `warmup`, one untimed round of one step comes first (model and embedder loading,
    the grader's worker, first-call paths). Returns one record per step: configuration, round, step, seconds,
    the load average at its start and the step's `STEP_KEYS` from TRL's logs; `report` gets each round's records.
    """
    names = list(configurations)
    if warmup:
        _lockstep(profile, configurations, names, steps=1, seed=seed)
    records: list[dict[str, Any]] = []
    for round_ in range(rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        run = [{"round": round_, **r} for r in _lockstep(profile, configurations, order, steps, seed + round_)]
        records += run
        if report is not None:
            report(run)
    return records


def _lockstep(profile: str, configurations: dict[str, Configuration], order: Sequence[str], steps: int,
              seed: int) -> list[dict[str, Any]]:
    """Train the configurations in `order` for `steps` steps each, taking turns step by step.

    Each trainer runs in its own thread, but only the one holding the turn runs: it takes the turn before its
    setup, keeps it through a step and the bookkeeping after it (logging, fetching the next batch), and hands it
    on at its next ``on_step_begin``. So no two trainers ever compute at once (threads a step starts itself, e.g.
    the grader's, belong to that step). Each trainer keeps its own random state across turns (torch, numpy,
    random), seeded with `seed` at its first step.
    """
    import random
    import threading

    import torch
    from transformers import TrainerCallback, set_seed

    from dra import train  # TRL: imported only when a run trains

    condition = threading.Condition()
    turn = {"name": order[0]}
    finished: set[str] = set()
    errors: dict[str, BaseException] = {}

    def hand_on(name: str) -> None:  # called with the condition held, by the holder of the turn
        at = order.index(name)
        following = [order[(at + k) % len(order)] for k in range(1, len(order) + 1)]
        turn["name"] = next((n for n in following if n not in finished), name)
        condition.notify_all()

    def wait_for_turn(name: str) -> None:
        with condition:
            condition.wait_for(lambda: turn["name"] == name)

    def random_state() -> tuple:
        return torch.get_rng_state(), np.random.get_state(), random.getstate()

    def restore(state: tuple) -> None:
        torch.set_rng_state(state[0])
        np.random.set_state(state[1])
        random.setstate(state[2])

    class Lockstep(TrainerCallback):
        def __init__(self, name: str) -> None:
            self.name, self.seconds, self.loads, self.first = name, [], [], True

        def on_step_begin(self, args, state, control, **kwargs):
            if self.first:  # the turn is held since setup: the first step starts at once
                set_seed(seed)
                self.first = False
            else:
                mine = random_state()
                with condition:
                    hand_on(self.name)
                wait_for_turn(self.name)
                restore(mine)
            self.loads.append([round(x, 2) for x in os.getloadavg()])
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.started)

    trainers, clocks = {}, {}
    scratch = tempfile.TemporaryDirectory()
    try:
        for name in order:  # built one after another in this thread: building resets accelerate's shared state
            arm, overrides = configurations[name]
            mapping = {**arm_recipe(profile, arm, seed), **overrides, "max_steps": steps, "save_strategy": "no",
                       "logging_steps": 1, "disable_tqdm": True,
                       "output_dir": str(Path(scratch.name) / f"run{len(trainers)}")}
            trainers[name] = train.build_trainer(train.run_config(mapping))
            clocks[name] = Lockstep(name)
            trainers[name].add_callback(clocks[name])

        def run(name: str) -> None:
            try:
                wait_for_turn(name)
                trainers[name].train()
            except BaseException as error:  # noqa: BLE001 (re-raised in the calling thread below)
                errors[name] = error
            finally:
                with condition:
                    finished.add(name)
                    if turn["name"] == name:
                        hand_on(name)

        threads = [threading.Thread(target=run, args=(name,), name=f"overhead-{name}") for name in order]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        scratch.cleanup()
    if errors:
        name, error = next(iter(errors.items()))
        raise RuntimeError(f"the overhead run of {name!r} failed: {error}") from error
    records = []
    for name in order:
        logs = [line for line in trainers[name].state.log_history if "loss" in line]
        clock = clocks[name]
        records += [{"configuration": name, "step": i + 1, "seconds": seconds, "load": load,
                     **{k: log[k] for k in STEP_KEYS if k in log}}
                    for i, (seconds, load, log) in enumerate(zip(clock.seconds, clock.loads, logs))]
    return records


def overhead_table(records: Sequence[dict[str, Any]], baseline: str = "GRPO") -> pd.DataFrame:
    """Per configuration, from `overhead_steps` records: seconds per step (median over rounds of each round's
    mean); the overhead, the extra time per step over `baseline` in the same round as a share of the baseline's
    step, averaged over rounds with a 95% t-interval (half-width); the ratio to the baseline (median, min and max
    over rounds); the same ratio on step 1 alone (within a round every configuration samples the same first
    batch); and the embedding seconds per step (``dra/embed_seconds``) with their share of the baseline step."""
    frame = pd.DataFrame(records)
    frame["embed"] = frame["dra/embed_seconds"] if "dra/embed_seconds" in frame else 0.0
    frame["embed"] = frame["embed"].fillna(0.0)
    per_round = frame.groupby(["configuration", "round"], sort=False).agg(seconds=("seconds", "mean"),
                                                                          embed=("embed", "mean"))
    first = frame[frame.step == 1].set_index(["configuration", "round"]).seconds
    base, base_first = per_round.loc[baseline].seconds, first.loc[baseline]
    rows = []
    for name in dict.fromkeys(frame.configuration):
        ratio = per_round.loc[name].seconds / base
        first_ratio = first.loc[name] / base_first
        extra = (per_round.loc[name].seconds - base) / base  # the round's extra time, in GRPO steps
        half = (float(stats.t.ppf(0.975, len(extra) - 1) * extra.std(ddof=1) / np.sqrt(len(extra)))
                if len(extra) > 1 else float("nan"))
        rows.append({"configuration": name, "seconds_per_step": float(per_round.loc[name].seconds.median()),
                     "overhead": float(extra.mean()), "overhead_ci_half_width": half,
                     "ratio_to_grpo": float(ratio.median()), "ratio_min": float(ratio.min()),
                     "ratio_max": float(ratio.max()), "first_step_ratio": float(first_ratio.median()),
                     "first_step_ratio_min": float(first_ratio.min()), "first_step_ratio_max": float(first_ratio.max()),
                     "embed_seconds_per_step": float(per_round.loc[name].embed.median()),
                     "embedding_share_of_grpo_step": float((per_round.loc[name].embed / base).median()),
                     "rounds": int(len(ratio)), "steps_timed": int((frame.configuration == name).sum())})
    return pd.DataFrame(rows).set_index("configuration")


def overhead_benchmark(profile: str, steps: int = 6, embedders: Sequence[str] = ("minilm", "tfidf"),
                       seed: int = 0, rounds: int = 1) -> pd.DataFrame:
    """Seconds per optimiser step of GRPO and of DRA-GRPO with each embedder (`overhead_steps`, then
    `overhead_table`). Step times also differ because each arm samples different completions after its first
    update; the first-step ratio and the embedding time are DRA's own cost. scripts/bench_dra_overhead.py runs
    more configurations and rounds."""
    return overhead_table(overhead_steps(profile, overhead_configurations(embedders), steps, rounds, seed))


def curves_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Long frame (arm, seed, step, metric, value) of the training curves stored in the results files."""
    rows = [{"arm": ARM_LABELS.get(r["arm"], r["arm"]), "seed": r["seed"], "step": point["step"], "metric": k, "value": v}
            for r in results if "curve" in r for point in r["curve"] for k, v in point.items() if k != "step"]
    return pd.DataFrame(rows, columns=["arm", "seed", "step", "metric", "value"])


def grid_suffix(grid: str) -> str:
    """What a grid's outputs (tables, figures, summary) add to their names: nothing for the main grid, "_<grid>"
    for any other, so two grids never overwrite each other's."""
    return "" if grid == profiles.MAIN_GRID else f"_{grid}"


def override_tag(overrides: dict[str, Any]) -> str:
    """A file-name-safe tag of overrides, e.g. {'learning_rate': 3e-05} -> 'learning_rate=3e-05'."""
    return "_".join(f"{k}={v}" for k, v in sorted(overrides.items())).replace("/", "-")


def _number_or_yaml(text: str) -> Any:
    """A --set value: YAML, except that '1e-5' (a string to YAML 1.1) is the number it reads as."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def run_command(profile: str, options: Sequence[str], arm: str, seed: int, skip_base: bool = True,
                python: str = "python") -> list[str]:
    """The `python -m dra.experiment` command that trains and evaluates one run; `options` carry the grid
    (e.g. ["--grid", "long"] or ["--set", "max_steps=960"])."""
    return [python, "-m", "dra.experiment", "--profile", profile, *options, "--arms", arm, "--seeds", str(seed),
            *(["--skip-base"] if skip_base else [])]


def print_missing(profile: str, arms: Sequence[str], seeds: Sequence[int] | None, overrides: Mapping[str, Any],
                  options: Sequence[str] = ()) -> None:
    """Print the command (`run_command`) of each run of (profile, arms, seeds, overrides) without a current
    results file, in the pre-registered order; the first also evaluates the base policy when it has no results
    yet."""
    results, missing = collect(profile, arms, seeds, train_missing=False, overrides=overrides)
    base_done = any(r["arm"] == "base" for r in results)
    for position, (arm, seed) in enumerate(missing):
        print(shlex.join(run_command(profile, options, arm, seed, skip_base=base_done or position > 0)))


def fill_grid(profile: str, arms: Sequence[str], seeds: Sequence[int] | None, overrides: Mapping[str, Any],
              options: Sequence[str], workers: int, poll_seconds: float = 10.0) -> None:
    """Train every run (profile, arms, seeds, overrides) still needs, `workers` at a time, each in its own
    `run_command` process (OMP_NUM_THREADS=1 unless set: one core each), taking the next run in the
    pre-registered order (`collect`'s missing, read again as each one ends, so the power rule's seeds join
    once it has applied). Each process writes to worker.log in its run's folder. A run another process holds
    (another terminal, another machine on the same disk) is left to it and waited for. After a failed run no
    new one starts; the others finish, then RuntimeError names the logs to read."""
    settings = profiles.get(profile).mini_experiment()
    check_base_policy(profile)  # trains it once, here, before the workers, which would otherwise wait for it
    run_base(profile, settings.eval_prompts)  # once, here: the workers skip it
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    running: dict[tuple[str, int], tuple[subprocess.Popen, Path]] = {}
    finished: set[tuple[str, int]] = set()
    failed: list[Path] = []
    changed = True  # the results files are read again only when a run has ended or one is held elsewhere
    elsewhere: list[tuple[str, int]] = []
    while True:
        for run, (process, log) in list(running.items()):
            if process.poll() is not None:
                del running[run]
                finished.add(run)
                changed = True
                print(f"{run_label(*run)}: {'done' if process.returncode == 0 else 'FAILED, see ' + str(log)}",
                      flush=True)
                if process.returncode:
                    failed.append(log)
        queue = []
        if failed:  # start nothing more, wait for nothing held elsewhere
            elsewhere = []
        elif changed:
            queue = [run for run in collect(profile, arms, seeds, False, overrides)[1]
                     if run not in running and run not in finished]
            held = [run for run in queue if _in_use(Run.of(profile, *run, overrides))]
            for run in set(held) - set(elsewhere):
                print(f"{run_label(*run)}: another process is running it; waiting for it", flush=True)
            elsewhere, queue = held, [run for run in queue if run not in held]
        changed = bool(elsewhere)
        for position, (arm, seed) in enumerate(queue[:workers - len(running)], start=1):
            log = Run.of(profile, arm, seed, overrides).directory / "worker.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as out:
                command = run_command(profile, options, arm, seed, python=sys.executable)
                running[(arm, seed)] = (subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                         env=environment), log)
            print(f"{run_label(arm, seed)}: started ({len(queue) - position} more waiting), log {log}", flush=True)
        if not running and not elsewhere:
            break
        time.sleep(poll_seconds)
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed; read {', '.join(map(str, failed))}.")
    if left := collect(profile, arms, seeds, False, overrides)[1]:  # finished, yet no current results file
        raise RuntimeError(f"runs {left} ended without a current results file; rerun them one by one.")


def main(argv: Sequence[str] | None = None) -> None:
    """Fill the results cache of the mini-world experiment: run after run in this process, or N runs at a time
    with --workers N. Every run is keyed by its configuration, resumes when interrupted, and is refused while
    another process holds it.

        python -m dra.experiment --profile mini --arms grpo dra_grpo --seeds 0 1
        python -m dra.experiment --profile mini --split validation --arms grpo --set learning_rate=1e-5   # sweep
        python -m dra.experiment --profile mini --grid long --arms grpo --seeds 2 --skip-base   # the long grid
        python -m dra.experiment --profile mini --grid long --missing   # its runs still to do, one command each
        python -m dra.experiment --profile mini --grid long --workers 2   # all of them, two processes at a time
    """
    class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """The docstring's layout kept, every option's default shown as it is typed (lists as words; options
        whose default is "the profile's" say so in their help instead of "(default: None)")."""

        def _get_help_string(self, action):
            return action.help if action.default is None else super()._get_help_string(action)

        def _expand_help(self, action):
            if isinstance(action.default, list):
                action = copy.copy(action)
                action.default = " ".join(map(str, action.default)) or "none"
            return super()._expand_help(action)

    def seeds_text(settings: profiles.ExperimentSettings) -> str:
        exceptions = "; ".join(f"{arm}: {', '.join(map(str, seeds))}" for arm, seeds in settings.arm_seeds)
        return ", ".join(map(str, settings.seeds)) + (f" ({exceptions})" if exceptions else "")

    profile_seeds = "; ".join(f"{name}: {seeds_text(profiles.get(name).mini_experiment())}" for name in EXPERIMENT_PROFILES)
    parser = argparse.ArgumentParser(prog="python -m dra.experiment", description=inspect.cleandoc(main.__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--profile", default="mini", choices=list(EXPERIMENT_PROFILES),
                        help="smoke (seconds, a check) or mini (the pre-registered experiment)")
    parser.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                        help=f"arms to run, any of {', '.join(recipes.arms('mini'))} (default: "
                             f"{' '.join(PRIMARY_ARMS)}; with --grid, the grid's arms)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                        help=f"training seeds (default: the profile's, {profile_seeds}; then, on the test split, "
                             "the seeds the power rule adds to the primary arms once it has applied)")
    parser.add_argument("--split", default="test", choices=["validation", "test"],
                        help="evaluation split (tune on validation only)")
    grids = "; ".join(f"{name}: " + ", ".join(f"{grid} ({override_tag(spec.overrides)})" for grid, spec in
                                              profiles.get(name).mini_experiment().grids.items() if spec.overrides)
                      for name in EXPERIMENT_PROFILES)
    parser.add_argument("--grid", default=None, metavar="NAME",
                        help=f"a pre-registered grid of the profile ({grids}): its recipe overrides, and its arms "
                             "unless --arms is given (default: none, the recipes as they are)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="recipe overrides (YAML values), e.g. learning_rate=1e-5 max_steps=200; on top of "
                             "--grid's")
    parser.add_argument("--skip-base", action="store_true",
                        help="leave the base policy's evaluation to another process")
    parser.add_argument("--missing", action="store_true",
                        help="train nothing: print one command per run the test grid still needs, in the "
                             "pre-registered order (primary arms seed by seed, with the seeds the power rule adds; "
                             "then the verdict controls; then the rest), e.g. to share among processes")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="train the runs still missing in N processes at once (one core each, unless "
                             "OMP_NUM_THREADS is set), next run first in the pre-registered order")
    args = parser.parse_args(argv)
    try:  # without --grid: no overrides, the paper's four arms
        grid = (profiles.get(args.profile).mini_experiment().grid(args.grid) if args.grid
                else profiles.Grid(arms=PRIMARY_ARMS))
    except ValueError as error:
        parser.error(str(error))
    if args.arms is None:
        args.arms = list(grid.arms or recipes.arms(args.profile))
    unknown = [arm for arm in args.arms if arm not in recipes.arms(args.profile)]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(recipes.arms(args.profile))}.")
    overrides = dict(grid.overrides)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE, got {item!r}.")
        overrides[key] = _number_or_yaml(value)
    options = [*(["--grid", args.grid] if args.grid else []), *(["--set", *args.set] if args.set else [])]
    if (args.missing or args.workers > 1) and args.split != "test":
        parser.error("--missing and --workers work on the test grid; leave out --split.")
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, got {args.workers}.")
    if args.missing:
        print_missing(args.profile, args.arms, args.seeds, overrides, options)
        return
    if args.workers > 1:
        try:
            fill_grid(args.profile, args.arms, args.seeds, overrides, options, args.workers)
        except RuntimeError as error:
            sys.exit(f"error: {error}")
        return

    def report(result: dict[str, Any]) -> None:
        print(result["arm"], result["seed"], args.split, overrides, {
            k: round(v, 3) for k, v in result["evaluation"].items()
            if k in ("pass@1", "pass@16", "home_share", "strategy_entropy")}, flush=True)

    run_experiment(args.profile, args.arms, args.seeds, base=not args.skip_base, split=args.split,
                   overrides=overrides, report=report)


if __name__ == "__main__":
    main()
