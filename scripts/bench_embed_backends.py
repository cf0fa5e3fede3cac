"""Embedding backends for DRA on the CPU: speed, fidelity to PyTorch float32, padding, the policy embedder, and
the embedding overhead per GRPO step each implies.

Candidates: all-MiniLM-L6-v2 through `dra.embed.get_embedder` with PyTorch float32 (the authors' precision: the
reference), PyTorch bfloat16, ONNX Runtime float32 and dynamic int8, OpenVINO float32 and bfloat16 (skipped when
their packages, the `fast` extra, are missing). The default embedder (``dtype="auto"``) is whichever of these it
resolves to on this machine.

1. Speed, interleaved in rounds in one process (A, B, C, A, B, C, ...), median seconds per call:
   ``mini``: 48 mini-world completions per call (8 random problems x 6 completions with uniformly drawn
   strategies, a quarter of them with an arithmetic slip; a fresh set each round): one GRPO step's DRA
   embedding in the mini profile, repeats within a group included (embedded once);
   ``real``: 48 distinct Qwen2.5-Math completions per call (qwen_math_cot_100, a different 8 prompts x 6 each
   round), most of them cut at 256 tokens.
2. Padding: the PyTorch float32 model run batch by batch on the real texts in their given order and sorted by
   token length (sentence-transformers' encode sorts by characters; the exported and policy embedders by tokens).
3. Fidelity against PyTorch float32: per-text cosine, and DRA weights (`dra.diversity_weights`, groups of 6)
   relative to the float32 ones, on mini-world groups and on real groups (first 6 completions per prompt).
4. Policy embedder (`dra.embed.PolicyEmbedder`) on the mini base policy (when it is trained, in
   $DRA_RUNS_DIR): its speed is part of the mini-world rounds; here, how well it separates strategies.
5. Overhead per step: median embedding seconds per 48 mini completions over the GRPO step time in
   data/dra_overhead_mini.json (measured there with the same 2 cores; compare thread counts).

6. ``--parts emulated`` (separately, into data/bench_embed_bf16_emulated.json): PyTorch float32 vs bfloat16 with
   oneDNN capped below native bfloat16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI, AVX2), one process per cap.

Texts/s counts all 48 texts of a call (repeats included, as the trainer hands them over); tokens/s counts the
tokens embedded (distinct texts, after truncation). Load averages are recorded before and after each part.
Writes data/bench_embed_backends.json (with provenance).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 DRA_DATA_DIR=../shared/data DRA_RUNS_DIR=runs \\
        .venv/bin/python scripts/bench_embed_backends.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dra import diversity_weights, mini, policy, profiles
from dra.config import results_dir, runs_dir
from dra.data import load
from dra.embed import Embedder, PolicyEmbedder, get_embedder, native_bf16
from dra.io import package_versions
from dra.reports import NESTED, load_result, result_path, save_result

GROUP = 6
PER_CALL = 48  # 8 prompts x G = 6: one mini-profile GRPO step
MINI_TASK = profiles.get("mini").mini_policy().task  # the mini profile's RL prompts stand in for a GRPO step's
BATCH_SIZE = 32  # what the trainer's encode uses
SLIP = 0.25  # share of mini completions with a slip in their final result
CANDIDATES: dict[str, dict[str, Any]] = {
    "torch float32": {"dtype": "float32"},
    "torch bfloat16": {"dtype": "bfloat16"},
    "onnx float32": {"backend": "onnx"},
    "onnx int8": {"backend": "onnx", "quantize": "int8"},
    "openvino float32": {"backend": "openvino", "dtype": "float32"},
    "openvino bfloat16": {"backend": "openvino", "dtype": "bfloat16"},
}
REFERENCE = "torch float32"
POLICY = "policy embedder"  # PolicyEmbedder on the mini base policy: mini-world speed only


def load_embedders(names: list[str]) -> dict[str, Embedder]:
    embedders = {}
    for name in names:
        try:
            embedders[name] = get_embedder("minilm", **CANDIDATES[name])
        except ImportError as err:
            print(f"skipping {name}: {err}")
    return embedders


def with_slip(text: str, rng: random.Random) -> str:
    """`text` with the last digit of its final result changed, in the last step and in the box alike: the same
    reasoning path with a different answer (an arithmetic slip)."""
    steps, answer = text.rsplit("\n</think>\n", 1)
    result = steps.rsplit("=", 1)[1]
    slipped = result[:-1] + str((int(result[-1]) + rng.randint(1, 9)) % 10)
    return (steps[: len(steps) - len(result)] + slipped + "\n</think>\n"
            + answer.replace(f"\\boxed{{{result}}}", f"\\boxed{{{slipped}}}"))


def mini_texts(rng: random.Random, n: int) -> list[str]:
    """n // GROUP mini-world groups: a random RL problem each, GROUP completions with uniformly drawn strategies,
    each with a slip in its final result with probability SLIP (as a GRPO step's samples: repeats within a group
    happen)."""
    problems = MINI_TASK.splits().rl
    texts = []
    for problem in rng.sample(problems, n // GROUP):
        for strategy in rng.choices(mini.STRATEGIES, k=GROUP):
            text = mini.completion(problem, strategy)
            texts.append(with_slip(text, rng) if rng.random() < SLIP else text)
    return texts


def real_groups() -> list[list[str]]:
    return [r["completions"][:GROUP] for r in load("qwen_math_cot_100")]


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def interleaved(calls: dict[str, Callable[[list[str]], Any]], sets: list[list[str]]) -> dict[str, list[float]]:
    """Seconds of each call on each set, in rounds: every call runs on set r before any runs on set r + 1."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for texts in sets:
        for name, call in calls.items():
            start = time.perf_counter()
            call(texts)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def speed(embedders: dict[str, Embedder], sets: list[list[str]]) -> dict[str, Any]:
    """Median seconds per call of each embedder on the same sets, interleaved; tokens are each embedder's own
    (``last_stats.n_tokens``: distinct texts, after truncation, with its tokenizer)."""
    for embedder in embedders.values():  # warm-up: threads, allocators, first-call paths
        embedder.encode(sets[0], batch_size=BATCH_SIZE, show_progress=False)
    tokens: dict[str, list[int]] = {name: [] for name in embedders}

    def call(name: str, texts: list[str]) -> None:
        embedders[name].encode(texts, batch_size=BATCH_SIZE, show_progress=False)
        tokens[name].append(embedders[name].last_stats.n_tokens)

    before = load_now()
    seconds = interleaved({name: (lambda t, n=name: call(n, t)) for name in embedders}, sets[1:])
    reference = statistics.median(seconds[REFERENCE])
    rows = {}
    for name, values in seconds.items():
        median = statistics.median(values)
        rows[name] = {"median_seconds": median, "min_seconds": min(values), "max_seconds": max(values),
                      "median_tokens": statistics.median(tokens[name]), "texts_per_s": PER_CALL / median,
                      "tokens_per_s": sum(tokens[name]) / sum(values), "speedup_vs_torch_float32": reference / median}
    return {"texts_per_call": PER_CALL, "median_distinct_per_call": statistics.median(len(set(t)) for t in sets[1:]),
            "rounds": len(sets) - 1, "load_before": before, "load_after": load_now(), "backends": rows}


