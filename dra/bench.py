"""Benchmarks that print figures: timing helpers and the SMI kernel benchmark of notebook 02.

Targets are stated as ratios measured in one run (same machine, same load), never as absolute times in
unit tests. Each timing is the minimum over repeats, the usual estimate of the undisturbed cost.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from dra.kernels import KERNELS, adjust_rewards


def best_time(fn: Callable[[], object], repeats: int = 30, warmup: int = 3) -> float:
    """Minimum wall time of `fn()` in seconds over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def adjust_rewards_pairwise_loop(rewards: np.ndarray, embeddings: np.ndarray, group_size: int) -> np.ndarray:
    """The proof-of-concept's way: a Python loop over groups and pairs, one cosine at a time (graph cut)."""
    out = np.empty(len(rewards))
    for start in range(0, len(rewards), group_size):
        for i in range(start, start + group_size):
            smi = 0.0
            for j in range(start, start + group_size):
                if j != i:
                    a, b = embeddings[i], embeddings[j]
                    smi += float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            out[i] = rewards[i] / (1.0 + smi)
    return out


def kernel_benchmark(
    n_groups: int = 512, group_size: int = 6, dim: int = 384, repeats: int = 50, loop_repeats: int = 3, seed: int = 0
) -> dict[str, float]:
    """Time `adjust_rewards` (float32, CPU) against a per-pair Python loop and against one copy of the input.

    Copying the (B*G, d) embeddings once is the memory-bound floor: the kernel has to read them at least once.
    Returns seconds per call and the ratios.
    """
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n_groups * group_size, dim)) + rng.normal(size=(1, dim))
    x = torch.tensor(emb, dtype=torch.float32)
    r = torch.tensor(rng.uniform(size=n_groups * group_size), dtype=torch.float32)
    result = {
        "n_groups": n_groups, "group_size": group_size, "dim": dim, "torch_threads": torch.get_num_threads(),
        "copy_s": best_time(lambda: x.clone(), repeats),
    }
    for kernel in KERNELS:
        result[f"{kernel}_s"] = best_time(lambda: adjust_rewards(r, x, group_size, kernel=kernel), repeats)
    x_np, r_np = x.numpy(), r.numpy()
    result["pairwise_loop_s"] = best_time(
        lambda: adjust_rewards_pairwise_loop(r_np, x_np, group_size), loop_repeats, warmup=0
    )
    result["speedup_vs_loop"] = result["pairwise_loop_s"] / result["graph_cut_s"]
    result["times_copy_floor"] = result["graph_cut_s"] / result["copy_s"]
    for kernel in KERNELS:
        result[f"{kernel}_vs_graph_cut"] = result[f"{kernel}_s"] / result["graph_cut_s"]
    return result
