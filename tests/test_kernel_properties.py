"""Property-based tests of the kernel (hypothesis): bounds, equivariance, scale invariance, numpy/torch agreement."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import dra
from test_kernels import ref_smi

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def groups(draw, max_b: int = 3, max_g: int = 8, max_d: int = 12):
    """(B*G, d) float64 embeddings on a small integer grid (so identical, opposite and orthogonal rows are
    frequent), every row nonzero, and G."""
    b, g, d = draw(st.integers(1, max_b)), draw(st.integers(1, max_g)), draw(st.integers(1, max_d))
    x = draw(arrays(np.float64, (b * g, d), elements=st.integers(-4, 4).map(float)))
    x[~x.any(axis=1), 0] = 1.0
    return x, g


def reference_weights(x: np.ndarray, g: int, kernel: str) -> np.ndarray:
    """1 / (1 + SMI) from the independent per-group reference (inf where 1 + SMI = 0: the kernel refuses those)."""
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 + np.concatenate([ref_smi(grp, kernel) for grp in x.reshape(-1, g, x.shape[1])]))


@PROPERTY_SETTINGS
@given(groups())
def test_clipped_graph_cut_weights_lie_in_one_over_g_to_one(case):
    x, g = case
    w = dra.diversity_weights(x, g, negative_similarity="clip")
    assert np.all(w >= 1 / g - 1e-12) and np.all(w <= 1 + 1e-12)


@PROPERTY_SETTINGS
@given(groups(), st.sampled_from(dra.KERNELS))
def test_keep_mode_either_matches_the_formula_within_bounds_or_names_clip(case, kernel):
    """The paper's formula where it is well defined (weights in (0, G]); a clear refusal where it is not."""
    x, g = case
    want = reference_weights(x, g, kernel)
    try:
        got = dra.diversity_weights(x, g, kernel=kernel)
    except ValueError as err:
        assert "negative_similarity='clip'" in str(err)
        assert np.any((want > g * (1 + 1e-9)) | (want <= 0))  # refused only where a weight would exceed G
        return
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    assert np.all(got > 0) and np.all(got <= g * (1 + 1e-9))


@PROPERTY_SETTINGS
@given(groups(), st.sampled_from(dra.KERNELS), st.randoms(use_true_random=False))
def test_permuting_a_group_permutes_its_weights(case, kernel, rnd):
    x, g = case
    perm = np.concatenate([start + np.array(rnd.sample(range(g), g)) for start in range(0, len(x), g)])
    mode = "keep" if kernel == "log_det" else "clip"
    w = dra.diversity_weights(x, g, kernel=kernel, negative_similarity=mode)
    np.testing.assert_allclose(dra.diversity_weights(x[perm], g, kernel=kernel, negative_similarity=mode), w[perm],
                               rtol=1e-9, atol=1e-12)


@PROPERTY_SETTINGS
@given(groups(), st.sampled_from(dra.KERNELS), st.lists(st.integers(-30, 30), min_size=24, max_size=24))
def test_row_scale_does_not_change_the_weights_even_past_float32_range(case, kernel, exponents):
    """Cosines ignore each row's scale; rows scaled by 1e-30 .. 1e30 (their squares over/underflow float32)
    give the same float32 weights as the unscaled float64 rows."""
    x, g = case
    scales = 10.0 ** np.resize(np.array(exponents, dtype=float), len(x))
    mode = "keep" if kernel == "log_det" else "clip"
    want = dra.diversity_weights(x, g, kernel=kernel, negative_similarity=mode)
    got = dra.diversity_weights((x * scales[:, None]).astype(np.float32), g, kernel=kernel, negative_similarity=mode)
    assert got.dtype == np.float32
    # log-det divides by the ridge (1e-3) of a near-singular matrix, so float32 rounding is amplified there
    np.testing.assert_allclose(got, want, rtol=1e-3 if kernel == "log_det" else 2e-5, atol=1e-6)


