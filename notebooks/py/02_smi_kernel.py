# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The SMI kernel: what DRA does to a group's rewards
#
# DRA-GRPO (arXiv 2505.09655) changes one thing in GRPO: before the group statistics, the reward of completion
# $o_i$ in the group $C = \{o_1, \dots, o_G\}$ of one prompt is divided by how much it shares with its siblings,
#
# $$\tilde R_i = \frac{R_i}{1 + \mathrm{SMI}(\{o_i\}, C \setminus \{o_i\})}, \qquad
# \mathrm{SMI}_{\text{graph cut}} = \sum_{j \ne i} s(o_i, o_j),$$
#
# with $s$ the cosine similarity of sentence embeddings of the completion texts. With unit-norm embeddings
# $1 + \mathrm{SMI}$ is the $i$-th row sum of the $G \times G$ similarity matrix $L$. This notebook walks
# through the kernel with the package only (`dra.similarity`, `dra.smi_scores`, `dra.adjust_rewards`,
# `dra.group_advantages`): it recomputes the public proof-of-concept, compares the formula's scope with the
# authors' per-device scope and the other details where their code differs (section 5), shows what the
# paper's reward does to groups where every answer is wrong (section 7), and ends with a benchmark.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import dra
from dra import examples, profiles
from dra.bench import kernel_benchmark
from dra.embed import HUB_MODELS, embedding_text, get_embedder
from dra.reports import quiet_libraries, save_figure, save_result, show_table
from dra.rewards import completion_text, paper_reward

quiet_libraries()  # library log lines and loading bars stay out of the output

# %% tags=["parameters"]
profile: str = "mini"  # smoke | mini | paper: only the benchmark's repeats differ; papermill -p profile smoke
seed: int = 0  # seed of the synthetic embedding groups

# %%
benchmark_sizes = profiles.get(profile).benchmarks  # from the profile's settings; an unknown name stops here
print(f"profile: {profile}")

# %% [markdown]
# ## 1. The public proof-of-concept, recomputed
#
# A public note simulates one group of 8 completions (six near-clones of path A, then distinct paths B and C;
# rewards `[1,1,1,1,1,1,0,1]`, so B is the wrong one) and prints advantages before and after DRA. We rebuild its
# embeddings exactly as it describes (`np.random.seed(42)`, draws in order) and recompute with the package.
# It normalises with numpy's *population* std + 1e-8; TRL (and `dra.group_advantages`) uses the unbiased std
# + 1e-4, so both are shown.

# %%
# NBVAL_CHECK_OUTPUT
rewards, emb = examples.poc_group()
adjusted = dra.adjust_rewards(rewards, emb, group_size=8)
recomputed = {
    "grpo_advantage_correct": examples.zscore_population(rewards)[0],
    "grpo_advantage_wrong": examples.zscore_population(rewards)[6],
    "dra_reward_clone": adjusted[:6].mean(),
    "dra_reward_path_c": adjusted[7],
    "dra_advantage_clone": examples.zscore_population(adjusted)[:6].mean(),
    "dra_advantage_path_c": examples.zscore_population(adjusted)[7],
}
trl_style = {
    "grpo_advantage_correct": dra.group_advantages(rewards, 8)[0],
    "grpo_advantage_wrong": dra.group_advantages(rewards, 8)[6],
    "dra_reward_clone": adjusted[:6].mean(),
    "dra_reward_path_c": adjusted[7],
    "dra_advantage_clone": dra.group_advantages(adjusted, 8)[:6].mean(),
    "dra_advantage_path_c": dra.group_advantages(adjusted, 8)[7],
}
poc = pd.DataFrame({"claimed": examples.POC_CLAIMS, "recomputed (population std)": recomputed,
                    "recomputed (TRL: unbiased std + 1e-4)": trl_style}).round(3)
poc["claim holds (±0.01)"] = np.isclose(poc["claimed"], poc["recomputed (population std)"], atol=0.01)
show_table(poc, title="The proof-of-concept's printed numbers, recomputed")

