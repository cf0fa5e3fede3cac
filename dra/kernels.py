"""Submodular-mutual-information kernels and the DRA reward adjustment.

DRA (arXiv 2505.09655) replaces the reward of completion o_i in a group C = {o_1..o_G} by

    R~_i = R_i / (1 + SMI({o_i}, C \\ {o_i}))

where SMI is a submodular mutual information over cosine similarities s_ij of sentence embeddings of
the completions. The paper uses the Graph-Cut SMI, so that 1 + SMI is the i-th row sum of the G x G
similarity matrix (s_ii = 1). The adjusted rewards then enter the usual GRPO group statistics.

Everything here is batched: embeddings arrive flat as (B*G, d), consecutive rows form a group (TRL's
layout), and no Python loop runs over groups. Inputs may be torch tensors or numpy arrays; numpy in gives
numpy out. Computation is in the embeddings' floating dtype on their device (float64 for the log-det
solve, which needs it).

What is decided here that the paper leaves open (see `adjust_rewards`):
- Cosine similarity can be negative, so 1 + SMI can be near zero or negative. The paper's formula is the
  default (`negative_similarity="keep"`); a denominator below `MIN_DENOMINATOR` raises instead of
  returning inf or a sign-flipped reward. `negative_similarity="clip"` treats anti-similar pairs as
  unrelated (s_ij -> max(s_ij, 0)), which keeps every denominator >= 1.
- The paper divides the signed reward, so a redundant wrong answer (negative cosine reward) is penalised
  less than a distinct one. `adjust_negative=False` leaves rewards <= 0 untouched instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Kernel = Literal["graph_cut", "facility_location", "log_det"]
KERNELS: tuple[str, ...] = ("graph_cut", "facility_location", "log_det")
SCOPES: tuple[str, ...] = ("group", "device")
ADVANTAGE_SCALES: tuple[str, ...] = ("group", "batch", "none")

# A denominator 1 + SMI at or below this is treated as degenerate: dividing by it would give inf or flip
# the reward's sign. Only reachable when similarities are strongly negative.
MIN_DENOMINATOR = 1e-6
# Ridge added to the similarity matrix before the log-det solve: identical completions make it singular.
LOG_DET_RIDGE = 1e-3
# TRL 1.16 divides by (std + 1e-4) in GRPOTrainer._generate_and_score_completions.
TRL_STD_EPS = 1e-4


def _to_tensor(x, name: str) -> tuple[torch.Tensor, bool]:
    """Return (tensor, came_from_numpy). Lists and numpy arrays become tensors without a copy where possible."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, (np.ndarray, list, tuple)):
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
        return torch.from_numpy(np.ascontiguousarray(arr)), True
    raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}.")


def _back(t: torch.Tensor, to_numpy: bool):
    return t.detach().cpu().numpy() if to_numpy else t


def _check_group_size(n: int, group_size: int, what: str) -> int:
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
        raise ValueError(f"group_size must be an int, got {group_size!r}.")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}.")
    if n == 0:
        raise ValueError(f"{what} is empty: need at least one group of {group_size}.")
    if n % group_size:
        raise ValueError(
            f"{what} has {n} rows, which is not divisible by group_size={group_size}: "
            "rows must come as consecutive groups of group_size completions per prompt."
        )
    return n // group_size


def _check_choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}.")


def _grouped(embeddings, group_size: int) -> tuple[torch.Tensor, bool]:
    """Validate (B*G, d) embeddings and view them as (B, G, d)."""
    x, to_numpy = _to_tensor(embeddings, "embeddings")
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (B*G, d), got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    b = _check_group_size(x.shape[0], group_size, "embeddings")
    if x.shape[1] == 0:
        raise ValueError("embeddings have dimension 0.")
    return x.reshape(b, group_size, -1), to_numpy


def _check_norms(norms: torch.Tensor) -> None:
    """Norms (or squared norms) must be positive and finite. One reduction on the hot path: NaN fails every
    comparison, inf fails the upper bound."""
    if not ((norms > 0) & (norms < float("inf"))).all():
        _raise_bad_norms(norms)