@PROPERTY_SETTINGS
@given(groups(), st.sampled_from(dra.KERNELS), st.sampled_from([np.float32, np.float64]))
def test_numpy_and_torch_inputs_agree(case, kernel, dtype):
    x, g = case
    x = x.astype(dtype)
    r = np.linspace(-1.0, 2.0, len(x)).astype(dtype)
    mode = "keep" if kernel == "log_det" else "clip"
    from_numpy = dra.adjust_rewards(r, x, g, kernel=kernel, negative_similarity=mode)
    from_torch = dra.adjust_rewards(torch.from_numpy(r), torch.from_numpy(x), g, kernel=kernel, negative_similarity=mode)
    assert isinstance(from_numpy, np.ndarray) and isinstance(from_torch, torch.Tensor)
    np.testing.assert_array_equal(from_numpy, from_torch.numpy())
    np.testing.assert_array_equal(dra.adjust_rewards(r.tolist(), x.tolist(), g, kernel=kernel, negative_similarity=mode),
                                  dra.adjust_rewards(r.astype(np.float64), x.astype(np.float64), g, kernel=kernel,
                                                     negative_similarity=mode))


@PROPERTY_SETTINGS
@given(groups(), st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=24, max_size=24))
def test_signs_are_kept_and_adjust_negative_false_leaves_non_positive_rewards(case, values):
    x, g = case
    r = np.resize(np.array(values), len(x))
    adjusted = dra.adjust_rewards(r, x, g, negative_similarity="clip")
    assert np.array_equal(np.sign(adjusted), np.sign(r))
    partial = dra.adjust_rewards(r, x, g, negative_similarity="clip", adjust_negative=False)
    np.testing.assert_array_equal(partial[r <= 0], r[r <= 0])
    np.testing.assert_array_equal(partial[r > 0], adjusted[r > 0])


@PROPERTY_SETTINGS
@given(st.integers(1, 4), st.integers(1, 8), st.data())
def test_group_advantages_centre_each_group_and_ignore_a_shift(b, g, data):
    r = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=b * g, max_size=b * g)))
    shift = np.repeat(np.array(data.draw(st.lists(st.floats(-5, 5), min_size=b, max_size=b))), g)
    for scale in ("group", "none"):
        adv = dra.group_advantages(r, g, scale=scale)
        np.testing.assert_allclose(adv.reshape(b, g).sum(1), 0.0, atol=1e-6 * (1 + np.abs(adv).max()))
        np.testing.assert_allclose(dra.group_advantages(r + shift, g, scale=scale), adv, atol=1e-6 * (1 + np.abs(adv).max()))
    std = r.reshape(b, g).std(1, ddof=1).repeat(g) if g > 1 else np.zeros(b * g)
    np.testing.assert_allclose(dra.group_advantages(r, g), (r - r.reshape(b, g).mean(1).repeat(g)) / (std + 1e-4),
                               rtol=1e-9, atol=1e-9)


@PROPERTY_SETTINGS
@given(groups(max_b=4, max_g=6))
def test_device_scope_with_group_sized_slices_is_group_scope(case):
    x, g = case
    r = np.ones(len(x))
    np.testing.assert_array_equal(dra.adjust_rewards(r, x, g, negative_similarity="clip"),
                                  dra.adjust_rewards(r, x, g, scope="device", device_batch_size=g,
                                                     negative_similarity="clip"))


@pytest.mark.parametrize("g", [2, 6])
def test_nearly_opposite_pair_is_refused_not_amplified_a_million_fold(g):
    """The old guard (1 + SMI <= 1e-6) let two nearly opposite embeddings through with rewards of ~5e5."""
    v = np.zeros((g, 4))
    v[:, 0] = 1.0
    v[g // 2 :, 0] = -1.0
    v[0, 1] = 2e-3  # 1 + SMI of completion 0 is ~2e-6: the old guard let it through as a weight of ~5e5
    with pytest.raises(ValueError, match=rf"< 1/{g} .* negative_similarity='clip'"):
        dra.adjust_rewards(np.ones(g), v, g)
