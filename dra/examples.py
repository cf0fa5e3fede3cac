"""Worked examples of the DRA kernel: the public proof-of-concept group, small synthetic groups, and the paper's
reward on all-wrong groups of real completions (notebook 02).

Synthetic embeddings stand in for sentence embeddings where every number in notebook 02 should be exact and
reproducible; `shared` adds a common direction, as real sentence embeddings of texts on one topic have.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import dra
from dra.data import load
from dra.rewards import THINK_CLOSE, final_answer, is_correct, paper_reward, well_formatted

# What the public CPU proof-of-concept note claims for its group (docs/paper_facts.md, section 9). Quoted to be
# checked.
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


# ------------------------------------------------------------- the paper's reward on wrong answers (notebook 02)

FILLER = "Let me work through this step by step and check each intermediate result. "


def formatted_completion(answer: str, length: int) -> str:
    """A completion of exactly `length` characters in the paper's format that boxes `answer`:
    ``<think>\\n`` + filler reasoning + ``\\n</think>\\n`` + ``<answer> \\boxed{answer} </answer>``."""
    head, tail = "<think>\n", f"{THINK_CLOSE}<answer> \\boxed{{{answer}}} </answer>"
    room = length - len(head) - len(tail)
    if room < 1:
        raise ValueError(f"length must be at least {len(head) + len(tail) + 1} to hold the format, got {length}.")
    return head + (FILLER * (room // len(FILLER) + 1))[:room] + tail


def paper_totals(lengths: Sequence[int], gold: str = "4", wrong: str = "5") -> dict[str, list[float]]:
    """The paper's total reward (1 x format + 2 x cosine, `dra.rewards.paper_reward`) of a well-formatted correct
    and a well-formatted wrong completion of each length in characters."""
    def totals(answer: str) -> list[float]:
        texts = [formatted_completion(answer, n) for n in lengths]
        return paper_reward(texts, answer=[gold] * len(texts))

    return {"length": list(lengths), "correct": totals(gold), "wrong": totals(wrong)}


def as_r1_format(text: str) -> str:
    """`text` as DeepSeek-R1-Distill lays a completion out (reasoning, ``\\n</think>\\n``, answer): the closing tag
    replaces the last paragraph break, so the final paragraph (which states and boxes the answer) follows it.
    The text grows by 8 characters and the paper's format reward becomes 1; words and answer are unchanged."""
    head, sep, tail = text.rpartition("\n\n")
    return head + THINK_CLOSE + tail if sep else text + THINK_CLOSE


def all_wrong_groups(group_size: int = 6) -> list[dict[str, Any]]:
    """The prompts of the stored Qwen2.5-Math completions (qwen_math_cot_100) whose first `group_size`
    completions `dra.rewards.is_correct` grades all wrong, with each completion's boxed answer, as stored
    and in the R1 layout (`as_r1_format`), and how many stored completions already contain the closing tag."""
    groups = []
    for index, record in enumerate(load("qwen_math_cot_100")):
        texts = record["completions"][:group_size]
        if not any(is_correct(t, record["answer"]) for t in texts):
            groups.append({"index": index, "gold": record["answer"], "answers": [final_answer(t) for t in texts],
                           "texts": texts, "r1_texts": [as_r1_format(t) for t in texts],
                           "with_closing_tag": sum(well_formatted(t) for t in texts)})
    return groups


def advantage_table(rewards: np.ndarray, embeddings: np.ndarray, group_size: int) -> dict[str, np.ndarray]:
    """Per completion of one or more groups: the total reward, the DRA weight and adjusted reward, and the
    advantages of GRPO, DRA-GRPO (also with adjust_negative=False), Dr. GRPO and DRA-Dr. GRPO."""
    adjusted = dra.adjust_rewards(rewards, embeddings, group_size)
    positive_only = dra.adjust_rewards(rewards, embeddings, group_size, adjust_negative=False)
    return {
        "total reward": rewards,
        "DRA weight": dra.diversity_weights(embeddings, group_size),
        "DRA reward": adjusted,
        "GRPO adv": dra.group_advantages(rewards, group_size),
        "DRA-GRPO adv": dra.group_advantages(adjusted, group_size),
        "DRA-GRPO adv, adjust_negative=False": dra.group_advantages(positive_only, group_size),
        "Dr. GRPO adv": dra.group_advantages(rewards, group_size, scale="none"),
        "DRA-Dr. GRPO adv": dra.group_advantages(adjusted, group_size, scale="none"),
    }
