"""DRA-GRPO and DRA-Dr. GRPO on upstream TRL (1.16): a drop-in GRPOTrainer, its config, and one entry point.

    trainer = DRAGRPOTrainer(model, reward_funcs, args=DRAGRPOConfig(...), train_dataset=...)   # in your script
    dra-train --config recipes/mini/dra_grpo.yaml                      # CPU, the mini world (= python -m dra.train)
    accelerate launch --config_file recipes/accelerate/zero2.yaml -m dra.train --config recipes/paper/dra_grpo.yaml
    python -m dra.train --config recipes/paper/dra_grpo.yaml --dry_run  # validate, print launch/steps/memory

How the adjustment hooks into TRL. TRL has no public hook between scoring and normalisation, so
`DRAGRPOTrainer` overrides `_calculate_rewards`, which returns the (N, F) per-function rewards already
gathered from all processes in rank order, consecutive groups of `num_generations` rows per prompt. Each
process embeds its own completion texts, the embeddings are gathered in the same rank order, and every
process computes the same diversity weights w = 1 / (1 + SMI) over each prompt's group (`dra_scope: group`,
the paper's formula), or over each process's own slice (`dra_scope: device`, the authors' code). A group can
be split across processes, which is why a reward function alone cannot do this.

DRA multiplies the *summed* reward R = sum_k weight_k r_k. Scaling each row of the per-function rewards by
w_i does exactly that under TRL's default `multi_objective_aggregation="sum_then_normalize"` (the sum is
linear). Under "normalize_then_sum" each function is normalised before the sum, which would undo the weight,
so `DRAGRPOConfig` refuses that setting. A consequence to know: TRL's per-function reward logs
(`rewards/<name>/mean`) and `reward` show the adjusted values. The trainer therefore also logs, for every arm,
`raw_rewards/<name>` and `raw_reward` (before DRA), and `dra/reward_before` / `dra/reward_after`.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer, TrlParser

from dra.embed import embedding_text
from dra.kernels import KERNELS, SCOPES, WEIGHTINGS, diversity_weights, group_advantages, reweight
from dra.mini import StrategyEmbedder, strict_accuracy_reward
from dra.rewards import accuracy_reward, clamped_cosine_reward, completion_text, cosine_reward, format_reward

REWARD_FUNCS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "cosine": cosine_reward,
    "clamped_cosine": clamped_cosine_reward,
    "accuracy": accuracy_reward,
    "strict_accuracy": strict_accuracy_reward,  # the mini world's primary reward: well-formed and correct
}
ORACLE_EMBEDDER = "oracle_strategy"  # the mini world's exact strategy partition (dra.mini.StrategyEmbedder)
TASKS: tuple[str, ...] = ("mini", "open_rs", "math_train")
MINI_BASE = "mini-base"  # model_name_or_path that means: the mini world's SFT base policy of this profile
METRICS_FILE = "metrics.jsonl"


def _check_trl_hook() -> None:
    """Fail at import, with the versions to use, when TRL's private reward hook no longer looks as expected."""
    import inspect

    import trl

    expected = ["self", "inputs", "prompts", "completions", "completion_ids_list"]
    found = list(inspect.signature(GRPOTrainer._calculate_rewards).parameters) if hasattr(
        GRPOTrainer, "_calculate_rewards") else None
    if found != expected:
        raise ImportError(
            f"dra.train overrides GRPOTrainer._calculate_rewards{tuple(expected[1:])}, which trl {trl.__version__} "
            f"{'does not have' if found is None else f'defines as {tuple(found[1:])}'}. Supported: trl "
            f"{SUPPORTED_TRL} (tested: 1.16.0); install it with pip install 'trl{SUPPORTED_TRL}'."
        )


SUPPORTED_TRL = ">=1.16.0,<1.17"
_check_trl_hook()