# %% [markdown]
# **What holds and what does not.** The direction of every claim holds: DRA shrinks the clones' reward and
# keeps the distinct correct path C near its full reward, so after normalisation C gets by far the largest
# advantage and the clones turn slightly negative. The printed values do not: with 7 of 8 rewards equal to 1
# the GRPO z-scores are $\pm$ fixed by arithmetic alone (0.378 and −2.646 with the population std, not 0.436
# and −3.055), and the adjusted rewards (≈ 0.168 per clone, ≈ 0.840 for C) differ from the claimed 0.103 and
# 0.376. The note's numbers are not reproducible from the procedure it describes.

# %% [markdown]
# ## 2. Redundant vs distinct groups
#
# Three groups of $G=6$: all completions near-copies of one solution, three modes of sizes 3, 2, 1, and six
# distinct solutions. The heatmaps are $L$; the bars are the diversity weights $1/(1+\mathrm{SMI})$.

# %%
groups = {
    "redundant (6 near-copies)": examples.clustered_group([6], seed=seed),
    "three modes (3 + 2 + 1)": examples.clustered_group([3, 2, 1], seed=seed),
    "distinct (6 modes)": examples.clustered_group([1] * 6, seed=seed),
}
fig, axes = plt.subplots(2, 3, figsize=(12, 7), gridspec_kw={"height_ratios": [3, 1.3]})
for col, (name, e) in enumerate(groups.items()):
    L = dra.similarity(e, 6)[0]
    im = axes[0, col].imshow(L, vmin=-1, vmax=1, cmap="RdBu_r")
    axes[0, col].set_title(name)
    axes[1, col].bar(range(6), dra.diversity_weights(e, 6), color="tab:purple")
    axes[1, col].set_ylim(0, 1.05)
    axes[1, col].set_xlabel("completion")
axes[1, 0].set_ylabel("weight 1/(1+SMI)")
fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
fig.suptitle("Similarity matrices L (top) and DRA weights (bottom), three groups of G = 6")
save_figure(fig, "02_similarity_and_weights", profile)
plt.show()

# %% [markdown]
# Near-copies get weight ≈ 1/6 (every row sums to ≈ G), distinct completions ≈ 1, and in the three-mode group
# each completion's weight is ≈ 1 / (size of its mode).
#
# ## 3. GRPO vs DRA advantages (and Dr. GRPO)
#
# The three-mode group again, with rewards: modes of size 3 and 1 are correct, the mode of size 2 is wrong.
# Plain GRPO gives every correct completion the same advantage; DRA gives the rare correct solution more.
# Dr. GRPO (`scale="none"`) drops the division by the std, so only the centring remains.

# %%
e = groups["three modes (3 + 2 + 1)"]
r = np.array([1, 1, 1, 0, 0, 1], dtype=float)
adj = dra.adjust_rewards(r, e, 6)
table = pd.DataFrame({
    "mode": ["A", "A", "A", "B", "B", "C"], "reward": r, "weight": dra.diversity_weights(e, 6), "DRA reward": adj,
    "GRPO adv": dra.group_advantages(r, 6), "DRA-GRPO adv": dra.group_advantages(adj, 6),
    "Dr. GRPO adv": dra.group_advantages(r, 6, scale="none"), "DRA-Dr. GRPO adv": dra.group_advantages(adj, 6, scale="none"),
})
show_table(table, index=False, title="Three modes: A and C correct, B wrong")
fig, ax = plt.subplots(figsize=(8, 3.2))
table[["GRPO adv", "DRA-GRPO adv"]].plot.bar(ax=ax, color=["tab:gray", "tab:purple"])
ax.set_xticklabels(table["mode"], rotation=0)
ax.set_xlabel("completion (mode)")
ax.set_ylabel("advantage")
ax.set_title("GRPO vs DRA-GRPO advantages: the rare correct mode C gains")
ax.axhline(0, color="black", lw=0.8)
save_figure(fig, "02_grpo_vs_dra_advantages", profile)
plt.show()

# %% [markdown]
# ## 4. Group scope (the formula) vs device scope (the authors' code)
#
# The authors' trainer computes $L$ over the completions one training process holds, 4 per device in their
# recipe, while a group has $G=6$: groups are split across devices and mixed with their neighbours. With
# `device_batch_size=6` both scopes agree (a test checks this); with 4 they do not. With 4, the device scope
# agrees with a line-by-line transcription of the authors' loop (per-process slice, cosine matrix, 1 over the
# row sum plus their 1e-6) to 4.8e-7 in float32, the 1e-6 alone
# (`tests/test_kernels.py::test_device_scope_matches_the_authors_transcription`).

