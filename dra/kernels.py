"""Submodular-mutual-information kernels and the DRA reward adjustment.

DRA (arXiv 2505.09655) replaces the reward of completion o_i in a group C = {o_1..o_G} by

    R~_i = R_i / (1 + SMI({o_i}, C \\ {o_i}))

where SMI is a submodular mutual information over cosine similarities s_ij of sentence embeddings of
the completions. The paper uses the Graph-Cut SMI, so that 1 + SMI is the i-th row sum of the G x G
similarity matrix (s_ii = 1). The adjusted rewards then enter the usual GRPO group statistics.

Everything here is batched: embeddings arrive flat as (B*G, d), consecutive rows form a group (TRL's
layout), and no Python loop runs over groups. Inputs may be torch tensors, numpy arrays or nested lists of
numbers; numpy or lists in give numpy out. Computation runs on the embeddings' device in at least float32:
half-precision (float16, bfloat16) and integer inputs are upcast to float32, float64 stays float64 (the
log-det solve always uses float64). Results come back in that computation dtype, so float16 embeddings give
float32 weights, as the authors' code (which always computes in float32) does. A row whose squared norm
overflows or underflows float32 is rescaled (cosine similarity does not depend on a row's scale).

What is decided here that the paper leaves open (see `adjust_rewards`):
- Cosine similarity can be negative, so 1 + SMI can be below 1, near zero or negative. The paper's formula is
  the default (`negative_similarity="keep"`) wherever it is well defined; a denominator below 1/n (n the
  number of completions compared, G or the device slice) raises instead of amplifying a reward more than
  n-fold, returning inf or flipping its sign. `negative_similarity="clip"` treats anti-similar pairs as
  unrelated (s_ij -> max(s_ij, 0)), which keeps every denominator >= 1.
- The paper divides the signed reward, so a redundant wrong answer (negative cosine reward) is penalised
  less than a distinct one. `adjust_negative=False` leaves rewards <= 0 untouched instead.
"""

from __future__ import annotations

from typing import Callable, Literal, Union

import numpy as np
import torch

Kernel = Literal["graph_cut", "facility_location", "log_det"]
KERNELS: tuple[str, ...] = ("graph_cut", "facility_location", "log_det")
SCOPES: tuple[str, ...] = ("group", "device")
ADVANTAGE_SCALES: tuple[str, ...] = ("group", "batch", "none")
NEGATIVE_SIMILARITY: tuple[str, ...] = ("keep", "clip")
# What the public functions take and give back: numpy (or nested lists) in, numpy out; torch in, torch out.
Array = Union[torch.Tensor, np.ndarray]

# Ridge added to the similarity matrix before the log-det solve: identical completions make it singular.
LOG_DET_RIDGE = 1e-3
# TRL 1.16 divides by (std + 1e-4) in GRPOTrainer._generate_and_score_completions.
TRL_STD_EPS = 1e-4


def _to_tensor(x, name: str) -> tuple[torch.Tensor, bool]:
    """(tensor in at least float32, came_from_numpy). Lists and numpy arrays become tensors without a copy
    where possible; bool, complex, text and object data are refused."""
    to_numpy = not isinstance(x, torch.Tensor)
    if isinstance(x, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular array of numbers; numpy could not build one: {err}") from None
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}; convert it first, "
                            f"e.g. np.asarray({name}, dtype=float).")
        if arr.dtype.kind in "iu" or arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        elif arr.dtype.itemsize > 8:  # long double: torch has no such dtype
            arr = arr.astype(np.float64)
        x = torch.from_numpy(arr if arr.flags.c_contiguous else arr.copy(order="C"))  # keeps 0-d shapes
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, a numpy array or a list of numbers, got {type(x).__name__}.")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}; convert it first, e.g. {name}.float().")
    if not x.is_floating_point() or x.element_size() < 4:
        x = x.to(torch.float32)
    return x, to_numpy


def _back(t: torch.Tensor, to_numpy: bool) -> Array:
    return t.detach().cpu().numpy() if to_numpy else t