@dataclass
class DRAGRPOConfig(GRPOConfig):
    """TRL's GRPOConfig plus the DRA options (DRA is on by default): the config of `DRAGRPOTrainer`, and of
    every recipe (each key of a recipe YAML is a field here, or of `RecipeArguments`). Set `dra=False` for
    plain GRPO / Dr. GRPO with the same trainer and logs."""

    dra: bool = field(default=True, metadata={"help": "Apply the diversity-aware reward adjustment (default on)."})
    dra_kernel: str = field(default="graph_cut", metadata={"help": f"SMI kernel: {', '.join(KERNELS)}."})
    dra_scope: str = field(default="group", metadata={"help": "group (the paper's formula) or device (the authors' code)."})
    dra_device_batch_size: int | None = field(
        default=None, metadata={"help": "scope=device: completions per slice; default per_device_train_batch_size "
                                        "(the authors' per-GPU micro-batch)."}
    )
    dra_embedder: str = field(default="minilm", metadata={
        "help": f"minilm | jina | nomic | tfidf | a local path | {ORACLE_EMBEDDER} (mini world: exact strategy modes)."})
    dra_weighting: str = field(default="raw", metadata={
        "help": "raw (paper) | mean_normalized | group_mean (scale control) | shuffled: see dra.kernels.reweight."})
    dra_trust_remote_code: bool = field(default=False, metadata={"help": "Opt-in for jina/nomic remote code."})
    dra_embed_max_seq_length: int | None = field(default=None, metadata={"help": "Tokens embedded per completion."})
    dra_negative_similarity: str = field(default="keep", metadata={"help": "keep (paper) or clip."})
    dra_adjust_negative: bool = field(default=True, metadata={"help": "Also divide rewards <= 0 (paper)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate_dra()

    def validate_dra(self) -> None:
        """Raise ValueError on DRA options that a run would reject (also called by the dry run)."""
        if self.dra and self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "DRA multiplies the summed reward, but multi_objective_aggregation='normalize_then_sum' normalises "
                "each reward function before summing, which would undo the weight. Use 'sum_then_normalize' "
                "(TRL's default) with DRA, or dra=False."
            )
        if self.dra_kernel not in KERNELS:
            raise ValueError(f"dra_kernel must be one of {KERNELS}, got {self.dra_kernel!r}.")
        if self.dra_scope not in SCOPES:
            raise ValueError(f"dra_scope must be one of {SCOPES}, got {self.dra_scope!r}.")
        if self.dra_negative_similarity not in ("keep", "clip"):
            raise ValueError(f"dra_negative_similarity must be keep or clip, got {self.dra_negative_similarity!r}.")
        if self.dra_weighting not in WEIGHTINGS:
            raise ValueError(f"dra_weighting must be one of {WEIGHTINGS}, got {self.dra_weighting!r}.")


@dataclass
class RecipeArguments:
    """What to train on, and how the run is organised."""

    profile: str = field(default="mini", metadata={"help": "smoke | mini | paper (recorded with the results)."})
    task: str = field(default="mini", metadata={"help": f"Training prompts: {', '.join(TASKS)}."})
    model_name_or_path: str = field(default=MINI_BASE, metadata={"help": f"Hub id, local path, or {MINI_BASE}."})
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "cosine"],
                                    metadata={"help": f"Reward functions: {', '.join(REWARD_FUNCS)}."})
    max_train_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})
    max_prompt_tokens: int | None = field(
        default=512, metadata={"help": "Drop longer prompts (TRL 1.16 has no max_prompt_length; the paper used 512)."}
    )
    num_processes: int = field(default=1, metadata={"help": "Training processes (dry run and launch command)."})
    accelerate_config: str | None = field(default=None, metadata={"help": "accelerate config for the launch command."})
    dry_run: bool = field(default=False, metadata={"help": "Validate, print launch command, steps and memory; no training."})


def _embed_local(embedder, texts: list[str], device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(embedder.encode(texts, show_progress=False))).to(device)


