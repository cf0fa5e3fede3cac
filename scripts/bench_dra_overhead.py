"""DRA's overhead per GRPO training step in the mini profile, for every way of embedding, interleaved in rounds.

Configurations (the mini recipes of `dra.recipes`, everything else equal): GRPO (no DRA); DRA-GRPO with MiniLM in
PyTorch float32 (the authors' precision, the recipe's setting) and with ``dra_embed_dtype: auto`` (bfloat16 on a
CPU with native bfloat16); MiniLM through ONNX Runtime and OpenVINO (float32, and OpenVINO bfloat16; skipped when
the `fast` extra is missing); the policy embedder (``dra_embedder: policy``, the control arm
``dra_grpo_policy_embed``); the oracle strategy partition (``dra_grpo_oracle``), whose embedding costs nothing:
its overhead is DRA's bookkeeping plus the benchmark's noise.

`dra.experiment.overhead_steps` trains each configuration `--steps` optimiser steps from the base policy in
`--rounds` rounds, in lockstep (step 1 of every configuration, then step 2 of every one, ..., one at a time, the
order rotating each round), after an untimed warm-up step each; all configurations of a round start from the
same seed and random state, so their first step samples the same batch. The table
(`dra.experiment.overhead_table`) gives seconds per step, the extra time per step as a share of GRPO's with a
95% interval over rounds, the ratio to GRPO in the same round (median, min, max over rounds), the same ratio on
step 1 alone, and the embedding seconds per step.

Embedding in a background thread while TRL computes the reference log-probs and the rewards was measured with
this script at commit 9efd065 (then the option ``dra_embed_async``; data/dra_overhead_background_mini.json): the
same weights, but no gain that held (within the noise at a load of 2.3-3.4; -9% +- 8% of a step in one run with
MiniLM float32 at a lower load, none with bfloat16), so the option was removed.

Writes data/dra_overhead_steps_mini.json with provenance, thread count and the load average before each step.

    nice -n 19 env OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 DRA_DATA_DIR=../shared/data \\
        .venv/bin/python scripts/bench_dra_overhead.py --rounds 8 --steps 4
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dra import experiment
from dra.config import results_dir
from dra.embed import native_bf16, resolve_dtype
from dra.io import package_versions, provenance, write_json

CONFIGURATIONS: dict[str, experiment.Configuration] = {
    "GRPO": ("grpo", {}),
    "MiniLM float32": ("dra_grpo", {"dra_embed_dtype": "float32"}),
    "MiniLM auto": ("dra_grpo", {"dra_embed_dtype": "auto"}),
    "MiniLM ONNX Runtime float32": ("dra_grpo", {"dra_embed_backend": "onnx"}),
    "MiniLM OpenVINO float32": ("dra_grpo", {"dra_embed_backend": "openvino"}),
    "MiniLM OpenVINO bfloat16": ("dra_grpo", {"dra_embed_backend": "openvino", "dra_embed_dtype": "bfloat16"}),
    "policy embedder": ("dra_grpo_policy_embed", {}),
    "oracle strategy": ("dra_grpo_oracle", {}),
}


def available(configurations: dict[str, experiment.Configuration]) -> dict[str, experiment.Configuration]:
    """Leave out the exported backends whose package is not installed (the `fast` extra)."""
    packages = {"onnx": "onnxruntime", "openvino": "openvino"}
    kept = {}
    for name, (arm, overrides) in configurations.items():
        package = packages.get(overrides.get("dra_embed_backend", "torch"))
        if package and importlib.util.find_spec(package) is None:
            print(f"skipping {name}: {package} is not installed")
            continue
        kept[name] = (arm, overrides)
    return kept


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="mini", choices=["smoke", "mini"])
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (each trains every configuration)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per configuration and round")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="a subset of the configurations")
    parser.add_argument("--out", type=Path, default=None, help="default: data/dra_overhead_steps_<profile>.json")
    args = parser.parse_args(argv)
    import torch

    chosen = CONFIGURATIONS if args.only is None else {n: CONFIGURATIONS[n] for n in args.only}
    configurations = available({"GRPO": CONFIGURATIONS["GRPO"], **chosen})
    start_uptime = uptime()
    print(f"{start_uptime}\ntorch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"native bf16: {native_bf16()} (dtype auto = {resolve_dtype('auto')})", flush=True)

    def report(run: list[dict[str, Any]]) -> None:
        for name in dict.fromkeys(r["configuration"] for r in run):
            mine = [r for r in run if r["configuration"] == name]
            print(f"round {mine[0]['round']} {name:<36} load {mine[0]['load']}  s/step "
                  + " ".join(f"{r['seconds']:.2f}" for r in mine)
                  + f"  embed {sum(r.get('dra/embed_seconds', 0.0) for r in mine) / len(mine):.3f}", flush=True)

    records = experiment.overhead_steps(args.profile, configurations, steps=args.steps, rounds=args.rounds,
                                        report=report)
    table = experiment.overhead_table(records)
    end_uptime = uptime()
    print(f"\n{end_uptime}")
    print(table[["seconds_per_step", "overhead", "overhead_ci_half_width", "ratio_to_grpo", "ratio_min", "ratio_max",
                 "first_step_ratio", "embed_seconds_per_step", "embedding_share_of_grpo_step"]].round(3).to_string())
    out = args.out or results_dir() / f"dra_overhead_steps_{args.profile}.json"
    write_json(out, {
        "provenance": provenance(args.profile, seed=0, script="scripts/bench_dra_overhead.py", rounds=args.rounds,
                                 steps=args.steps, torch_threads=torch.get_num_threads(),
                                 omp_num_threads=os.environ.get("OMP_NUM_THREADS"), native_bf16=native_bf16(),
                                 dtype_auto=resolve_dtype("auto"), uptime_before=start_uptime,
                                 uptime_after=end_uptime,
                                 backend_versions=package_versions(("onnxruntime", "openvino", "onnx"))),
        "configurations": {name: {"arm": arm, "overrides": overrides} for name, (arm, overrides) in configurations.items()},
        "table": table.reset_index().to_dict(orient="records"),
        "steps": records,
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
