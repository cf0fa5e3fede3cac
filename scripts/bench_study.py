"""What notebook 01 (the inconsistency study) spends its time on, stage by stage, with cold and warm caches.

Runs the notebook's library calls in its order (figures left out) at a profile (default mini) and times each:
loading and grading the real-text groups, embedding them, their Spearman tests; sampling and grading the mini
world's groups from the base policy, embedding them, their Spearman tests; the effect-size tables (exact and
sampled permutation tests) and the per-prompt effects behind the figures.

Passes: ``cold`` with an empty cache directory (every embedding, sample and grade computed), then ``warm`` with
the cache the cold pass filled (what a rerun of the notebook does). The warm pass must reproduce the cold pass's
numbers exactly (every row of every table is compared), and with ``--committed`` the cold pass is compared with
the committed data/study_<profile>.json as well. ``--bf16`` also embeds with MiniLM in bfloat16
(``dtype="auto"`` on a CPU with native bfloat16) and reports how the study's numbers move against float32
(share of prompts with p < 0.05 and pooled rho, each row) beside the embedding time.

Writes data/bench_study_<profile>.json (stage seconds per pass, load averages, uptime, the checks).

    nice -n 19 env OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 DRA_DATA_DIR=../shared/data \\
        .venv/bin/python scripts/bench_study.py --profile mini --committed --bf16
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dra import policy, profiles, stats, study
from dra.config import results_dir
from dra.embed import get_embedder, native_bf16
from dra.io import provenance, read_json, write_json

SEED = 0


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def notebook_pass(profile: str, embedders: dict[str, Any], timer: study.StageTimer) -> dict[str, Any]:
    """The notebook's computations, timed by `timer`; returns its tables (sensitivity rows and effect rows)."""
    settings = profiles.get(profile).study.as_dict()
    real = {name: timer(f"real text: load and grade ({name})", lambda name=name: study.real_text_groups(
        name, settings["max_group"], max_prompts=settings["real_prompts"])) for name in ["qwen_math_cot_100", "game24"]}
    real_embeddings = {name: {e: timer(f"real text: embed ({name}, {e})",
                                       lambda sg=sg, e=e: study.embed_groups(sg.groups, embedders[e]))
                              for e in settings["real_embedders"]} for name, sg in real.items()}
    rows = []
    for name, sg in real.items():
        rows += timer("real text: Spearman tests", lambda sg=sg, name=name: study.sensitivity_table(
            sg, real_embeddings[name], settings["group_sizes"]))

    config = profiles.get(profile).mini_world.mini_policy()
    task = config.task
    policy_dir = timer("mini: base policy (cached)", lambda: policy.base_policy(config))
    records = task.records(task.splits().test[: settings["mini_prompts"]])
    mini_timer = study.StageTimer()
    mini_groups = study.policy_groups(str(policy_dir), [r["prompt"] for r in records], [r["answer"] for r in records],
                                      settings["max_group"], scale="mini", max_new_tokens=settings["mini_max_new_tokens"],
                                      seed=SEED, timer=mini_timer, batch_size=1024)
    for stage, seconds in mini_timer.seconds.items():
        timer.seconds[f"mini: {stage}"] = seconds
        timer.cpu_seconds[f"mini: {stage}"] = mini_timer.cpu_seconds[stage]
    mini_embeddings = {e: timer(f"mini: embed ({e})", lambda e=e: study.embed_groups(mini_groups.groups, embedders[e]))
                       for e in settings["mini_embedders"]}
    rows += timer("mini: Spearman tests", lambda: study.sensitivity_table(mini_groups, mini_embeddings,
                                                                         settings["group_sizes"]))
    effects = []
    for name, sg in real.items():
        effects += timer(f"effect sizes ({name})", lambda sg=sg, name=name: study.effect_table(
            sg, real_embeddings[name], settings["group_sizes"], controls=study.CONTROLS, seed=SEED))
    effects += timer("effect sizes (mini)", lambda: study.effect_table(mini_groups, mini_embeddings,
                                                                     settings["group_sizes"], seed=SEED))
    group_size = 6
    cases = [("qwen_math_cot_100", "paper"), ("qwen_math_cot_100", "length_only"), ("game24", "accuracy"),
             ("game24", "cosine"), ("mini", "paper"), ("mini", "accuracy")]
    scales = {**real, "mini": mini_groups}
    first = {**{n: settings["real_embedders"][0] for n in real}, "mini": settings["mini_embedders"][0]}
    vectors = {**{n: real_embeddings[n][first[n]] for n in real}, "mini": mini_embeddings[first["mini"]]}

    def figure_effects() -> None:
        for scale, reward in cases:
            sub = study.first_members(scales[scale], group_size)
            eff = study.group_effects(sub, vectors[scale][:, :group_size], reward, seed=SEED)
            stats.pool_effects(eff.rho, eff.null_variance, clusters=sub.clusters)

    timer("figures: per-prompt effects", figure_effects)
    return {"rows": rows, "effects": effects, "groups": {"mini": mini_groups, **real}}


