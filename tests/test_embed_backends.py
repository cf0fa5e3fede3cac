"""dra.embed's exported backends (ONNX Runtime, OpenVINO; the `fast` extra): fidelity to the PyTorch model,
the on-disk export cache and its key, the export check, and the errors that name what is missing."""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

import dra.embed as embed
from dra import mini
from dra.embed import get_embedder

pytest.importorskip("onnxruntime")

RNG = random.Random(0)
TEXTS = ([mini.completion(RNG.choice(mini.make_splits(0).rl), strategy) for strategy in mini.STRATEGIES]
         + ["", "x", "The answer is 4.", "Let x be the answer. " * 80])  # the last one is cut at 256 tokens


@pytest.fixture(scope="module")
def cache(module_cache_dir):
    return module_cache_dir


@pytest.fixture(scope="module")
def reference():
    torch_embedder = get_embedder("minilm", dtype="float32")
    return torch_embedder, torch_embedder.encode(TEXTS)


def exported_files(cache) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.glob("onnx/*/model.onnx"))


def test_onnx_float32_matches_pytorch_and_counts_the_same(cache, reference):
    torch_embedder, want = reference
    onnx = get_embedder("minilm", backend="onnx")
    got = onnx.encode(TEXTS, batch_size=3)  # several padded batches of different widths
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got - want).max() < 1e-4
    stats = onnx.last_stats
    torch_embedder.encode(TEXTS)
    assert (stats.n_unique, stats.n_truncated, stats.n_tokens) == (len(TEXTS), 1, torch_embedder.last_stats.n_tokens)
    assert np.array_equal(onnx.encode(["a", "b", "a"])[0], onnx.encode(["a"])[0])  # dedup, order-free batches


def test_export_is_written_once_and_keyed_by_model_backend_and_options(cache, reference, monkeypatch):
    onnx = get_embedder("minilm", backend="onnx")
    int8 = get_embedder("minilm", backend="onnx", quantize="int8")
    files = exported_files(cache)
    assert len(files) == 2  # float32 and int8, each in a folder of its own key
    monkeypatch.setattr(embed, "_export_and_check", lambda *a: pytest.fail("exported again instead of cached"))
    monkeypatch.setattr(embed, "_quantize_int8", lambda *a: pytest.fail("quantised again instead of cached"))
    again = get_embedder("minilm", backend="onnx", quantize="int8")
    assert exported_files(cache) == files and again.identity() == int8.identity()
    identities = [get_embedder("minilm", dtype="float32").identity(), onnx.identity(), int8.identity()]
    assert len({json.dumps(i, sort_keys=True) for i in identities}) == 3
    assert onnx.identity()["backend"] == "onnx" and onnx.identity()["runtime"].startswith("onnxruntime==")
    assert int8.identity()["quantize"] == "int8" and onnx.identity()["quantize"] is None
    path = embed.onnx_cache_path(embed.MINILM_ID, onnx.revision)
    assert str(path.relative_to(cache)) in files
    others = [embed.onnx_cache_path(embed.MINILM_ID, "another revision"), embed.onnx_cache_path("other/model", onnx.revision),
              embed.onnx_cache_path(embed.MINILM_ID, onnx.revision, weights=str(cache))]  # a local folder's files
    assert len({path, *others}) == 4


def test_int8_is_smaller_and_faster_but_not_exact(cache, reference):
    _, want = reference
    int8 = get_embedder("minilm", backend="onnx", quantize="int8")
    got = int8.encode(TEXTS)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(got * want, axis=1)
    assert cosine.min() > 0.95 and np.abs(got - want).max() > 1e-3  # close, but quantised (see the benchmark)
    files = {p.parent.name: p.stat().st_size for p in cache.glob("onnx/*/model.onnx")}
    assert min(files.values()) < max(files.values()) / 3


def test_a_failed_export_check_is_not_cached(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(embed, "EXPORT_TOLERANCE", -1.0)
    with pytest.raises(RuntimeError, match="differs from the PyTorch model .* it is not cached"):
        get_embedder("minilm", backend="onnx")
    assert exported_files(tmp_path) == [] and not list(tmp_path.glob("onnx/*/.*"))  # no partial folder either


def test_missing_runtime_names_the_extra(cache, monkeypatch):
    get_embedder("minilm", backend="onnx")  # the export exists; only the runtime is missing below
    monkeypatch.setattr(embed, "_MODELS", {})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"backend='onnx' needs the onnxruntime package.*\.\[fast\]"):
        get_embedder("minilm", backend="onnx")


def test_openvino_float32_matches_and_bfloat16_is_close(cache, reference):
    pytest.importorskip("openvino")
    _, want = reference
    f32 = get_embedder("minilm", backend="openvino", dtype="float32")
    assert np.abs(f32.encode(TEXTS, batch_size=3) - want).max() < 1e-4
    bf16 = get_embedder("minilm", backend="openvino", dtype="bfloat16")
    assert np.sum(bf16.encode(TEXTS) * want, axis=1).min() > 0.99
    assert f32.identity()["runtime"].startswith("openvino==") and f32.identity() != bf16.identity()
    assert len(exported_files(cache)) >= 1  # OpenVINO reads the same float32 export