# %%
two_groups = np.concatenate([examples.clustered_group([3, 2, 1], seed=1), examples.clustered_group([6], seed=2)])
ones = np.ones(12)
scopes = pd.DataFrame({
    "group": np.repeat([0, 1], 6),
    "group scope": dra.adjust_rewards(ones, two_groups, 6),
    "device scope, 6 per device": dra.adjust_rewards(ones, two_groups, 6, scope="device", device_batch_size=6),
    "device scope, 4 per device": dra.adjust_rewards(ones, two_groups, 6, scope="device", device_batch_size=4),
})
show_table(scopes, title="Adjusted rewards of two groups (rewards all 1) under each scope")
print(f"max |group - device(4)| = {np.abs(scopes['group scope'] - scopes['device scope, 4 per device']).max():.3f}")

# %% [markdown]
# The second device holds completions 4-7, two from each group. The redundant group's clones 6 and 7 see only
# one near-copy there, so their weight rises from ≈ 1/6 to ≈ 1/2; completion 4 (mode B) loses its partner and
# is compared with strangers instead. The same completions get different rewards depending on how the batch was
# cut, which is why `dra.train` defaults to the group scope and offers the device scope only to reproduce the
# authors.

# %% [markdown]
# ## 5. Where the authors' code differs in detail
#
# Checked against a transcription of the authors' reward adjustment (xiwenc1/DRA-GRPO,
# `src/open_r1/trl/trainer/grpo_trainer.py`) and of TRL 1.16's advantage code:
#
# | detail | authors' code | here |
# |---|---|---|
# | precision of the similarity | float32 always (their embedders return float32) | at least float32: float16/bfloat16 embeddings are upcast, weights come back in float32 (before this, the input's dtype: bfloat16 weights were off by up to 4e-3, 1.3%) |
# | row sum | $\sum_j L_{ij} + 10^{-6}$ | $\sum_j L_{ij}$; `scope="device"` agrees with their loop to 4.8e-7 (float32) |
# | GRPO advantages | TRL (2025) | bit-identical to TRL 1.16 on every pattern tested (`test_group_advantages_match_trl`) |
# | nomic truncation | `encode(..., max_tokens_per_text=3584)`: no such keyword; their sentence-transformers dropped it, so nomic cut at its own limit (8,192 tokens) | 3,584 by default; `max_seq_length="authors"` gives their effective 8,192 (the pinned sentence-transformers 6.2 refuses the keyword) |
# | jina truncation | jina's own `encode(..., max_length=3584)`: 3,584 tokens | 3,584 (the paper recipe: jina, `dra_embed_max_seq_length: 3584`) |
# | embedder dtype | float32 (transformers 4's default) | pinned: `dtype="float32"` by default, passed as `model_kwargs`, listed in `embedder.identity()` |
# | text of a multi-message completion | all message contents joined by a space | the same (`dra.embed.embedding_text`); grading reads the last message (`dra.rewards.completion_text`); identical without tool calls |

# %%
# NBVAL_CHECK_OUTPUT
x = torch.tensor(examples.clustered_group([3, 2, 1], seed=seed))
for dtype in (torch.float16, torch.bfloat16):
    half = x.to(dtype)
    w = dra.diversity_weights(half, 6)
    error = (w.double() - dra.diversity_weights(half.double(), 6)).abs().max().item()
    print(f"{str(dtype):15s} -> weights in {w.dtype}; |error| against float64 on the same values < 1e-6: {error < 1e-6}")
tool_call = [{"role": "assistant", "content": "Let me compute 3 * 4.", "tool_calls": [{"name": "calc"}]},
             {"role": "tool", "content": "12"}, {"role": "assistant", "content": "So the answer is \\boxed{12}."}]
print("embedded:", repr(embedding_text(tool_call)))
print("graded:  ", repr(completion_text(tool_call)))
truncation = pd.DataFrame({name: {"default max_seq_length": spec.max_seq_length,
                                  "max_seq_length='authors'": spec.authors_max_seq_length or "the model's own"}
                           for name, spec in HUB_MODELS.items()}).T
