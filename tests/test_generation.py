"""The group sampler at smoke scale: shapes, seeding, greedy groups, the backend switch, bad input."""

from __future__ import annotations

import sys
import types

import pytest

from dra import generation, mini, policy


@pytest.fixture(scope="module")
def smoke_policy(smoke_policy_dir):
    model, tokenizer = policy.load_policy(smoke_policy_dir)
    return smoke_policy_dir, model, tokenizer


PROMPTS = [mini.prompt_messages(p) for p in mini.make_splits(0).test[:5]]


def test_groups_have_the_requested_shape_and_are_seeded(smoke_policy):
    path, model, tokenizer = smoke_policy
    groups = generation.sample_groups(model, PROMPTS, 3, max_new_tokens=12, seed=1, tokenizer=tokenizer, batch_size=6)
    assert len(groups) == 5 and all(len(g) == 3 and all(isinstance(t, str) for t in g) for g in groups)
    again = generation.sample_groups(path, PROMPTS, 3, max_new_tokens=12, seed=1, batch_size=6)
    assert again == groups  # a path loads the same model; same seed and batching give the same samples
    other = generation.sample_groups(model, PROMPTS, 3, max_new_tokens=12, seed=2, tokenizer=tokenizer, batch_size=6)
    assert other != groups


def test_greedy_groups_are_identical(smoke_policy):
    _, model, tokenizer = smoke_policy
    groups = generation.sample_groups(model, PROMPTS[:2], 4, temperature=0, max_new_tokens=8, tokenizer=tokenizer)
    assert all(len(set(g)) == 1 for g in groups)


def test_string_prompts_are_used_verbatim(smoke_policy):
    _, model, tokenizer = smoke_policy
    rendered = tokenizer.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True)
    assert generation.prompt_token_ids(tokenizer, [rendered]) == generation.prompt_token_ids(tokenizer, PROMPTS[:1])
    ids = generation.prompt_token_ids(tokenizer, PROMPTS[:1])[0]
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # system, user, assistant header


def test_vllm_backend_without_vllm_names_the_gpu_extra(smoke_policy, monkeypatch):
    path, _, _ = smoke_policy
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now fails, as on a machine without it
    with pytest.raises(ImportError, match=r"dra-grpo\[gpu\]"):
        generation.sample_groups(path, PROMPTS, 2, backend="vllm")


def test_vllm_backend_passes_the_same_prompts_and_settings(smoke_policy, monkeypatch):
    """Drive the vLLM code path with a stand-in module that records what vLLM would receive."""
    path, _, tokenizer = smoke_policy
    calls = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["params"] = kwargs

    class LLM:
        def __init__(self, model, **kwargs):
            calls["llm"] = {"model": model, **kwargs}

        def get_tokenizer(self):
            return tokenizer

        def generate(self, requests, params, use_tqdm=True):
            calls["requests"] = requests
            n = calls["params"]["n"]
            choice = types.SimpleNamespace
            return [choice(outputs=[choice(text=f"{i}:{j}") for j in range(n)]) for i, _ in enumerate(requests)]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    groups = generation.sample_groups(path, PROMPTS, 6, backend="vllm", seed=5, max_new_tokens=64,
                                      vllm_kwargs={"gpu_memory_utilization": 0.5})
    assert groups == [[f"{i}:{j}" for j in range(6)] for i in range(len(PROMPTS))]
    assert calls["llm"] == {"model": str(path), "seed": 5, "gpu_memory_utilization": 0.5}
    assert calls["params"] == {"n": 6, "temperature": 0.7, "top_p": 1.0, "max_tokens": 64, "seed": 5,
                               "skip_special_tokens": True}
    expected = generation.prompt_token_ids(tokenizer, PROMPTS)
    assert [r["prompt_token_ids"] for r in calls["requests"]] == expected


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "tpu"}, "unknown backend"),
    ({"group_size": 0}, "group_size"),
    ({"top_p": 0.0}, "top_p"),
    ({"temperature": -1.0}, "temperature"),
    ({"prompts": []}, "non-empty list"),
    ({"prompts": "What is 2 * 3?"}, "non-empty list"),
    ({"prompts": [1, 2]}, "prompt 0 is int"),
    ({"prompts": [[{"role": "user"}]]}, "prompt 0 is list"),
    ({"prompts": [[]]}, "prompt 0"),
    ({"group_size": 2.0}, "group_size must be an integer"),
    ({"group_size": True}, "group_size must be an integer"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": 1.5}, "max_new_tokens"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"seed": "0"}, "seed"),
    ({"seeds": [1, 2]}, "one seed per prompt: got 2 seeds for 5"),
    ({"seeds": "12345"}, "seeds"),
    ({"seeds": [0, 1, 2, 3, -4]}, r"seeds\[4\]"),
    ({"seeds": [0, 1, 2, 3, 4.0]}, r"seeds\[4\]"),
])
def test_bad_arguments_are_refused_before_loading(kwargs, message):
    arguments = {"model": "/nonexistent", "prompts": PROMPTS, "group_size": 2, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        generation.sample_groups(**arguments)


def test_per_prompt_seeds_make_each_group_independent_of_its_batch(smoke_policy):
    _, model, tokenizer = smoke_policy
    seeds = [11, 22, 33, 44, 55]

    def sample(prompts, prompt_seeds, batch_size):
        return generation.sample_groups(model, prompts, 3, max_new_tokens=16, tokenizer=tokenizer,
                                        batch_size=batch_size, seeds=prompt_seeds)

    together = sample(PROMPTS, seeds, batch_size=15)
    assert together == sample(PROMPTS, seeds, batch_size=3)  # one prompt per generate call
    assert together[::-1] == sample(PROMPTS[::-1], seeds[::-1], batch_size=6)  # other order, other batches
    assert together[2] == sample(PROMPTS[2:3], seeds[2:3], batch_size=3)[0]  # alone
    assert sample(PROMPTS, [s + 1 for s in seeds], batch_size=15) != together
