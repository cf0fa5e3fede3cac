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
# # 03 · DRA-GRPO training: the paper's arms and the controls on the mini world
#
# GRPO, Dr. GRPO, and both with the DRA reward adjustment, trained with `dra.train` (a `GRPOTrainer` subclass on
# upstream TRL 1.16) from the recipes in `recipes/<profile>/`, plus the controls that say *why* DRA changes
# training (mean-normalised weights, the step-size change alone, shuffled weights, an entropy bonus, and the
# exact strategy partition). The settings, seeds, endpoints and verdict rules were fixed before any DRA arm ran:
# [docs/preregistration_mini_v2.md](../docs/preregistration_mini_v2.md).
#
# In the mini world (version 4) each problem has a *home* strategy, a shortcut that is exact only on its kind
# (shown in the prompt), and the base policy prefers one strategy regardless of the problem, so accuracy rises
# only by learning which strategy fits which kind. Every run is evaluated on held-out test prompts (distinct factor pairs): pass@1 (the primary endpoint),
# pass@k up to 16, the share of samples that use their problem's home strategy, accuracy per home type, strategy
# entropy and distinct correct strategies. At the paper profile the notebook shows the launch commands.
#
# Runs are cached by the configuration that made them: a finished (arm, seed) is read back from
# `data/mini_training/<profile>/`, an interrupted one resumes from its last checkpoint in `runs/`. The grid is
# filled by `python -m dra.experiment` over several sessions; until a comparison has the pre-registered 8 seeds
# its row says "interim" instead of a verdict.
#
# The `grid` parameter picks one pre-registered grid of runs (`profiles.ExperimentSettings.grids`): `main`, the
# recipes as they are (240 steps at mini), or `long`, 960 steps without the paper-reward arms and the policy embedder
# ([docs/preregistration_mini_long.md](../docs/preregistration_mini_long.md)), the horizon at which GRPO learns to
# route. A grid's tables, figures and summary carry its name (`..._long`), so the two never overwrite each other.

# %%
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd

from dra import experiment, profiles, recipes, train
from dra.config import PROJECT_ROOT
from dra.reports import quiet_libraries, save_figure, save_result, save_table, show_table

quiet_libraries()


