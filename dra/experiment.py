"""The mini-world training experiment: the paper's four arms x several seeds, trained and evaluated alike.

Each (arm, seed) is trained with `dra.train` from the committed recipe of the profile (resuming an
interrupted run), then evaluated on the mini world's test split with `dra.evaluate` (n samples per prompt,
graded by the real grader, each sample's strategy parsed). One results file per (arm, seed) under
data/mini_training/<profile>/ holds the evaluation summary, the strategy metrics and the training curve, with
provenance; it is keyed by the configuration that made it, so a changed recipe or setting is recomputed, not
reused. The base policy is evaluated the same way as the step-0 reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from dra import evaluate, metrics, mini, recipes
from dra.config import PROJECT_ROOT, results_dir, runs_dir
from dra.io import config_key, provenance, write_json
from dra.rewards import THINK_CLOSE

ARMS: tuple[str, ...] = tuple(recipes.ARMS)
ARM_LABELS = {"grpo": "GRPO", "dr_grpo": "Dr. GRPO", "dra_grpo": "DRA-GRPO", "dra_dr_grpo": "DRA-Dr. GRPO"}
CURVE_KEYS = ("raw_reward", "raw_rewards/cosine_reward", "raw_rewards/format_reward", "reward", "mini/accuracy",
              "completions/mean_length", "mini/strategy_entropy", "mini/dominant_share", "dra/weight_mean", "dra/weight_std",
              "dra/group_similarity", "dra/embed_seconds", "step_time", "kl")

EXPERIMENT_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"seeds": [0], "eval_prompts": 6},
    "mini": {"seeds": [0, 1, 2], "eval_prompts": 600},
}


def _annotate(text: str) -> dict[str, Any]:
    return {"strategy": mini.parse_strategy(text), "format": text.count(THINK_CLOSE) == 1}


def results_file(profile: str, name: str) -> Path:
    return results_dir() / "mini_training" / profile / f"{name}.json"


def _cached(path: Path, key: str) -> dict[str, Any] | None:
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved
    return None


def evaluation_summary(eval_path: Path) -> dict[str, Any]:
    """pass@1 (with CI), pass@k and the mini-world metrics of one evaluation file."""
    correct = evaluate.load_outcomes(eval_path)
    labels = evaluate.load_outcomes(eval_path, "label")
    strategies = [[label["strategy"] for label in row] for row in labels]
    flat = [s for row in strategies for s in row]
    dominant, share = metrics.dominant_strategy(flat)
    return {
        **evaluate.summarize(correct),
        "strategy_entropy": metrics.strategy_entropy(flat),
        "dominant_strategy": dominant,
        "dominant_share": share,
        "strategy_shares": metrics.strategy_shares(flat, include_unknown=True),
        "distinct_correct_strategies": float(metrics.distinct_correct_strategies(strategies, correct).mean()),
        "format_rate": float(np.mean([label["format"] for row in labels for label in row])),
        "mean_length_chars": float(evaluate.load_outcomes(eval_path, "length").mean()),
    }


def _evaluate_model(model_dir: Path, label: str, profile: str, eval_prompts: int) -> dict[str, Any]:
    items = evaluate.mini_items(profile, limit=eval_prompts)
    settings = evaluate.PROFILE_SETTINGS[profile]
    path = runs_dir() / "evals" / profile / f"{label}.json"
    if path.exists() and json.loads(path.read_text())["identity"]["model"] != str(model_dir):
        path.unlink()  # the model was retrained: its old evaluation is stale
    evaluate.evaluate(str(model_dir), items, benchmark="mini", profile=profile, settings=settings,
                      path=path, annotate=_annotate)
    return evaluation_summary(path)


def training_curve(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{"step": line["step"], **{k: line[k] for k in CURVE_KEYS if k in line}} for line in lines if "loss" in line]


def run_arm(profile: str, arm: str, seed: int, eval_prompts: int) -> dict[str, Any]:
    """Train (or resume, or reuse) one arm at one seed, evaluate it, and write its results file."""
    from dra import train

    recipe_path = PROJECT_ROOT / "recipes" / profile / f"{arm}.yaml"
    from dra.policy import policy_config

    key = config_key({"recipe": recipes.recipe(profile, arm), "seed": seed, "eval_prompts": eval_prompts,
                      "eval": evaluate.PROFILE_SETTINGS[profile].__dict__, "base_policy": policy_config(profile).key()})
    out = results_file(profile, f"{arm}_seed{seed}")
    if (saved := _cached(out, key)) is not None:
        return saved
    run_dir = runs_dir() / profile / arm / f"seed{seed}"
    recipe_args, dra_args, training_args = train.parse(
        ["--config", str(recipe_path), "--seed", str(seed), "--output_dir", str(run_dir)])[:3]
    if not (run_dir / "model.safetensors").exists():
        train.train(recipe_args, dra_args, training_args)
    result = {
        "key": key, "arm": arm, "seed": seed,
        "evaluation": _evaluate_model(run_dir, f"{arm}_seed{seed}", profile, eval_prompts),
        "curve": training_curve(run_dir),
        **provenance(profile, seed, recipe=str(recipe_path.relative_to(PROJECT_ROOT))),
    }
    write_json(out, result)
    return result


def run_base(profile: str, eval_prompts: int) -> dict[str, Any]:
    """Evaluate the SFT base policy (the step-0 reference of every arm)."""
    from dra import policy

    model_dir = policy.base_policy(profile)
    key = config_key({"base_policy": policy.policy_config(profile).key(), "eval_prompts": eval_prompts,
                      "eval": evaluate.PROFILE_SETTINGS[profile].__dict__})
    out = results_file(profile, "base")
    if (saved := _cached(out, key)) is not None:
        return saved
    result = {"key": key, "arm": "base", "seed": None,
              "evaluation": _evaluate_model(model_dir, "base", profile, eval_prompts), **provenance(profile)}
    write_json(out, result)
    return result


def run_experiment(profile: str, arms: Sequence[str] = ARMS, seeds: Sequence[int] | None = None,
                   base: bool = True) -> list[dict[str, Any]]:
    """The base evaluation and every (arm, seed), each read back from its results file when it is current."""
    settings = EXPERIMENT_PROFILES[profile]
    seeds = settings["seeds"] if seeds is None else seeds
    results = [run_base(profile, settings["eval_prompts"])] if base else []
    results += [run_arm(profile, arm, seed, settings["eval_prompts"]) for arm in arms for seed in seeds]
    return results


def load_results(profile: str) -> list[dict[str, Any]]:
    folder = results_dir() / "mini_training" / profile
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


METRICS = ("pass@1", "pass@8", "strategy_entropy", "dominant_share", "distinct_correct_strategies", "format_rate")


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
    order = ["base"] + [ARM_LABELS[a] for a in ARMS]
    return pd.DataFrame(rows).set_index("arm").reindex([a for a in order if a in {r["arm"] for r in rows}])


def paired_difference(results: Sequence[dict[str, Any]], arm: str, baseline: str, metric: str) -> dict[str, float]:
    """Mean over seeds of (arm - baseline) on `metric`, seed by seed, with a 95% t-interval."""
    by = {(r["arm"], r["seed"]): r["evaluation"][metric] for r in results
          if r["arm"] in (arm, baseline) and metric in r["evaluation"]}
    seeds = sorted({s for (a, s) in by if a == arm} & {s for (a, s) in by if a == baseline})
    diffs = np.array([by[(arm, s)] - by[(baseline, s)] for s in seeds], dtype=float)
    if len(diffs) < 2:
        return {"mean": float(diffs.mean()) if len(diffs) else float("nan"), "low": float("nan"), "high": float("nan"),
                "seeds": len(diffs)}
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return {"mean": float(diffs.mean()), "low": float(diffs.mean() - half), "high": float(diffs.mean() + half),
            "seeds": len(diffs)}


def verdict(difference: dict[str, float]) -> str:
    """How to read a paired difference: its 95% interval above 0, below 0, around 0, or not computable."""
    if difference["seeds"] < 2 or np.isnan(difference["low"]):
        return "too few seeds"
    if difference["low"] > 0:
        return "higher"
    if difference["high"] < 0:
        return "lower"
    return "no clear difference"


def overhead_benchmark(profile: str, steps: int = 8, embedders: Sequence[str] = ("minilm", "tfidf"),
                       seed: int = 0) -> pd.DataFrame:
    """Seconds per optimiser step of GRPO and of DRA-GRPO with each embedder, measured in one process.

    Each configuration trains `steps` steps from the same base policy and seed in a scratch directory; the
    first step (warm-up: model load, embedder load) is left out of the mean. Returns one row per
    configuration with the mean step time, the embedding time per step and the ratio to GRPO.
    """
    import tempfile

    from dra import train

    rows = []
    configs = [("grpo", None)] + [("dra_grpo", e) for e in embedders]
    for arm, embedder in configs:
        with tempfile.TemporaryDirectory() as scratch:
            argv = ["--config", str(PROJECT_ROOT / "recipes" / profile / f"{arm}.yaml"), "--output_dir", scratch,
                    "--max_steps", str(steps), "--seed", str(seed), "--save_strategy", "no"]
            if embedder:
                argv += ["--dra_embedder", embedder]
            recipe_args, dra_args, training_args = train.parse(argv)[:3]
            train.train(recipe_args, dra_args, training_args)
            curve = training_curve(Path(scratch))
        timed = curve[1:] if len(curve) > 1 else curve
        rows.append({
            "configuration": ARM_LABELS[arm] + (f" ({embedder})" if embedder else ""),
            "seconds_per_step": float(np.mean([c["step_time"] for c in timed])),
            "embed_seconds_per_step": float(np.mean([c.get("dra/embed_seconds", 0.0) for c in timed])),
            "steps_timed": len(timed),
        })
    table = pd.DataFrame(rows).set_index("configuration")
    grpo_step = table["seconds_per_step"].iloc[0]
    # Step times also differ because each arm samples different (and differently long) completions; the
    # embedding time is DRA's own cost, so both are reported.
    table["ratio_to_grpo"] = table["seconds_per_step"] / grpo_step
    table["embedding_share_of_grpo_step"] = table["embed_seconds_per_step"] / grpo_step
    return table


def curves_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Long frame (arm, seed, step, metric, value) of the training curves stored in the results files."""
    rows = [{"arm": ARM_LABELS.get(r["arm"], r["arm"]), "seed": r["seed"], "step": point["step"], "metric": k, "value": v}
            for r in results if "curve" in r for point in r["curve"] for k, v in point.items() if k != "step"]
    return pd.DataFrame(rows, columns=["arm", "seed", "step", "metric", "value"])


def main(argv: Sequence[str] | None = None) -> None:
    """python -m dra.experiment --profile mini [--arms grpo dra_grpo] [--seeds 0 1]: fill the results cache
    (e.g. from two single-threaded processes at once, each with its own arms or seeds)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="mini", choices=list(EXPERIMENT_PROFILES))
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--skip-base", action="store_true", help="leave the base policy's evaluation to another process")
    args = parser.parse_args(argv)
    for result in run_experiment(args.profile, args.arms, args.seeds, base=not args.skip_base):
        print(result["arm"], result["seed"], {k: round(v, 3) for k, v in result["evaluation"].items()
                                               if k in ("pass@1", "strategy_entropy", "distinct_correct_strategies")})


if __name__ == "__main__":
    main()
