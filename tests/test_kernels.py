"""The SMI kernels and the reward adjustment against independent, straightforward implementations."""

import inspect
import itertools
import math
import textwrap
import types

import numpy as np
import pytest
import torch

import dra
from dra import kernels

RIDGE = kernels.LOG_DET_RIDGE


# ---------- independent references: one group at a time, plain numpy, float64, straight from the definitions


def ref_cosine(group: np.ndarray) -> np.ndarray:
    g = len(group)
    out = np.empty((g, g))
    for i, j in itertools.product(range(g), repeat=2):
        out[i, j] = group[i] @ group[j] / (np.linalg.norm(group[i]) * np.linalg.norm(group[j]))
    return out


def ref_smi(group: np.ndarray, kernel: str) -> np.ndarray:
    s = ref_cosine(group)
    g = len(group)
    out = np.zeros(g)
    for i in range(g):
        rest = [j for j in range(g) if j != i]
        if not rest:
            continue
        if kernel == "graph_cut":  # GCMI with lambda = 1/2
            out[i] = sum(s[i, j] for j in rest)
        elif kernel == "facility_location":  # FLVMI over the ground set C (equals FLQMI, eta = 1)
            out[i] = sum(min(s[v, i], max(s[v, q] for q in rest)) for v in range(g))
        elif kernel == "log_det":  # log det S_A - log det(S_A - S_AQ S_Q^-1 S_QA) on S + ridge*I
            reg = s + RIDGE * np.eye(g)
            s_a = reg[np.ix_([i], [i])]
            s_aq = reg[np.ix_([i], rest)]
            s_q = reg[np.ix_(rest, rest)]
            out[i] = np.log(np.linalg.det(s_a)) - np.log(np.linalg.det(s_a - s_aq @ np.linalg.solve(s_q, s_aq.T)))
    return out


def ref_flqmi(group: np.ndarray) -> np.ndarray:
    s = ref_cosine(group)
    g = len(group)
    return np.array(
        [sum(s[q, i] for q in range(g) if q != i) + max(s[i, q] for q in range(g) if q != i) for i in range(g)]
    )