def _gram(embeddings, group_size: int) -> tuple[torch.Tensor, bool]:
    """(B, G, G) cosine similarities from (B*G, d) embeddings in one pass over the embeddings.

    The norms are read off the Gram matrix's diagonal, and so is validation: a row holding NaN or inf has a
    non-finite squared norm, so the embeddings themselves are read only once, by the batched matmul.
    """
    grouped, to_numpy = _grouped(embeddings, group_size)
    gram = torch.bmm(grouped, grouped.transpose(1, 2))
    sq_norms = torch.diagonal(gram, dim1=1, dim2=2)
    _check_norms(sq_norms)
    inv_norm = sq_norms.rsqrt()
    return gram * inv_norm.unsqueeze(2) * inv_norm.unsqueeze(1), to_numpy


def _graph_cut_smi(embeddings, group_size: int) -> tuple[torch.Tensor, bool]:
    """(B, G) graph-cut SMI without the G x G matrix: sum_j cos_ij = u_i . sum_j u_j with u = x / |x|.

    Two batched matrix-vector products instead of a batched G x G matmul: about half the time of `_gram`
    at G = 6, d = 384 (notebook 02's benchmark), for the paper's default kernel.
    """
    grouped, to_numpy = _grouped(embeddings, group_size)
    norms = torch.linalg.vector_norm(grouped, dim=2)
    _check_norms(norms)
    inv_norm = norms.reciprocal()
    unit_sum = torch.bmm(inv_norm.unsqueeze(1), grouped)  # (B, 1, d): sum_j u_j
    row_sums = torch.bmm(grouped, unit_sum.transpose(1, 2)).squeeze(2) * inv_norm
    return row_sums - 1.0, to_numpy


def _raise_bad_norms(norms: torch.Tensor) -> None:
    flat = norms.flatten()
    bad = (~torch.isfinite(flat)).nonzero().flatten()[:5].tolist()
    if bad:
        raise ValueError(f"embeddings contain NaN or inf (rows {bad}); check the embedder's output.")
    bad = (flat <= 0).nonzero().flatten()[:5].tolist()
    raise ValueError(
        f"embeddings rows {bad} have zero norm, so their cosine similarity is undefined; "
        "an empty completion text usually causes this: embed a placeholder or drop the group."
    )


def similarity(embeddings, group_size: int):
    """Cosine similarity within each group.

    Args:
        embeddings: (B*G, d) tensor or array; rows i*G .. i*G+G-1 are the completions of prompt i.
            Need not be normalised.
        group_size: G, the number of completions per prompt.

    Returns:
        (B, G, G) similarity matrices L with L[b, i, i] = 1.
    """
    sim, to_numpy = _gram(embeddings, group_size)
    # Rounding can push |cos| a hair above 1 and the diagonal away from exactly 1; only the displayed
    # matrix is tidied, the scores are insensitive to it.
    sim = sim.clamp(-1.0, 1.0)
    sim.diagonal(dim1=1, dim2=2).fill_(1.0)
    return _back(sim, to_numpy)


def _smi_from_similarity(sim: torch.Tensor, kernel: str) -> torch.Tensor:
    """SMI({o_i}; C \\ {o_i}) for every i, from (B, G, G) similarities -> (B, G)."""
    g = sim.shape[-1]
    if g == 1:  # the complement is empty, so every SMI is 0
        return sim.new_zeros(sim.shape[:-1])
    if kernel == "graph_cut":
        return sim.sum(-1) - 1.0
    off_diag = ~torch.eye(g, dtype=torch.bool, device=sim.device)
    if kernel == "facility_location":
        nearest = sim.masked_fill(~off_diag, float("-inf")).amax(-1)
        return sim.sum(-1) - 1.0 + nearest
    if kernel == "log_det":
        s = sim.to(torch.float64)
        ridge = torch.eye(g, dtype=s.dtype, device=s.device) * LOG_DET_RIDGE
        # 1 / [(S + rI)^{-1}]_ii is the Schur complement of the rest of the group in row i, i.e.
        # S_ii - S_iQ S_Q^{-1} S_Qi, so no per-i solve is needed.
        inv_diag = torch.diagonal(torch.linalg.inv(s + ridge), dim1=-2, dim2=-1)
        s_a = 1.0 + LOG_DET_RIDGE
        return (torch.log(torch.as_tensor(s_a, dtype=s.dtype)) + torch.log(inv_diag)).to(sim.dtype)
    raise AssertionError(kernel)


