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

The policy embedder (`dra_embedder: policy`) embeds each completion by the policy's own hidden states: the mean
of its decoder's last hidden state (after the final norm, what the LM head reads; `dra.embed.decoder_of`) over the
completion's sampled tokens, read in the context of the prompt, exactly as TRL lays out its no-grad passes (prompt
left-padded, completion right-padded, chunks of the per-device batch size, TRL's autocast). When TRL already runs
such a pass over the policy before scoring (its old log-probs: with vLLM importance-sampling correction, TRL
1.16's default, or when generation and optimisation steps are misaligned, e.g. num_iterations > 1), the hidden
states are pooled from that pass through a forward hook and nothing extra runs; otherwise one extra batched
no-grad forward pass of the decoder (no LM head) runs on the policy. Left out: other layers (no mean of layers),
the prompt's own positions, and completion tokens that `mask_truncated_completions` masks (with that option on,
the extra pass embeds the truncated completion's tokens anyway). The reference model's pass is never reused: its
weights are not the policy's. Tested on one CPU process; under DeepSpeed ZeRO-3 every process runs the same number
of extra forward passes (same per-device batch), which ZeRO-3 needs, but that setup and FSDP are untested here.
With vLLM, generation runs in vLLM while the embedding pass runs on the training copy of the policy.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer, TrlParser

from dra import policy, profiles
from dra.config import PROJECT_ROOT
from dra.embed import BACKENDS as EMBED_BACKENDS
from dra.embed import DTYPES as EMBED_DTYPES
from dra.embed import HUB_MODELS, LOCAL_NAMES, decoder_of, embedding_text, get_embedder, masked_mean
from dra.io import BadFileError, last_complete_checkpoint, read_jsonl, to_json, write_text
from dra.kernels import ADVANTAGE_SCALES, KERNELS, SCOPES, WEIGHTINGS, group_advantages, reweight, scoped_weights
from dra.mini import StrategyEmbedder, strict_accuracy_reward
from dra.progress import label_training_progress
from dra.rewards import accuracy_reward, clamped_cosine_reward, completion_text, cosine_reward, format_reward
from dra.tasks import TRAINING_POOLS, MathTask, MiniTask

REWARD_FUNCS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "cosine": cosine_reward,
    "clamped_cosine": clamped_cosine_reward,
    "accuracy": accuracy_reward,
    "strict_accuracy": strict_accuracy_reward,  # the mini world's primary reward: well-formed and correct
}
ORACLE_EMBEDDER = "oracle_strategy"  # the mini world's exact strategy partition (dra.mini.StrategyEmbedder)
POLICY_EMBEDDER = "policy"  # the policy's own hidden states, pooled over each completion (module docstring)
TASKS: tuple[str, ...] = (MiniTask.name, *TRAINING_POOLS)  # what a recipe's `task` may name
MINI_BASE = "mini-base"  # model_name_or_path that means: the mini world's SFT base policy of this profile
METRICS_FILE = "metrics.jsonl"


# The private GRPOTrainer methods DRAGRPOTrainer overrides, with the leading parameters it relies on.
TRL_HOOKS: dict[str, list[str]] = {
    "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    "_generate": ["self", "prompts"],  # returns (prompt_ids, completion_ids, tool_mask, completions, ...)
    "_get_per_token_logps_and_entropies": ["self", "model", "input_ids", "attention_mask", "logits_to_keep",
                                           "batch_size"],
}


