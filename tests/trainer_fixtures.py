"""Shared inputs of the trainer tests (single- and two-process): completions, rewards, a stateless embedder."""

import numpy as np
import torch
from sklearn.feature_extraction.text import HashingVectorizer


class HashingEmbedder:
    """Character n-gram hashing: stateless, so every process embeds a text identically (TF-IDF would not)."""

    name = "hashing"
    max_seq_length = None

    def __init__(self):
        self.vectorizer = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=512,
                                            alternate_sign=False)

    def encode(self, texts, show_progress=False):
        vectors = self.vectorizer.transform(texts).toarray().astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def all_completions() -> list[str]:
    """3 groups of 6: redundant, mixed, distinct."""
    redundant = ["Split the first number: 40 + 7. Then 47 x 3 = 141."] * 5 + ["Round 47 up to 50, then correct: 141."]
    mixed = ["Grid of partial products: 120 + 21 = 141."] * 3 + [
        "Split the second number: 3 = 3. 47 x 3 = 141.", "I do not know.", "Round 47 up to 50: 150 - 9 = 141."]
    distinct = ["alpha beta", "gamma delta epsilon", "zeta eta theta iota", "kappa lambda", "mu nu xi", "omicron pi"]
    return redundant + mixed + distinct


def all_rewards_per_func() -> torch.Tensor:
    """(18, 2) rewards of two functions (format, cosine), signed as the paper's are."""
    rng = np.random.default_rng(0)
    return torch.tensor(np.stack([rng.integers(0, 2, 18), rng.uniform(-0.5, 1.0, 18)], axis=1), dtype=torch.float32)