show_table(truncation, title="Tokens embedded per completion")

# %% [markdown]
# ## 6. Signed rewards
#
# The paper's cosine reward is negative for wrong answers (its *cosine part*; section 7 shows that with the
# format reward added the total is not), and DRA divides the signed reward. A redundant wrong
# answer therefore ends up *closer to zero*, penalised less than a distinct wrong answer. `adjust_negative=False`
# re-weights only positive rewards.

# %%
e = examples.clustered_group([3, 1, 1, 1], seed=3)
r = np.full(6, -0.5)  # all wrong
signed = pd.DataFrame({
    "mode": ["A", "A", "A", "B", "C", "D"], "reward": r,
    "row sum 1+SMI": 1 + dra.smi_scores(e, 6),
    "paper (adjust_negative=True)": dra.adjust_rewards(r, e, 6),
    "negative_similarity='clip'": dra.adjust_rewards(r, e, 6, negative_similarity="clip"),
    "adjust_negative=False": dra.adjust_rewards(r, e, 6, adjust_negative=False),
})
show_table(signed, index=False, title="All wrong (reward -0.5): what DRA does to signed rewards")

# %% [markdown]
# The clones of A end near −0.17, the distinct wrong answers further from zero. Completion D shows the other
# edge of the formula: its cosines to its siblings are negative on balance, so its row sum falls below 1 and
# its reward is *amplified* (weight > 1); had they been more negative the denominator would reach 0 and the
# reward would flip sign. The paper's code does nothing about this. Here the formula is kept while the weight
# stays at most $G$ (the factor by which a fully redundant completion is damped); a denominator below $1/G$
# raises an error naming `negative_similarity="clip"`, which treats anti-similar pairs as unrelated (weights in
# $[1/G, 1]$). Real sentence embeddings of completions to one prompt are mostly positively correlated, so the
# edge is rare in practice, but it is reachable.

# %% [markdown]
# ## 7. Well-formatted wrong answers: positive rewards, length noise, and DRA
#
# The paper's reward is $1\times$format $+ 2\times$cosine (`dra.rewards.paper_reward`). With open-r1's cosine as
# the authors ran it, a wrong answer's cosine part lies in $[-0.5, 0]$, so a *well-formatted* wrong answer
# (the policy writes `\n</think>\n` once, which DeepSeek-R1-Distill does by habit) earns $1 + 2 \times [-0.5, 0]
# \in [0, 1]$: never negative. The totals below come from `paper_reward` itself.

# %%
# NBVAL_CHECK_OUTPUT
totals = pd.DataFrame(examples.paper_totals([110, 500, 1000, 1500, 2000, 3000])).set_index("length")
show_table(totals, title="Paper reward of well-formatted answers, by length")

# %% [markdown]
# Correct answers earn 2-3, wrong ones 0-1 (2.97 vs 0.97 at 110 characters), and the unclamped cosine
# turns back past 1,000 characters. Real completions: the stored Qwen2.5-Math samples (100 MATH prompts, the
# first 6 of 8 per prompt) have these groups where all six are graded wrong.

# %%
# NBVAL_CHECK_OUTPUT
wrong_groups = examples.all_wrong_groups(group_size=6)
for g in wrong_groups:
    print(f"prompt {g['index']}: gold {g['gold']!r}; answers {g['answers']}; with the closing tag: {g['with_closing_tag']} of 6")

# %% [markdown]
# None of these completions is well formatted in the paper's sense: Qwen2.5-Math writes no think tags, so
# as stored their format reward is 0 and their totals are negative. To see what the paper's policy would be
# rewarded, each is laid out as R1 writes (`examples.as_r1_format`: the closing tag replaces the last paragraph
# break, +8 characters; words and answer unchanged). Prompt 3 is left out: its completions answer "4:30 p.m.",
# which is right; its gold answer "4:30p.." is malformed. Embeddings: MiniLM.

