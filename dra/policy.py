"""The mini world's base policy: a tiny Qwen2 model trained from scratch on CPU, cached by its config.

`base_policy(profile)` returns the directory of a trained policy, training it first when no cached copy
made by exactly the same configuration (the profile's `dra.profiles.MiniPolicyConfig`) exists. Training is
three steps:

1. A byte-level BPE tokenizer trained locally with the `tokenizers` library on rendered training
   conversations. Digits are always single tokens (so numbers are spelled digit by digit), and the
   tokenizer carries a ChatML chat template (``<|im_start|>role\\n...<|im_end|>``, the template family of
   Qwen2), ``<|im_end|>`` as end-of-sequence and ``<|endoftext|>`` as padding, so TRL's conversational
   datasets and ``apply_chat_template(..., add_generation_prompt=True)`` work as with a Hub model.
2. A small `Qwen2ForCausalLM` built from a `Qwen2Config` (random initialisation, tied embeddings).
3. Supervised fine-tuning with TRL's `SFTTrainer` on conversational prompt-completion records from
   `dra.mini.sft_records` over the SFT split of the configuration's task (loss on the completion only), read
   in order: the first `balanced_fraction` of the examples use every strategy equally often (so each
   strategy's skill is learned), the rest are deliberately imbalanced (`MiniPolicyConfig.strategy_weights`):
   one dominant strategy and rarer ones, the situation in which GRPO can collapse onto the dominant mode.
   Each shortcut strategy is exact only on its own kind of problem (`dra.mini`), so which strategy fits
   which problem matters.

The result is saved with ``save_pretrained`` (model, generation config and tokenizer in one directory), so
transformers, TRL and vLLM load it like any Hub model id.

Caching and resume: a run lives in ``runs_dir()/mini_policy/<profile>-<config_key>/``, where the key is
`dra.io.config_key` of the full configuration (plus `POLICY_FORMAT_VERSION`, bumped when the code changes
what a configuration produces), so a changed configuration never reuses a stale model. Trainer checkpoints
are written under ``checkpoints/`` every ``save_steps`` steps; an interrupted run resumes from the last
one. The finished model is written to a temporary directory and renamed to ``model/``, so ``model/``
exists only when training completed. Training holds the run folder's lock (`dra.io.folder_lock`): a second
process that asks for the same policy meanwhile (two notebooks, two grid workers on a fresh clone) waits for the
first to finish and then loads its model, instead of training the same checkpoints.

The ``paper`` profile has no mini-world policy (it trains DeepSeek-R1-Distill-Qwen-1.5B); asking for it
raises ValueError.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from dra import mini, profiles
from dra.config import runs_dir
from dra.io import folder_lock, last_complete_checkpoint, native_bf16, read_json, write_json
from dra.profiles import POLICY_FORMAT_VERSION, MiniPolicyConfig, Profile
from dra.threads import result_threads

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = {"pad": "<|endoftext|>", "start": "<|im_start|>", "eos": "<|im_end|>"}
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SUMMARY_FILE = "training_summary.json"


def run_dir(config: MiniPolicyConfig) -> Path:
    """Where the run of `config` lives: runs_dir()/mini_policy/<profile>-<key>."""
    return runs_dir() / "mini_policy" / f"{config.profile}-{config.key()}"


def base_policy(source: str | Profile | MiniPolicyConfig) -> Path:
    """The directory of the trained base policy of a profile (a `Profile` or its name) or of a configuration.

    Returns the cached model when one made by the same configuration exists; otherwise trains it (resuming
    from the last checkpoint of an interrupted run) on `dra.threads.RESULT_THREADS` threads (the count changes
    the model, and its key cannot see it) and returns the new directory. Load it with
    `load_policy` or any ``from_pretrained``.
    """
    config = source if isinstance(source, MiniPolicyConfig) else profiles.get(source).mini_policy()
    model_dir = run_dir(config) / "model"
    if (model_dir / SUMMARY_FILE).is_file():
        return model_dir
    with folder_lock(run_dir(config), wait=True), result_threads():  # the thread count shapes the model
        if (model_dir / SUMMARY_FILE).is_file():  # another process trained it while this one waited
            return model_dir
        return train_policy(config)


def load_policy(path: str | Path):
    """(model, tokenizer) from a policy directory, the model in eval mode on CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no saved model (no config.json); train it with dra.policy.base_policy.")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    return model.eval(), tokenizer


