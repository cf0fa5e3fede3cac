"""The training recipes: the paper's four arms at three profiles, written as YAML files TRL's parser reads.

The algorithm, the arms and the controls here, with each profile's part (`dra.profiles.Profile.recipe`), are
the single source of the YAML files under recipes/ (`python -m dra.recipes` rewrites them; a test checks the
committed files match). Paper settings: docs/paper_facts.md, section 5. Every TRL default that moved since the
authors' 2025-02 TRL is set explicitly: loss_type (TRL 1.16 default "dapo"), scale_rewards, beta (now 0.0;
the paper 0.04), temperature (now 1.0; the paper 0.7), vLLM placement (now colocate; the paper ran
a vLLM server on a 4th GPU) and vLLM importance-sampling correction (now on; the 2025 trainer had none).

Not expressible in TRL 1.16: max_prompt_length (removed); `max_prompt_tokens: 512` makes `dra.train` drop
longer prompts instead. GRPO and Dr. GRPO seeds are not stated by the paper; 42 is used for both.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from dra import profiles
from dra.config import PROJECT_ROOT
from dra.io import write_text
from dra.profiles import Profile
from dra.rewards import PAPER_REWARD_WEIGHTS

ARMS: dict[str, dict[str, Any]] = {
    "grpo": {"loss_type": "grpo", "scale_rewards": "group", "dra": False},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none", "dra": False},
    "dra_grpo": {"loss_type": "grpo", "scale_rewards": "group", "dra": True},
    "dra_dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none", "dra": True},
}
# Controls that say *why* DRA changes training (mini world only; see dra.kernels.reweight and docs in the
# pre-registration, experiments/mini_world_v2.md). Each is one of the paper's arms plus the keys below.
CONTROLS: dict[str, dict[str, Any]] = {
    # Dr. GRPO + DRA with weights divided by their group mean: no step-size change, only redistribution.
    "dra_dr_grpo_meannorm": {**ARMS["dra_dr_grpo"], "dra_weighting": "mean_normalized"},
    # Dr. GRPO with every reward times its group's mean DRA weight: the step-size change alone.
    "dr_grpo_scale": {**ARMS["dra_dr_grpo"], "dra_weighting": "group_mean"},
    # DRA-GRPO with the weights permuted within each group: same weights, detached from redundancy.
    "dra_grpo_shuffled": {**ARMS["dra_grpo"], "dra_weighting": "shuffled"},
    # GRPO with TRL's entropy bonus (coefficient chosen on validation): diversity by another means.
    "grpo_entropy": {**ARMS["grpo"], "entropy_coef": 0.01},
    # DRA-GRPO with the exact strategy partition: weight 1 / (size of the completion's strategy mode).
    "dra_grpo_oracle": {**ARMS["dra_grpo"], "dra_embedder": "oracle_strategy"},
    # DRA-GRPO with the policy's own hidden states as embeddings (dra.train, dra_embedder: policy): the cheapest
    # embedder. Exploratory, added after the pre-registration: not part of its comparisons.
    "dra_grpo_policy_embed": {**ARMS["dra_grpo"], "dra_embedder": "policy"},
    # The paper's reward (1 x format + 2 x cosine) in the mini world: shows that wrong answers get positive
    # totals, and where DRA then pushes (secondary; not part of the primary comparisons).
    "grpo_paper_reward": {**ARMS["grpo"], "reward_funcs": ["format", "cosine"],
                          "reward_weights": list(PAPER_REWARD_WEIGHTS)},
    "dra_grpo_paper_reward": {**ARMS["dra_grpo"], "reward_funcs": ["format", "cosine"],
                              "reward_weights": list(PAPER_REWARD_WEIGHTS)},
}

# Shared by every profile: the algorithm as the paper ran it.
ALGORITHM: dict[str, Any] = {
    "beta": 0.04,
    "temperature": 0.7,
    "top_p": 1.0,
    "num_iterations": 1,
    "epsilon": 0.2,
    "multi_objective_aggregation": "sum_then_normalize",
    "mask_truncated_completions": False,
    "vllm_importance_sampling_correction": False,
    "reward_funcs": ["format", "cosine"],
    "reward_weights": list(PAPER_REWARD_WEIGHTS),
    "dra_kernel": "graph_cut",
    "dra_scope": "group",
    "dra_negative_similarity": "keep",
    "dra_adjust_negative": True,
    "logging_steps": 1,
    "save_strategy": "steps",
    "report_to": "none",
    "log_completions": False,
}

# Dr. GRPO's authors saved every 25 steps, DRA-Dr. GRPO ran with seed 42, DRA-GRPO with 2025
# (docs/paper_facts.md, section 5).
PAPER_ARM_OVERRIDES = {"dra_grpo": {"seed": 2025}, "dr_grpo": {"save_steps": 25}, "dra_dr_grpo": {"save_steps": 25}}

# The authors' code took DRA's similarity over the completions one training process holds (its micro-batch of
# per_device_train_batch_size = 4, so prompt groups of 6 are split and mixed), not over each prompt's group
# (docs/paper_facts.md, section 3). These paper recipes reproduce that; the plain ones follow the formula.
AUTHORS_SCOPE: dict[str, Any] = {"dra_scope": "device"}

ACCELERATE_CONFIGS: dict[str, dict[str, Any]] = {
    "zero2": {  # the paper: DeepSpeed ZeRO-2, 3 training processes (vLLM server on the 4th GPU)
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "DEEPSPEED", "num_machines": 1,
        "num_processes": 3, "machine_rank": 0, "mixed_precision": "bf16", "main_training_function": "main",
        "deepspeed_config": {"zero_stage": 2, "offload_optimizer_device": "none", "offload_param_device": "none",
                             "zero3_init_flag": False, "deepspeed_multinode_launcher": "standard"},
        "rdzv_backend": "static", "same_network": True, "use_cpu": False,
    },
    "ddp": {
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU", "num_machines": 1,
        "num_processes": 3, "machine_rank": 0, "mixed_precision": "bf16", "main_training_function": "main",
        "rdzv_backend": "static", "same_network": True, "use_cpu": False,
    },
    "multinode": {  # 2 nodes x 4 GPUs; set machine_rank and main_process_ip on each node
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "DEEPSPEED", "num_machines": 2,
        "num_processes": 8, "machine_rank": 0, "main_process_ip": "NODE0_IP", "main_process_port": 29500,
        "mixed_precision": "bf16", "main_training_function": "main",
        "deepspeed_config": {"zero_stage": 2, "deepspeed_multinode_launcher": "standard"},
        "rdzv_backend": "c10d", "same_network": True, "use_cpu": False,
    },
}


def arms(profile: str | Profile) -> tuple[str, ...]:
    """The arms with a recipe at `profile`: the paper's four everywhere, the controls in the mini world."""
    return tuple(ARMS) + (tuple(CONTROLS) if profiles.get(profile).policy is not None else ())