def random_embeddings(b: int, g: int, d: int, seed: int = 0, shared: float = 0.0) -> np.ndarray:
    """Gaussian rows plus `shared` times a common direction (real sentence embeddings share one, so their
    cosines are mostly positive; pure Gaussians in low dimension can make 1 + SMI negative)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b * g, d)) + shared * rng.normal(size=(1, d))


# ---------- agreement with the references


@pytest.mark.parametrize("kernel", dra.KERNELS)
@pytest.mark.parametrize("g", [1, 2, 6, 8])
def test_smi_matches_reference(kernel, g):
    x = random_embeddings(5, g, 12, seed=g)
    got = dra.smi_scores(x, g, kernel=kernel)
    want = np.concatenate([ref_smi(grp, kernel) for grp in x.reshape(5, g, -1)])
    assert got.shape == (5 * g,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_facility_location_flqmi_equals_flvmi():
    x = random_embeddings(3, 6, 10, seed=3)
    want = np.concatenate([ref_flqmi(grp) for grp in x.reshape(3, 6, -1)])
    np.testing.assert_allclose(dra.smi_scores(x, 6, "facility_location"), want, rtol=1e-10)


def test_similarity_matches_reference():
    x = random_embeddings(4, 6, 16)
    got = dra.similarity(x, 6)
    assert got.shape == (4, 6, 6)
    for b, grp in enumerate(x.reshape(4, 6, -1)):
        np.testing.assert_allclose(got[b], ref_cosine(grp), atol=1e-12)


@pytest.mark.parametrize("kernel", dra.KERNELS)
def test_adjust_rewards_matches_reference(kernel):
    x = random_embeddings(7, 6, 20, seed=11, shared=1.0)
    r = np.random.default_rng(1).normal(size=42)
    want = r / (1 + np.concatenate([ref_smi(grp, kernel) for grp in x.reshape(7, 6, -1)]))
    np.testing.assert_allclose(dra.adjust_rewards(r, x, 6, kernel=kernel), want, rtol=1e-6)


def test_log_det_identical_group_closed_form():
    g = 6
    x = np.tile(np.random.default_rng(0).normal(size=(1, 8)), (g, 1))
    r = RIDGE
    want = np.log((1 + r) * (g - 1 + r) / (r * (g + r)))
    np.testing.assert_allclose(dra.smi_scores(x, g, "log_det"), want, rtol=1e-6)


# ---------- invariants


@pytest.mark.parametrize("kernel", dra.KERNELS)
def test_permutation_within_group_permutes_scores(kernel):
    x = random_embeddings(3, 6, 8, seed=5, shared=1.0)
    r = np.arange(18, dtype=float)
    perm = np.concatenate([b * 6 + np.random.default_rng(b).permutation(6) for b in range(3)])
    base = dra.adjust_rewards(r, x, 6, kernel=kernel)
    np.testing.assert_allclose(dra.adjust_rewards(r[perm], x[perm], 6, kernel=kernel), base[perm], rtol=1e-6)


@pytest.mark.parametrize("g", [2, 6, 16])
def test_identical_completions_weight_one_over_g(g):
    x = np.tile(np.random.default_rng(g).normal(size=(1, 32)), (g, 1)) * np.linspace(0.5, 3, g)[:, None]
    np.testing.assert_allclose(dra.diversity_weights(x, g), np.full(g, 1 / g), rtol=1e-6)


@pytest.mark.parametrize("kernel", dra.KERNELS)
def test_orthogonal_completions_weight_one(kernel):
    x = np.eye(6) * 3.0
    np.testing.assert_allclose(dra.diversity_weights(x, 6, kernel=kernel), np.ones(6), atol=1e-6)


def test_group_scope_equals_device_scope_when_device_batch_is_group():
    x = random_embeddings(4, 6, 10, shared=1.0)
    r = np.random.default_rng(2).uniform(size=24)
    group = dra.adjust_rewards(r, x, 6, scope="group")
    device = dra.adjust_rewards(r, x, 6, scope="device", device_batch_size=6)
    np.testing.assert_allclose(group, device, rtol=1e-12)


def test_device_scope_mixes_groups_like_the_authors_code():
    x = random_embeddings(2, 6, 10, seed=9, shared=1.0)
    r = np.ones(12)
    got = dra.adjust_rewards(r, x, 6, scope="device", device_batch_size=4)
    # The authors' per-process slice: 1 / row sum of the 4 x 4 cosine matrix of the slice.
    want = np.concatenate([1 / ref_cosine(x[s : s + 4]).sum(1) for s in range(0, 12, 4)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(got, dra.adjust_rewards(r, x, 6))


def authors_device_scope(rewards: torch.Tensor, embeddings: torch.Tensor, per_device: int, eps: float = 1e-6):
    """The authors' reward adjustment, transcribed from xiwenc1/DRA-GRPO src/open_r1/trl/trainer/grpo_trainer.py
    (`_prepare_inputs`, the `SMI_reweighting` branch). Each process embeds its own `per_device` completions (its
    consecutive slice of the flattened batch), normalises, takes the cosine matrix, divides 1 by its row sums
    plus 1e-6, and gathers the weights in rank order; the gathered summed rewards are multiplied by them."""
    weights = []
    for start in range(0, len(embeddings), per_device):  # process_index * len(prompts) ...
        local = torch.nn.functional.normalize(embeddings[start : start + per_device], p=2, dim=1)
        similarity_matrix = local @ local.T
        similarity_sums = similarity_matrix.sum(dim=1)
        weights.append(1.0 / (similarity_sums + eps))
    diversity_weights = torch.cat(weights)  # gather(diversity_weights)
    return rewards * diversity_weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_scope_matches_the_authors_transcription(dtype):
    """Their recipe: G = 6, 4 completions per device, 3 processes (12 completions = 2 prompts per micro-step);
    10 micro-steps of 512-d embeddings (jina-small's width) and paper-like reward totals. Without their 1e-6 the
    formulas are identical (float64: rtol 1e-12); with it the difference is the 1e-6 alone, a relative
    change below 1e-6 (max |difference| over these rewards in float64: 2.8e-7). In float32 the rounding of the
    matrix products adds a few units in the last place, which depend on the CPU's kernels (max |difference|
    4.8e-7 on the machine this was first measured on, 5.4e-7 on an AVX2 AMD EPYC; float32's last place at 2.97 is
    2.4e-7), so float32 is held to the relative bound only."""
    worst = 0.0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        emb = torch.tensor(rng.normal(size=(120, 512)) + 2 * rng.normal(size=(1, 512)), dtype=dtype)
        rewards = torch.tensor(rng.choice([0.2, 0.9, 2.5, 2.97], size=120), dtype=dtype)
        ours = dra.adjust_rewards(rewards, emb, 6, scope="device", device_batch_size=4)
        theirs = authors_device_scope(rewards, emb, 4)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
        if dtype == torch.float64:
            worst = max(worst, (ours - theirs).abs().max().item())
            torch.testing.assert_close(ours, authors_device_scope(rewards, emb, 4, eps=0.0), rtol=1e-12, atol=0)
    assert worst <= 5e-7  # float64 only: float32's is left at 0


def test_redundant_wrong_answer_penalised_less_unless_disabled():
    # Three near-copies and three distinct completions, all wrong (negative cosine reward).
    rng = np.random.default_rng(4)
    base = rng.normal(size=16)
    x = np.stack([base + 0.01 * rng.normal(size=16) for _ in range(3)] + [rng.normal(size=16) for _ in range(3)])
    r = np.full(6, -0.5)
    adj = dra.adjust_rewards(r, x, 6)
    assert adj[:3].max() > adj[3:].min()  # redundant: closer to 0, i.e. penalised less
    np.testing.assert_array_equal(dra.adjust_rewards(r, x, 6, adjust_negative=False), r)
    mixed = np.array([1.0, -0.5, 1.0, -0.5, 1.0, 0.0])
    out = dra.adjust_rewards(mixed, x, 6, adjust_negative=False)
    np.testing.assert_array_equal(out[mixed <= 0], mixed[mixed <= 0])
    np.testing.assert_allclose(out[mixed > 0], dra.adjust_rewards(mixed, x, 6)[mixed > 0])


def anti_similar_group() -> np.ndarray:
    # Two antipodal clusters: each completion has one near-copy and two near-opposites, so 1 + SMI ~ 0.
    v = np.array([1.0, 0.0])
    return np.stack([v, v, -v, -v]) + 1e-9 * np.arange(8).reshape(4, 2)


def test_non_positive_denominator_raises_and_clip_fixes_it():
    x = anti_similar_group()
    with pytest.raises(ValueError, match="negative_similarity='clip'"):
        dra.adjust_rewards(np.ones(4), x, 4)
    w = dra.diversity_weights(x, 4, negative_similarity="clip")
    np.testing.assert_allclose(w, np.full(4, 0.5), rtol=1e-6)  # only the near-copy counts


@pytest.mark.parametrize("kernel", dra.KERNELS)
def test_clipped_weights_lie_in_bounds(kernel):
    x = random_embeddings(50, 6, 3, seed=7)  # low dimension: many negative cosines
    w = dra.diversity_weights(x, 6, kernel=kernel, negative_similarity="clip")
    assert np.isfinite(w).all() and (w > 0).all() and (w <= 1 + 1e-6).all()
    if kernel == "graph_cut":
        assert (w >= 1 / 6 - 1e-6).all()


# ---------- types, dtypes and devices


def test_numpy_in_numpy_out_torch_in_torch_out():
    x = random_embeddings(2, 6, 8, shared=3.0)
    r = np.linspace(0, 1, 12)
    out_np = dra.adjust_rewards(r, x, 6)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    out_t = dra.adjust_rewards(torch.tensor(r, dtype=torch.float32), torch.tensor(x, dtype=torch.float32), 6)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-5)
    assert isinstance(dra.group_advantages(torch.tensor(r), 6), torch.Tensor)


def test_float32_agrees_with_float64():
    x = random_embeddings(64, 6, 384, seed=1)
    for kernel in dra.KERNELS:
        got = dra.smi_scores(x.astype(np.float32), 6, kernel)
        np.testing.assert_allclose(got, dra.smi_scores(x, 6, kernel), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("kernel", dra.KERNELS)
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16, np.float16])
def test_half_precision_embeddings_are_computed_in_float32(kernel, half):
    """The authors compute in float32 whatever the embedder returns. Before this was enforced, bf16 weights
    were off by up to 4e-3 (1.3% relative) and float16 by 5e-4 on 512 x 6 x 384 embeddings; now the error
    against a float64 computation on the same (rounded) values is float32 rounding."""
    x64 = random_embeddings(64, 6, 384, seed=3, shared=1.0)
    if half is np.float16:
        x = x64.astype(np.float16)
        same_values = x.astype(np.float64)
    else:
        x = torch.tensor(x64).to(half)
        same_values = x.double().numpy()
    got = dra.diversity_weights(x, 6, kernel=kernel)
    assert got.dtype in (np.float32, torch.float32)
    got = np.asarray(got if isinstance(got, np.ndarray) else got.numpy(), dtype=np.float64)
    np.testing.assert_allclose(got, dra.diversity_weights(same_values, 6, kernel=kernel), rtol=2e-6, atol=1e-7)
    rewards = torch.ones(384, dtype=torch.float16)
    assert dra.adjust_rewards(rewards, x, 6, kernel=kernel).dtype in (np.float32, torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_gpu_matches_cpu():
    x = torch.tensor(random_embeddings(16, 6, 64, shared=1.0), dtype=torch.float32)
    r = torch.rand(96)
    for kernel in dra.KERNELS:
        got = dra.adjust_rewards(r.cuda(), x.cuda(), 6, kernel=kernel)
        assert got.is_cuda
        torch.testing.assert_close(got.cpu(), dra.adjust_rewards(r, x, 6, kernel=kernel), rtol=1e-4, atol=1e-5)


# ---------- GRPO advantages: parity with TRL 1.16's own code


def trl_advantage_block():
    """The sum_then_normalize advantage code of TRL's GRPOTrainer, taken from its source and compiled as is."""
    from trl import GRPOTrainer

    src = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    start = src.index('if self.multi_objective_aggregation == "sum_then_normalize":')
    end = src.index('elif self.multi_objective_aggregation == "normalize_then_sum":')
    body = textwrap.dedent(src[start:end])
    return compile(body + "\n", "<trl advantages>", "exec")