def padding(model, sets: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """The PyTorch model batch by batch on each set, in the given order vs sorted by token length."""
    rows = {}
    for label, texts in sets.items():
        lengths = np.array([len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]])
        orders = {"given order": np.arange(len(texts)), "sorted by length": np.argsort(-lengths, kind="stable")}
        before = load_now()
        seconds = interleaved({name: (lambda _, o=order: run_batches(model, texts, o)) for name, order in orders.items()},
                              [texts] * rounds)
        rows[label] = {"n_texts": len(texts), "tokens": int(lengths.sum()), "load_before": before, "load_after": load_now(),
                       "orders": {name: {"padded_positions": run_batches(model, texts, order),
                                         "median_seconds": statistics.median(seconds[name])}
                                  for name, order in orders.items()}}
    return {"batch_size": BATCH_SIZE, "rounds": rounds, "sets": rows}


def run_batches(model, texts: list[str], order: np.ndarray) -> int:
    """Embed `texts` in `order`, BATCH_SIZE at a time, with the model's forward; returns the padded positions."""
    import torch

    positions = 0
    with torch.inference_mode():
        for start in range(0, len(order), BATCH_SIZE):
            features = model.preprocess([texts[i] for i in order[start:start + BATCH_SIZE]])
            model(features)
            positions += int(features["attention_mask"].numel())
    return positions


