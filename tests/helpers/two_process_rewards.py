"""Run under `torchrun --nproc_per_node 2`: DRAGRPOTrainer._calculate_rewards with groups split across ranks.

Each rank holds 9 of 18 completions (3 groups of 6), so the middle group is split across the two ranks.
TRL's own `_calculate_rewards` is replaced by what it does at its end, gathering the local per-function
rewards; the override under test then gathers embeddings and adjusts. Rank 0 writes the result as JSON.
"""

import json
import sys
from collections import defaultdict
from types import SimpleNamespace

import torch
from accelerate import Accelerator
from accelerate.utils import gather

sys.path.insert(0, sys.argv[2])  # tests/ for the shared fixtures
from trainer_fixtures import HashingEmbedder, all_completions, all_rewards_per_func  # noqa: E402
from trl import GRPOTrainer  # noqa: E402

from dra.train import DRAGRPOConfig, DRAGRPOTrainer  # noqa: E402


def main(out_path: str) -> None:
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    completions = all_completions()
    rewards = all_rewards_per_func()
    per_rank = len(completions) // world
    local = slice(rank * per_rank, (rank + 1) * per_rank)
    GRPOTrainer._calculate_rewards = lambda self, inputs, prompts, comps, ids: gather(rewards[local].clone())
    result = {"world": world, "local": per_rank}
    for scope in ("group", "device"):
        trainer = object.__new__(DRAGRPOTrainer)
        trainer.__dict__.update(
            accelerator=accelerator, _embedder=HashingEmbedder(), _dra_batch=None,
            completion_metrics=None, model=SimpleNamespace(training=True), num_generations=6,
            reward_weights=torch.tensor([1.0, 2.0]), reward_func_names=["format_reward", "cosine_reward"],
            _metrics={"train": defaultdict(list)},
            # device scope slices by per_device_train_batch_size: here each rank's 9 completions
            args=DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, dra_scope=scope, seed=0,
                               per_device_train_batch_size=per_rank, num_generations=6,
                               generation_batch_size=per_rank * world),
            state=SimpleNamespace(global_step=0),
        )
        result[scope] = trainer._calculate_rewards(None, [None] * per_rank, completions[local], None).tolist()
    if accelerator.is_main_process:
        with open(out_path, "w") as handle:
            json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1])
