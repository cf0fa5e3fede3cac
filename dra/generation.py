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
greedy decoding (every member of a group is then identical). The transformers backend also applies the
model's ``generation_config.top_k`` (transformers' default when unset: 50), as ``model.generate`` does; vLLM
applies no top-k.

Reproducibility, two modes:

- ``seed=`` (one seed for the call): with the same seed, prompts, `batch_size` and hardware the transformers
  backend returns the same texts; its random stream is reseeded per batch, so a prompt's samples depend on
  which prompts share its batch.
- ``seeds=`` (one seed per prompt): each prompt's group is drawn from its own random stream (transformers: a
  ``torch.Generator`` per prompt that draws the next tokens of its rows, after the same temperature / top-k /
  top-p processing; vLLM: a seeded request per prompt), so a prompt's samples do not depend on the other
  prompts of the call, on `batch_size` or on the order of the prompts (up to floating-point differences of
  batched arithmetic). `dra.evaluate` uses this, so its results do not depend on how problems are chunked.

The two backends never produce the same samples for the same seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from dra import checks

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
    progress: bool | str = False,
    vllm_kwargs: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[list[str]]:
    """Sample `group_size` completions for every prompt; returns one list of texts per prompt, in order.

    `model`: a local directory or Hub id (loaded with ``from_pretrained`` / ``vllm.LLM``), or an already
    loaded ``PreTrainedModel`` (transformers backend; pass its `tokenizer`, else the one saved at
    ``model.name_or_path`` is loaded) or ``vllm.LLM`` (vLLM backend). `batch_size` bounds the number of
    sequences (prompts x group_size) generated together by the transformers backend; at least one prompt's
    group is always generated at once. `vllm_kwargs` go to ``vllm.LLM(...)`` when it is built here
    (e.g. ``gpu_memory_utilization``, ``max_model_len``, ``dtype``). `seeds`: one seed per prompt instead of
    `seed` (see the module docstring). `progress`: True shows a progress bar labelled "sampling", a string
    shows one labelled with it (e.g. "sampling 3000 prompts x 6"). Bad arguments raise TypeError/ValueError naming them, before any
    model is loaded.
    """
    prompts = _check_arguments(prompts, group_size, temperature, top_p, max_new_tokens, batch_size, backend, seed)
    seeds = None if seeds is None else _check_seeds(seeds, len(prompts))
    if backend == "vllm":
        return _sample_vllm(model, prompts, group_size, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, seed=seed, progress=progress,
                            vllm_kwargs=vllm_kwargs or {}, seeds=seeds)
    return _sample_transformers(model, prompts, group_size, temperature=temperature, top_p=top_p,
                                max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size,
                                tokenizer=tokenizer, progress=progress, seeds=seeds)


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
                         tokenizer, progress, seeds) -> list[list[str]]:
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
    greedy = temperature == 0
    copies = 1 if greedy else group_size  # greedy decoding gives every member of a group the same text
    was_training = model.training
    model.eval()
    groups: list[list[str]] = []
    starts = range(0, len(ids), prompts_per_batch)
    label = progress if isinstance(progress, str) else "sampling"
    try:
        for batch_index, start in enumerate(tqdm(starts, desc=label, disable=not progress, unit="batch")):
            batch = ids[start:start + prompts_per_batch]
            input_ids, attention_mask = _left_pad(batch, pad_id, model.device)
            if greedy:
                sampling: dict[str, Any] = {"do_sample": False}
            elif seeds is None:
                torch.manual_seed(seed + batch_index)
                sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p,
                            "num_return_sequences": copies}
            else:  # each row already repeated; the sampler draws, greedy decoding takes what it drew
                input_ids, attention_mask = (t.repeat_interleave(copies, dim=0) for t in (input_ids, attention_mask))
                sampling = {"do_sample": False, "logits_processor": [_SeededSampler(
                    model, seeds[start:start + prompts_per_batch], group_size, temperature, top_p)]}
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
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