def fidelity(embedders: dict[str, Embedder], groups: list[list[str]]) -> dict[str, Any]:
    flat = [t for g in groups for t in g]
    reference = embedders[REFERENCE].encode(flat, batch_size=BATCH_SIZE, show_progress=False)
    weights = np.asarray(diversity_weights(reference, GROUP), dtype=np.float64)
    rows = {}
    for name, embedder in embedders.items():
        if name == REFERENCE:
            continue
        vectors = embedder.encode(flat, batch_size=BATCH_SIZE, show_progress=False)
        cosine = np.sum(vectors * reference, axis=1)
        relative = np.abs(np.asarray(diversity_weights(vectors, GROUP), dtype=np.float64) / weights - 1)
        rows[name] = {"min_cosine": float(cosine.min()), "p01_cosine": float(np.quantile(cosine, 0.01)),
                      "max_rel_weight_diff": float(relative.max()), "p99_rel_weight_diff": float(np.quantile(relative, 0.99)),
                      "passes": bool(cosine.min() >= 0.99 and relative.max() <= 0.01)}
    return {"n_texts": len(flat), "n_groups": len(groups), "criteria": "cosine >= 0.99 per text and DRA weights "
            "within 1% relative, against torch float32", "backends": rows}


def policy_embedder(path: Path | None) -> PolicyEmbedder | None:
    if path is None or not (path / "config.json").is_file():
        return None
    return PolicyEmbedder(*policy.load_policy(path))


def policy_report(embedder: PolicyEmbedder | None, default: Embedder, path: Path | None) -> dict[str, Any]:
    if embedder is None:
        return {"skipped": f"no trained mini base policy ({path}); pass --policy or set DRA_RUNS_DIR"}
    model = embedder.model
    return {"policy": str(path), "policy_parameters": sum(p.numel() for p in model.parameters()),
            "identity": embedder.identity(), "dimension": model.config.hidden_size,
            "strategy_separation": {"policy": separation(embedder), "minilm default": separation(default)}}


def separation(embedder: Embedder, n_problems: int = 50) -> dict[str, float]:
    """Mean cosine, within one problem, between the four strategies' correct completions (different paths), and
    between a correct completion and the same strategy with a slip (same path): a diversity signal keeps the
    first clearly below the second."""
    rng = random.Random(1)
    different, same = [], []
    for problem in rng.sample(MINI_TASK.splits().rl, n_problems):
        texts = [mini.completion(problem, s) for s in mini.STRATEGIES]
        slipped = [with_slip(text, rng) for text in texts]
        vectors = embedder.encode(texts + slipped, show_progress=False)
        cosine = vectors @ vectors.T
        k = len(texts)
        different.append(cosine[:k, :k][np.triu_indices(k, 1)].mean())
        same.append(np.diag(cosine[:k, k:]).mean())
    return {"different_strategies": float(np.mean(different)), "same_strategy_with_slip": float(np.mean(same))}


def mini_policy_dir() -> Path | None:
    """The newest trained mini base policy under $DRA_RUNS_DIR (runs/mini_policy/mini-*/model)."""
    found = sorted((runs_dir() / "mini_policy").glob("mini-*/model/config.json"), key=lambda f: f.stat().st_mtime)
    return found[-1].parent if found else None