def recipe(profile: str | Profile, arm: str, vllm_mode: str | None = None) -> dict[str, Any]:
    """The full recipe mapping of one arm at one profile (output_dir included): the algorithm, the profile's
    part (`dra.profiles.Profile.recipe`), then the arm's."""
    profile = profiles.get(profile)
    if arm not in arms(profile):
        raise ValueError(f"unknown recipe {profile.name}/{arm}; arms here: {list(arms(profile))}.")
    out = {**ALGORITHM, "profile": profile.name, **profile.recipe, **ARMS.get(arm, CONTROLS.get(arm, {}))}
    if profile.name == "paper":
        out.update(PAPER_ARM_OVERRIDES.get(arm, {}))
    if vllm_mode:
        out["vllm_mode"] = vllm_mode
        if vllm_mode == "colocate":  # 4 training processes, vLLM shares their GPUs
            out.update(num_processes=4, gradient_accumulation_steps=3, vllm_gpu_memory_utilization=0.3)
    suffix = f"_{vllm_mode}" if vllm_mode else ""
    out["output_dir"] = f"runs/{profile.name}/{arm}{suffix}"
    return out


def recipe_files() -> dict[str, dict[str, Any]]:
    """Relative path -> mapping, for every file under recipes/."""
    files = {f"recipes/{p}/{a}.yaml": recipe(p, a) for p in profiles.NAMES for a in arms(p)}
    files.update({f"recipes/paper/{a}_colocate.yaml": recipe("paper", a, "colocate") for a in ARMS})
    files.update({f"recipes/paper/{a}_authors_scope.yaml":
                  {**recipe("paper", a), **AUTHORS_SCOPE, "output_dir": f"runs/paper/{a}_authors_scope"}
                  for a, keys in ARMS.items() if keys["dra"]})
    files.update({f"recipes/accelerate/{name}.yaml": cfg for name, cfg in ACCELERATE_CONFIGS.items()})
    return files


HEADER = "# Generated by `python -m dra.recipes` from dra/recipes.py; edit the table there, not this file.\n"


def render(mapping: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(mapping, sort_keys=False)


def write_recipes(root: Path = PROJECT_ROOT) -> list[Path]:
    return [write_text(root / rel, render(mapping)) for rel, mapping in recipe_files().items()]


if __name__ == "__main__":
    for path in write_recipes(Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT):
        print(path)