class _SeededSampler:
    """A logits processor that samples every row's next token from its prompt's own random stream.

    It applies what ``generate(do_sample=True)`` would (temperature, the model's top-k, top-p), draws each
    prompt's `group_size` rows with that prompt's ``torch.Generator``, and leaves only the drawn token
    possible, so greedy decoding (``do_sample=False``) takes it. Rows are prompt-major, as
    ``num_return_sequences`` lays them out.
    """

    def __init__(self, model: Any, seeds: Sequence[int], group_size: int, temperature: float, top_p: float) -> None:
        import torch
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        top_k = model.generation_config.top_k
        top_k = 50 if top_k is None else top_k  # transformers' default when the model sets none
        self.warpers = LogitsProcessorList(
            ([TemperatureLogitsWarper(temperature)] if temperature != 1.0 else [])
            + ([TopKLogitsWarper(top_k)] if top_k else [])
            + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else [])
        )
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.group_size = group_size

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1).cpu()
        uniforms = torch.cat([torch.rand(self.group_size, generator=g, dtype=torch.float64) for g in self.generators])
        cdf = probs.double().cumsum(dim=-1)
        drawn = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(1), right=True).clamp_(max=probs.shape[-1] - 1)
        chosen = torch.full_like(scores, -math.inf)
        chosen.scatter_(1, drawn.to(scores.device), 0.0)
        return chosen


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
                 vllm_kwargs, seeds) -> list[list[str]]:
    vllm = _import_vllm()
    llm = model if isinstance(model, vllm.LLM) else vllm.LLM(model=str(model), seed=seed, **vllm_kwargs)

    def params(request_seed: int):
        return vllm.SamplingParams(n=group_size, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                   seed=request_seed, skip_special_tokens=True)

    ids = prompt_token_ids(llm.get_tokenizer(), prompts)
    sampling = params(seed) if seeds is None else [params(s) for s in seeds]
    outputs = llm.generate([{"prompt_token_ids": row} for row in ids], sampling, use_tqdm=bool(progress))
    return [[choice.text for choice in output.outputs] for output in outputs]


# ------------------------------------------------------------------------------------------- validation

def _check_arguments(prompts, group_size, temperature, top_p, max_new_tokens, batch_size, backend, seed) -> list:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose 'transformers' (CPU/GPU) or 'vllm' (GPU: {GPU_EXTRA_HINT}).")
    if isinstance(prompts, (str, dict)) or not isinstance(prompts, Sequence) or not len(prompts):
        raise ValueError("prompts must be a non-empty list of strings or chat message lists.")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) and not _is_messages(p)]
    if bad:
        raise ValueError(f"prompts must be strings or lists of {{'role': ..., 'content': ...}} messages; prompt "
                         f"{bad[0]} is {type(prompts[bad[0]]).__name__}: {prompts[bad[0]]!r:.80}.")
    checks.integer(group_size, "group_size", minimum=1)
    checks.real(temperature, "temperature (0 means greedy)", 0)
    checks.real(top_p, "top_p", 0, 1, low_open=True)
    checks.integer(max_new_tokens, "max_new_tokens", minimum=1)
    checks.integer(batch_size, "batch_size", minimum=1)
    checks.integer(seed, "seed", minimum=0)
    return list(prompts)


def _is_messages(prompt: Any) -> bool:
    return (isinstance(prompt, Sequence) and not isinstance(prompt, str) and len(prompt) > 0
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in prompt))


def _check_seeds(seeds: Any, n_prompts: int) -> list[int]:
    seeds = checks.items(seeds, "seeds", "integer seeds, one per prompt")
    if len(seeds) != n_prompts:
        raise ValueError(f"seeds must hold one seed per prompt: got {len(seeds)} seeds for {n_prompts} prompts.")
    return [checks.integer(s, f"seeds[{i}]", minimum=0) for i, s in enumerate(seeds)]
