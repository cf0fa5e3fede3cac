"""How DRAGRPOTrainer embeds a batch.

dra_embedder="policy": the trainer's policy embeddings against an independent computation (each prompt +
completion run alone through the model, mean of the last hidden state over the completion), on batches whose
prompts and completions have different lengths (so both are padded); the extra pass and the reuse of TRL's
old-log-probs pass agree; under PEFT the policy (adapter on) is embedded, not the reference; the DRA weights
from these embeddings are what the kernel gives; bad inputs raise. The text embedder's dtype and backend
options reach get_embedder."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

import dra
from dra import mini, policy, profiles, train
from dra.generation import prompt_token_ids
from dra.train import DRAGRPOConfig, DRAGRPOTrainer

G = 4


@pytest.fixture(scope="module")
def smoke_policy(tmp_path_factory) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRA_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        return str(policy.base_policy("smoke"))


@pytest.fixture(scope="module")
def records() -> list[dict]:
    task = profiles.get("smoke").mini_policy().task
    return task.records(task.splits().rl[:8])


def length_reward(completions, **kwargs) -> list[float]:
    """Positive and different for completions of different lengths, so DRA's weights move the advantages."""
    return [1.0 + len(c[0]["content"]) / 50 for c in completions]


def make_trainer(path: str, records: list[dict], tmp_path, peft: bool = False, embedder=None,
                 **options) -> DRAGRPOTrainer:
    options = {"dra_embedder": "policy", **options}
    args = DRAGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none",
                         num_generations=G, per_device_train_batch_size=2 * G, max_completion_length=24, max_steps=1,
                         seed=0, **options)
    peft_config = None
    if peft:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    trainer = DRAGRPOTrainer(model=path, reward_funcs=length_reward, args=args, train_dataset=Dataset.from_list(records),
                             peft_config=peft_config, embedder=embedder)
    if peft:  # a fresh LoRA adapter is the identity (B = 0); make the policy differ from its reference
        generator = torch.Generator().manual_seed(0)
        for name, parameter in trainer.model.named_parameters():
            if "lora_B" in name:
                parameter.data = torch.randn(parameter.shape, generator=generator) * 0.5
    # The barely trained smoke policy rarely samples EOS within 24 tokens; ending completions at any digit too
    # (TRL cuts each completion at its first token in eos_token_ids) gives completions of different lengths.
    digits = trainer.processing_class.convert_tokens_to_ids(list("0123456789"))
    trainer.eos_token_ids = [*trainer.eos_token_ids, *digits]
    trainer.model.train()
    return trainer