def training_summary(path: str | Path) -> dict[str, Any]:
    """The summary written next to a trained model: config, SFT wall time, steps, losses."""
    return read_json(Path(path) / SUMMARY_FILE, what="training summary")


# ---------------------------------------------------------------------------------------------- training

def train_policy(config: MiniPolicyConfig) -> Path:
    """Train (or finish training) the policy of `config`; returns its model directory. See the module doc."""
    import torch
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from dra.progress import label_training_progress

    started = time.perf_counter()
    root = run_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "config.json", {"key": config.key(), "format": POLICY_FORMAT_VERSION, **config.as_dict()})
    splits = config.task.splits()
    tokenizer = train_tokenizer(config, splits.sft, root / "tokenizer")

    records = mini.sft_records(
        splits.sft, config.n_examples, config.strategy_weights, seed=config.seed, system_prompt=config.system_prompt,
        balanced_fraction=config.balanced_fraction,
    )
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
    set_seed(config.seed)
    model = build_model(config, tokenizer)

    checkpoints = root / "checkpoints"
    args = SFTConfig(
        output_dir=str(checkpoints),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=max(1, config.max_steps // 20),
        report_to="none",
        use_cpu=True,  # the mini world is a CPU experiment
        # TRL's default, written out because it matters: the SFT runs under bfloat16 autocast, which every stored
        # base policy was trained with. On a CPU without native bfloat16 (AVX2 only) it is emulated, about 9x
        # slower (8.9 s against 1.0 s a step), and may round differently (experiment.check_base_policy)
        bf16=True,
        max_length=config.max_position_embeddings,
        completion_only_loss=True,
        dataloader_drop_last=True,
        train_sampling_strategy="sequential",  # the balanced examples first, the imbalanced ones last
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    label_training_progress(trainer, f"SFT of the {config.profile} base policy")
    resume_from = last_complete_checkpoint(checkpoints)
    if resume_from:
        logger.info("resuming SFT from %s", resume_from)
    if native_bf16() is False:
        logger.warning("This CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 flag): the SFT's bf16 autocast "
                       "is emulated, about 9x slower (8.9 s a step against 1.0 s for the stored base policy), and "
                       "the model may round differently; experiment.check_base_policy compares it with the stored "
                       "base evaluation before any run trains from it.")
    training_started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    finished = time.perf_counter()

    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    summary = {
        "key": config.key(),
        "config": config.as_dict(),
        # This session only: a resumed run does not know how long the interrupted one ran.
        "sft_seconds_this_session": round(finished - started, 2),  # tokenizer + data + training
        "trainer_seconds_this_session": round(finished - training_started, 2),
        "resumed_from": resume_from,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "loss_curve": losses,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_train_problems": len(splits.sft),
        "torch_threads": torch.get_num_threads(),
    }
    return _save_model(trainer.model, tokenizer, root / "model", summary)


def train_tokenizer(config: MiniPolicyConfig, problems, directory: Path):
    """Train (or load, when `directory` already holds it) the byte-level BPE tokenizer of `config`.

    The corpus is `config.tokenizer_corpus` training conversations with all strategies equally often, so
    every strategy's words are in the vocabulary however rare it is in the SFT data.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (directory / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(directory)
    balanced = {name: 1.0 for name in mini.STRATEGIES}
    records = mini.sft_records(problems, config.tokenizer_corpus, balanced, seed=config.seed + 1,
                               system_prompt=config.system_prompt)

    tokenizer = Tokenizer(models.BPE())
    # Digits are split one by one before byte-level BPE, so no merge ever glues digits together.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    renderer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), chat_template=CHAT_TEMPLATE)

    def corpus() -> Iterator[str]:
        for record in records:
            yield renderer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)

    tokenizer.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",  # decoder-only generation pads on the left
        model_max_length=config.max_position_embeddings,
    )
    fast.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def build_model(config: MiniPolicyConfig, tokenizer):
    """A randomly initialised `Qwen2ForCausalLM` of the configured size for `tokenizer`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def _save_model(model, tokenizer, target: Path, summary: dict[str, Any]) -> Path:
    """Save model + tokenizer + summary into a temporary sibling, then rename it to `target` in one step."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    write_json(partial / SUMMARY_FILE, summary)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return target
