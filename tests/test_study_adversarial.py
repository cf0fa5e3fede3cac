"""Bad input to the study's public statistics: a clear error naming the argument, or a documented result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dra import study

GOOD_P = [0.01, 0.2, float("nan"), 0.04, 0.9]


@pytest.mark.parametrize("p, error, message", [
    ([0.5, 1.2], ValueError, r"\[0, 1\]"),
    ([-0.1, 0.5], ValueError, r"\[0, 1\]"),
    ([[0.1, 0.2]], ValueError, "1-D"),
    (["a", "b"], ValueError, "could not convert|p must"),
    ({"a": 1}, TypeError, "p must"),
])
def test_significant_share_refuses_values_that_are_not_p_values(p, error, message):
    with pytest.raises((error, TypeError, ValueError), match=message):
        study.significant_share(p)


@pytest.mark.parametrize("alpha", [95, 0, 1, -0.05, float("nan"), True, "0.05"])
def test_significant_share_refuses_alpha_outside_0_1(alpha):
    with pytest.raises((TypeError, ValueError), match="alpha"):
        study.significant_share(GOOD_P, alpha=alpha)


def test_significant_share_refuses_clusters_of_the_wrong_length():
    with pytest.raises(ValueError, match="clusters"):
        study.significant_share(GOOD_P, clusters=[0, 0, 1])


def test_significant_share_documented_results_on_edge_cases():
    empty = study.significant_share([])
    assert empty.n_defined == 0 and math.isnan(empty.share.estimate) and empty.share.method == "none"
    undefined = study.significant_share([float("nan")] * 3)
    assert undefined.n_defined == 0 and math.isnan(undefined.share.low) and undefined.share_undefined == 1.0
    exact = study.significant_share(GOOD_P)
    assert (exact.n_defined, exact.n_significant) == (4, 2) and exact.share.estimate == 0.5
    assert exact.share.low < 0.5 < exact.share.high


@pytest.mark.parametrize("rewards, embeddings, message", [
    (np.zeros((2, 4)), np.ones((2, 3, 5)), "same P and G"),
    (np.zeros(4), np.ones((1, 4, 5)), "same P and G"),
    (np.array([[0, 1, np.nan, 1]]), np.ones((1, 4, 5)), "NaN or inf"),
    (np.zeros((1, 4)), np.zeros((1, 4, 5)), "zero norm"),
])
def test_prompt_pvalues_refuses_bad_shapes_and_values(rewards, embeddings, message):
    with pytest.raises(ValueError, match=message):
        study.prompt_pvalues(rewards, embeddings)