def independent_embeddings(model, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> torch.Tensor:
    """Each prompt + completion alone (no padding at all) through the full model; mean of the last hidden state
    over the completion's positions; unit length."""
    rows = []
    with torch.no_grad():
        for prompt, completion in zip(prompt_ids, completion_ids):
            hidden = model(torch.tensor([prompt + completion]), output_hidden_states=True).hidden_states[-1][0]
            rows.append(hidden[len(prompt):].mean(0))
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def unpadded(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    return [row[m.bool()].tolist() for row, m in zip(ids, mask)]


def score_batch(trainer: DRAGRPOTrainer, records: list[dict], monkeypatch) -> tuple[dict, dict]:
    """TRL's generation + scoring of 2 prompts x G, with the embeddings and rewards DRA received."""
    seen: dict = {}
    original = train.adjust_reward_rows

    def spy(rewards_per_func, embeddings, *args, **kwargs):
        seen.update(rewards=rewards_per_func.clone(), embeddings=embeddings.clone())
        return original(rewards_per_func, embeddings, *args, **kwargs)

    monkeypatch.setattr(train, "adjust_reward_rows", spy)
    inputs = [dict(r) for r in records[:2] for _ in range(G)]
    return trainer._generate_and_score_completions(inputs), seen


def test_policy_embeddings_of_a_padded_batch_equal_each_sequence_alone(smoke_policy, records, tmp_path):
    trainer = make_trainer(smoke_policy, records, tmp_path)
    tokenizer = trainer.processing_class
    prompts = prompt_token_ids(tokenizer, [r["prompt"] for r in records[:5]])
    prompts[1] = prompts[1][5:]  # prompt lengths differ: left padding
    text = tokenizer(mini.completion(mini.make_splits(0).rl[0], "grid"), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    completions = [text[:1], text[:17] + [eos], text[:9], text[:30] + [eos], text[:4]]  # right padding
    # 10 rows, 2 of them repeats (same prompt and completion): more than one chunk of per_device_train_batch_size
    prompts, completions = prompts * 2, completions * 2
    completions[5:8] = [text[:12], text[:20], text[:2]]
    assert len({len(p) for p in prompts}) > 1 and len({len(c) for c in completions}) > 5
    calls = []
    handle = trainer.model.model.register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        got = trainer.policy_embeddings(prompts, completions)
    finally:
        handle.remove()
    want = independent_embeddings(trainer.model, prompts, completions)
    assert got.dtype == torch.float32 and got.shape == (10, trainer.model.config.hidden_size)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
    assert torch.equal(got[3], got[8]) and torch.equal(got[4], got[9])  # repeats embedded once
    assert len(calls) == 2  # as many decoder calls as chunks of 8 would take, on every process
    assert trainer.model.training  # the call leaves the model's mode alone


@pytest.mark.slow
@pytest.mark.parametrize("peft", [False, True], ids=["full", "peft"])
@pytest.mark.parametrize("reuse", [False, True], ids=["extra-pass", "reuse-trl-pass"])
def test_trainer_embeds_with_the_policy_and_its_weights_pass_through_the_kernel(
        smoke_policy, records, tmp_path, monkeypatch, peft, reuse):
    # num_iterations=2 makes TRL compute old log-probs over the policy before scoring: its pass is reused.
    # beta > 0 adds the reference pass, which under PEFT runs the same model with the adapter off.
    options = {"num_iterations": 2, "beta": 0.04} if reuse else {"beta": 0.04}
    trainer = make_trainer(smoke_policy, records, tmp_path, peft=peft, **options)
    if reuse:  # the extra pass must not run
        monkeypatch.setattr(trainer, "policy_embeddings", lambda *a, **k: pytest.fail("extra pass ran"))
    out, seen = score_batch(trainer, records, monkeypatch)
    assert trainer._metrics["train"]["dra/policy_pass_reused"] == [float(reuse)]
    prompts, completions = unpadded(out["prompt_ids"], out["prompt_mask"]), unpadded(out["completion_ids"],
                                                                                      out["completion_mask"])
    assert len({len(p) for p in completions}) > 1  # completions of different lengths: the batch was padded
    want = independent_embeddings(trainer.model, prompts, completions)
    torch.testing.assert_close(seen["embeddings"], want, atol=2e-5, rtol=0)
    if peft:  # the reference (adapter off) would embed differently
        with trainer.model.disable_adapter():
            reference = independent_embeddings(trainer.model, prompts, completions)
        assert (seen["embeddings"] - reference).abs().max() > 1e-3
    # The advantages TRL computed come from the DRA kernel applied to the independently computed embeddings.
    summed = seen["rewards"].sum(1)
    expected = dra.group_advantages(dra.adjust_rewards(summed, want, G), G, "group")
    torch.testing.assert_close(out["advantages"], expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(out["advantages"], dra.group_advantages(summed, G, "group"), atol=1e-3)


def test_policy_embeddings_refuse_mismatched_or_empty_inputs(smoke_policy, records, tmp_path):
    trainer = make_trainer(smoke_policy, records, tmp_path)
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        trainer.policy_embeddings([[1, 2], [3]], [[4]])
    with pytest.raises(ValueError, match="have no tokens"):
        trainer.policy_embeddings([[1, 2]], [[]])
    assert trainer.embedder is None and trainer.uses_policy_embeddings


def test_policy_embedder_options():
    with pytest.raises(ValueError, match="dra_embed_max_seq_length does not apply"):
        DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, dra_embedder="policy", dra_embed_max_seq_length=64)
    args = DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, dra_embedder="policy")
    recipe = train.RecipeArguments(profile="smoke", task="mini")
    assert train.recipe_problems(train.RunConfig(recipe, args)) == []


def test_a_batch_that_did_not_come_from_generation_is_refused(smoke_policy, records, tmp_path):
    trainer = make_trainer(smoke_policy, records, tmp_path)
    with pytest.raises(RuntimeError, match="needs the batch's prompt token ids"):
        trainer._local_embeddings([[{"role": "assistant", "content": "x"}]], [[1]], torch.device("cpu"))


def test_text_embedder_dtype_and_backend_reach_get_embedder(monkeypatch):
    calls = []
    monkeypatch.setattr(train, "get_embedder", lambda name, **options: calls.append((name, options)) or "built")
    trainer = object.__new__(DRAGRPOTrainer)
    trainer._embedder = None
    trainer.args = DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, dra_embed_dtype="auto",
                                 dra_embed_backend="openvino")
    assert trainer.embedder == "built" and calls == [("minilm", {"dtype": "auto", "backend": "openvino"})]
    trainer._embedder, trainer.args = None, DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False,
                                                          dra_embedder="tfidf")
    assert trainer.embedder == "built" and calls[-1] == ("tfidf", {})


@pytest.mark.parametrize("fields, message", [
    ({"dra_embed_dtype": "fp8"}, "dra_embed_dtype must be one of auto, float32, float16, bfloat16"),
    ({"dra_embed_backend": "tensorrt"}, "dra_embed_backend must be one of torch, onnx, openvino"),
    ({"dra_embedder": "tfidf", "dra_embed_dtype": "bfloat16"}, "dra_embed_dtype applies to transformer text embedders"),
    ({"dra_embedder": "policy", "dra_embed_backend": "onnx"}, "dra_embed_backend applies to transformer text"),
])
def test_bad_embedding_options_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, **fields)