def seeds_label(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"

# %% tags=["parameters"]
profile: str = "mini"  # smoke (trains every arm for a few steps) | mini (reads committed runs) | paper; papermill -p profile smoke
seeds: Optional[list] = None  # training seeds; None: the profile's (smoke: 0, mini: 0-7)
train_missing: Optional[bool] = None  # None: train missing runs at smoke; at mini only read the committed results
benchmark_steps: int = 6  # optimiser steps per configuration in the overhead benchmark
grid: str = "main"  # which pre-registered grid: main (the recipes as they are) | long (960 steps at mini)

# %%
chosen = profiles.get(profile)  # every setting of the profile (dra.profiles); an unknown name stops here
data_profile = chosen.mini_world.name  # the paper profile shows the mini results on disk
chosen_grid = chosen.mini_world.mini_experiment().grid(grid)  # its recipe overrides and arms; an unknown name stops here
suffix = experiment.grid_suffix(grid)  # in every output's name: grids never overwrite each other
grid_arms = chosen_grid.arms or recipes.arms(data_profile)
pd.set_option("display.precision", 3)
print(f"profile: {profile}; grid: {grid}" + (f" ({experiment.override_tag(chosen_grid.overrides)})" if chosen_grid.overrides else "")
      + (f", pre-registered in {chosen_grid.preregistration}" if chosen_grid.preregistration else ""))

# %% [markdown]
# ## The paper profile: launch commands and logs
#
# Each paper recipe validated without a GPU (`python -m dra.train --config recipes/paper/<arm>.yaml --dry_run`):
# the launch command, the optimiser steps and prompts seen, and a lower-bound memory estimate per training GPU.

# %%
dry = {}
for arm in recipes.ARMS:  # each run's configuration from its recipe mapping, the one recipes/paper/<arm>.yaml holds
    run = train.run_config({**recipes.recipe("paper", arm), "dry_run": True}, source=f"recipes/paper/{arm}.yaml")
    dry[experiment.ARM_LABELS[arm]] = train.dry_run_report(run)
dry_table = pd.DataFrame({k: {"steps": v["optimizer_steps"], "prompts seen": v["prompts_seen"], "loss": v["loss_type"],
                              "scale_rewards": v["scale_rewards"], "DRA": v["dra"],
                              "memory GB (lower bound)": v["memory_gb_per_training_gpu"]["total"]} for k, v in dry.items()}).T
show_table(dry_table, title="Paper recipes (dry run)")
print("vLLM server (GPU 3):", dry["DRA-GRPO"]["vllm_server"])
print("training (GPUs 0-2):", dry["DRA-GRPO"]["launch"])
if profile == "paper":
    for arm in recipes.ARMS:
        log = PROJECT_ROOT / f"runs/paper/{arm}/metrics.jsonl"
        print(arm, "log:", log if log.exists() else "not run yet")

# %% [markdown]
# ## Mini world: every arm and seed

# %%
results, missing = experiment.collect(data_profile, arms=grid_arms, seeds=seeds, overrides=chosen_grid.overrides,
                                      train_missing=(profile == "smoke") if train_missing is None else train_missing)
print(f"{len(results)} results files; {len(missing)} (arm, seed) runs not trained yet"
      + (f": {missing[:12]}{' ...' if len(missing) > 12 else ''}" if missing else ""))
table = experiment.arm_table(results)
if len(table):
    save_table(table, f"03_mini_arms_{profile}{suffix}", profile)
    show_table(table, title="Test metrics per arm: mean over seeds, ± = half-width of the 95% t-interval "
                            f"({data_profile}, grid {grid})")

# %% [markdown]
# **World check** (not a claim about DRA): does RL raise test pass@1 over the SFT base policy at all? Per seed,
# the arm minus the base policy, with a 95% t-interval over seeds. The pre-registered goal: GRPO +5 points or
# more with the interval above 0.
#
# The same check kind by kind (test accuracy on the problems of each home type) shows where GRPO's change comes
# from: at 240 steps a small gain on plus-one's kind paid for on plus-five's (notebook 01's table "GRPO advantage
# per group, by kind" says why it does not route that early); at 960 steps (grid `long`) minus-one's kind routed.

# %%
world = experiment.world_check(results)
if len(world):
    show_table(world, title="RL arm - base policy, test pass@1")
kinds = sorted(next((r["evaluation"].get("accuracy_by_home_type", {}) for r in results if r["arm"] == "base"), {}))
world_by_kind = pd.concat({kind: experiment.world_check(results, metric=f"accuracy_by_home_type/{kind}") for kind in kinds},
                          names=["home type", "arm"]) if kinds else pd.DataFrame()
if len(world_by_kind):
    show_table(world_by_kind, title="RL arm - base policy, test accuracy on each home type")

# %% [markdown]
# **Training curves**, one figure per question so that no panel holds more than six arms: the paper's four arms;
# the Dr. GRPO controls (is DRA-Dr. GRPO a step-size change?); the GRPO controls (shuffled weights, the oracle
# partition, the entropy bonus, the policy embedder); and the paper's reward against the 0/1 reward. Each arm
# keeps its colour in every figure.

# %%
curve_figures = {
    "03_training_curves": ["grpo", "dr_grpo", "dra_grpo", "dra_dr_grpo"],
    "03_training_curves_dr_grpo_controls": ["dr_grpo", "dra_dr_grpo", "dra_dr_grpo_meannorm", "dr_grpo_scale"],
    "03_training_curves_grpo_controls": ["grpo", "dra_grpo", "dra_grpo_shuffled", "dra_grpo_oracle", "grpo_entropy",
                                         "dra_grpo_policy_embed"],
    "03_training_curves_paper_reward": ["grpo", "grpo_paper_reward", "dra_grpo_paper_reward"],
}
panels = [("mini/accuracy", "accuracy of the sampled completions"), ("mini/home_share", "share using the home strategy"),
          ("mini/strategy_entropy", "strategy entropy (bits)"), ("groups/zero_variance_share", "groups with equal rewards"),
          ("groups/zero_variance_abs_advantage", "|advantage| in equal-reward groups"), ("groups/abs_advantage", "mean |advantage|")]
curves = experiment.curves_frame(results)
palette = plt.cm.tab20.colors[::2] + plt.cm.tab20.colors[1::2]  # ten distinct colours first, then their light tones
colors = dict(zip(experiment.ARM_LABELS.values(), palette))
with_curves = set(curves.arm)
primary_arms = curve_figures["03_training_curves"]
for name, arms in curve_figures.items():
    name += suffix
    shown = [arm for arm in arms if experiment.ARM_LABELS[arm] in with_curves]
    if len(shown) < 2 or (arms is not primary_arms and set(shown) <= set(primary_arms)):  # nothing to compare yet
        continue
    labels = [experiment.ARM_LABELS[arm] for arm in shown]
    fig, axes = plt.subplots(2, 3, figsize=(16, 8))
    for ax, (metric, title) in zip(axes.flat, panels):
        for arm in labels:
            by_arm = curves[(curves.arm == arm) & (curves.metric == metric)]
            per_step = by_arm.pivot_table(index="step", columns="seed", values="value")
            smooth = per_step.rolling(10, min_periods=1).mean()
            n = per_step.shape[1]
            ax.plot(smooth.index, smooth.mean(axis=1), label=f"{arm} ({seeds_label(n)})", color=colors[arm])
            ax.fill_between(smooth.index, smooth.min(axis=1), smooth.max(axis=1), alpha=0.15, color=colors[arm])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Training curves, mean over seeds, band = min-max over seeds ({data_profile} profile, grid {grid}; "
                 "10-step rolling mean)")
    fig.tight_layout()
    save_figure(fig, name, profile)
    plt.show()

# %% [markdown]
# ## The pre-registered claims
#
# Paired by seed (same base policy, seed, data order and sampling seed): the arm minus its baseline with a 95%
# t-interval over seeds and a paired t-test; the two primary pass@1 comparisons are Holm-adjusted. The verdict
# follows the pre-registered rule, whichever way it falls.

# %%
claims = experiment.claims_table(results)
if len(results):
    save_table(claims.set_index(["claim", "comparison"]), f"03_claims_{profile}{suffix}", profile)
    show_table(claims[["claim", "comparison", "metric", "mean", "low", "high", "seeds", "p_value", "p_holm", "verdict"]],
               digits=4, index=False, title="Pre-registered claims (paired by seed)")

# %% [markdown]
# **The power rule** (pre-registered): at 8 seeds, the SD of each primary comparison's paired pass@1 differences
# decides how many seeds detect a 2-point difference with 80% power at alpha 0.025; both arms are extended to that
# many (at least 8, at most 20), then the grid stops. It reads the variance only, never the effect, and only seeds
# 0-7, so the seeds it adds never change it. Until they land, `missing` (above) lists them and the claims of that
# comparison stay interim (`python -m dra.experiment --grid long --missing` prints the commands that run them).

# %%
power = experiment.power_rule(results)
if len(results):
    show_table(power, digits=4, index=False, title="Power rule per primary comparison")

# %% [markdown]
# **Secondary endpoints** (pre-registered, exploratory): for each comparison in the claims, the paired difference
# of every secondary readout, accuracy per home type included, with its 95% t-interval over seeds. No verdict, no
# multiplicity correction; pass@k for every k is the figure below.

# %%
secondary = experiment.secondary_table(results)
if len(secondary):
    save_table(secondary.set_index(["comparison", "metric"]), f"03_secondary_{profile}{suffix}", profile)
    cells = secondary.assign(cell=[f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in
                                   zip(secondary["mean"], secondary["low"], secondary["high"])])
    show_table(cells.pivot(index="metric", columns="comparison", values="cell").reindex(index=secondary.metric.unique(),
                                                                                        columns=secondary.comparison.unique()),
               title="Secondary endpoints: paired difference [95% t-interval over seeds]")

# %% [markdown]
# **Exploratory, outside the pre-registered claims** (`experiment.EXPLORATORY_PAIRS`): the arms the
# pre-registration runs without a verdict rule. The oracle strategy partition (DRA with perfect embeddings)
# against DRA-GRPO and GRPO; the entropy bonus against GRPO; DRA-GRPO with the policy's own hidden states as the
# embedder (`dra_embedder: policy`, no second model) against DRA-GRPO with MiniLM; and the paper's reward
# (1 x format + 2 x cosine, secondary), DRA-GRPO against GRPO both with it, and GRPO with it against GRPO with
# the 0/1 reward. Paired by seed on the seeds both arms have; descriptive intervals only: no verdict, no
# multiplicity correction.

# %%
exploratory = experiment.comparison_table(results)
if len(exploratory):
    save_table(exploratory.set_index(["comparison", "metric"]), f"03_exploratory_{profile}{suffix}", profile)
    show_table(exploratory[["comparison", "metric", "mean", "low", "high", "seeds"]], digits=4, index=False,
               title="Exploratory paired differences (95% t-interval over seeds)")
if len(results):
    save_result(f"mini_training_summary{suffix}", {"arms": table.reset_index().to_dict(orient="records"),
                                          "claims": claims.to_dict(orient="records"), "missing": missing,
                                          "world_check": world.reset_index().to_dict(orient="records"),
                                          "world_check_by_kind": world_by_kind.reset_index().to_dict(orient="records"),
                                          "exploratory": exploratory.to_dict(orient="records"),
                                          "secondary": secondary.to_dict(orient="records"),
                                          "power_rule": power.astype(object).to_dict(orient="records")}, profile,
                grid=grid, overrides=dict(chosen_grid.overrides))

# %%
# the claims' comparisons (the paper's two, then the controls'), then the oracle, the entropy bonus, the paper
# reward: those whose two arms are in the grid
comparisons = [(arm, base) for arm, base in [*experiment.CLAIM_PAIRS, ("dra_grpo_oracle", "grpo"), ("grpo_entropy", "grpo"),
                                             ("dra_grpo_paper_reward", "grpo_paper_reward")]
               if {arm, base} <= set(grid_arms)]
fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharey=True)
for ax in axes.flat[len(comparisons):]:
    ax.axis("off")