class DRAGRPOTrainer(GRPOTrainer):
    """A drop-in for TRL's GRPOTrainer with the DRA reward adjustment in `_calculate_rewards` (module docstring).

        trainer = DRAGRPOTrainer(model, reward_funcs, args=DRAGRPOConfig(output_dir=..., ...), train_dataset=...)

    Everything GRPOTrainer takes works as there (your reward functions, datasets, `peft_config`, callbacks);
    `args` must be a `DRAGRPOConfig` (a plain GRPOConfig carries no DRA options, and DRA would silently be off).
    Extra keyword arguments: `embedder` (any object with ``encode(texts) -> (n, d)`` unit-norm array, e.g. a
    `dra.embed` embedder; built from `args.dra_embedder` when None) and `completion_metrics` (texts, examples ->
    {name: value}, logged each step, e.g. the mini world's strategy entropy).
    """

    def __init__(self, model, reward_funcs, args: "DRAGRPOConfig | None" = None, *rest, embedder=None,
                 completion_metrics: Callable[[list[str], list[Any]], dict[str, float]] | None = None, **kwargs):
        if args is None:
            name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", "model")
            args = DRAGRPOConfig(output_dir=f"{str(name).split('/')[-1]}-DRA-GRPO")
        if not isinstance(args, DRAGRPOConfig):
            raise TypeError(
                f"DRAGRPOTrainer needs args=DRAGRPOConfig(...) (GRPOConfig's fields plus dra_*), got "
                f"{type(args).__name__}: a plain GRPOConfig has no DRA options, so DRA would silently be off."
            )
        super().__init__(model, reward_funcs, args, *rest, **kwargs)
        self._embedder = embedder
        self.completion_metrics = completion_metrics

    @property
    def embedder(self):
        if self._embedder is None and self.args.dra_embedder == ORACLE_EMBEDDER:
            self._embedder = StrategyEmbedder()
        if self._embedder is None:
            from dra.embed import get_embedder

            options: dict[str, Any] = {}
            if self.args.dra_trust_remote_code:
                options["trust_remote_code"] = True
            if self.args.dra_embed_max_seq_length:
                options["max_seq_length"] = self.args.dra_embed_max_seq_length
            self._embedder = get_embedder(self.args.dra_embedder, **options)
        return self._embedder

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        texts = [completion_text(c) for c in completions]
        mode = "train" if self.model.training else "eval"
        # TRL logs the per-function rewards it gets back, i.e. after DRA; log the raw ones for every arm too,
        # so curves compare like with like.
        weights = self.reward_weights.to(rewards_per_func.device)
        for i, name in enumerate(self.reward_func_names):
            self._metrics[mode][f"raw_rewards/{name}"].append(torch.nanmean(rewards_per_func[:, i]).item())
        self._metrics[mode]["raw_reward"].append(torch.nanmean((rewards_per_func * weights).nansum(1)).item())
        if self.completion_metrics is not None:
            from accelerate.utils import gather_object

            examples = gather_object([{k: example.get(k) for k in ("answer", "home_strategy")} for example in inputs])
            for name, value in self.completion_metrics(gather_object(texts), examples).items():
                self._metrics[mode][name].append(value)
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        if not self.args.dra:
            for name, value in zero_variance_stats(rewards_per_func, rewards_per_func, weights, group_size,
                                                   self.args.scale_rewards).items():
                self._metrics[mode][name].append(value)
            return rewards_per_func
        start = time.perf_counter()
        # The authors embed every message of a completion joined by a space (identical to `texts` without tools).
        embedded = [embedding_text(c) for c in completions]
        embeddings = self.accelerator.gather(_embed_local(self.embedder, embedded, rewards_per_func.device))
        embed_seconds = time.perf_counter() - start
        # The shuffled control draws its permutation from (seed, step): reruns and resumes repeat it.
        generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.state.global_step)
        adjusted, stats = adjust_reward_rows(rewards_per_func, embeddings, weights, group_size, self.args,
                                             local_batch_size=self.args.per_device_train_batch_size,
                                             generator=generator)
        stats.update(zero_variance_stats(rewards_per_func, adjusted, weights, group_size, self.args.scale_rewards))
        stats["dra/embed_seconds"] = embed_seconds
        for name, value in stats.items():
            self._metrics[mode][name].append(value)
        return adjusted