def smi_scores(embeddings, group_size: int, kernel: Kernel = "graph_cut"):
    """Submodular mutual information SMI({o_i}; C \\ {o_i}) of each completion with the rest of its group.

    With cosine similarities s_ij, A = {o_i} and Q = C \\ {o_i}, the instantiations of Iyer, Khargonkar,
    Bilmes and Asnani, "Generalized Submodular Information Measures: Theoretical Properties, Examples,
    Optimization Algorithms, and Applications" (IEEE Trans. Inf. Theory 2022; arXiv 2006.15412, 2021)
    reduce to:

    - ``graph_cut`` (GCMI, I(A;Q) = 2 lambda sum_{a in A} sum_{q in Q} s_aq, with lambda = 1/2 as in
      the DRA paper): sum_{j != i} s_ij, so 1 + SMI is the i-th row sum of L.
    - ``facility_location`` (FLQMI, I(A;Q) = sum_{q in Q} max_{a in A} s_qa + eta sum_{a in A} max_{q in Q}
      s_aq, eta = 1): sum_{j != i} s_ij + max_{j != i} s_ij. With a singleton A and the group as ground
      set, FLVMI (sum_{v in C} min(max_{a in A} s_va, max_{q in Q} s_vq)) gives the same value, since every
      q in Q is its own nearest neighbour (s_qq = 1).
    - ``log_det`` (LogDetMI, I(A;Q) = log det S_A - log det(S_A - eta^2 S_AQ S_Q^{-1} S_AQ^T), eta = 1):
      -log(1 - s_iQ S_Q^{-1} s_Qi), the information o_i shares with the span of its siblings. S is regularised
      as S + r I (r = 1e-3) so that identical completions (a singular S) stay finite: for G identical
      completions SMI = log((1 + r)(G - 1 + r) / (r (G + r))), about 7.3 for G = 6. Because S is a Gram
      matrix (positive semi-definite), LogDetMI is >= 0 and 1 + SMI >= 1 always.

    Facility-Location and Log-Det are not in the paper or the authors' code; they are ablations. FL and
    LogDet were defined for non-negative similarity kernels; negative cosines are passed through as they are.

    Returns:
        (B*G,) scores, same dtype as the embeddings.
    """
    _check_choice(kernel, KERNELS, "kernel")
    smi, to_numpy = _smi(embeddings, group_size, kernel, "keep")
    return _back(smi.reshape(-1), to_numpy)


def _smi(embeddings, group_size: int, kernel: str, negative_similarity: str) -> tuple[torch.Tensor, bool]:
    """(B, G) SMI scores; the paper's default (graph cut, cosines as they are) skips the G x G matrix."""
    if kernel == "graph_cut" and negative_similarity == "keep":
        return _graph_cut_smi(embeddings, group_size)
    sim, to_numpy = _gram(embeddings, group_size)
    # Log-det needs the positive semi-definite Gram matrix, on which its SMI is already >= 0: clipping would
    # break that, and there is nothing to guard.
    if negative_similarity == "clip" and kernel != "log_det":
        sim = sim.clamp_min(0.0)
    return _smi_from_similarity(sim, kernel), to_numpy