for ax, (arm, base) in zip(axes.flat, comparisons):
    curve = experiment.pass_at_k_curve(results, arm, base)
    ax.axhline(0, color="gray", lw=0.8)
    if curve["mean"].isna().all():
        ax.text(0.5, 0.5, "no paired runs yet", transform=ax.transAxes, ha="center", color="gray")
    ax.plot(curve.index, curve["mean"], marker="o", ms=3)
    ax.fill_between(curve.index, curve["low"], curve["high"], alpha=0.25)
    n = curve["seeds"].max()
    ax.set_title(f"{experiment.comparison_label(arm, base)} ({seeds_label(n)})", fontsize=9)
    ax.set_xlabel("k")
    ax.set_xlim(1, 16)
for ax in axes[:, 0]:
    ax.set_ylabel("pass@k difference (95% CI over seeds)")
fig.tight_layout()
save_figure(fig, f"03_pass_at_k_differences{suffix}", profile)
plt.show()

# %% [markdown]
# **Per kind and per strategy** (descriptive, mean over seeds): accuracy on each home type's problems, and the share
# of test samples using each strategy: whether a rare strategy survives RL (plus-five, about a tenth of the base
# policy's samples), which is the collapse DRA is meant to prevent.

# %%
home_types = experiment.breakdown_table(results, "accuracy_by_home_type")
if len(home_types):
    save_table(home_types, f"03_accuracy_by_home_type_{profile}{suffix}", profile)
    show_table(home_types, title="Test accuracy by home type (mean over seeds)")
shares = experiment.breakdown_table(results, "strategy_shares")  # does a rare strategy (plus-five) survive RL?
if len(shares):
    save_table(shares, f"03_strategy_shares_{profile}{suffix}", profile)
    show_table(shares, title="Share of test samples using each strategy (mean over seeds)")

# %% [markdown]
# ## Overhead: seconds per step with and without DRA
#
# The paper reports about 84 s/step without DRA and 90 s/step with it (+7%) on 4 × A100. Here: the same arm
# with and without DRA, each embedder, trained back to back in this process from the same base policy and seed
# (first step excluded as warm-up). It measures the main grid's recipes; a grid with other overrides skips it.

# %%
if profile != "paper" and grid == profiles.MAIN_GRID:
    overhead = experiment.overhead_benchmark(profile, steps=benchmark_steps)
    save_result("dra_overhead", overhead.reset_index().to_dict(orient="records"), profile)
    save_table(overhead, f"03_overhead_{profile}", profile)
    show_table(overhead, title="Seconds per step with and without DRA")
    print(f"paper: 90/84 = {90 / 84:.3f}")
