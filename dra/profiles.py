"""Profiles: everything that differs between smoke, mini and paper, one frozen `Profile` each.

- ``smoke``: seconds, what CI runs; its outputs go to folders git ignores.
- ``mini``: the CPU default, a complete miniature of every experiment on a 2-core machine.
- ``paper``: the paper's scale on GPUs; it has no mini world of its own and shows mini's beside its own.

A profile is chosen once, where a run starts: a notebook's parameters cell (`get`), a script or command line
(`from_environment`, the one reader of ``$DRA_PROFILE``). From there its plain values travel down: the base
policy's configuration to `dra.policy`, the evaluation settings to `dra.evaluate`, the study's sizes to the
study, the experiment's seeds to `dra.experiment`, the recipe's profile part to `dra.recipes`. Library functions
take the profile (a `Profile` or its name) explicitly; none reads the environment.

Every setting here is part of some cache key (the base policy's, a run's, a results file's), so changing a value
retrains or re-evaluates what depends on it; `tests/test_cache_keys.py` lists them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from dra import checks, generation, mini
from dra.io import config_key
from dra.tasks import MiniTask

DEFAULT = "mini"
ENVIRONMENT_VARIABLE = "DRA_PROFILE"
# Bumped when dra.policy changes what a base-policy configuration produces (part of its key).
POLICY_FORMAT_VERSION = 6  # 6: world version 4, shortcut strategies exact only on their own kind


@dataclass(frozen=True)
class MiniPolicyConfig:
    """Everything that determines a trained base policy of the mini world; its `key()` names the cache entry.

    Task: `split_seed`, `n_test`, `n_validation`, `rl_fraction`, `system_prompt` (the `MiniTask` they make:
    `task`), `strategy_weights` (relative frequency of each strategy in the imbalanced part of the SFT data) and
    `balanced_fraction` (see `dra.mini.sft_records`). Tokenizer: `vocab_size`, trained on `tokenizer_corpus`
    balanced SFT conversations. Model: the `Qwen2Config` sizes. SFT: `max_steps` optimiser steps of
    `batch_size` fresh examples each (every example is seen once, in order), AdamW with `learning_rate`,
    cosine schedule after `warmup_ratio` of the steps, `seed`.
    """

    profile: str
    split_seed: int = 0
    n_test: int = 700
    n_validation: int = 350
    rl_fraction: float = 0.5
    system_prompt: str = mini.SYSTEM_PROMPT
    strategy_weights: dict[str, float] = field(
        default_factory=lambda: {"plus_one": 0.64, "plus_five": 0.16, "minus_one": 0.12, "grid": 0.08}
    )
    balanced_fraction: float = 0.7
    vocab_size: int = 384
    tokenizer_corpus: int = 2000
    hidden_size: int = 128
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 256
    max_steps: int = 1800
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    save_steps: int = 50

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        return config_key({"format": POLICY_FORMAT_VERSION, **self.as_dict()})

    @property
    def n_examples(self) -> int:
        return self.max_steps * self.batch_size

    @property
    def task(self) -> MiniTask:
        """The mini world's problems and prompts this policy is trained and evaluated on."""
        return MiniTask(self.split_seed, self.n_test, self.n_validation, self.rl_fraction, self.system_prompt)


@dataclass(frozen=True)
class EvalSettings:
    """Generation settings of one evaluation; part of each evaluation file's identity."""

    n_samples: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    seed: int = 0
    backend: str = "transformers"
    batch_size: int = 256

    def __post_init__(self) -> None:
        checks.integer(self.n_samples, "n_samples", minimum=1)
        checks.real(self.temperature, "temperature (0 means greedy)", 0)
        checks.real(self.top_p, "top_p", 0, 1, low_open=True)
        checks.integer(self.max_new_tokens, "max_new_tokens", minimum=1)
        checks.integer(self.seed, "seed", minimum=0)
        checks.choice(self.backend, "backend", generation.BACKENDS)
        checks.integer(self.batch_size, "batch_size", minimum=1)