def same_numbers(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[bool, int, str]:
    """Whether two lists of table rows hold the same values (NaN equal to NaN, floats compared exactly)."""
    if len(a) != len(b):
        return False, 0, f"{len(a)} rows vs {len(b)}"
    for k, (x, y) in enumerate(zip(a, b)):
        for key in x.keys() | y.keys():
            u, v = x.get(key), y.get(key)
            if isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v):
                continue
            if isinstance(u, (list, tuple)) and isinstance(v, (list, tuple)):
                u, v = [None if isinstance(t, float) and math.isnan(t) else t for t in u], \
                       [None if isinstance(t, float) and math.isnan(t) else t for t in v]
            if u != v:
                return False, k, f"row {k} {key}: {u!r} vs {v!r}"
    return True, len(a), ""


def plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as they are written to JSON and read back (numpy scalars to floats, NaN to None to NaN)."""
    import json

    import pandas as pd

    from dra.io import to_json

    back = json.loads(to_json(pd.DataFrame(rows).to_dict(orient="records")))  # as the notebook saves its tables
    return [{k: (float("nan") if v is None else v) for k, v in row.items()} for row in back]


def bf16_fidelity(profile: str, result: dict[str, Any], timer: study.StageTimer) -> dict[str, Any]:
    """The study's G = 6 rows with MiniLM in bfloat16 against float32, on the same groups (float32 read from the
    cache the passes filled)."""
    reference, candidate = get_embedder("minilm", dtype="float32"), get_embedder("minilm", dtype="auto")
    out: dict[str, Any] = {"candidate": candidate.identity(), "rows": []}
    for scale, sg in result["groups"].items():
        if scale not in ("mini", "qwen_math_cot_100", "game24"):
            continue
        embedded = {name: timer(f"bf16 check: embed ({scale}, {name})", lambda e=e: study.embed_groups(sg.groups, e))
                    for name, e in (("float32", reference), ("bfloat16", candidate))}
        sub = study.first_members(sg, 6)
        for reward in study.REWARDS:
            row = {"scale": scale, "reward": reward}
            for name, vectors in embedded.items():
                effect = study.effect_row(sub, vectors[:, :6], reward, seed=SEED)
                row[name] = {"share_spearman": effect["share_spearman"], "share_permutation": effect["share_permutation"],
                             "pooled_estimate": effect["pooled_estimate"]}
            _, p32 = study.run_study(sub.groups, sub.correct, embedded["float32"][:, :6], reward, clusters=sub.clusters)[1:]
            _, p16 = study.run_study(sub.groups, sub.correct, embedded["bfloat16"][:, :6], reward, clusters=sub.clusters)[1:]
            defined = ~np.isnan(p32) & ~np.isnan(p16)
            row["prompts_changing_side_of_0.05"] = int(((p32 < 0.05) != (p16 < 0.05))[defined].sum())
            row["prompts_defined"] = int(defined.sum())
            out["rows"].append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="mini", choices=list(profiles.NAMES))
    parser.add_argument("--passes", default="cold,warm", help="cold, warm or both (comma-separated)")
    parser.add_argument("--committed", action="store_true", help="compare the cold pass with data/study_<profile>.json")
    parser.add_argument("--bf16", action="store_true", help="also measure MiniLM bfloat16's effect on the numbers")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    settings = profiles.get(args.profile).study.as_dict()
    names = sorted(set(settings["real_embedders"] + settings["mini_embedders"]))
    embedders = {name: get_embedder(name) for name in names}  # the notebook's: float32, as the authors
    report: dict[str, Any] = {"uptime_before": uptime(), "passes": {}, "checks": {}}
    print(report["uptime_before"], f"torch threads {torch.get_num_threads()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["DRA_CACHE_DIR"] = scratch  # cold: nothing cached; warm: what the cold pass stored
        for name in args.passes.split(","):
            timer = study.StageTimer()
            before = load_now()
            results[name] = notebook_pass(args.profile, embedders, timer)
            total, cpu = sum(timer.seconds.values()), sum(timer.cpu_seconds.values())
            report["passes"][name] = {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds,
                                      "total_seconds": total, "total_cpu_seconds": cpu, "load_before": before,
                                      "load_after": load_now(), "uptime_after": uptime()}
            print(f"\n{name} pass: {total:.1f} s wall, {cpu:.1f} s CPU, load {before} -> {load_now()}")
            for stage, seconds in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
                print(f"  {seconds:8.1f} s  {timer.cpu_seconds[stage]:8.1f} s CPU  {100 * seconds / total:5.1f}%  {stage}")
        if "cold" in results and "warm" in results:
            for table in ("rows", "effects"):
                same, n, why = same_numbers(plain_rows(results["cold"][table]), plain_rows(results["warm"][table]))
                report["checks"][f"warm_equals_cold_{table}"] = {"identical": same, "rows": n, "first_difference": why}
                print(f"warm pass {table} identical to cold: {same} ({n} rows) {why}")
        if args.committed:
            committed = read_json(results_dir() / f"study_{args.profile}.json")["result"]
            first = results.get("cold") or next(iter(results.values()))
            for table in ("rows", "effects"):
                same, n, why = same_numbers(plain_rows(first[table]), plain_rows(committed[table]))
                report["checks"][f"committed_{table}"] = {"identical": same, "rows": n, "first_difference": why}
                print(f"{table} identical to the committed data/study_{args.profile}.json: {same} ({n} rows) {why}")
        if args.bf16:
            timer = study.StageTimer()
            report["bf16"] = bf16_fidelity(args.profile, next(iter(results.values())), timer)
            report["bf16"]["seconds"], report["bf16"]["cpu_seconds"] = timer.seconds, timer.cpu_seconds
            for row in report["bf16"]["rows"]:
                print(f"  bf16 vs fp32 {row['scale']:<18} {row['reward']:<12} share_t "
                      f"{row['float32']['share_spearman']:.4f} -> {row['bfloat16']['share_spearman']:.4f}, perm "
                      f"{row['float32']['share_permutation']:.4f} -> {row['bfloat16']['share_permutation']:.4f}, rho "
                      f"{row['float32']['pooled_estimate']:.4f} -> {row['bfloat16']['pooled_estimate']:.4f}, "
                      f"{row['prompts_changing_side_of_0.05']} of {row['prompts_defined']} prompts change side of 0.05")
            for stage, seconds in timer.seconds.items():
                print(f"  {seconds:8.1f} s  {stage}")
    report["uptime_after"] = uptime()
    print(report["uptime_after"])
    out = args.out or results_dir() / f"bench_study_{args.profile}.json"
    write_json(out, {"provenance": provenance(args.profile, SEED, script="scripts/bench_study.py",
                                              torch_threads=torch.get_num_threads(), native_bf16=native_bf16(),
                                              omp_num_threads=os.environ.get("OMP_NUM_THREADS")), **report})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