def _as_rewards(rewards) -> tuple[torch.Tensor, bool]:
    """Validate (B*G,) rewards: 1-D, numeric (cast to float32 when integral), finite."""
    r, to_numpy = _to_tensor(rewards, "rewards")
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D (B*G,), got shape {tuple(r.shape)}.")
    if not r.is_floating_point():
        r = r.to(torch.float32)
    if not torch.isfinite(r).all():
        bad = (~torch.isfinite(r)).nonzero().flatten()[:5].tolist()
        raise ValueError(f"rewards contain NaN or inf at positions {bad}; fix the reward function.")
    return r, to_numpy


def diversity_weights(
    embeddings,
    group_size: int,
    kernel: Kernel = "graph_cut",
    negative_similarity: Literal["keep", "clip"] = "keep",
):
    """1 / (1 + SMI) per completion, (B*G,). Identical completions give 1/G (graph cut), orthogonal give 1."""
    weights, to_numpy = _weights(embeddings, group_size, kernel, negative_similarity)
    return _back(weights, to_numpy)


def _weights(embeddings, group_size: int, kernel: str, negative_similarity: str) -> tuple[torch.Tensor, bool]:
    """(B*G,) tensor of 1 / (1 + SMI), and whether the input was numpy."""
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(negative_similarity, ("keep", "clip"), "negative_similarity")
    smi, to_numpy = _smi(embeddings, group_size, kernel, negative_similarity)
    denom = 1.0 + smi
    if not (denom > MIN_DENOMINATOR).all():  # also catches NaN
        _raise_bad_denominator(denom)
    return (1.0 / denom).reshape(-1), to_numpy


def _raise_bad_denominator(denom: torch.Tensor) -> None:
    if not torch.isfinite(denom).all():
        raise ValueError("the SMI is not finite; the similarity matrix is numerically degenerate (report this).")
    where = (denom <= MIN_DENOMINATOR).nonzero()[0].tolist()
    raise ValueError(
        f"1 + SMI = {denom[tuple(where)].item():.3g} <= {MIN_DENOMINATOR} for completion {where[1]} of "
        f"group {where[0]}: its similarities to the rest of the group are strongly negative, so the "
        "paper's R / (1 + SMI) would be inf or flip the reward's sign. Pass "
        "negative_similarity='clip' to treat anti-similar completions as unrelated."
    )


def adjust_rewards(
    rewards,
    embeddings,
    group_size: int,
    kernel: Kernel = "graph_cut",
    scope: Literal["group", "device"] = "group",
    device_batch_size: int | None = None,
    negative_similarity: Literal["keep", "clip"] = "keep",
    adjust_negative: bool = True,
):
    """DRA: R~_i = R_i / (1 + SMI({o_i}; C \\ {o_i})), for (B*G,) rewards and (B*G, d) embeddings.

    Args:
        rewards: (B*G,) summed rewards, grouped as the embeddings.
        embeddings: (B*G, d) embeddings of the completion texts (not the prompts).
        group_size: G, completions per prompt.
        kernel: "graph_cut" (the paper), "facility_location" or "log_det"; see `smi_scores`.
        scope: "group" computes C per prompt group, as the paper's formula says. "device" reproduces the
            authors' code, which computes the similarity over the completions one training process holds:
            consecutive slices of `device_batch_size` completions, which split and mix prompt groups when
            device_batch_size is not a multiple of G (their recipe: 4 completions per device, G = 6). The
            authors also add 1e-6 to the row sum; that is left out here (a relative change below 1e-6).
        device_batch_size: completions per process; required for scope="device".
        negative_similarity: "keep" (paper) uses the cosine as it is; "clip" uses max(s_ij, 0), so
            1 + SMI >= 1 and the weights lie in [1/G, 1] for graph cut. Log-det ignores it: its SMI is
            >= 0 on the unclipped (positive semi-definite) similarity matrix already.
        adjust_negative: True (paper) divides every reward, so a redundant wrong answer with a negative
            reward is penalised less than a distinct one; False leaves rewards <= 0 as they are, so only
            positive rewards are re-weighted.

    Returns:
        (B*G,) adjusted rewards. Raises ValueError on bad input or a degenerate denominator (see
        `diversity_weights`).
    """
    _check_choice(scope, SCOPES, "scope")
    if scope == "device":
        if device_batch_size is None:
            raise ValueError("scope='device' needs device_batch_size (completions per training process).")
        slice_size = device_batch_size
    else:
        if device_batch_size is not None:
            raise ValueError("device_batch_size only applies to scope='device'; leave it None for scope='group'.")
        slice_size = group_size
    # The group structure still has to be valid, even when the similarity uses device slices.
    emb_rows = embeddings.shape[0] if hasattr(embeddings, "shape") else len(embeddings)
    _check_group_size(emb_rows, group_size, "embeddings")
    r, to_numpy = _as_rewards(rewards)
    if r.shape[0] != emb_rows:
        raise ValueError(f"rewards has {r.shape[0]} entries but embeddings has {emb_rows} rows; they must match.")
    w, _ = _weights(embeddings, slice_size, kernel, negative_similarity)
    w = w.to(device=r.device, dtype=r.dtype)
    adjusted = r * w if adjust_negative else torch.where(r > 0, r * w, r)
    return _back(adjusted, to_numpy)