REWARD_PATTERNS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "paper totals": lambda rng, n: rng.choice([0.0, 0.97, 2.5, 2.97], size=n) + 0.01 * rng.normal(size=n),
    "constant groups": lambda rng, n: np.repeat(rng.normal(size=n), 6)[:n],
    "binary": lambda rng, n: rng.integers(0, 2, size=n).astype(float),
    "large": lambda rng, n: 1e4 * rng.normal(size=n),
    "tiny spread": lambda rng, n: 1 + 1e-3 * rng.normal(size=n),
}


def trl_advantages(rewards: torch.Tensor, g: int, scale: str) -> torch.Tensor:
    from trl.trainer.utils import nanstd

    ns = {
        "self": types.SimpleNamespace(
            multi_objective_aggregation="sum_then_normalize", scale_rewards=scale, reward_weights=torch.ones(1)
        ),
        "rewards_per_func": rewards.unsqueeze(1),
        "unscorable_mask": torch.zeros(len(rewards), dtype=torch.bool),
        "num_generations": g,
        "device": "cpu",
        "torch": torch,
        "nanstd": nanstd,
    }
    exec(trl_advantage_block(), ns)
    return ns["advantages"]


@pytest.mark.parametrize("pattern", REWARD_PATTERNS)
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("g", [1, 6])
def test_group_advantages_match_trl(pattern, scale, g):
    """Bit for bit: the same float32 operations as TRL's sum_then_normalize block (max |difference| = 0)."""
    rng = np.random.default_rng(g)
    for _ in range(5):
        rewards = torch.tensor(REWARD_PATTERNS[pattern](rng, 8 * g), dtype=torch.float32)
        assert torch.equal(dra.group_advantages(rewards, g, scale=scale), trl_advantages(rewards, g, scale))


