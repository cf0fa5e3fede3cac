"""The mini-world training experiment: the paper's four arms and the controls x seeds, trained and evaluated alike.

Each (arm, seed) is trained with `dra.train` from the recipe mapping of the profile (`dra.recipes.recipe`,
the same table the YAML files are written from), resuming an interrupted run, then evaluated on a split of
the mini world with `dra.evaluate` (one ordering per factor pair, n samples per prompt, graded by the real
grader, each sample's strategy parsed). The base policy is evaluated the same way as the step-0 reference.

Every artefact is identified by the configuration that made it (issue: nothing stale may be reused):

- a training run lives in ``runs/<profile>/<arm>/seed<seed>-<train_key>/``, where the key hashes the full
  recipe (with the seed and any override), the base policy's key and `EXPERIMENT_FORMAT`; a run counts as
  finished only when its ``training_done.json`` names that key;
- its evaluation file is named by the run's key and the split, and `dra.evaluate` refuses to mix settings;
- the results file ``data/mini_training/<profile>/[<split>/]<name>.json`` holds the key of everything above
  and is recomputed when any of it changes.

The primary comparisons, their statistics and the power rule are pre-registered in
experiments/mini_world_v2.md; `paired_test` and `holm` implement that analysis.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from dra import evaluate, metrics, mini, policy, recipes
from dra.config import results_dir, runs_dir
from dra.io import config_key, provenance, read_json, read_jsonl, write_json
from dra.rewards import well_formatted

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

EXPERIMENT_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"seeds": [0], "eval_prompts": 6},
    # 500 test prompts from distinct factor pairs x 16 samples (pass@k up to 16); seeds per the
    # pre-registered power rule (8 to start, up to 20 for the primary comparisons).
    "mini": {"seeds": list(range(8)), "eval_prompts": 500},
}


def _annotate(text: str) -> dict[str, Any]:
    return {"strategy": mini.parse_strategy(text), "format": well_formatted(text)}


def results_file(profile: str, name: str, split: str = "test") -> Path:
    folder = results_dir() / "mini_training" / profile
    return (folder if split == "test" else folder / split) / f"{name}.json"


def _cached(path: Path, key: str) -> dict[str, Any] | None:
    if path.exists():
        saved = read_json(path, what="results file")
        if saved.get("key") == key:
            return saved
    return None


def evaluation_summary(eval_path: Path) -> dict[str, Any]:
    """pass@1 (with CI), pass@k for k = 1..16 and the mini-world metrics of one evaluation file, including
    accuracy per home type (problems grouped by their home strategy) and the share of samples that took
    their problem's home strategy."""
    saved = read_json(eval_path, keys=("problems",), what="evaluation file")["problems"]
    problems = [mini.Problem(*map(int, pid.split("x"))) for pid in saved]
    correct = evaluate.load_outcomes(eval_path)
    labels = evaluate.load_outcomes(eval_path, "label")
    strategies = [[label["strategy"] for label in row] for row in labels]
    flat = [s for row in strategies for s in row]
    dominant, share = metrics.dominant_strategy(flat)
    homes = np.array([p.home_strategy for p in problems])
    took_home = np.array([[s == p.home_strategy for s in row] for p, row in zip(problems, strategies)])
    return {
        **evaluate.summarize(correct, ks=PASS_AT_K),
        "strategy_entropy": metrics.strategy_entropy(flat),
        "dominant_strategy": dominant,
        "dominant_share": share,
        "strategy_shares": metrics.strategy_shares(flat, include_unknown=True),
        "distinct_correct_strategies": float(metrics.distinct_correct_strategies(strategies, correct).mean()),
        "home_share": float(took_home.mean()),
        "accuracy_at_home": float(correct[took_home].mean()) if took_home.any() else float("nan"),
        "accuracy_off_home": float(correct[~took_home].mean()) if (~took_home).any() else float("nan"),
        "accuracy_by_home_type": {name: float(correct[homes == name].mean()) for name in mini.STRATEGIES
                                  if (homes == name).any()},
        "format_rate": float(np.mean([label["format"] for row in labels for label in row])),
        "mean_length_chars": float(evaluate.load_outcomes(eval_path, "length").mean()),
    }


def _evaluate_model(model_dir: Path, label: str, profile: str, eval_prompts: int, split: str) -> dict[str, Any]:
    items = evaluate.mini_items(profile, limit=eval_prompts, split=split)
    path = runs_dir() / "evals" / profile / f"{label}_{split}.json"
    evaluate.evaluate(str(model_dir), items, benchmark=f"mini_{split}", profile=profile,
                      settings=evaluate.PROFILE_SETTINGS[profile], path=path, annotate=_annotate)
    return evaluation_summary(path)