def adjust_reward_rows(
    rewards_per_func: torch.Tensor,
    embeddings: torch.Tensor,
    reward_weights: torch.Tensor,
    group_size: int,
    options: "DRAGRPOConfig",
    local_batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scale each row of the gathered (N, F) per-function rewards by its diversity weight.

    The summed reward of row i becomes w_i * R_i (or stays R_i where R_i <= 0 and dra_adjust_negative is
    off), with w transformed per group by `dra_weighting` (`dra.kernels.reweight`; `generator` seeds the
    shuffled control). With `dra_scope="device"` the similarity is computed over consecutive slices of
    `dra_device_batch_size` completions, else `local_batch_size` (the trainer passes
    per_device_train_batch_size, the authors' per-GPU micro-batch). Returns the adjusted rows and the step's
    DRA statistics.
    """
    if options.dra_scope == "device":
        slice_size = options.dra_device_batch_size or local_batch_size
        if slice_size is None:
            raise ValueError("dra_scope='device' needs dra_device_batch_size or the per-process batch size.")
    else:
        slice_size = group_size
    if embeddings.shape[0] % group_size:
        raise ValueError(f"{embeddings.shape[0]} completions do not form groups of {group_size}.")
    weights = diversity_weights(embeddings.float(), slice_size, options.dra_kernel, options.dra_negative_similarity)
    summed = (rewards_per_func * reward_weights.unsqueeze(0)).nansum(dim=1)
    if not options.dra_adjust_negative:
        weights = torch.where(summed > 0, weights, torch.ones_like(weights))
    weights = reweight(weights, group_size, options.dra_weighting, generator)
    adjusted = rewards_per_func * weights.unsqueeze(1).to(rewards_per_func.dtype)
    # Mean off-diagonal cosine per group from the row sums alone (unit-norm rows): sum_ij s_ij = |sum_i u_i|^2.
    units = torch.nn.functional.normalize(embeddings.float(), dim=-1).view(-1, group_size, embeddings.shape[-1])
    g = group_size
    off_diagonal_mean = ((units.sum(1).pow(2).sum(-1) - g) / max(g * (g - 1), 1)).mean().item()
    stats = {
        "dra/weight_mean": weights.mean().item(),
        "dra/weight_std": weights.std().item() if weights.numel() > 1 else 0.0,
        "dra/weight_min": weights.min().item(),
        "dra/weight_max": weights.max().item(),
        "dra/group_similarity": off_diagonal_mean,
        "dra/reward_before": torch.nanmean(summed).item(),
        "dra/reward_after": torch.nanmean(summed * weights).item(),
    }
    return adjusted, stats


def zero_variance_stats(raw_rows: torch.Tensor, adjusted_rows: torch.Tensor, reward_weights: torch.Tensor,
                        group_size: int, scale_rewards: str) -> dict[str, float]:
    """How much of a step's signal comes from groups whose raw rewards are all equal (all right or all wrong).

    `groups/zero_variance_share`: the share of such groups; `groups/zero_variance_abs_advantage`: the mean
    |advantage| TRL gives their completions after any adjustment (0 without DRA, up to ~1 with DRA under std
    normalisation); `groups/abs_advantage`: the mean |advantage| over all completions (DRA under Dr. GRPO
    shrinks it by about the mean weight).
    """
    raw = (raw_rows * reward_weights.unsqueeze(0)).nansum(dim=1).view(-1, group_size)
    adjusted = (adjusted_rows * reward_weights.unsqueeze(0)).nansum(dim=1)
    scale = {"group": "group", "batch": "batch"}.get(str(scale_rewards), "none")
    advantages = group_advantages(adjusted, group_size, scale).view(-1, group_size).abs()
    flat = (raw.max(dim=1).values - raw.min(dim=1).values) == 0
    return {
        "groups/zero_variance_share": flat.float().mean().item(),
        "groups/zero_variance_abs_advantage": advantages[flat].mean().item() if flat.any() else 0.0,
        "groups/abs_advantage": advantages.mean().item(),
    }


class JsonlMetricsCallback(TrainerCallback):
    """Append every log line as JSON to `<output_dir>/metrics.jsonl` (main process only).

    On resume, lines from steps after the restored checkpoint are dropped first, so the file never holds
    two versions of one step.
    """

    def __init__(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.extra = extra or {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= state.global_step]
            from dra.io import write_text

            write_text(self.path, "".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {"step": state.global_step, "epoch": state.epoch, **self.extra, **logs}
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------- building a run


def build_dataset(recipe: RecipeArguments, tokenizer=None):
    """The training prompts of `recipe.task` as a datasets.Dataset with `prompt` (messages) and `answer`."""
    from datasets import Dataset

    if recipe.task == "mini":
        from dra import mini, policy

        config = policy.policy_config(recipe.profile)
        records = mini.prompt_records(config.splits().rl, config.system_prompt)
    elif recipe.task in ("open_rs", "math_train"):
        from dra import data
        from dra.mini import PAPER_SYSTEM_PROMPT

        rows = data.load(recipe.task)
        records = [{"prompt": [{"role": "system", "content": PAPER_SYSTEM_PROMPT},
                               {"role": "user", "content": r["problem"]}], "answer": r["answer"]} for r in rows]
    else:
        raise ValueError(f"unknown task {recipe.task!r}; choose one of {', '.join(TASKS)}.")
    if recipe.max_prompt_tokens and tokenizer is not None:
        records = [r for r in records if len(tokenizer.apply_chat_template(r["prompt"], tokenize=True,
                                                                            add_generation_prompt=True))
                   <= recipe.max_prompt_tokens]
    if recipe.max_train_prompts:
        records = records[: recipe.max_train_prompts]
    if not records:
        raise ValueError(f"task {recipe.task!r} left no training prompts (check max_prompt_tokens).")
    return Dataset.from_list(records)


def resolve_model(recipe: RecipeArguments) -> str:
    if recipe.model_name_or_path == MINI_BASE:
        from accelerate.state import AcceleratorState

        from dra.policy import base_policy

        path = str(base_policy(recipe.profile))
        # Training the base policy here (first use) leaves its Accelerator settings behind; GRPO makes its
        # own. The process group (PartialState) is kept.
        AcceleratorState._reset_state()
        return path
    return recipe.model_name_or_path


def mini_completion_metrics(texts: list[str], examples: list[dict[str, Any]]) -> dict[str, float]:
    """Accuracy, strategy entropy (bits), the dominant strategy's share and the share of completions that took
    their problem's home strategy, over the step's completions."""
    from dra import metrics, mini
    from dra.rewards import is_correct

    labels = [mini.parse_strategy(t) for t in texts]
    _, share = metrics.dominant_strategy(labels)
    accuracy = float(np.mean([is_correct(t, e["answer"]) for t, e in zip(texts, examples)])) if texts else float("nan")
    home = float(np.mean([label == e.get("home_strategy") for label, e in zip(labels, examples)])) if texts else float("nan")
    return {"mini/accuracy": accuracy, "mini/strategy_entropy": metrics.strategy_entropy(labels),
            "mini/dominant_share": share, "mini/home_share": home}


def build_trainer(recipe: RecipeArguments, training_args: DRAGRPOConfig,
                  embedder=None) -> DRAGRPOTrainer:
    from transformers import AutoTokenizer

    unknown = [name for name in recipe.reward_funcs if name not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}; choose from {', '.join(REWARD_FUNCS)}.")
    model = resolve_model(recipe)
    tokenizer = AutoTokenizer.from_pretrained(model)
    dataset = build_dataset(recipe, tokenizer)
    trainer = DRAGRPOTrainer(
        model=model,
        reward_funcs=[REWARD_FUNCS[name] for name in recipe.reward_funcs],
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        embedder=embedder,
        completion_metrics=mini_completion_metrics if recipe.task == "mini" else None,
    )
    trainer.add_callback(JsonlMetricsCallback(Path(training_args.output_dir) / METRICS_FILE,
                                              extra={"profile": recipe.profile, "seed": training_args.seed}))
    return trainer


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The checkpoint to resume from: the newest complete one (`dra.io.last_complete_checkpoint`)."""
    from dra.io import last_complete_checkpoint

    return last_complete_checkpoint(output_dir)


def train(recipe: RecipeArguments, training_args: DRAGRPOConfig, embedder=None) -> Path:
    """Train (resuming from the last checkpoint in output_dir, if any) and save the final model."""
    trainer = build_trainer(recipe, training_args, embedder=embedder)
    trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    trainer.save_model(training_args.output_dir)
    return Path(training_args.output_dir)


# ------------------------------------------------------------------------------------------------- dry run

# Architecture of the paper's base model (from its config.json), for estimates without network access.
KNOWN_ARCHITECTURES = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": {
        "hidden_size": 1536, "num_hidden_layers": 28, "intermediate_size": 8960, "vocab_size": 151936,
        "num_attention_heads": 12, "num_key_value_heads": 2, "tie_word_embeddings": False,
    },
}