def test_group_advantages_hand_computed():
    r = np.array([1.0, 1.0, 1.0, 0.0])
    mean, std = 0.75, math.sqrt(0.25 * 3 / 3)  # unbiased std of [1, 1, 1, 0] is 0.5
    np.testing.assert_allclose(dra.group_advantages(r, 4), (r - mean) / (std + 1e-4))
    np.testing.assert_allclose(dra.group_advantages(r, 4, scale="none"), r - mean)


# ---------- bad input (tests/test_adversarial_kernels.py tries many more)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dra.adjust_rewards(np.array([np.nan, 1, 1, 1.0]), np.eye(4), 2), "rewards contain NaN"),
        (lambda: dra.adjust_rewards(np.array([np.inf, 1, 1, 1.0]), np.eye(4), 2), "rewards contain NaN or inf"),
        (lambda: dra.smi_scores(np.array([[np.nan, 1.0], [1.0, 0.0]]), 2), "embeddings contain NaN"),
        (lambda: dra.smi_scores(np.array([[np.inf, 1.0], [1.0, 0.0]]), 2), "embeddings contain NaN or inf"),
        (lambda: dra.adjust_rewards(np.ones(3), np.eye(4), 2), "rewards has 3 entries but embeddings has 4"),
        (lambda: dra.smi_scores(np.eye(5), 2), "not divisible by group_size=2"),
        (lambda: dra.smi_scores(np.eye(4), 0), "group_size must be >= 1"),
        (lambda: dra.smi_scores(np.zeros((0, 3)), 2), "is empty"),
        (lambda: dra.smi_scores(np.array([[0.0, 0.0], [1.0, 0.0]]), 2), r"rows \[0\] are all zeros"),
        (lambda: dra.smi_scores(np.eye(4), 2, kernel="dpp"), "unknown kernel 'dpp'"),
        (lambda: dra.adjust_rewards(np.ones(4), np.eye(4), 2, scope="node"), "unknown scope 'node'"),
        (lambda: dra.adjust_rewards(np.ones(4), np.eye(4), 2, scope="device"), "needs device_batch_size"),
        (lambda: dra.adjust_rewards(np.ones(4), np.eye(4), 2, device_batch_size=2), "only applies to scope='device'"),
        (lambda: dra.adjust_rewards(np.ones(4), np.eye(4), 2, scope="device", device_batch_size=3),
         "not divisible by device_batch_size=3"),
        (lambda: dra.smi_scores(np.ones(4), 2), "must be 2-D"),
        (lambda: dra.adjust_rewards(np.ones(4), np.ones((2, 2, 3)), 2), r"got shape \(2, 2, 3\).*reshape\(-1, d\)"),
        (lambda: dra.group_advantages(np.ones(5), 2), "not divisible"),
        (lambda: dra.group_advantages(np.ones(4), 2, scale="std"), "unknown scale"),
        (lambda: dra.group_advantages(np.array([1.0, np.nan]), 2), "NaN or inf"),
    ],
)
def test_bad_input_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dra.smi_scores(np.eye(4), 2.0), "group_size must be an int"),
        (lambda: dra.adjust_rewards(np.ones(4), np.eye(4), 2, scope="device", device_batch_size=2.0),
         "device_batch_size must be an int"),
        (lambda: dra.smi_scores(np.array([["a", "b"]]), 1), "embeddings must hold real numbers"),
        (lambda: dra.smi_scores("text", 1), "torch.Tensor, a numpy array or a list"),
        (lambda: dra.adjust_rewards(np.ones(2), np.eye(2), 2, adjust_negative="False"), "adjust_negative must be"),
    ],
)
def test_wrong_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()