# %%
embedder = get_embedder("minilm")
skip = {3: "malformed gold answer; the completions are right"}
real = {}
for g in wrong_groups:
    if g["index"] in skip:
        continue
    r1_rewards = np.array(paper_reward(g["r1_texts"], answer=[g["gold"]] * 6))
    real[g["index"]] = pd.DataFrame({
        "answer": g["answers"], "chars": [len(t) for t in g["r1_texts"]],
        "reward as stored": paper_reward(g["texts"], answer=[g["gold"]] * 6),
        **examples.advantage_table(r1_rewards, embedder.encode(g["r1_texts"]), 6)})
    show_table(real[g["index"]], index=False, title=f"prompt {g['index']} (gold {g['gold']}), laid out as R1 writes")

# %%
# NBVAL_CHECK_OUTPUT
for index, t in real.items():
    top = t["GRPO adv"].idxmax()
    print(f"prompt {index}: stored totals < 0: {bool((t['reward as stored'] < 0).all())}; R1-layout totals >= 0: "
          f"{bool((t['total reward'] >= 0).all())}; adjust_negative=False changes nothing: "
          f"{bool(np.allclose(t['DRA-GRPO adv'], t['DRA-GRPO adv, adjust_negative=False']))}")
    print(f"    top GRPO advantage: completion {top} ({t['chars'][top]} chars, the longest: {top == t['chars'].idxmax()}); "
          f"DRA weights spread < 0.02: {bool(np.ptp(t['DRA weight']) < 0.02)}; "
          f"max |DRA-GRPO adv - GRPO adv| < 0.05: {bool((t['DRA-GRPO adv'] - t['GRPO adv']).abs().max() < 0.05)}")

# %% [markdown]
# In every real all-wrong group the totals are positive once the answer is well formatted, and they differ only
# through length: a few dozen characters move a total by thousandths near 1,000 characters, while the unclamped
# cosine lifts a wrong answer that runs past 1,000 characters to 0.2-0.7. GRPO divides by the group's std,
# so this length noise becomes advantages of −0.8 to +2.0: the longest wrong answer is reinforced.
# `adjust_negative=False` cannot help, since no total is negative. DRA changes little here: MiniLM (256 tokens)
# sees six completions to one problem as near-copies (cosines 0.86-1.0), so the weights are nearly uniform
# (0.17-0.19) and the std normalisation cancels a uniform factor.
#
# Where the similarity does separate the completions, DRA pushes toward the distinct wrong one. A group of
# six wrong, well-formatted, short answers (102-115 characters): five near-copies of one solution and one
# distinct solution.

# %%
# NBVAL_CHECK_OUTPUT
lengths = [104, 111, 108, 115, 102, 110]
r_wrong = np.array(paper_reward([examples.formatted_completion("5", n) for n in lengths], answer=["4"] * 6))
synthetic = pd.DataFrame({"mode": ["A"] * 5 + ["B (distinct)"], "chars": lengths,
                          **examples.advantage_table(r_wrong, examples.clustered_group([5, 1], seed=seed), 6)})
show_table(synthetic, index=False, title="Six wrong, well-formatted answers: five near-copies and one distinct")

# %%
curve = pd.DataFrame(examples.paper_totals(list(range(50, 3001, 50)))).set_index("length")
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
curve.plot(ax=axes[0], color=["tab:green", "tab:red"])
axes[0].axhline(0, color="black", lw=0.8)
axes[0].set(xlabel="completion length (characters)", ylabel="paper total reward", title="well-formatted answers")
shown = real[85]
for ax, table, labels, title in [
    (axes[1], shown, [f"{a}\n{n}" for a, n in zip(shown["answer"], shown["chars"])], "real all-wrong group (prompt 85)"),
    (axes[2], synthetic, [f"{m[0]}\n{n}" for m, n in zip(synthetic["mode"], synthetic["chars"])],
     "all wrong: 5 near-copies + 1 distinct"),
]:
    table[["GRPO adv", "DRA-GRPO adv"]].plot.bar(ax=ax, color=["tab:gray", "tab:purple"])
    ax.set_xticklabels(labels, rotation=0)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="completion: answer (or mode), characters", ylabel="advantage", title=title)
fig.suptitle("Well-formatted wrong answers: positive rewards, length noise, and what DRA does with them")
fig.tight_layout()
save_figure(fig, "02_all_wrong_groups", profile)
plt.show()