@dataclass(frozen=True)
class StudySettings:
    """What notebook 01 runs: real-text prompts (None: all) and embedders, mini-world prompts, embedders and
    tokens, the group sizes G and the largest G sampled; at the paper scale, its model, prompts, tokens and
    embedder (None elsewhere)."""

    real_prompts: int | None
    real_embedders: tuple[str, ...]
    mini_prompts: int
    mini_embedders: tuple[str, ...]
    group_sizes: tuple[int, ...]
    max_group: int
    mini_max_new_tokens: int
    paper_model: str | None = None
    paper_prompts: int | None = None
    paper_max_new_tokens: int | None = None
    paper_embedder: str | None = None

    @property
    def embedders(self) -> list[str]:
        """Every embedder the study loads, sorted."""
        return sorted(set(self.real_embedders) | set(self.mini_embedders))

    def as_dict(self) -> dict[str, Any]:
        """The settings as the study's results file records them (lists; no paper keys below the paper scale)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()
                if not (name.startswith("paper_") and value is None)}


@dataclass(frozen=True)
class Grid:
    """One pre-registered grid of the mini experiment: the recipe overrides every run of it shares (none: the
    profile's recipes as they are), its arms (None: every arm of the profile's recipes) and the file that
    pre-registers it. Its runs are keyed, and their results files named, with the overrides."""

    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    arms: tuple[str, ...] | None = None
    preregistration: str = ""


MAIN_GRID = "main"


@dataclass(frozen=True)
class ExperimentSettings:
    """The mini experiment's training seeds (the pre-registered 8 to start) and evaluation prompts per run;
    `arm_seeds` gives the arms the pre-registration runs on other seeds their own (arm, seeds) pairs; `grids`
    names the pre-registered grids (`MAIN_GRID`, the profile's recipes as they are, and e.g. a longer horizon)."""

    seeds: tuple[int, ...]
    eval_prompts: int
    arm_seeds: tuple[tuple[str, tuple[int, ...]], ...] = ()
    grids: Mapping[str, Grid] = field(default_factory=lambda: MappingProxyType({MAIN_GRID: Grid()}))

    def seeds_of(self, arm: str) -> tuple[int, ...]:
        """The seeds the experiment runs `arm` on."""
        return dict(self.arm_seeds).get(arm, self.seeds)

    def grid(self, name: str) -> Grid:
        """The grid called `name`; ValueError naming the grids there are."""
        if name not in self.grids:
            raise ValueError(f"unknown grid {name!r}; this profile's grids are {', '.join(self.grids)}.")
        return self.grids[name]


@dataclass(frozen=True)
class BenchmarkSizes:
    """How long the benchmarks run: notebook 02's kernel benchmark repeats (vectorised, and the per-pair
    loop it is compared with), and the test prompts `scripts/train_mini_policy.py` samples (None: no mini world)."""

    kernel_repeats: int
    kernel_loop_repeats: int
    base_policy_prompts: int | None


@dataclass(frozen=True)
class Profile:
    """One profile's settings. `policy` and `experiment` are None at a profile without a mini world (paper);
    `mini_world` is the profile whose mini world it runs or shows."""

    name: str
    committed: bool  # its figures and results are committed (else they go to folders git ignores)
    recipe: Mapping[str, Any]  # the profile's part of every training recipe (dra.recipes adds algorithm and arm)
    evaluation: EvalSettings
    study: StudySettings
    benchmarks: BenchmarkSizes
    policy: MiniPolicyConfig | None = None
    experiment: ExperimentSettings | None = None

    @property
    def mini_world(self) -> Profile:
        """This profile when it has a mini world, else mini (the paper profile shows mini's results beside its own)."""
        return self if self.policy is not None else PROFILES[DEFAULT]

    def mini_policy(self) -> MiniPolicyConfig:
        """The base policy's configuration; ValueError at a profile that trains a real model instead."""
        if self.policy is None:
            raise ValueError(
                f"profile {self.name!r} has no mini-world policy: it trains {self.recipe['model_name_or_path']} "
                f"instead. Use profile 'smoke' or 'mini' (or `profile.mini_world`)."
            )
        return self.policy

    def mini_experiment(self) -> ExperimentSettings:
        """The mini experiment's settings; ValueError at a profile without a mini world."""
        if self.experiment is None:
            raise ValueError(f"profile {self.name!r} runs no mini experiment; use profile 'smoke' or 'mini'.")
        return self.experiment


def _frozen(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(mapping)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        committed=False,
        # Seconds: proves the pipeline (tokenizer, model, SFT, save, load), not a useful policy.
        policy=MiniPolicyConfig(
            profile="smoke", n_test=200, n_validation=50, vocab_size=320, tokenizer_corpus=400,
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            intermediate_size=64, max_steps=8, batch_size=8, save_steps=4,
        ),
        recipe=_frozen({
            "task": "mini",
            "model_name_or_path": "mini-base",
            "bf16": False,
            "dataloader_pin_memory": False,
            "reward_funcs": ["strict_accuracy"],
            "reward_weights": [1.0],
            "learning_rate": 1.0e-4,
            "lr_scheduler_type": "constant",
            "max_steps": 2,
            "num_generations": 3,
            "per_device_train_batch_size": 6,
            "gradient_accumulation_steps": 1,
            "max_train_prompts": 32,
            "max_prompt_tokens": None,
            "max_completion_length": 24,
            "use_vllm": False,
            "save_steps": 1,
            "seed": 0,
            "dra_embedder": "minilm",
        }),
        evaluation=EvalSettings(n_samples=2, max_new_tokens=24, temperature=0.7, top_p=1.0),
        # The long grid at smoke: the mini long grid's shape (its own overrides, a subset of the arms) in seconds.
        experiment=ExperimentSettings(seeds=(0,), eval_prompts=6, grids=_frozen({
            MAIN_GRID: Grid(),
            "long": Grid(overrides=_frozen({"max_steps": 4}), arms=("grpo", "dr_grpo", "dra_grpo", "dra_dr_grpo"))})),
        study=StudySettings(real_prompts=12, real_embedders=("tfidf",), mini_prompts=40, mini_embedders=("tfidf",),
                            group_sizes=(4, 6), max_group=6, mini_max_new_tokens=64),
        benchmarks=BenchmarkSizes(kernel_repeats=5, kernel_loop_repeats=1, base_policy_prompts=24),
    ),
    "mini": Profile(
        name="mini",
        committed=True,
        # 491k parameters, 1,800 steps x 64 fresh examples (70% with balanced strategies, then 64/16/12/8), world
        # version 4 (shortcuts exact only on their own kind). World version 1 measured 0.40 pass@1 after 1,200
        # steps (0.02 after 600); 1,800 steps with random slips gave home accuracies 0.74 / 0.55 / 0.71 (grid
        # 0.04); 1,500 steps with 85% carry slips 0.36 / 0.21 / 0.22. scripts/train_mini_policy.py reports them
        # at and off home.
        policy=MiniPolicyConfig(profile="mini"),
        recipe=_frozen({
            "task": "mini",
            "model_name_or_path": "mini-base",
            "bf16": False,  # TRL 1.16 defaults to bf16, which needs a GPU
            "dataloader_pin_memory": False,
            # The mini world's primary reward: 1 for a well-formed correct completion, else 0 (no format bonus,
            # no length term: with the paper's reward a wrong answer scores about 0.97 here, see notebook 02).
            "reward_funcs": ["strict_accuracy"],
            "reward_weights": [1.0],
            # Chosen for plain GRPO on the validation split (docs/preregistration_mini_v2.md, Deviation 10), then frozen.
            "learning_rate": 3.0e-5,
            "lr_scheduler_type": "constant_with_warmup",
            "warmup_steps": 0.05,
            "max_steps": 240,
            "num_generations": 6,
            "per_device_train_batch_size": 48,
            "gradient_accumulation_steps": 1,
            "max_prompt_tokens": None,
            "max_completion_length": 128,
            "use_vllm": False,
            "save_steps": 30,
            "seed": 0,
            "dra_embedder": "minilm",
        }),
        evaluation=EvalSettings(n_samples=16, max_new_tokens=160, temperature=0.7, top_p=1.0),
        # 500 test prompts from distinct factor pairs x 16 samples (pass@k up to 16); seeds per the pre-registered
        # power rule (8 to start, up to 20 for the primary comparisons); the paper-reward arms (secondary) on 0-3.
        # "long": 960 steps, the horizon at which GRPO learns to route (docs/preregistration_mini_long.md), without
        # the paper-reward arms and the policy embedder, whose questions the 240-step grid answered.
        experiment=ExperimentSettings(
            seeds=tuple(range(8)), eval_prompts=500,
            arm_seeds=tuple((arm, tuple(range(4))) for arm in ("grpo_paper_reward", "dra_grpo_paper_reward")),
            grids=_frozen({
                MAIN_GRID: Grid(preregistration="docs/preregistration_mini_v2.md"),
                "long": Grid(overrides=_frozen({"max_steps": 960}), preregistration="docs/preregistration_mini_long.md",
                             arms=("grpo", "dr_grpo", "dra_grpo", "dra_dr_grpo", "dra_dr_grpo_meannorm",
                                   "dr_grpo_scale", "dra_grpo_shuffled", "grpo_entropy", "dra_grpo_oracle")),
            })),
        study=StudySettings(real_prompts=None, real_embedders=("minilm", "tfidf"), mini_prompts=3000,
                            mini_embedders=("minilm", "tfidf"), group_sizes=(4, 6, 8), max_group=8,
                            mini_max_new_tokens=160),
        benchmarks=BenchmarkSizes(kernel_repeats=50, kernel_loop_repeats=3, base_policy_prompts=3000),
    ),
    "paper": Profile(
        name="paper",
        committed=True,
        recipe=_frozen({
            "task": "open_rs",
            "model_name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            "model_init_kwargs": {"dtype": "bfloat16", "attn_implementation": "flash_attention_2"},
            "bf16": True,
            "gradient_checkpointing": True,
            "learning_rate": 1.0e-6,
            "lr_scheduler_type": "cosine_with_min_lr",
            "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
            "warmup_steps": 0.1,  # transformers 5: a float < 1 is the warmup ratio
            "max_steps": 500,
            "num_generations": 6,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 4,
            # 48 completions (8 prompts) per optimiser step; stated, so TRL derives steps_per_generation = 4 at
            # 3 processes and the recipe also validates in a 1-process dry run.
            "generation_batch_size": 48,
            "num_processes": 3,
            "accelerate_config": "recipes/accelerate/zero2.yaml",
            "max_prompt_tokens": 512,
            "max_completion_length": 3584,
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_gpu_memory_utilization": 0.7,
            "vllm_max_model_length": 4608,
            "save_steps": 50,
            "seed": 42,
            "dra_embedder": "jina",
            "dra_trust_remote_code": True,
            "dra_embed_max_seq_length": 3584,
        }),
        # The paper's sampling (temperature 0.6, top_p 0.95, 32,768 new tokens; docs/paper_facts.md, section 7)
        # with 16 samples per problem.
        evaluation=EvalSettings(n_samples=16, backend="vllm"),
        study=StudySettings(real_prompts=None, real_embedders=("minilm", "tfidf"), mini_prompts=3000,
                            mini_embedders=("minilm", "tfidf"), group_sizes=(4, 6, 8), max_group=8,
                            mini_max_new_tokens=160, paper_model="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                            paper_prompts=3000, paper_max_new_tokens=3584, paper_embedder="jina"),
        benchmarks=BenchmarkSizes(kernel_repeats=200, kernel_loop_repeats=3, base_policy_prompts=None),
    ),
}
NAMES: tuple[str, ...] = tuple(PROFILES)
COMMITTED: tuple[str, ...] = tuple(name for name, profile in PROFILES.items() if profile.committed)


def get(profile: str | Profile) -> Profile:
    """The `Profile` named `profile` (a `Profile` is returned as it is). Raises ValueError on an unknown name."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(NAMES)}.")
    return PROFILES[profile]


def from_environment(explicit: str | None = None) -> Profile:
    """The profile a script or command line runs at: `explicit` when given, else $DRA_PROFILE, else mini. The only
    place the environment chooses a profile; call it once, where the run starts, and pass the result down."""
    return get(explicit or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT)