def _check_size(value, name: str) -> int:
    """A positive int (numpy ints accepted, bools and floats refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


def _n_groups(n: int, size: int, what: str, name: str = "group_size") -> int:
    """Number of consecutive blocks of `size` rows in `n` rows; `name` is the argument that set `size`."""
    size = _check_size(size, name)
    if n == 0:
        raise ValueError(f"{what} is empty: need at least one group of {size}.")
    if n % size:
        layout = ("rows must come as consecutive groups of group_size completions per prompt" if name == "group_size"
                  else "the authors' scope cuts the batch into consecutive slices of device_batch_size completions "
                       "(one training process's batch), so it must divide the total")
        raise ValueError(f"{what} has {n} rows, which is not divisible by {name}={size}: {layout}.")
    return n // size


def _check_choice(value, allowed: tuple[str, ...], name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(allowed)}; got {type(value).__name__}.")
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}.")


def _as_embeddings(embeddings) -> tuple[torch.Tensor, bool]:
    """Validate flat (B*G, d) embeddings: a 2-D array of real numbers with d > 0."""
    x, to_numpy = _to_tensor(embeddings, "embeddings")
    if x.ndim != 2:
        hint = " (for (B, G, d) embeddings pass x.reshape(-1, d))" if x.ndim == 3 else ""
        raise ValueError(f"embeddings must be 2-D (B*G, d), one row per completion with each prompt's G rows "
                         f"consecutive; got shape {tuple(x.shape)}{hint}.")
    if x.shape[1] == 0 and x.shape[0] > 0:
        raise ValueError(f"embeddings have dimension 0 (shape {tuple(x.shape)}): every completion needs a vector.")
    return x, to_numpy


def _grouped(embeddings, size: int, name: str = "group_size") -> tuple[torch.Tensor, bool]:
    """Validate (B*G, d) embeddings and view them as (B, size, d)."""
    x, to_numpy = _as_embeddings(embeddings)
    b = _n_groups(x.shape[0], size, "embeddings", name)
    return x.reshape(b, int(size), -1), to_numpy


def _well_scaled(norms: torch.Tensor) -> bool:
    """Whether every row norm is finite and its square a normal float (not 0 or subnormal, where the norm, and
    so every cosine of the row, loses precision). One reduction on the hot path: NaN fails every comparison."""
    tiny = torch.finfo(norms.dtype).tiny ** 0.5
    return bool(((norms >= tiny) & (norms < float("inf"))).all())


def _rescaled_rows(grouped: torch.Tensor) -> torch.Tensor:
    """The slow path when some norm is not well scaled: refuse NaN/inf and all-zero rows with their own message,
    else divide every row by its largest |entry|, which leaves cosines unchanged and brings every norm into
    [1, sqrt(d)] (in float32, squared norms overflow above ~1.8e19 and lose precision below ~1.1e-19)."""
    flat = grouped.reshape(-1, grouped.shape[-1])
    bad = (~torch.isfinite(flat).all(1)).nonzero().flatten()[:5].tolist()
    if bad:
        raise ValueError(f"embeddings contain NaN or inf (rows {bad}); check the embedder's output.")
    scale = flat.abs().amax(1)
    bad = (scale == 0).nonzero().flatten()[:5].tolist()
    if bad:
        raise ValueError(
            f"embeddings rows {bad} are all zeros: a zero vector has no direction, so its cosine similarity is "
            "undefined. Give every completion a real embedding (dra.embed returns unit vectors, even for an "
            "empty text) or drop the group."
        )
    return grouped / scale.reshape(grouped.shape[:-1]).unsqueeze(-1)


def _with_valid_norms(compute: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                      grouped: torch.Tensor) -> torch.Tensor:
    """compute(grouped) -> (result, row norms); rerun on rescaled rows when a norm is not well scaled."""
    result, norms = compute(grouped)
    if not _well_scaled(norms):
        result, norms = compute(_rescaled_rows(grouped))
    return result


def _gram_and_norms(grouped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gram = torch.bmm(grouped, grouped.transpose(1, 2))
    return gram, torch.diagonal(gram, dim1=1, dim2=2).sqrt()


def _gram(grouped: torch.Tensor) -> torch.Tensor:
    """(B, G, G) cosine similarities from (B, G, d) embeddings in one pass over the embeddings.

    The norms are read off the Gram matrix's diagonal, and so is validation: a row holding NaN or inf has a
    non-finite squared norm, so the embeddings themselves are read only once, by the batched matmul.
    """
    gram = _with_valid_norms(_gram_and_norms, grouped)
    inv_norm = torch.diagonal(gram, dim1=1, dim2=2).rsqrt()
    return gram * inv_norm.unsqueeze(2) * inv_norm.unsqueeze(1)


def _graph_cut_and_norms(grouped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    norms = torch.linalg.vector_norm(grouped, dim=2)
    inv_norm = norms.reciprocal()
    unit_sum = torch.bmm(inv_norm.unsqueeze(1), grouped)  # (B, 1, d): sum_j u_j
    row_sums = torch.bmm(grouped, unit_sum.transpose(1, 2)).squeeze(2) * inv_norm
    return row_sums - 1.0, norms


def _graph_cut_smi(grouped: torch.Tensor) -> torch.Tensor:
    """(B, G) graph-cut SMI without the G x G matrix: sum_j cos_ij = u_i . sum_j u_j with u = x / |x|.

    Two batched matrix-vector products instead of a batched G x G matmul: about half the time of `_gram`
    at G = 6, d = 384 (notebook 02's benchmark), for the paper's default kernel.
    """
    smi = _with_valid_norms(_graph_cut_and_norms, grouped)
    return smi if grouped.shape[1] > 1 else torch.zeros_like(smi)  # u.u = 1 up to rounding; exactly 0 here


def similarity(embeddings: Array, group_size: int) -> Array:
    """Cosine similarity within each group.

    Args:
        embeddings: (B*G, d) tensor, array or nested list; rows i*G .. i*G+G-1 are the completions of prompt
            i. Need not be normalised.
        group_size: G, the number of completions per prompt.

    Returns:
        (B, G, G) similarity matrices L with L[b, i, i] = 1, in float32 (float64 for float64 embeddings).
    """
    grouped, to_numpy = _grouped(embeddings, group_size)
    sim = _gram(grouped)
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


def smi_scores(embeddings: Array, group_size: int, kernel: Kernel = "graph_cut") -> Array:
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
        (B*G,) scores in the computation dtype (float32, or float64 for float64 embeddings).
    """
    _check_choice(kernel, KERNELS, "kernel")
    grouped, to_numpy = _grouped(embeddings, group_size)
    return _back(_smi(grouped, kernel, "keep")[0].reshape(-1), to_numpy)


def _smi(grouped: torch.Tensor, kernel: str, negative_similarity: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n) SMI scores and (B,) mean cosine similarity between distinct members of each set (before any
    clipping; 0 for a set of one). The paper's default (graph cut, cosines as they are) skips the n x n matrix:
    its SMI is the row sum of the off-diagonal cosines, so their mean is sum_i SMI_i / (n (n - 1))."""
    pairs = max(grouped.shape[1] * (grouped.shape[1] - 1), 1)
    if kernel == "graph_cut" and negative_similarity == "keep":
        smi = _graph_cut_smi(grouped)
        return smi, smi.sum(-1) / pairs
    sim = _gram(grouped)
    mean_similarity = (sim.sum((-2, -1)) - torch.diagonal(sim, dim1=-2, dim2=-1).sum(-1)) / pairs
    # Log-det needs the positive semi-definite Gram matrix, on which its SMI is already >= 0: clipping would
    # break that, and there is nothing to guard.
    if negative_similarity == "clip" and kernel != "log_det":
        sim = sim.clamp_min(0.0)
    return _smi_from_similarity(sim, kernel), mean_similarity


def _as_rewards(rewards, name: str = "rewards") -> tuple[torch.Tensor, bool]:
    """Validate (B*G,) rewards (or weights): 1-D, real numbers (in at least float32), finite."""
    r, to_numpy = _to_tensor(rewards, name)
    if r.ndim != 1:
        raise ValueError(f"{name} must be 1-D (B*G,), one value per completion; got shape {tuple(r.shape)}.")
    if not torch.isfinite(r).all():
        bad = (~torch.isfinite(r)).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} contain NaN or inf at positions {bad}; fix what computed them.")
    return r, to_numpy


def diversity_weights(
    embeddings: Array,
    group_size: int,
    kernel: Kernel = "graph_cut",
    negative_similarity: Literal["keep", "clip"] = "keep",
) -> Array:
    """1 / (1 + SMI) per completion, (B*G,). Identical completions give 1/G (graph cut), orthogonal give 1.

    With non-negative similarities the graph-cut weights lie in [1/G, 1]. Anti-similar siblings (negative
    cosines) push a weight above 1, which the paper's formula allows; a weight above G (1 + SMI < 1/G) raises
    ValueError, see `adjust_rewards`. Returns float32 (float64 for float64 embeddings).
    """
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(negative_similarity, NEGATIVE_SIMILARITY, "negative_similarity")
    grouped, to_numpy = _grouped(embeddings, group_size)
    return _back(_weights(grouped, kernel, negative_similarity, "group")[0], to_numpy)


def scoped_weights(
    embeddings: Array,
    group_size: int,
    scope: Literal["group", "device"] = "group",
    device_batch_size: int | None = None,
    *,
    kernel: Kernel = "graph_cut",
    negative_similarity: Literal["keep", "clip"] = "keep",
) -> tuple[Array, float]:
    """DRA's weights 1 / (1 + SMI) over the completions `scope` compares, and their mean similarity.

    The weights `adjust_rewards` multiplies the rewards by (see there for `scope`, `device_batch_size` and
    `negative_similarity`), and the mean cosine similarity between distinct completions of each compared set
    (prompt group, or device slice), averaged over the sets: what the trainer logs, taken from the same pass
    over the embeddings. Returns ((B*G,) weights in the computation dtype, a float).
    """
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(negative_similarity, NEGATIVE_SIMILARITY, "negative_similarity")
    x, to_numpy = _as_embeddings(embeddings)
    units, unit = _compared_sets(x, group_size, scope, device_batch_size)
    weights, mean_similarity = _weights(units, kernel, negative_similarity, unit)
    return _back(weights, to_numpy), mean_similarity.mean().item()


def _compared_sets(x: torch.Tensor, group_size: int, scope: str, device_batch_size: int | None
                   ) -> tuple[torch.Tensor, str]:
    """The sets of completions whose similarities DRA compares, as (sets, n, d), and what a set is called.

    The only place that reads `scope`: "group" gives each prompt's G completions (the paper's formula),
    "device" consecutive slices of `device_batch_size` completions (one training process's batch in the
    authors' code, which split and mix groups when it is not a multiple of G). Either way the rows must form
    whole groups of `group_size`.
    """
    _check_choice(scope, SCOPES, "scope")
    if scope == "device" and device_batch_size is None:
        raise ValueError("scope='device' needs device_batch_size (completions per training process).")
    if scope == "group" and device_batch_size is not None:
        raise ValueError("device_batch_size only applies to scope='device'; leave it None for scope='group'.")
    n_groups = _n_groups(x.shape[0], group_size, "embeddings")
    if scope == "group":
        return x.reshape(n_groups, int(group_size), -1), "group"
    n_slices = _n_groups(x.shape[0], device_batch_size, "embeddings", "device_batch_size")
    return x.reshape(n_slices, int(device_batch_size), -1), "device slice"


def _weights(grouped: torch.Tensor, kernel: str, negative_similarity: str, unit: str
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B*n,) tensor of 1 / (1 + SMI) for (B, n, d) embeddings, and each set's mean similarity (B,); refuses
    denominators below 1/n."""
    smi, mean_similarity = _smi(grouped, kernel, negative_similarity)
    denom = 1.0 + smi
    if not (denom >= 1.0 / grouped.shape[1]).all():  # also catches NaN
        _raise_bad_denominator(denom, unit)
    return denom.reciprocal().reshape(-1), mean_similarity


def _raise_bad_denominator(denom: torch.Tensor, unit: str) -> None:
    if not torch.isfinite(denom).all():
        raise ValueError("the SMI is not finite although the embeddings are; the similarity matrix is numerically "
                         "degenerate (please report this with the embeddings).")
    n = denom.shape[1]
    b, i = (denom < 1.0 / n).nonzero()[0].tolist()
    value = denom[b, i].item()
    raise ValueError(
        f"1 + SMI = {value:.3g} < 1/{n} for completion {i} of {unit} {b}: its cosine similarities to the other "
        f"completions are negative on balance. With non-negative similarities 1 + SMI >= 1, so no weight "
        f"exceeds 1; the paper's R / (1 + SMI) would here multiply the reward by "
        + (f"{1 / value:.3g}, more than the {n}-fold damping of a fully redundant completion"
           if value > 0 else "a non-positive number (inf or a flipped sign)")
        + ". Pass negative_similarity='clip' to treat anti-similar completions as unrelated (weights in "
        f"[1/{n}, 1])."
    )


def adjust_rewards(
    rewards: Array,
    embeddings: Array,
    group_size: int,
    kernel: Kernel = "graph_cut",
    scope: Literal["group", "device"] = "group",
    device_batch_size: int | None = None,
    negative_similarity: Literal["keep", "clip"] = "keep",
    adjust_negative: bool = True,
) -> Array:
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
            authors also add 1e-6 to the row sum; that is left out here (a relative change below 1e-6;
            tests/test_kernels.py::test_device_scope_matches_the_authors_transcription measures it).
        device_batch_size: completions per process; required for scope="device", must divide B*G.
        negative_similarity: "keep" (paper) uses the cosine as it is; "clip" uses max(s_ij, 0), so
            1 + SMI >= 1 and the weights lie in [1/G, 1] for graph cut. Log-det ignores it: its SMI is
            >= 0 on the unclipped (positive semi-definite) similarity matrix already.
        adjust_negative: True (paper) divides every reward, so a redundant wrong answer with a negative
            reward is penalised less than a distinct one; False leaves rewards <= 0 as they are, so only
            positive rewards are re-weighted. Under the paper's full reward (format + 2 x cosine) a
            well-formatted wrong answer earns 0 to 1, so this option does not reach it (notebook 02, section 7).

    Where the paper's formula stops making sense: with n completions compared (G, or device_batch_size),
    non-negative similarities give 1 <= 1 + SMI <= n for graph cut (n + 1 for facility location), i.e.
    weights in [1/n, 1]. Negative similarities can
    push 1 + SMI below 1 (the weight, and the reward, grow) and down to 0 or below (inf, a flipped sign).
    Weights in (1, n] are kept, as the paper's formula says; a denominator below 1/n would amplify a reward by
    more than the n-fold damping that the most redundant completion receives, and near 0 by any amount (two
    nearly opposite embeddings gave rewards of 5e5 under the former 1e-6 guard), so it raises ValueError naming
    negative_similarity='clip'. Real sentence embeddings of one prompt's completions are almost always
    positively correlated, so this guards an edge, not the common case.

    Returns:
        (B*G,) adjusted rewards in the rewards' dtype (at least float32). Raises TypeError for arguments of
        the wrong type and ValueError for bad values or a denominator below 1/n.
    """
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(scope, SCOPES, "scope")
    _check_choice(negative_similarity, NEGATIVE_SIMILARITY, "negative_similarity")
    if not isinstance(adjust_negative, (bool, np.bool_)):
        raise TypeError(f"adjust_negative must be True or False, got {adjust_negative!r}.")
    x, _ = _as_embeddings(embeddings)
    r, to_numpy = _as_rewards(rewards)
    if r.shape[0] != x.shape[0]:
        raise ValueError(f"rewards has {r.shape[0]} entries but embeddings has {x.shape[0]} rows; they must match.")
    units, unit = _compared_sets(x, group_size, scope, device_batch_size)
    w = _weights(units, kernel, negative_similarity, unit)[0].to(device=r.device, dtype=r.dtype)
    adjusted = r * w if adjust_negative else torch.where(r > 0, r * w, r)
    return _back(adjusted, to_numpy)


def group_advantages(rewards: Array, group_size: int, scale: Literal["group", "batch", "none"] = "group") -> Array:
    """GRPO advantages exactly as TRL 1.16's GRPOTrainer computes them from the (gathered) summed rewards.

    A_i = R_i - mean_group(R), divided by (std + 1e-4) where std is the unbiased standard deviation within
    the group (`scale="group"`, GRPO), over the whole batch (`scale="batch"`), or not at all
    (`scale="none"`, Dr. GRPO). TRL computes the batch std over all processes' rewards: call this on the
    gathered rewards to match. Like TRL, a single sample has std 0 (not NaN), so its advantage is 0.
    Half-precision rewards are computed in float32 (TRL's rewards are float32).
    """
    _check_choice(scale, ADVANTAGE_SCALES, "scale")
    r, to_numpy = _as_rewards(rewards)
    b = _n_groups(r.shape[0], group_size, "rewards")
    adv = r - r.view(b, group_size).mean(dim=1).repeat_interleave(group_size)
    if scale == "none":
        return _back(adv, to_numpy)
    if scale == "group" and group_size > 1:
        std = _unbiased_std(r.view(b, group_size)).repeat_interleave(group_size)
    elif scale == "batch" and r.numel() > 1:
        std = _unbiased_std(r)
    else:  # a single sample: std 0, as TRL
        std = torch.zeros_like(r)
    return _back(adv / (std + TRL_STD_EPS), to_numpy)


def _unbiased_std(x: torch.Tensor) -> torch.Tensor:
    """Unbiased std over the last dimension with the same operations as TRL's `nanstd` (mean of squared
    deviations times n / (n - 1)), so advantages match TRL's bit for bit rather than to rounding."""
    n = x.shape[-1]
    variance = ((x - x.mean(dim=-1, keepdim=True)) ** 2).mean(dim=-1) * (n / (n - 1))
    return variance.sqrt()


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
    w, to_numpy = _as_rewards(weights, "weights")
    b = _n_groups(w.shape[0], group_size, "weights")
    grouped = w.view(b, group_size)
    if mode == "mean_normalized":
        grouped = grouped / grouped.mean(dim=1, keepdim=True)
    elif mode == "group_mean":
        grouped = grouped.mean(dim=1, keepdim=True).expand(b, group_size)
    elif mode == "shuffled":
        order = torch.argsort(torch.rand(b, group_size, generator=generator), dim=1).to(grouped.device)
        grouped = torch.gather(grouped, 1, order)
    return _back(grouped.reshape(-1).clone(), to_numpy)