# %% [markdown]
# With GRPO the advantages follow the length noise; with DRA the distinct wrong completion B gets by far the
# largest advantage (+2.04) and the near-copies turn negative: DRA spreads probability toward a *different*
# wrong answer. The paper's adjustment has no notion of correctness beyond the reward's sign, and under the
# paper's reward a well-formatted wrong answer has no negative sign to flip the push. Remedies are outside the
# kernel: a reward that is $\le 0$ for wrong answers (format counted only when correct), a clamped cosine, or no
# DRA (and no std division) in groups without a correct answer.

# %% [markdown]
# ## 8. Three kernels side by side
#
# Graph cut (the paper), Facility Location (FLQMI = FLVMI for a singleton) and Log-Det (LogDetMI with a
# $10^{-3}$ ridge) from Iyer et al.; see the docstring of `dra.smi_scores` for the exact definitions.
# Graph cut counts every similar sibling; facility location adds the nearest sibling once more; log-det asks how
# well the siblings *span* $o_i$, so a second near-copy adds little once one is present.

# %%
e = groups["three modes (3 + 2 + 1)"]
kernels = pd.DataFrame({k: dra.diversity_weights(e, 6, kernel=k) for k in dra.KERNELS})
kernels.insert(0, "mode size", [3, 3, 3, 2, 2, 1])
show_table(kernels, index=False, title="Weights 1/(1+SMI) under each kernel, three-mode group")
fig, ax = plt.subplots(figsize=(7, 3))
kernels.drop(columns="mode size").plot.bar(ax=ax)
ax.set_xlabel("completion (modes 3, 2, 1)")
ax.set_ylabel("weight 1/(1+SMI)")
ax.set_title("Three SMI kernels on one group")
save_figure(fig, "02_kernels", profile)
plt.show()

# %% [markdown]
# ## 9. The inverse-propensity reading
#
# Later versions of the paper read the row sum $\sum_j L_{ij}$ as an unnormalised kernel density estimate of
# how likely the policy is to sample something like $o_i$. Dividing by it is inverse propensity weighting: each
# distinct mode's *total* weight becomes about equal, whatever its sampling frequency.

# %%
sizes = [3, 2, 1]
e = examples.clustered_group(sizes, spread=0.05, seed=seed)
row_sum = dra.similarity(e, 6)[0].sum(1)
w = dra.diversity_weights(e, 6)
mode = np.repeat(np.arange(len(sizes)), sizes)
ips = pd.DataFrame({"mode size": sizes,
                    "mean row sum (KDE)": [row_sum[mode == m].mean() for m in range(3)],
                    "total weight of the mode": [w[mode == m].sum() for m in range(3)]})
show_table(ips, index=False, title="Each mode's total weight is about 1")

# %% [markdown]
# Row sums track mode sizes, and each mode's total weight is ≈ 1: DRA turns "how often was this sampled"
# into "one vote per distinct solution".
#
# ## 10. Benchmark
#
# `adjust_rewards` on 512 groups × 6 completions × 384 dims (MiniLM's width), float32 on CPU, against the
# proof-of-concept's per-pair Python loop and against copying the embeddings once, the memory-bound floor
# (the kernel must read them at least once). For the paper's default (graph cut) the kernel never builds the
# $G \times G$ matrix: the row sum is $u_i \cdot \sum_j u_j$ with $u = x/\lVert x\rVert$, two batched
# matrix-vector products; the other kernels use one batched Gram matrix, whose diagonal holds the norms.
# Goals: at least 100× faster than the loop, within 8× of the copy. Minimum over repeats, all in this run.

# %%
bench = kernel_benchmark(n_groups=512, group_size=6, dim=384, repeats=benchmark_sizes.kernel_repeats,
                         loop_repeats=benchmark_sizes.kernel_loop_repeats)
save_result("kernel_benchmark", bench, profile, seed)
show_table(pd.Series(bench, name="value").to_frame(), title=f"adjust_rewards benchmark ({profile} profile)")
print(f"\nspeed-up over the per-pair loop: {bench['speedup_vs_loop']:.0f}x (goal >= 100x)")
print(f"time relative to one copy of the input: {bench['times_copy_floor']:.1f}x (goal <= 8x)")
