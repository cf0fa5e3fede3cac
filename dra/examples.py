"""Worked examples of the DRA kernel: the public proof-of-concept group and small synthetic groups.

Synthetic embeddings stand in for sentence embeddings here so that every number in notebook 02 is exact and
reproducible; `shared` adds a common direction, as real sentence embeddings of texts on one topic have.
"""

from __future__ import annotations

import numpy as np

# What the public CPU proof-of-concept note (PAPER.md section 6) claims for its group. Quoted to be checked.
POC_CLAIMS = {
    "grpo_advantage_correct": 0.436,
    "grpo_advantage_wrong": -3.055,
    "dra_reward_clone": 0.103,
    "dra_reward_path_c": 0.376,
    "dra_advantage_clone": -0.34,
    "dra_advantage_path_c": 2.999,
}


def poc_group() -> tuple[np.ndarray, np.ndarray]:
    """The PoC's group of 8: rewards [1,1,1,1,1,1,0,1] and 16-d embeddings [A x6, B, C], drawn as it describes.

    np.random.seed(42); base_A = randn(16); six clones base_A + 0.05 randn(16), one after another; then
    path_B = randn(16) and path_C = randn(16).
    """
    np.random.seed(42)
    base_a = np.random.randn(16)
    clones = [base_a + 0.05 * np.random.randn(16) for _ in range(6)]
    path_b = np.random.randn(16)
    path_c = np.random.randn(16)
    rewards = np.array([1, 1, 1, 1, 1, 1, 0, 1], dtype=float)
    return rewards, np.stack([*clones, path_b, path_c])


def zscore_population(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """The PoC's normalisation: numpy's population std (ddof=0) plus 1e-8; TRL uses the unbiased std + 1e-4."""
    return (x - x.mean()) / (x.std() + eps)


def clustered_group(
    cluster_sizes: list[int], dim: int = 64, spread: float = 0.15, shared: float = 0.0, seed: int = 0
) -> np.ndarray:
    """One group whose completions fall into modes of the given sizes: mode centres are independent Gaussian
    directions, members are centre + spread * noise. Returns (sum(cluster_sizes), dim) embeddings."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    rows = []
    for size in cluster_sizes:
        centre = rng.normal(size=dim) + shared * common
        rows.extend(centre + spread * rng.normal(size=dim) for _ in range(size))
    return np.stack(rows)