ISA_CAPS = (None, "AVX512_CORE_VNNI", "AVX2")  # ONEDNN_MAX_CPU_ISA: this CPU, then without bf16 / AVX-512


def without_native_bf16(rounds: int) -> dict[str, Any]:
    """PyTorch float32 vs bfloat16 MiniLM with oneDNN capped below native bfloat16 (ONEDNN_MAX_CPU_ISA), each
    cap in a fresh process (oneDNN reads it once): why dtype="auto" picks bfloat16 only where it is native."""
    import subprocess

    rows = {}
    for cap in ISA_CAPS:
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        env.update({"ONEDNN_MAX_CPU_ISA": cap} if cap else {})
        out = subprocess.run([sys.executable, __file__, "--dtype-timing", str(rounds)], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows[cap or "native"] = json.loads(out.strip().splitlines()[-1])
        print(f"  oneDNN ISA {cap or 'native'}: {rows[cap or 'native']}")
    return {"rounds": rounds, "texts_per_call": PER_CALL, "caps": rows}


def dtype_timing(rounds: int) -> dict[str, Any]:
    sets = [mini_texts(random.Random(2), PER_CALL) for _ in range(rounds + 1)]
    embedders = {d: get_embedder("minilm", dtype=d) for d in ("float32", "bfloat16")}
    for embedder in embedders.values():
        embedder.encode(sets[0], show_progress=False)
    seconds = interleaved({d: (lambda t, e=e: e.encode(t, show_progress=False)) for d, e in embedders.items()}, sets[1:])
    medians = {d: statistics.median(v) for d, v in seconds.items()}
    return {"float32_s": medians["float32"], "bfloat16_s": medians["bfloat16"],
            "bfloat16_speedup": medians["float32"] / medians["bfloat16"], "load": load_now()}


def overhead(step_speeds: dict[str, float], grpo_file: Path) -> dict[str, Any]:
    rows = load_result(path=grpo_file)
    grpo = next(r for r in rows["result"] if r["configuration"] == "GRPO")
    step = grpo["seconds_per_step"]
    return {"grpo_seconds_per_step": step, "grpo_source": str(grpo_file.name),
            "grpo_torch_threads": rows.get("hardware", {}).get("torch_threads"),
            "embedders": {name: {"embed_seconds_per_step": s, "share_of_grpo_step": s / step}
                          for name, s in step_speeds.items()},
            "paper": {"share": 90 / 84 - 1, "note": "84 -> 90 s per step on A100s (the paper's efficiency table, docs/paper_facts.md)"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds of the mini-world speed test")
    parser.add_argument("--real-rounds", type=int, default=5, help="timed rounds of the real-text speed test (0: skip it)")
    parser.add_argument("--fidelity-groups", type=int, default=100, help="groups of 6 per fidelity set")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave as is)")
    parser.add_argument("--policy", type=Path, default=None, help="a trained policy folder (default: newest mini)")
    parser.add_argument("--parts", default="speed,padding,fidelity,policy",
                        help="comma-separated parts to run (speed, padding, fidelity, policy, emulated); the "
                             "overhead is computed from speed")
    parser.add_argument("--out", type=Path, default=results_dir() / "bench_embed_backends.json")
    parser.add_argument("--dtype-timing", type=int, default=None, help=argparse.SUPPRESS)  # child of part "emulated"
    args = parser.parse_args(argv)
    profile = profiles.from_environment().name  # recorded in the results' provenance
    if args.dtype_timing is not None:
        print(json.dumps(dtype_timing(args.dtype_timing)))
        return 0

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(0)
    embedders = load_embedders(list(CANDIDATES))
    default = get_embedder("minilm")
    resolved = next((n for n, e in embedders.items() if e.identity() == default.identity()), "other")
    print(f"torch threads {torch.get_num_threads()}, native bf16: {native_bf16()}, default minilm = {resolved}, "
          f"load {load_now()}")

    parts = set(args.parts.split(","))
    results: dict[str, Any] = {"default": {"identity": default.identity(), "is": resolved}}
    mini_sets = [mini_texts(rng, PER_CALL) for _ in range(args.rounds + 1)]
    groups = real_groups()
    rng.shuffle(groups)
    per_set = PER_CALL // GROUP
    real_sets = [[t for g in groups[i * per_set:(i + 1) * per_set] for t in g] for i in range(args.real_rounds + 1)]
    policy_path = args.policy or mini_policy_dir()
    policy = policy_embedder(policy_path) if "policy" in parts else None
    if "speed" in parts:
        with_policy = {**embedders, **({POLICY: policy} if policy is not None else {})}
        results["speed_mini"] = speed(with_policy, mini_sets)
        print_speed("mini-world completions", results["speed_mini"])
        if args.real_rounds > 0:
            results["speed_real"] = speed(embedders, real_sets)
            print_speed("real Qwen2.5-Math completions", results["speed_real"])
    if "padding" in parts:
        mixed = [t for pair in zip(mini_sets[0][:PER_CALL // 2], real_sets[0]) for t in pair]
        results["padding"] = padding(embedders[REFERENCE].model, {"mini": mini_sets[0], "mini and real, alternating": mixed},
                                     rounds=5)
        for label, row in results["padding"]["sets"].items():
            print(f"padding, torch float32, {label}:", {k: f"{v['median_seconds']:.3f} s, {v['padded_positions']} positions"
                                                        for k, v in row["orders"].items()})
    if "fidelity" in parts:
        results["fidelity_mini"] = fidelity(embedders, [mini_texts(rng, GROUP) for _ in range(args.fidelity_groups)])
        results["fidelity_real"] = fidelity(embedders, groups[:args.fidelity_groups])
        for part in ("fidelity_mini", "fidelity_real"):
            print(part, {n: f"cos {r['min_cosine']:.4f}, weights {100 * r['max_rel_weight_diff']:.2f}%, "
                            f"{'pass' if r['passes'] else 'FAIL'}" for n, r in results[part]["backends"].items()})
    if "policy" in parts:
        results["policy"] = policy_report(policy, default, policy_path)
        print("policy embedder:", results["policy"].get("strategy_separation", results["policy"].get("skipped")))
    if "emulated" in parts:
        print("bfloat16 without native support (oneDNN capped):")
        results["bfloat16_without_native_support"] = without_native_bf16(rounds=5)
    step_speeds = {n: r["median_seconds"] for n, r in results.get("speed_mini", {}).get("backends", {}).items()}
    if step_speeds:
        results["overhead_per_step"] = overhead(step_speeds, result_path("dra_overhead", "mini"))
        for name, row in results["overhead_per_step"]["embedders"].items():
            print(f"  {name:<34} {row['embed_seconds_per_step']:6.3f} s/step = {100 * row['share_of_grpo_step']:5.1f}% of GRPO")

    path = save_result(args.out.stem, results, profile, 0, path=args.out, layout=NESTED,
                       script="scripts/bench_embed_backends.py", batch_size=BATCH_SIZE, native_bf16=native_bf16(),
                       backend_versions=package_versions(("onnxruntime", "openvino", "onnx")))
    print(f"wrote {path}")
    return 0


def print_speed(label: str, result: dict[str, Any]) -> None:
    print(f"{label}: {result['texts_per_call']} texts ({result['median_distinct_per_call']:.0f} distinct) per call, "
          f"{result['rounds']} rounds, load {result['load_before']} -> {result['load_after']}")
    for name, row in result["backends"].items():
        print(f"  {name:<18} {row['median_seconds']:7.3f} s  {row['median_tokens']:6.0f} tokens  {row['texts_per_s']:7.1f} texts/s  "
              f"{row['tokens_per_s']:8.0f} tokens/s  x{row['speedup_vs_torch_float32']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
