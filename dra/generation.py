"""One group sampler for the study and the evaluator: G completions per prompt, transformers or vLLM.

`sample_groups(model, prompts, group_size, ...)` returns, for each prompt, a list of `group_size` completion
texts (special tokens removed). The same call runs on two backends:

- ``backend="transformers"`` (CPU or GPU): batched ``model.generate`` with left padding and
  ``num_return_sequences=group_size``.
- ``backend="vllm"`` (GPU): ``vllm.LLM.generate`` with ``SamplingParams(n=group_size, seed=seed, ...)``.
  vLLM is the project's ``gpu`` extra (``pip install 'dra-grpo[gpu]'``); without it this backend raises an
  ImportError that says so.

Prompts are either chat message lists (``[{"role": "user", "content": ...}, ...]``), rendered with the
tokenizer's chat template and ``add_generation_prompt=True`` exactly as TRL does (the rendered text is
tokenized without adding special tokens again, so a template that writes its own BOS gets one BOS), or
plain strings, used verbatim and tokenized with the tokenizer's defaults. Both backends receive the same
token ids.

Defaults follow the paper's training-time sampling (temperature 0.7, top_p 1.0). ``temperature=0`` means
greedy decoding (every member of a group is then identical). Reproducibility: with the same seed,
prompts, `batch_size` and hardware the transformers backend returns the same texts (its random stream is
reseeded per batch, so changing `batch_size` changes the samples); vLLM's per-request seed makes its samples
independent of batching, but the two backends never produce the same samples for the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

BACKENDS: tuple[str, ...] = ("transformers", "vllm")
GPU_EXTRA_HINT = "pip install 'dra-grpo[gpu]' (vLLM needs an NVIDIA GPU), or use backend='transformers'"

Prompt = str | Sequence[dict[str, str]]


def sample_groups(
    model: Any,
    prompts: Sequence[Prompt],
    group_size: int,
    *,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    backend: str = "transformers",
    batch_size: int = 256,
    tokenizer: Any = None,
    progress: bool = False,
    vllm_kwargs: dict[str, Any] | None = None,
) -> list[list[str]]:
    """Sample `group_size` completions for every prompt; returns one list of texts per prompt, in order.

    `model`: a local directory or Hub id (loaded with ``from_pretrained`` / ``vllm.LLM``), or an already
    loaded ``PreTrainedModel`` (transformers backend; pass its `tokenizer`, else the one saved at
    ``model.name_or_path`` is loaded) or ``vllm.LLM`` (vLLM backend). `batch_size` bounds the number of
    sequences (prompts x group_size) generated together by the transformers backend; at least one prompt's
    group is always generated at once. `vllm_kwargs` go to ``vllm.LLM(...)`` when it is built here
    (e.g. ``gpu_memory_utilization``, ``max_model_len``, ``dtype``).
    """
    _check_arguments(prompts, group_size, temperature, top_p, max_new_tokens, batch_size, backend)
    if backend == "vllm":
        return _sample_vllm(model, prompts, group_size, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, seed=seed, progress=progress,
                            vllm_kwargs=vllm_kwargs or {})
    return _sample_transformers(model, prompts, group_size, temperature=temperature, top_p=top_p,
                                max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size,
                                tokenizer=tokenizer, progress=progress)


def prompt_token_ids(tokenizer: Any, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt: chat message lists through the chat template, strings verbatim."""
    ids = []
    for prompt in prompts:
        if isinstance(prompt, str):
            ids.append(list(tokenizer(prompt)["input_ids"]))
        else:
            text = tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
            ids.append(list(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return ids


# ------------------------------------------------------------------------------------------ transformers

def _sample_transformers(model, prompts, group_size, *, temperature, top_p, max_new_tokens, seed, batch_size,
                         tokenizer, progress) -> list[list[str]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model, (str, Path)):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
        model = AutoModelForCausalLM.from_pretrained(model)
    elif tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(model.name_or_path)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token before sampling.")

    ids = prompt_token_ids(tokenizer, prompts)
    prompts_per_batch = max(1, batch_size // group_size)
    if temperature > 0:
        sampling, copies = {"do_sample": True, "temperature": temperature, "top_p": top_p}, group_size
    else:  # greedy decoding gives every member of a group the same text: decode once, repeat
        sampling, copies = {"do_sample": False}, 1
    was_training = model.training
    model.eval()
    groups: list[list[str]] = []
    starts = range(0, len(ids), prompts_per_batch)
    try:
        for batch_index, start in enumerate(tqdm(starts, desc="sampling", disable=not progress)):
            batch = ids[start:start + prompts_per_batch]
            input_ids, attention_mask = _left_pad(batch, pad_id, model.device)
            torch.manual_seed(seed + batch_index)
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=copies,
                    pad_token_id=pad_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **sampling,
                )
            texts = tokenizer.batch_decode(output[:, input_ids.shape[1]:], skip_special_tokens=True)
            texts = [text for text in texts for _ in range(group_size // copies)]
            groups.extend(texts[i:i + group_size] for i in range(0, len(texts), group_size))
    finally:
        model.train(was_training)
    return groups


def _left_pad(batch: list[list[int]], pad_id: int, device):
    import torch

    width = max(len(row) for row in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, tokens in enumerate(batch):
        input_ids[row, width - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[row, width - len(tokens):] = 1
    return input_ids.to(device), attention_mask.to(device)


# ------------------------------------------------------------------------------------------------- vLLM

def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(f"backend='vllm' needs the vllm package, which is not installed: {GPU_EXTRA_HINT}.") from error
    return vllm


def _sample_vllm(model, prompts, group_size, *, temperature, top_p, max_new_tokens, seed, progress,
                 vllm_kwargs) -> list[list[str]]:
    vllm = _import_vllm()
    llm = model if isinstance(model, vllm.LLM) else vllm.LLM(model=str(model), seed=seed, **vllm_kwargs)
    params = vllm.SamplingParams(
        n=group_size, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed,
        skip_special_tokens=True,
    )
    ids = prompt_token_ids(llm.get_tokenizer(), prompts)
    outputs = llm.generate([{"prompt_token_ids": row} for row in ids], params, use_tqdm=progress)
    return [[choice.text for choice in output.outputs] for output in outputs]


# ------------------------------------------------------------------------------------------- validation

def _check_arguments(prompts, group_size, temperature, top_p, max_new_tokens, batch_size, backend) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose 'transformers' (CPU/GPU) or 'vllm' (GPU: {GPU_EXTRA_HINT}).")
    if isinstance(prompts, (str, dict)) or not len(prompts):
        raise ValueError("prompts must be a non-empty list of strings or chat message lists.")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}.")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature!r}.")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p!r}.")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}.")