def training_curve(run_dir: Path) -> list[dict[str, Any]]:
    lines = read_jsonl(run_dir / "metrics.jsonl", objects=True)
    return [{"step": line["step"], **{k: line[k] for k in CURVE_KEYS if k in line}} for line in lines if "loss" in line]


def arm_recipe(profile: str, arm: str, seed: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full recipe mapping of one run: the profile's recipe of `arm`, the seed, then `overrides`."""
    mapping = {**recipes.recipe(profile, arm), "seed": seed, **(overrides or {})}
    mapping.pop("output_dir")
    return mapping


def train_key(profile: str, mapping: dict[str, Any]) -> str:
    return config_key({"format": EXPERIMENT_FORMAT, "recipe": mapping, "base_policy": policy.policy_config(profile).key()})


def train_run(profile: str, arm: str, seed: int, overrides: dict[str, Any] | None = None) -> Path:
    """Train one (arm, seed[, overrides]) run, or resume it, or return it when finished by the same config."""
    from dra import train  # TRL: imported only when a run trains

    mapping = arm_recipe(profile, arm, seed, overrides)
    key = train_key(profile, mapping)
    run_dir = runs_dir() / profile / arm / f"seed{seed}-{key}"
    done = run_dir / "training_done.json"
    if done.exists() and read_json(done, what="training marker").get("key") == key:
        return run_dir
    train.train(*train.configs_from_mapping({**mapping, "output_dir": str(run_dir)}))
    write_json(done, {"key": key, "recipe": mapping})
    return run_dir


def run_arm(profile: str, arm: str, seed: int, eval_prompts: int, split: str = "test",
            overrides: dict[str, Any] | None = None, name: str | None = None) -> dict[str, Any]:
    """Train (or resume, or reuse) one arm at one seed, evaluate it on `split`, and write its results file."""
    mapping = arm_recipe(profile, arm, seed, overrides)
    tkey = train_key(profile, mapping)
    key = result_key(tkey, split, eval_prompts, profile)
    name = name or f"{arm}_seed{seed}"
    out = results_file(profile, name, split)
    if (saved := _cached(out, key)) is not None:
        return saved
    run_dir = train_run(profile, arm, seed, overrides)
    result = {
        "key": key, "arm": arm, "seed": seed, "split": split, "overrides": overrides or {},
        "evaluation": _evaluate_model(run_dir, f"{arm}_seed{seed}_{tkey}", profile, eval_prompts, split),
        "curve": training_curve(run_dir),
        **provenance(profile, seed, recipe=mapping, train_key=tkey, base_policy=policy.policy_config(profile).key()),
    }
    write_json(out, result)
    return result


def run_base(profile: str, eval_prompts: int, split: str = "test") -> dict[str, Any]:
    """Evaluate the SFT base policy (the step-0 reference of every arm)."""
    config = policy.policy_config(profile)
    key = result_key(f"base-{config.key()}", split, eval_prompts, profile)
    out = results_file(profile, "base", split)
    if (saved := _cached(out, key)) is not None:
        return saved
    model_dir = policy.base_policy(config=config)
    result = {"key": key, "arm": "base", "seed": None, "split": split,
              "evaluation": _evaluate_model(model_dir, f"base_{config.key()}", profile, eval_prompts, split),
              **provenance(profile, base_policy=config.key())}
    write_json(out, result)
    return result


def run_experiment(profile: str, arms: Sequence[str] = PRIMARY_ARMS, seeds: Sequence[int] | None = None,
                   base: bool = True, split: str = "test", overrides: dict[str, Any] | None = None,
                   report: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The base evaluation and every (arm, seed) on `split` (with recipe `overrides`, e.g. a sweep's learning
    rate), each read back from its results file when it is current; `report` is called with each result."""
    settings = EXPERIMENT_PROFILES[profile]
    seeds = settings["seeds"] if seeds is None else seeds
    results = [run_base(profile, settings["eval_prompts"], split)] if base else []
    for seed in seeds:
        for arm in arms:
            name = f"{arm}_{override_tag(overrides)}_seed{seed}" if overrides else None
            results.append(run_arm(profile, arm, seed, settings["eval_prompts"], split, overrides, name))
            if report is not None:
                report(results[-1])
    return results


def collect(profile: str, arms: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
            train_missing: bool = True) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """(results, missing): the base evaluation and every (arm, seed) on the test split. With `train_missing`
    each missing or stale run is trained and evaluated; without it only current results files are read, and
    the (arm, seed) pairs without one are returned as `missing` (so a notebook can show a partial grid
    without starting hours of training)."""
    settings = EXPERIMENT_PROFILES[profile]
    arms = recipes.arms(profile) if arms is None else arms
    seeds = settings["seeds"] if seeds is None else seeds
    if train_missing:
        return run_experiment(profile, arms, seeds), []
    def current_key(r: dict[str, Any]) -> str:
        made_by = (f"base-{policy.policy_config(profile).key()}" if r["arm"] == "base"
                   else train_key(profile, arm_recipe(profile, r["arm"], r["seed"])))
        return result_key(made_by, "test", settings["eval_prompts"], profile)

    current = {(r["arm"], r["seed"]): r for r in load_results(profile)
               if r["arm"] in ("base", *arms) and r.get("key") == current_key(r)}
    missing = [(arm, seed) for arm in arms for seed in seeds if (arm, seed) not in current]
    return list(current.values()), missing


def result_key(made_by: str, split: str, eval_prompts: int, profile: str) -> str:
    """The identity of a results file: what made the model (a run's training key, or the base policy's) and
    everything about its evaluation."""
    return config_key({"format": EXPERIMENT_FORMAT, "model": made_by, "split": split, "eval_prompts": eval_prompts,
                       "eval": evaluate.PROFILE_SETTINGS[profile].__dict__, "sampling": evaluate.SAMPLING})


def load_results(profile: str, split: str = "test") -> list[dict[str, Any]]:
    """Every results file of `profile` on `split` made by the current experiment format."""
    folder = results_file(profile, "x", split).parent
    found = [read_json(p, what="results file") for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return [r for r in found if r.get("split", "test") == split and "evaluation" in r]


METRICS = ("pass@1", "pass@16", "home_share", "strategy_entropy", "dominant_share", "distinct_correct_strategies",
           "format_rate")


def arm_table(results: Sequence[dict[str, Any]], metrics_: Sequence[str] = METRICS) -> pd.DataFrame:
    """Arm x metric: mean over seeds with a 95% t-interval (half-width), and the number of seeds."""
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
            row[m] = values.mean()
            row[f"{m} ±"] = (stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                             if len(values) > 1 else float("nan"))
        rows.append(row)
    present = {r["arm"] for r in rows}
    return pd.DataFrame(rows).set_index("arm").reindex([label for label in ARM_LABELS.values() if label in present])


def _paired(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(arm values, baseline values) of `metric` on the seeds both have, in seed order."""
    by = {(r["arm"], r["seed"]): r["evaluation"][metric] for r in results
          if r["arm"] in (arm, baseline) and metric in r["evaluation"]}
    seeds = sorted({s for (a, s) in by if a == arm} & {s for (a, s) in by if a == baseline})
    return (np.array([by[(arm, s)] for s in seeds], dtype=float),
            np.array([by[(baseline, s)] for s in seeds], dtype=float))


def paired_difference(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str) -> dict[str, float]:
    """Mean over seeds of (arm - baseline) on `metric`, seed by seed, with a 95% t-interval."""
    values, base = _paired(results, arm, baseline, metric)
    diffs = values - base
    if len(diffs) < 2:
        return {"mean": float(diffs.mean()) if len(diffs) else float("nan"), "low": float("nan"), "high": float("nan"),
                "seeds": len(diffs)}
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return {"mean": float(diffs.mean()), "low": float(diffs.mean() - half), "high": float(diffs.mean() + half),
            "seeds": len(diffs)}


def paired_test(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str = "pass@1") -> dict[str, float]:
    """The pre-registered paired test: a two-sided paired t-test over seeds (scipy.stats.ttest_rel) of `arm`
    against `baseline` on `metric`, with the mean difference, its 95% t-interval and the SD of the differences."""
    difference = paired_difference(results, arm, baseline, metric)
    values, base = _paired(results, arm, baseline, metric)
    if len(values) < 2:
        return {**difference, "p_value": float("nan"), "sd": float("nan")}
    return {**difference, "p_value": float(stats.ttest_rel(values, base).pvalue),
            "sd": float(np.std(values - base, ddof=1))}


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


def verdict(difference: dict[str, float]) -> str:
    """How to read a paired difference: its 95% interval above 0, below 0, around 0, or not computable."""
    if difference["seeds"] < 2 or np.isnan(difference["low"]):
        return "too few seeds"
    if difference["low"] > 0:
        return "higher"
    if difference["high"] < 0:
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


def claims_table(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per pre-registered (claim, comparison): paired mean difference, 95% t-interval, seeds, the
    paired t-test's p-value (Holm-adjusted over the two primary pass@1 comparisons) and the verdict by the
    pre-registered rule ("yes" / "no" / "not shown" / "too few seeds")."""
    rows = []
    for claim, arm, baseline, metric in CLAIMS:
        test = paired_test(results, arm, baseline, metric)
        rows.append({"claim": claim, "comparison": f"{ARM_LABELS[arm]} - {ARM_LABELS[baseline]}", "metric": metric,
                     **test})
    table = pd.DataFrame(rows)
    primary = (table.claim == "DRA raises pass@1") & table.p_value.notna()
    table["p_holm"] = np.nan
    if primary.any():
        table.loc[primary, "p_holm"] = holm(table.loc[primary, "p_value"].tolist())

    def rule(row) -> str:
        if row["seeds"] < 2 or np.isnan(row["low"]):
            return "too few seeds"
        if row["claim"] == "DRA raises pass@1":
            return "yes" if row["p_holm"] < 0.05 and row["mean"] > 0 else ("no" if row["high"] < 0 else "not shown")
        return {"higher": "yes", "lower": "no"}.get(verdict(row), "not shown")

    table["verdict"] = table.apply(rule, axis=1)
    return table


def pass_at_k_curve(results: Sequence[dict[str, Any]], arm: str, baseline: str, ks: Sequence[int] = PASS_AT_K) -> pd.DataFrame:
    """Paired difference (arm - baseline) of pass@k for each k, with 95% t-intervals over seeds."""
    return pd.DataFrame([{"k": k, **paired_difference(results, arm, baseline, f"pass@{k}")} for k in ks]).set_index("k")


def home_type_table(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Arm x home type: test accuracy on the problems whose home strategy is that type, mean over seeds."""
    rows = [{"arm": ARM_LABELS.get(r["arm"], r["arm"]), **r["evaluation"].get("accuracy_by_home_type", {})} for r in results]
    frame = pd.DataFrame(rows)
    return frame.groupby("arm", sort=False).mean() if len(frame) else frame


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
            trainers[name] = train.build_trainer(*train.configs_from_mapping(mapping))
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


def override_tag(overrides: dict[str, Any]) -> str:
    """A file-name-safe tag of overrides, e.g. {'learning_rate': 3e-05} -> 'learning_rate=3e-05'."""
    return "_".join(f"{k}={v}" for k, v in sorted(overrides.items())).replace("/", "-")


def _number_or_yaml(text: str) -> Any:
    """A --set value: YAML, except that '1e-5' (a string to YAML 1.1) is the number it reads as."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Fill the results cache of the mini-world experiment, e.g. from two single-threaded processes at once,
    each with its own arms or seeds. Every run is keyed by its configuration and resumes when interrupted.

        python -m dra.experiment --profile mini --arms grpo dra_grpo --seeds 0 1
        python -m dra.experiment --profile mini --split validation --arms grpo --set learning_rate=1e-5   # sweep
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", choices=list(EXPERIMENT_PROFILES),
                        help="smoke or mini (default: mini)")
    parser.add_argument("--arms", nargs="+", default=list(PRIMARY_ARMS), metavar="ARM",
                        help=f"arms to run (default: the paper's four); any of {', '.join(recipes.arms('mini'))}")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="training seeds (default: the profile's, mini: 0-7)")
    parser.add_argument("--split", default="test", choices=["validation", "test"],
                        help="evaluation split (default: test; tune on validation only)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="recipe overrides (YAML values), e.g. learning_rate=1e-5 max_steps=200")
    parser.add_argument("--skip-base", action="store_true", help="leave the base policy's evaluation to another process")
    args = parser.parse_args(argv)
    unknown = [arm for arm in args.arms if arm not in recipes.arms(args.profile)]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(recipes.arms(args.profile))}.")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE, got {item!r}.")
        overrides[key] = _number_or_yaml(value)
    def report(result: dict[str, Any]) -> None:
        print(result["arm"], result["seed"], args.split, overrides, {
            k: round(v, 3) for k, v in result["evaluation"].items()
            if k in ("pass@1", "pass@16", "home_share", "strategy_entropy")}, flush=True)

    run_experiment(args.profile, args.arms, args.seeds, base=not args.skip_base, split=args.split,
                   overrides=overrides, report=report)


if __name__ == "__main__":
    main()