def group_advantages(rewards, group_size: int, scale: Literal["group", "batch", "none"] = "group"):
    """GRPO advantages exactly as TRL 1.16's GRPOTrainer computes them from the (gathered) summed rewards.

    A_i = R_i - mean_group(R), divided by (std + 1e-4) where std is the unbiased standard deviation within
    the group (`scale="group"`, GRPO), over the whole batch (`scale="batch"`), or not at all
    (`scale="none"`, Dr. GRPO). TRL computes the batch std over all processes' rewards: call this on the
    gathered rewards to match. Like TRL, a single sample has std 0 (not NaN), so its advantage is 0.
    """
    _check_choice(scale, ADVANTAGE_SCALES, "scale")
    r, to_numpy = _as_rewards(rewards)
    b = _check_group_size(r.shape[0], group_size, "rewards")
    grouped = r.view(b, group_size)
    adv = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)
    if scale == "group" and group_size > 1:
        adv = adv / (grouped.std(dim=1).repeat_interleave(group_size) + TRL_STD_EPS)
    elif scale == "group" or (scale == "batch" and r.numel() == 1):
        adv = adv / TRL_STD_EPS  # std 0, as TRL
    elif scale == "batch":
        adv = adv / (r.std() + TRL_STD_EPS)
    return _back(adv, to_numpy)


WEIGHTINGS: tuple[str, ...] = ("raw", "mean_normalized", "group_mean", "shuffled")


def reweight(weights, group_size: int, mode: str = "raw", generator: torch.Generator | None = None):
    """Transform DRA weights per group, for the controls that say *why* DRA changes training.

    - ``raw``: the paper's weights, unchanged.
    - ``mean_normalized``: w_i / mean_group(w), so the group's mean weight is 1. Under Dr. GRPO (no std
      division) raw DRA also multiplies every advantage by the group's mean weight, a step-size change; this
      keeps only the within-group redistribution.
    - ``group_mean``: every completion gets its group's mean weight (the scale control): the step-size change
      alone, with no within-group signal. Under std-normalised GRPO it changes nothing but TRL's 1e-4.
    - ``shuffled``: the weights permuted at random within each group (`generator` seeds the permutation):
      the same weight distribution, detached from which completion is redundant.
    """
    _check_choice(mode, WEIGHTINGS, "mode")
    w, to_numpy = _as_rewards(weights)
    b = _check_group_size(w.shape[0], group_size, "weights")
    grouped = w.view(b, group_size)
    if mode == "mean_normalized":
        grouped = grouped / grouped.mean(dim=1, keepdim=True)
    elif mode == "group_mean":
        grouped = grouped.mean(dim=1, keepdim=True).expand(b, group_size)
    elif mode == "shuffled":
        order = torch.argsort(torch.rand(b, group_size, generator=generator), dim=1).to(grouped.device)
        grouped = torch.gather(grouped, 1, order)
    return _back(grouped.reshape(-1).clone(), to_numpy)