def parameter_count(arch: dict[str, Any]) -> int:
    """Parameters of a Qwen2-style decoder from its config sizes (biases on q/k/v, RMSNorm weights)."""
    h, layers, inter, vocab = arch["hidden_size"], arch["num_hidden_layers"], arch["intermediate_size"], arch["vocab_size"]
    kv = h // arch["num_attention_heads"] * arch["num_key_value_heads"]
    attention = h * h + 2 * h * kv + h * h + h + 2 * kv
    mlp = 3 * h * inter
    per_layer = attention + mlp + 2 * h
    embeddings = vocab * h * (1 if arch.get("tie_word_embeddings") else 2)
    return layers * per_layer + embeddings + h


def memory_estimate_gb(arch: dict[str, Any], args: GRPOConfig, num_processes: int, zero_stage: int = 2) -> dict[str, float]:
    """Rough per-GPU memory of a training process (bf16 weights, fp32 Adam, ZeRO sharding, checkpointing).

    Counts weights, gradients, optimiser states, the reference model (beta > 0) and the dominant activations:
    with gradient checkpointing, one hidden state per layer per token plus the fp32 logits of one sequence
    batch. Ignores allocator fragmentation and temporary buffers, so treat it as a lower bound.
    """
    params = parameter_count(arch)
    shard = num_processes if zero_stage >= 1 else 1
    tokens = args.per_device_train_batch_size * (args.max_completion_length + 512)
    gb = 1024 ** 3
    parts = {
        "weights_bf16": 2 * params / gb,
        "gradients_bf16": 2 * params / (num_processes if zero_stage >= 2 else 1) / gb,
        "adam_fp32_master_and_moments": 12 * params / shard / gb,
        "reference_model_bf16": (2 * params / gb) if args.beta > 0 else 0.0,
        "checkpointed_activations_bf16": 2 * tokens * arch["hidden_size"] * arch["num_hidden_layers"] / gb,
        "logits_fp32": 4 * tokens * arch["vocab_size"] / gb,
    }
    parts["total"] = sum(parts.values())
    parts["parameters_billion"] = params / 1e9
    return parts


