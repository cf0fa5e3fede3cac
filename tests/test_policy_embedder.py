"""dra.embed.PolicyEmbedder on the smoke base policy: what it pools, shape, unit norm, determinism, identical
texts, padding that does not leak, the model's training mode, truncation, and bad arguments."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from dra import mini, policy
from dra.embed import PolicyEmbedder, get_embedder

RNG = random.Random(0)
TEXTS = [mini.completion(RNG.choice(mini.make_splits(0).rl), strategy) for strategy in mini.STRATEGIES] + ["", "7"]


@pytest.fixture(scope="module")
def smoke(smoke_policy_dir):
    return policy.load_policy(smoke_policy_dir)


@pytest.fixture(scope="module")
def embedder(smoke):
    return PolicyEmbedder(*smoke)


def test_it_pools_the_last_hidden_state_over_the_tokens_and_eos(smoke, embedder):
    model, tokenizer = smoke
    text = TEXTS[0]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
    want = hidden.mean(0).numpy()
    got = embedder.encode([text])[0]
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-5)
    assert embedder.token_ids([text]) == [ids] and embedder.last_stats.n_tokens == len(ids)


def test_shape_unit_norm_and_distinct_texts(smoke, embedder):
    model, _ = smoke
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), model.config.hidden_size) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # the empty text embeds its EOS
    similarity = vectors @ vectors.T
    assert similarity[np.triu_indices(len(TEXTS), 1)].max() < 0.9999  # distinct texts, distinct vectors


def test_deterministic_identical_texts_and_no_padding_leak(embedder):
    first = embedder.encode(TEXTS)
    assert np.array_equal(first, embedder.encode(TEXTS))
    repeated = embedder.encode([TEXTS[2], TEXTS[0], TEXTS[2]])
    assert np.array_equal(repeated[0], repeated[2]) and embedder.last_stats.n_unique == 2
    one_by_one = np.stack([embedder.encode([t], batch_size=1)[0] for t in TEXTS])
    np.testing.assert_allclose(embedder.encode(TEXTS, batch_size=len(TEXTS)), one_by_one, atol=1e-5)


def test_training_mode_is_restored_and_no_gradients_are_kept(smoke, embedder):
    model, _ = smoke
    model.train()
    try:
        embedder.encode(TEXTS[:2])
        assert model.training and all(p.grad is None for p in model.parameters())
    finally:
        model.eval()


def test_truncation_is_counted_and_cuts_the_end(smoke):
    short = PolicyEmbedder(*smoke, max_seq_length=8)
    vectors = short.encode([TEXTS[0], "7"])
    n_short = len(short.token_ids(["7"])[0])
    assert short.last_stats.n_truncated == 1 and short.last_stats.n_tokens == 8 + n_short
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_identity_says_live_weights_and_is_never_cached(embedder):
    ident = embedder.identity()
    assert json.loads(json.dumps(ident)) == ident
    assert ident["backend"] == "policy" and ident["weights"] == "live" and ident["layer"] == "last_hidden_state"
    assert embedder.cacheable is False


@pytest.mark.parametrize("make, error, message", [
    (lambda m, t: PolicyEmbedder("a model", t), TypeError, "model must be a loaded transformers model"),
    (lambda m, t: PolicyEmbedder(m, "a tokenizer"), TypeError, "tokenizer must be the model's"),
    (lambda m, t: PolicyEmbedder(m, t, max_seq_length=0), ValueError, "max_seq_length must be a positive int"),
    (lambda m, t: PolicyEmbedder(m, t, max_seq_length=10**6), ValueError, "at most .* max_position_embeddings"),
    (lambda m, t: get_embedder("policy"), ValueError, r"PolicyEmbedder\(model, tokenizer\)"),
    (lambda m, t: PolicyEmbedder(m, t).encode("one text"), TypeError, "not a single string"),
])
def test_bad_arguments_are_named(smoke, make, error, message):
    with pytest.raises(error, match=message):
        make(*smoke)


def test_masked_mean_ignores_masked_positions_even_when_not_finite():
    from dra.embed import masked_mean

    hidden = torch.tensor([[[1.0, 2.0], [float("nan"), float("inf")], [3.0, 6.0]],
                           [[5.0, 5.0], [7.0, 9.0], [float("nan"), 0.0]]], dtype=torch.bfloat16)
    mask = torch.tensor([[1, 0, 1], [1, 1, 0]])
    got = masked_mean(hidden, mask)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor([[2.0, 4.0], [6.0, 7.0]]))
    with pytest.raises(ValueError, match="no tokens to pool"):
        masked_mean(hidden, torch.tensor([[1, 0, 0], [0, 0, 0]]))


def test_decoder_of_unwraps_peft_and_the_policy_embedder_runs_under_it(smoke, embedder):
    from peft import LoraConfig, get_peft_model

    from dra.embed import decoder_of

    model, tokenizer = smoke
    assert decoder_of(model) is model.model  # Qwen2ForCausalLM -> Qwen2Model
    wrapped = get_peft_model(type(model).from_pretrained(model.name_or_path),
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert type(decoder_of(wrapped)).__name__ == type(model.model).__name__
    # a fresh adapter is the identity (B = 0): the wrapped policy embeds exactly as the plain one
    np.testing.assert_allclose(PolicyEmbedder(wrapped, tokenizer).encode(TEXTS[:3]), embedder.encode(TEXTS[:3]),
                               atol=1e-6)
    with pytest.raises(TypeError, match="no base_model"):
        decoder_of(object())