def _check_trl_hook() -> None:
    """Fail at import, with the versions to use, when TRL's private hooks no longer look as expected."""
    import inspect

    import trl

    for method, expected in TRL_HOOKS.items():
        found = list(inspect.signature(getattr(GRPOTrainer, method)).parameters) if hasattr(GRPOTrainer, method) else None
        if found is None or found[:len(expected)] != expected:
            raise ImportError(
                f"dra.train overrides GRPOTrainer.{method}{tuple(expected[1:])}, which trl {trl.__version__} "
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

    dra: bool = field(default=True, metadata={"help": "Apply the diversity-aware reward adjustment."})
    dra_kernel: str = field(default="graph_cut", metadata={"help": f"SMI kernel: {', '.join(KERNELS)}."})
    dra_scope: str = field(default="group", metadata={"help": "group (the paper's formula) or device (the authors' code)."})
    dra_device_batch_size: int | None = field(
        default=None, metadata={"help": "scope=device: completions per slice; default per_device_train_batch_size "
                                        "(the authors' per-GPU micro-batch)."}
    )
    dra_embedder: str = field(default="minilm", metadata={
        "help": f"minilm | jina | nomic | tfidf | a local path | {POLICY_EMBEDDER} (the policy's own hidden states) | "
                f"{ORACLE_EMBEDDER} (mini world: exact strategy modes)."})
    dra_weighting: str = field(default="raw", metadata={
        "help": "raw (paper) | mean_normalized | group_mean (scale control) | shuffled: see dra.kernels.reweight."})
    dra_trust_remote_code: bool = field(default=False, metadata={"help": "Opt-in for jina/nomic remote code."})
    dra_embed_max_seq_length: int | None = field(default=None, metadata={"help": "Tokens embedded per completion."})
    dra_embed_dtype: str = field(default="float32", metadata={
        "help": "Compute dtype of a transformer text embedder: float32 (the authors'), auto (bfloat16 on a CPU with "
                "native bfloat16, else float32), bfloat16, float16 (dra.embed.get_embedder's dtype)."})
    dra_embed_backend: str = field(default="torch", metadata={
        "help": "torch | onnx | openvino: how a transformer text embedder runs (the last two on the CPU, from the "
                "fast extra)."})
    dra_negative_similarity: str = field(default="keep", metadata={"help": "keep (paper) or clip."})
    dra_adjust_negative: bool = field(default=True, metadata={"help": "Also divide rewards <= 0 (paper)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = self.dra_problems()
        if problems:
            raise ValueError(" ".join(problems))

    def dra_problems(self) -> list[str]:
        """Every DRA option a run would reject, as messages (empty: the options are sound). The config refuses
        them when it is built; `recipe_problems` lists them with the recipe's other problems."""
        problems = [] if self.dra_kernel in KERNELS else [
            f"dra_kernel must be one of {', '.join(KERNELS)}; got {self.dra_kernel!r}."]
        for name, value, choices in (("dra_scope", self.dra_scope, SCOPES),
                                     ("dra_negative_similarity", self.dra_negative_similarity, ("keep", "clip")),
                                     ("dra_weighting", self.dra_weighting, WEIGHTINGS)):
            if value not in choices:
                problems.append(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
        if self.dra_scope != "device" and self.dra_device_batch_size is not None:
            problems.append("dra_device_batch_size only applies to dra_scope: device (the authors' per-process "
                            "slices); leave it unset for dra_scope: group.")
        for name, value, choices in (("dra_embed_dtype", self.dra_embed_dtype, EMBED_DTYPES),
                                     ("dra_embed_backend", self.dra_embed_backend, EMBED_BACKENDS)):
            if value not in choices:
                problems.append(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
        if self.dra_embedder == POLICY_EMBEDDER and self.dra_embed_max_seq_length is not None:
            problems.append("dra_embed_max_seq_length does not apply to dra_embedder: policy, which pools every sampled "
                            "completion token (max_completion_length already bounds them); leave it unset.")
        text_only = {"dra_embed_dtype": "float32", "dra_embed_backend": "torch"}
        changed = [name for name, default in text_only.items() if getattr(self, name) != default]
        if changed and self.dra_embedder in ("tfidf", ORACLE_EMBEDDER, POLICY_EMBEDDER):
            problems.append(f"{' and '.join(changed)} {'apply' if len(changed) > 1 else 'applies'} to transformer "
                            f"text embedders, not dra_embedder: {self.dra_embedder}; leave "
                            f"{'them at their defaults' if len(changed) > 1 else 'it at its default'}.")
        if self.dra and self.multi_objective_aggregation == "normalize_then_sum":
            problems.append("dra: true with multi_objective_aggregation: normalize_then_sum would undo the DRA weight "
                            "(each reward function is normalised before the sum); use sum_then_normalize (TRL's "
                            "default), or dra=False.")
        return problems

    def dra_slice_size(self) -> int | None:
        """Completions per similarity slice under dra_scope: device: dra_device_batch_size, by default the
        per-device batch (the authors' per-GPU micro-batch); None under dra_scope: group."""
        if self.dra_scope != "device":
            return None
        return self.dra_device_batch_size or self.per_device_train_batch_size


@dataclass
class RecipeArguments:
    """What to train on, and how the run is organised."""

    _argument_group_name = "recipe: what to train on and how the run is organised"  # its --help section

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


@dataclass(frozen=True)
class RunConfig:
    """One training run's configuration: the two argument objects a recipe is parsed into, and what set them.

    `mapping` (the recipe's options: its YAML file, or the dict `dra.recipes.recipe` returns) and `argv` (the
    command line's overrides) tell the batch checks which sizes were set rather than derived by GRPOConfig;
    `source` (the recipe file, if any) goes into the dry run's launch command. Made by `run_config` from a
    recipe mapping, or by `parse` from a YAML file and a command line (the CLI's path).
    """

    recipe: RecipeArguments
    args: DRAGRPOConfig
    mapping: Mapping[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    source: str | None = None

    def batch_geometry(self) -> dict[str, int]:
        """`batch_geometry` on the recipe's number of processes, from what the recipe set explicitly."""
        return batch_geometry(self.args, self.recipe.num_processes, self.mapping, self.argv)


def _embed_local(embedder, texts: list[str], device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(embedder.encode(texts, show_progress=False))).to(device)


@dataclass
class _GenerationBatch:
    """What DRA keeps between TRL's generation and its reward hook, for one generation batch of this process."""

    prompt_ids: list[list[int]]
    capture_policy: bool = False  # pool the policy's hidden states from TRL's own old-log-probs pass
    policy_vectors: list[torch.Tensor] | None = None  # pooled chunks captured from that pass


def _pool_completion_hook(chunks: list[torch.Tensor], logits_to_keep: int):
    """A forward hook (with kwargs) on a decoder that pools each call's last hidden state over its last
    `logits_to_keep` positions (the completion) where the call's attention mask is on, into `chunks`."""

    def hook(module, args, kwargs, output):
        mask = kwargs.get("attention_mask")
        if mask is None:
            raise RuntimeError("the policy's decoder was called without an attention_mask; cannot pool completions.")
        chunks.append(masked_mean(output.last_hidden_state[:, -logits_to_keep:], mask[:, -logits_to_keep:]))

    return hook


class DRAGRPOTrainer(GRPOTrainer):
    """A drop-in for TRL's GRPOTrainer with the DRA reward adjustment in `_calculate_rewards` (module docstring).

        trainer = DRAGRPOTrainer(model, reward_funcs, args=DRAGRPOConfig(output_dir=..., ...), train_dataset=...)

    Everything GRPOTrainer takes works as there (your reward functions, datasets, `peft_config`, callbacks);
    `args` must be a `DRAGRPOConfig` (a plain GRPOConfig carries no DRA options, and DRA would silently be off).
    Extra keyword arguments: `embedder` (any object with ``encode(texts) -> (n, d)`` unit-norm array, e.g. a
    `dra.embed` embedder; built from `args.dra_embedder` when None; with ``dra_embedder="policy"`` and no
    `embedder`, the policy's own hidden states are used, see `policy_embeddings`) and `completion_metrics`
    (texts, examples -> {name: value}, logged each step, e.g. the mini world's strategy entropy).
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
        self._dra_batch: _GenerationBatch | None = None

    @property
    def uses_policy_embeddings(self) -> bool:
        """Whether DRA embeds with the policy's hidden states (dra_embedder: policy and no `embedder` passed)."""
        return self._embedder is None and self.args.dra_embedder == POLICY_EMBEDDER

    @property
    def embedder(self):
        """The text embedder (None with the policy embedder, which is not a text embedder)."""
        if self.uses_policy_embeddings:
            return None
        if self._embedder is None and self.args.dra_embedder == ORACLE_EMBEDDER:
            self._embedder = StrategyEmbedder()
        if self._embedder is None:
            options: dict[str, Any] = {}
            if self.args.dra_trust_remote_code:
                options["trust_remote_code"] = True
            if self.args.dra_embed_max_seq_length:
                options["max_seq_length"] = self.args.dra_embed_max_seq_length
            if self.args.dra_embedder != "tfidf":
                options.update(dtype=self.args.dra_embed_dtype, backend=self.args.dra_embed_backend)
            self._embedder = get_embedder(self.args.dra_embedder, **options)
        return self._embedder

    # ---------------------------------------------------------------------------------- embedding the batch

    def _old_logps_pass_runs(self) -> bool:
        """Whether TRL 1.16 runs its no-grad old-log-probs pass over the policy before scoring (its own condition
        in `_generate_and_score_completions`)."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        return bool(self.args.gradient_accumulation_steps % generate_every != 0
                    or (self.use_vllm and self.vllm_importance_sampling_correction))

    def _generate(self, prompts):
        output = super()._generate(prompts)
        if not self.args.dra:
            return output
        batch = _GenerationBatch(prompt_ids=[list(ids) for ids in output[0]])
        if self.uses_policy_embeddings:
            # With mask_truncated_completions TRL's pass attends to no token of a truncated completion, which
            # leaves nothing to pool; the extra pass embeds those tokens instead.
            batch.capture_policy = self._old_logps_pass_runs() and not self.mask_truncated_completions
        self._dra_batch = batch
        return output

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           *args, **kwargs):
        batch = self._dra_batch
        if (batch is None or not batch.capture_policy or batch.policy_vectors is not None or model is not self.model
                or torch.is_grad_enabled()):
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                              batch_size, *args, **kwargs)
        # TRL's old-log-probs pass over the policy: the first no-grad call on self.model after generation (the
        # reference pass, which reuses self.model under PEFT with the adapter off, comes after it).
        chunks: list[torch.Tensor] = []
        handle = decoder_of(self.accelerator.unwrap_model(model)).register_forward_hook(
            _pool_completion_hook(chunks, logits_to_keep), with_kwargs=True)
        try:
            result = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                                batch_size, *args, **kwargs)
        finally:
            handle.remove()
        batch.policy_vectors = chunks
        return result

    def policy_embeddings(self, prompt_ids: Sequence[Sequence[int]],
                          completion_ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """(n, hidden) unit-norm float32 embeddings of completions by the policy's own hidden states.

        Each completion's sampled token ids follow its prompt's, laid out as TRL lays them out for its no-grad
        passes (prompt left-padded, completion right-padded, TRL's `pad` and ``pad_to_multiple_of``), run
        through the policy's decoder (`dra.embed.decoder_of`, no LM head) without gradients and under the
        accelerator's autocast; the last hidden state is averaged over the completion's tokens (padding and
        prompt excluded) and scaled to unit length. Less work than TRL's passes, same vectors: identical
        (prompt, completion) pairs, frequent within a group, run once, and the rest are sorted by length so
        each chunk pads only to its own longest sequence. The number of forward calls stays what chunks of the
        per-device batch size would give, the same on every process (DeepSpeed ZeRO-3 gathers the weights in
        every forward call, on all processes together).
        """
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import pad

        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts for {len(completion_ids)} completions; pass one prompt's "
                             "token ids per completion.")
        empty = [i for i, ids in enumerate(completion_ids) if len(ids) == 0]
        if empty:
            raise ValueError(f"{len(empty)} completion(s) have no tokens (first: index {empty[0]}); nothing to pool.")
        pad_id = self._tokenizer.pad_token_id  # as TRL pads (its pad token never enters the pooled positions)
        rows = [(tuple(p), tuple(c)) for p, c in zip(prompt_ids, completion_ids)]
        index: dict[tuple, int] = {}
        inverse = [index.setdefault(row, len(index)) for row in rows]
        chunk = self.args.per_device_train_batch_size if self.model.training else self.args.per_device_eval_batch_size
        n_calls = -(-len(rows) // chunk)
        unique = list(index)
        if len(unique) < n_calls:  # too few distinct rows to keep the number of calls: no deduplication
            unique, inverse = rows, list(range(len(rows)))

        def padded(values, side: str, ones: bool) -> torch.Tensor:
            tensors = [torch.ones(len(v), dtype=torch.long) if ones else torch.tensor(v, dtype=torch.long)
                       for v in values]
            return pad(tensors, padding_value=0 if ones else pad_id, padding_side=side,
                       pad_to_multiple_of=self.pad_to_multiple_of)

        device = self.accelerator.device
        decoder = decoder_of(self.accelerator.unwrap_model(self.model))
        order = np.argsort([-(len(p) + len(c)) for p, c in unique], kind="stable")
        vectors: torch.Tensor | None = None
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            for part in np.array_split(order, n_calls):
                prompts, completions = [unique[i][0] for i in part], [unique[i][1] for i in part]
                ids = torch.cat([padded(prompts, "left", False), padded(completions, "right", False)], 1).to(device)
                completion_mask = padded(completions, "right", True)
                mask = torch.cat([padded(prompts, "left", True), completion_mask], 1).to(device)
                keep = completion_mask.size(1)
                with self.accelerator.autocast():
                    hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
                pooled = masked_mean(hidden[:, -keep:], mask[:, -keep:])
                if vectors is None:
                    vectors = pooled.new_empty(len(unique), pooled.shape[1])
                vectors[torch.as_tensor(part, device=device)] = pooled
        return torch.nn.functional.normalize(vectors[torch.as_tensor(inverse, device=device)], dim=-1)

    def _local_embeddings(self, completions, completion_ids_list, device) -> tuple[torch.Tensor, dict[str, float]]:
        """This process's completion embeddings for DRA, and how they were made (logged per step)."""
        batch, self._dra_batch = self._dra_batch, None  # one batch's state is used once
        if batch is not None and len(batch.prompt_ids) != len(completions):
            raise RuntimeError(f"DRA kept {len(batch.prompt_ids)} prompts from generation for {len(completions)} "
                               "completions; the generation hook and the reward hook saw different batches.")
        if self.uses_policy_embeddings:
            if batch is None:
                raise RuntimeError("dra_embedder='policy' needs the batch's prompt token ids, which DRAGRPOTrainer "
                                   "keeps when TRL generates (its _generate); this batch did not come from there.")
            if batch.policy_vectors:
                vectors = torch.nn.functional.normalize(torch.cat(batch.policy_vectors), dim=-1)
                return vectors.to(device), {"dra/policy_pass_reused": 1.0}
            return self.policy_embeddings(batch.prompt_ids, completion_ids_list).to(device), {
                "dra/policy_pass_reused": 0.0}
        # The authors embed every message of a completion joined by a space (identical to the graded text without
        # tools).
        return _embed_local(self.embedder, [embedding_text(c) for c in completions], device), {}

    # ------------------------------------------------------------------------------------------ the reward hook

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
        local, how = self._local_embeddings(completions, completion_ids_list, rewards_per_func.device)
        embeddings = self.accelerator.gather(local)
        embed_seconds = time.perf_counter() - start
        # The shuffled control draws its permutation from (seed, step): reruns and resumes repeat it.
        generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.state.global_step)
        adjusted, stats = adjust_reward_rows(rewards_per_func, embeddings, weights, group_size, self.args,
                                             generator=generator)
        stats.update(zero_variance_stats(rewards_per_func, adjusted, weights, group_size, self.args.scale_rewards))
        stats["dra/embed_seconds"] = embed_seconds
        stats.update(how)
        for name, value in stats.items():
            self._metrics[mode][name].append(value)
        return adjusted


def adjust_reward_rows(
    rewards_per_func: torch.Tensor,
    embeddings: torch.Tensor,
    reward_weights: torch.Tensor,
    group_size: int,
    options: "DRAGRPOConfig",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scale each row of the gathered (N, F) per-function rewards by its diversity weight.

    The weights and the logged similarity come from `dra.kernels.scoped_weights` over the sets
    `options.dra_scope` compares (prompt groups, or slices of `options.dra_slice_size()` completions). The
    summed reward of row i becomes w_i * R_i (or stays R_i where R_i <= 0 and dra_adjust_negative is off), with
    w transformed per group by `dra_weighting` (`dra.kernels.reweight`; `generator` seeds the shuffled
    control). Returns the adjusted rows and the step's DRA statistics.
    """
    weights, mean_similarity = scoped_weights(embeddings.float(), group_size, options.dra_scope, options.dra_slice_size(),
                                              kernel=options.dra_kernel,
                                              negative_similarity=options.dra_negative_similarity)
    summed = (rewards_per_func * reward_weights.unsqueeze(0)).nansum(dim=1)
    if not options.dra_adjust_negative:
        weights = torch.where(summed > 0, weights, torch.ones_like(weights))
    weights = reweight(weights, group_size, options.dra_weighting, generator)
    adjusted = rewards_per_func * weights.unsqueeze(1).to(rewards_per_func.dtype)
    stats = {
        "dra/weight_mean": weights.mean().item(),
        "dra/weight_std": weights.std().item() if weights.numel() > 1 else 0.0,
        "dra/weight_min": weights.min().item(),
        "dra/weight_max": weights.max().item(),
        # the mean cosine between distinct completions of the sets the weights compared (groups or slices)
        "dra/group_similarity": mean_similarity,
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

    Values are strict JSON: NaN and infinities (a diverged loss, an undefined statistic) are written as
    null. Each line is flushed to disk as it is written. On resume, the file is read back (a last line cut
    short by a kill is dropped with a warning; any other bad line raises naming the file and line) and lines
    from steps after the restored checkpoint are dropped, so the file never holds two versions of one step.
    """

    def __init__(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.extra = extra or {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            records = read_jsonl(self.path, objects=True)
            bad = next((r for r in records if not isinstance(r.get("step", 0), (int, float))), None)
            if bad is not None:
                raise BadFileError(self.path, f"a record has a non-numeric step {bad.get('step')!r}: {bad!r:.120}")
            kept = [record for record in records if record.get("step", 0) <= state.global_step]
            write_text(self.path, "".join(to_json(record, indent=None) + "\n" for record in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {"step": state.global_step, "epoch": state.epoch, **self.extra, **logs}
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(to_json(record, indent=None) + "\n")
                handle.flush()
                os.fsync(handle.fileno())


# ---------------------------------------------------------------------------------------------- building a run


def training_task(recipe: RecipeArguments) -> MiniTask | MathTask:
    """The task `recipe.task` names: the mini world of the recipe's profile, or a math training pool."""
    if recipe.task == MiniTask.name:
        return profiles.get(recipe.profile).mini_policy().task
    if recipe.task in TRAINING_POOLS:
        return MathTask(recipe.task)
    raise ValueError(f"unknown task {recipe.task!r}; choose one of {', '.join(TASKS)}.")


def build_dataset(recipe: RecipeArguments, tokenizer=None):
    """The training prompts of `recipe.task` as a datasets.Dataset with `prompt` (messages) and `answer`."""
    from datasets import Dataset

    records = training_task(recipe).training_records()
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

        path = str(policy.base_policy(recipe.profile))
        # Training the base policy here (first use) leaves its Accelerator settings behind; GRPO makes its
        # own. The process group (PartialState) is kept.
        AcceleratorState._reset_state()
        return path
    return recipe.model_name_or_path


def describe_run(training_args: DRAGRPOConfig) -> str:
    """What a run's progress bar calls it by default, e.g. "DRA-Dr. GRPO seed 3"."""
    method = "Dr. GRPO" if training_args.loss_type == "dr_grpo" else "GRPO"
    return f"{'DRA-' if training_args.dra else ''}{method} seed {training_args.seed}"


def build_trainer(run: RunConfig, embedder=None, progress_label: str | None = None) -> DRAGRPOTrainer:
    """The trainer of a run; its progress bar is labelled `progress_label` (default: `describe_run`)."""
    from transformers import AutoTokenizer

    recipe, training_args = run.recipe, run.args
    unknown = [name for name in recipe.reward_funcs if name not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}; choose from {', '.join(REWARD_FUNCS)}.")
    model = resolve_model(recipe)
    tokenizer = AutoTokenizer.from_pretrained(model)
    trainer = DRAGRPOTrainer(
        model=model,
        reward_funcs=[REWARD_FUNCS[name] for name in recipe.reward_funcs],
        args=training_args,
        train_dataset=build_dataset(recipe, tokenizer),
        processing_class=tokenizer,
        embedder=embedder,
        completion_metrics=training_task(recipe).completion_metrics,
    )
    trainer.add_callback(JsonlMetricsCallback(Path(training_args.output_dir) / METRICS_FILE,
                                              extra={"profile": recipe.profile, "seed": training_args.seed}))
    label_training_progress(trainer, progress_label or describe_run(training_args))
    return trainer


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The checkpoint to resume from: the newest complete one (`dra.io.last_complete_checkpoint`)."""
    return last_complete_checkpoint(output_dir)


def train(run: RunConfig, embedder=None, progress_label: str | None = None) -> Path:
    """Train (resuming from the last checkpoint in output_dir, if any) and save the final model; the progress
    bar says `progress_label` (default: `describe_run`, e.g. "DRA-GRPO seed 0")."""
    trainer = build_trainer(run, embedder=embedder, progress_label=progress_label)
    output_dir = run.args.output_dir
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir))
    trainer.save_model(output_dir)
    return Path(output_dir)


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


# Values TRL 1.16 accepts (its GRPOConfig help texts); an unknown loss_type only fails at the first loss.
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ADVANTAGE_SCALES
AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")
VLLM_MODES = ("server", "colocate")


class RecipeError(ValueError):
    """A recipe that a run would reject; the message lists every problem found."""


def _explicit(key: str, config: Mapping[str, Any], argv: Sequence[str]) -> bool:
    """Whether `key` was set by the recipe file or on the command line (not derived by GRPOConfig)."""
    flags = {f"--{key}", f"--{key.replace('_', '-')}"}
    return key in config or any(arg.split("=", 1)[0] in flags for arg in argv)


def batch_geometry(args: GRPOConfig, num_processes: int, config: Mapping[str, Any] | None = None,
                   argv: Sequence[str] = ()) -> dict[str, int]:
    """Completions per optimiser step and per generation batch on `num_processes` training processes.

    GRPOConfig derives the generation batch for the processes of *this* run (one, in a dry run); this redoes
    it for the recipe's processes, from what the recipe set explicitly (`config`: its YAML mapping, `argv`:
    its command line). Without `config`, a generation batch other than GRPOConfig's single-process default
    counts as set explicitly.
    """
    global_batch = args.per_device_train_batch_size * num_processes
    if config is None:
        explicit = args.generation_batch_size != args.per_device_train_batch_size * args.gradient_accumulation_steps
    else:
        explicit = _explicit("generation_batch_size", config, argv)
    if explicit:
        generation = args.generation_batch_size
    elif config is not None and _explicit("steps_per_generation", config, argv):
        generation = global_batch * args.steps_per_generation
    else:
        generation = global_batch * args.gradient_accumulation_steps
    return {"global_batch": global_batch, "generation_batch": generation,
            "completions_per_step": global_batch * args.gradient_accumulation_steps}


def recipe_problems(run: RunConfig) -> list[str]:
    """Everything a run would reject before or at its first step, as messages (empty: the recipe is sound).

    Checks without loading a model or data: names (profile, task, reward functions, embedder, kernel,
    scope, loss type, ...), the reward weights against the reward functions, DRA against
    normalize_then_sum, batch sizes on the recipe's number of processes, sizes that must be positive, and
    that local files the recipe names (accelerate config, model or embedder directory) exist.
    """
    recipe, args = run.recipe, run.args
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    def positive(value: Any, name: str, optional: bool = False) -> None:
        need((optional and value is None) or (isinstance(value, int) and not isinstance(value, bool) and value >= 1),
             f"{name} must be a positive integer{' or null' if optional else ''}, got {value!r}.")

    def one_of(value: Any, name: str, choices: Sequence[str]) -> None:
        need(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}.")

    one_of(recipe.profile, "profile", profiles.NAMES)
    one_of(recipe.task, "task", TASKS)
    need(bool(recipe.reward_funcs), "reward_funcs is empty: name at least one reward function.")
    for name in recipe.reward_funcs:
        one_of(name, "each of reward_funcs", tuple(REWARD_FUNCS))
    if args.reward_weights is not None:
        need(len(args.reward_weights) == len(recipe.reward_funcs),
             f"reward_weights has {len(args.reward_weights)} values for {len(recipe.reward_funcs)} reward functions "
             f"{recipe.reward_funcs}; give one weight per function.")
        need(all(np.isfinite(w) for w in args.reward_weights), f"reward_weights must be finite, got {args.reward_weights}.")
    problems += args.dra_problems()
    one_of(args.loss_type, "loss_type", LOSS_TYPES)
    one_of(args.scale_rewards, "scale_rewards", SCALE_REWARDS)
    one_of(args.multi_objective_aggregation, "multi_objective_aggregation", AGGREGATIONS)
    if args.use_vllm:
        one_of(args.vllm_mode, "vllm_mode", VLLM_MODES)
    positive(recipe.num_processes, "num_processes")
    positive(recipe.max_train_prompts, "max_train_prompts", optional=True)
    positive(recipe.max_prompt_tokens, "max_prompt_tokens", optional=True)
    positive(args.dra_device_batch_size, "dra_device_batch_size", optional=True)
    positive(args.dra_embed_max_seq_length, "dra_embed_max_seq_length", optional=True)
    if args.dra:
        problems += _embedder_problems(args, LOCAL_NAMES, tuple(HUB_MODELS))
    problems += _path_problems(recipe)
    if isinstance(recipe.num_processes, int) and recipe.num_processes >= 1:
        problems += _batch_problems(run)
    return problems


def _looks_like_path(name: str) -> bool:
    """A local path rather than a Hub id ("owner/name", or a legacy id without owner such as "gpt2")."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def _embedder_problems(args: DRAGRPOConfig, local: Sequence[str], hub: Sequence[str]) -> list[str]:
    name = args.dra_embedder
    if name in (*local, ORACLE_EMBEDDER, POLICY_EMBEDDER) or Path(name).expanduser().is_dir():
        return []
    if name in hub:
        return [] if args.dra_trust_remote_code else [
            f"dra_embedder {name!r} runs the model's own code from the Hub: set dra_trust_remote_code: true."]
    if "/" not in name or _looks_like_path(name):  # dra.embed reads a name without "/" as one of its own
        return [f"dra_embedder {name!r} is neither a known embedder ({', '.join((*local, *hub))}), an existing "
                "directory, nor a Hub id 'owner/name'."]
    return []


def _path_problems(recipe: RecipeArguments) -> list[str]:
    problems = []
    if recipe.accelerate_config and not any((root / recipe.accelerate_config).is_file()
                                            for root in (Path.cwd(), PROJECT_ROOT)):
        problems.append(f"accelerate_config {recipe.accelerate_config!r} does not exist (looked in {Path.cwd()} "
                        f"and {PROJECT_ROOT}).")
    model = recipe.model_name_or_path
    if model != MINI_BASE and _looks_like_path(model) and not Path(model).expanduser().is_dir():
        problems.append(f"model_name_or_path {model!r} is neither {MINI_BASE!r}, an existing directory, nor a Hub id "
                        "'owner/name'.")
    return problems


def _batch_problems(run: RunConfig) -> list[str]:
    recipe, args, sizes = run.recipe, run.args, run.batch_geometry()
    g, problems = args.num_generations, []
    if sizes["generation_batch"] % sizes["global_batch"]:
        problems.append(f"generation_batch_size {sizes['generation_batch']} is not a multiple of the global batch "
                        f"{sizes['global_batch']} (per_device_train_batch_size x {recipe.num_processes} processes).")
    for what, unit in (("completions_per_step", "optimiser step"), ("generation_batch", "generation batch")):
        if sizes[what] % g:
            problems.append(f"{sizes[what]} completions per {unit} (on {recipe.num_processes} processes) is not a "
                            f"multiple of num_generations={g}: prompt groups would be split.")
    slice_size = args.dra_slice_size() if args.dra else None
    if slice_size and sizes["generation_batch"] % slice_size:
        problems.append(f"dra_scope: device needs the {sizes['generation_batch']} gathered completions to split "
                        f"into slices of {slice_size} (dra_device_batch_size, default per_device_train_batch_size).")
    return problems


def _notes(recipe: RecipeArguments, args: DRAGRPOConfig) -> list[str]:
    """What the dry run could not check on this machine (network, GPU packages): said, not failed."""
    import importlib.util

    notes = []
    if args.use_vllm and importlib.util.find_spec("vllm") is None:
        notes.append("vllm is not installed here; the run needs the gpu extra (pip install -e '.[gpu]').")
    if recipe.task == "open_rs":
        notes.append("task open_rs is read from the Hugging Face Hub (knoveleng/open-rs); not checked offline.")
    if recipe.model_name_or_path != MINI_BASE and not Path(recipe.model_name_or_path).expanduser().is_dir():
        notes.append(f"model {recipe.model_name_or_path} comes from the Hugging Face Hub; not checked offline.")
    if args.dra and "/" in args.dra_embedder and not Path(args.dra_embedder).expanduser().is_dir():
        notes.append(f"embedder {args.dra_embedder} comes from the Hugging Face Hub; not checked offline.")
    return notes


def check_recipe(run: RunConfig) -> None:
    """Raise RecipeError listing every problem `recipe_problems` finds; return quietly when there is none."""
    problems = recipe_problems(run)
    if problems:
        raise RecipeError("the recipe would fail:\n  - " + "\n  - ".join(problems))


def dry_run_report(run: RunConfig) -> dict[str, Any]:
    """Validate a run's recipe (`check_recipe`) and describe the run: launch command (with `run.source` as its
    --config), optimiser steps, prompts seen, memory, and notes on what could not be checked here."""
    check_recipe(run)
    recipe, args, sizes = run.recipe, run.args, run.batch_geometry()
    completions_per_step = sizes["completions_per_step"]
    prompts_per_step = completions_per_step // args.num_generations
    steps = args.max_steps
    launch = ["accelerate", "launch"]
    if recipe.accelerate_config:
        launch += ["--config_file", recipe.accelerate_config]
    launch += ["--num_processes", str(recipe.num_processes), "-m", "dra.train"]
    if run.source:
        launch += ["--config", run.source]
    report: dict[str, Any] = {
        "launch": shlex.join(launch),
        "optimizer_steps": steps,
        "completions_per_step": completions_per_step,
        "prompts_per_step": prompts_per_step,
        "prompts_seen": steps * prompts_per_step,
        "generation_batch_size": sizes["generation_batch"],
        "loss_type": args.loss_type, "scale_rewards": args.scale_rewards, "beta": args.beta,
        "temperature": args.temperature, "dra": args.dra, "dra_scope": args.dra_scope,
        "not_checked_here": _notes(recipe, args),
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


# The GRPOConfig options every recipe sets on purpose (the paper's values, or TRL defaults that moved since 2025),
# listed in --help before the rest of TRL's.
RECIPE_GRPO_OPTIONS: tuple[str, ...] = (
    "output_dir", "seed", "learning_rate", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "num_generations", "max_completion_length", "temperature", "beta", "loss_type", "scale_rewards", "use_vllm",
    "vllm_mode", "bf16", "use_cpu", "logging_steps", "save_steps",
)
HELP_SECTIONS = {
    "dra": ("DRA options (what this project adds to GRPOConfig)",
            "--dra, --dra_embedder and --dra_scope decide what DRA computes: on or off, whose embeddings give the "
            "similarity, and whether it is taken per prompt group (the paper's formula) or per GPU slice (the "
            "authors' code). --dra_kernel, --dra_weighting, --dra_negative_similarity and --dra_adjust_negative "
            "are ablations and controls; the rest configure the embedder."),
    "recipe": ("GRPO settings the recipes fix", "Set explicitly in every recipe (recipes/<profile>/*.yaml), "
               "because the paper used them or TRL's default moved since 2025."),
    "trl": ("every other TRL GRPOConfig / TrainingArguments option", "TRL 1.16's defaults unless a recipe sets them."),
}


class RecipeParser(TrlParser):
    """TrlParser (a recipe YAML via --config, then command-line overrides) whose --help puts the recipe's
    options first, then DRA's, then the GRPO settings the recipes fix, then the rest of TRL's."""

    def __init__(self) -> None:
        super().__init__(
            (RecipeArguments, DRAGRPOConfig), prog="dra-train",
            usage="dra-train --config RECIPE.yaml [--OPTION VALUE ...] [--dry_run]   (= python -m dra.train)",
            description="Train GRPO / Dr. GRPO with or without DRA from a recipe (recipes/<profile>/<arm>.yaml). "
                        "Every option below can be set in the recipe or overridden on the command line; --dry_run "
                        "checks the recipe without a GPU, a model or data.")

    def _add_dataclass_arguments(self, dtype) -> None:
        if dtype is not DRAGRPOConfig:
            return super()._add_dataclass_arguments(dtype)
        groups = {key: self.add_argument_group(title, description) for key, (title, description) in HELP_SECTIONS.items()}
        hints = typing.get_type_hints(dtype)
        for option in dataclasses.fields(dtype):
            if not option.init:
                continue
            option.type = hints[option.name]  # as HfArgumentParser does: the resolved annotation
            section = ("dra" if option.name == "dra" or option.name.startswith("dra_")
                       else "recipe" if option.name in RECIPE_GRPO_OPTIONS else "trl")
            self._parse_dataclass_field(groups[section], option)


def run_config(mapping: Mapping[str, Any], source: str | None = None) -> RunConfig:
    """A run's configuration from a recipe mapping (as `dra.recipes.recipe` returns, plus any overrides): the
    same dataclasses the YAML files are parsed into, without writing or reading a file. A dry run
    (``dry_run: true``) on a machine without a GPU is configured as a CPU run, as `parse` does."""
    mapping = dict(mapping)
    if mapping.get("dry_run") and not torch.cuda.is_available():
        mapping["use_cpu"] = True  # transformers refuses bf16 without a GPU unless told the run is on CPU
    if "use_cpu" not in mapping and not torch.cuda.is_available() and mapping.get("bf16"):
        raise ValueError("the recipe asks for bf16, which needs a GPU; set bf16: false to run on the CPU.")
    recipe, args = RecipeParser().parse_dict(mapping)
    return RunConfig(recipe, args, mapping, source=source)


def _read_config(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"--config {path}: no such file.") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"--config {path} is not valid YAML: {error}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise RecipeError(f"--config {path} must hold a mapping of option: value, got {type(config).__name__}.")
    return config


def _dry_run_requested(argv: Sequence[str], config: dict[str, Any]) -> bool:
    """Whether the command line (--dry_run or --dry-run, with an optional true/false) or the recipe asks for a dry run."""
    import argparse

    from transformers.hf_argparser import string_to_bool

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--dry_run", "--dry-run", nargs="?", const="true", default=None)
    value = pre.parse_known_args(list(argv))[0].dry_run
    try:
        return string_to_bool(value) if value is not None else bool(string_to_bool(config.get("dry_run", False)))
    except argparse.ArgumentTypeError as error:
        raise RecipeError(f"dry_run: {error}") from None


def parse(argv: Sequence[str] | None = None) -> RunConfig:
    """Parse `--config recipe.yaml` plus command-line overrides into a run's configuration (the CLI's path).

    A dry run (``--dry_run``, ``--dry-run`` or ``dry_run: true`` in the recipe) on a machine without a GPU
    parses as a CPU run, so that a recipe with ``bf16: true`` can be validated anywhere.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    source = argv[argv.index("--config") + 1] if "--config" in argv and argv.index("--config") + 1 < len(argv) else None
    mapping = _read_config(source) if source else {}
    overrides = list(argv)
    if _dry_run_requested(argv, mapping) and not torch.cuda.is_available():
        # transformers refuses bf16 without a GPU unless told the run is on CPU; a dry run only validates.
        argv += ["--use_cpu", "true"]
    recipe, training_args = RecipeParser().parse_args_and_config(argv)
    return RunConfig(recipe, training_args, mapping, tuple(overrides), source)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: validate the recipe, then print the dry-run report or train.

    A recipe that cannot run (an unknown option or name, inconsistent batch sizes, a missing file) ends
    the program with exit status 2 and one message listing every problem, not a traceback.
    """
    try:
        run = parse(argv)
        if run.recipe.dry_run:
            print(json.dumps(dry_run_report(run), indent=2))
            return
        check_recipe(run)
    except (ValueError, FileNotFoundError) as error:
        print(f"dra.train: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    out = train(run)
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