def dry_run_report(recipe: RecipeArguments, args: DRAGRPOConfig, config_path: str | None) -> dict[str, Any]:
    """Validate a recipe and describe the run: launch command, optimiser steps, prompts seen, memory."""
    args.validate_dra()
    completions_per_step = args.per_device_train_batch_size * recipe.num_processes * args.gradient_accumulation_steps
    if completions_per_step % args.num_generations:
        raise ValueError(
            f"{completions_per_step} completions per optimiser step (per-device batch x processes x accumulation) "
            f"is not a multiple of num_generations={args.num_generations}."
        )
    prompts_per_step = completions_per_step // args.num_generations
    steps = args.max_steps
    launch = ["accelerate", "launch"]
    if recipe.accelerate_config:
        launch += ["--config_file", recipe.accelerate_config]
    launch += ["--num_processes", str(recipe.num_processes), "-m", "dra.train"]
    if config_path:
        launch += ["--config", config_path]
    report: dict[str, Any] = {
        "launch": shlex.join(launch),
        "optimizer_steps": steps,
        "completions_per_step": completions_per_step,
        "prompts_per_step": prompts_per_step,
        "prompts_seen": steps * prompts_per_step,
        "loss_type": args.loss_type, "scale_rewards": args.scale_rewards, "beta": args.beta,
        "temperature": args.temperature, "dra": args.dra, "dra_scope": args.dra_scope,
    }
    if args.use_vllm and args.vllm_mode == "server":
        report["vllm_server"] = shlex.join([
            "trl", "vllm-serve", "--model", recipe.model_name_or_path,
            "--gpu_memory_utilization", str(args.vllm_gpu_memory_utilization),
            "--max_model_len", str(args.vllm_max_model_length or args.max_completion_length + 1024),
        ])
    arch = KNOWN_ARCHITECTURES.get(recipe.model_name_or_path)
    if arch:
        report["memory_gb_per_training_gpu"] = {k: round(v, 2) for k, v in memory_estimate_gb(arch, args, recipe.num_processes).items()}
    return report


def configs_from_mapping(mapping: dict[str, Any]) -> tuple[RecipeArguments, DRAGRPOConfig]:
    """The two argument objects of a run from a recipe mapping (as `dra.recipes.recipe` returns, plus any
    overrides): the same dataclasses the YAML files are parsed into, without writing or reading a file."""
    mapping = dict(mapping)
    if "use_cpu" not in mapping and not torch.cuda.is_available() and mapping.get("bf16"):
        raise ValueError("the recipe asks for bf16, which needs a GPU; set bf16: false to run on the CPU.")
    return TrlParser((RecipeArguments, DRAGRPOConfig)).parse_dict(mapping)


def parse(argv: Sequence[str] | None = None) -> tuple[RecipeArguments, DRAGRPOConfig, str | None]:
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = argv[argv.index("--config") + 1] if "--config" in argv else None
    if "--dry_run" in argv and not torch.cuda.is_available():
        # transformers refuses bf16 without a GPU unless told the run is on CPU; a dry run only validates.
        argv += ["--use_cpu", "true"]
    recipe, training_args = TrlParser((RecipeArguments, DRAGRPOConfig)).parse_args_and_config(argv)
    return recipe, training_args, config_path


def main(argv: Sequence[str] | None = None) -> None:
    recipe, training_args, config_path = parse(argv)
    if recipe.dry_run:
        print(json.dumps(dry_run_report(recipe, training_args, config_path), indent=2))
        return
    out = train(recipe, training_args)
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
