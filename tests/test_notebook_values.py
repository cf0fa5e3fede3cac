"""The values each notebook records, checked after running it at the smoke profile (as recommenders' notebook
tests do): papermill runs each notebook once per module into a temporary folder, with results and figures
redirected there (runs/ already is, by tests/conftest.py), and the tests read back what it saved with
`dra.reports.load_result` and assert properties that hold whatever the numbers: shares and p-values in [0, 1],
Wilson intervals that contain their estimate and match an independent recomputation, pass@k non-decreasing in
k, DRA weights in (0, 1], derived ratios equal to a recomputation from the recorded times.

These make nbval's comparison of printed cells (`make test`) redundant for the recorded values; nbval still
checks that every cell of the notebooks as users run them executes."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import papermill
import pytest

from dra import experiment
from dra.config import PROJECT_ROOT
from dra.reports import load_result, provenance_of

pytestmark = pytest.mark.slow
PROFILE = "smoke"
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval
TOL = 1e-9


@pytest.fixture(scope="module")
def run_notebook(tmp_path_factory) -> Iterator[Callable[[str], Path]]:
    """Runs a notebook (by its number, with extra papermill parameters) at the smoke profile once per module and
    returns the results folder.
    Results and figures go to one temporary folder shared by all four, since notebook 04 reads 03's results."""
    base = tmp_path_factory.mktemp("notebooks")
    done: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRA_RESULTS_DIR", str(base / "data"))
        patch.setenv("DRA_FIGURES_DIR", str(base / "figures"))

        def run(number: str, **parameters: Any) -> Path:
            name = "_".join([number, *(f"{k}={v}" for k, v in sorted(parameters.items()))])
            if name not in done:
                source = next((PROJECT_ROOT / "notebooks").glob(f"{number}_*.ipynb"))
                papermill.execute_notebook(str(source), str(base / f"{name}.ipynb"),
                                           parameters={"profile": PROFILE, **parameters},
                                           progress_bar=False, log_output=False)
                done[name] = base
            return done[name]

        yield run


def recorded(run_notebook: Callable[[str], Path], number: str, name: str) -> dict[str, Any]:
    """The results file `name` that notebook `number` saved at the smoke profile, with its provenance checked."""
    base = run_notebook(number)
    saved = load_result(path=base / "data" / PROFILE / f"{name}_{PROFILE}.json")
    made_by = provenance_of(saved)
    assert made_by["profile"] == PROFILE and made_by["created"] and made_by["versions"]["python"]
    return saved


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval, written out here independently of dra.stats."""
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def in_unit(value: float | None) -> bool:
    return value is not None and -TOL <= value <= 1 + TOL


# ------------------------------------------------------------------------------ 01: the inconsistency study

def test_study_shares_and_their_wilson_intervals(run_notebook):
    result = recorded(run_notebook, "01", "study")["result"]
    assert result["rows"] and result["paper_share"] == pytest.approx(0.157)
    for row in result["rows"]:
        assert 0 <= row["n_significant"] <= row["n_defined"] <= row["n_prompts"]
        assert row["share_undefined"] == pytest.approx(1 - row["n_defined"] / row["n_prompts"])
        if row["n_defined"] == 0:
            continue
        assert row["share_significant"] == pytest.approx(row["n_significant"] / row["n_defined"])
        assert row["ci_low"] - TOL <= row["share_significant"] <= row["ci_high"] + TOL
        if row["ci_method"] == "wilson":
            assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson(row["n_significant"], row["n_defined"]),
                                                                     abs=1e-9)


def test_study_effects_and_the_mini_policy_shares(run_notebook):
    result = recorded(run_notebook, "01", "study")["result"]
    assert result["effects"]
    for effect in result["effects"]:
        for test in ("share_permutation", "share_spearman"):
            if effect[test] is None:  # no prompt with a defined correlation (smoke's tiny groups): nothing to share
                assert effect["pooled_n_defined"] == 0 or effect[f"{test}_ci"] is None
                continue
            low, high = effect[f"{test}_ci"]
            assert in_unit(effect[test]) and low - TOL <= effect[test] <= high + TOL
        if effect["pooled_estimate"] is not None and effect["pooled_ci_low"] is not None:
            assert effect["pooled_ci_low"] - TOL <= effect["pooled_estimate"] <= effect["pooled_ci_high"] + TOL
            assert -1 - TOL <= effect["pooled_estimate"] <= 1 + TOL  # a pooled Spearman rho
    shares = result["mini_strategy_shares"]
    assert all(in_unit(v) for v in shares.values()) and sum(shares.values()) == pytest.approx(1.0)
    assert in_unit(result["mini_pass_at_1"])
    for row in result["mini_all_wrong_advantages"]:  # a 0/1 reward gives an all-wrong group no advantage at all
        assert row["completions"] > 0
        if row["reward"] == "accuracy":
            assert row["GRPO advantage"] == 0 and row["DRA-GRPO advantage"] == 0
    counts = result["mini_distinct_correct_groups"]
    assert 0 <= counts["mixed_with_distinct_correct"] <= counts["mixed"] <= counts["groups"]
    by_kind = pd.DataFrame(result["mini_advantage_by_kind"])
    assert by_kind.groupby("stratum")["groups"].first().sum() == counts["groups"]  # every group in one kind
    assert by_kind.groupby("stratum")["mixed"].first().sum() == counts["mixed"]
    assert np.allclose(by_kind.groupby("stratum")["share"].sum(), 1.0)
    assert (by_kind.groupby("stratum")["advantage per group"].sum().abs() < 1e-6).all()  # zero-sum groups


# ------------------------------------------------------------------------------------------- 02: the kernel

def test_kernel_benchmark_ratios_equal_a_recomputation_from_its_times(run_notebook):
    bench = recorded(run_notebook, "02", "kernel_benchmark")["result"]
    assert (bench["n_groups"], bench["group_size"], bench["dim"]) == (512, 6, 384)
    times = {key: value for key, value in bench.items() if key.endswith("_s")}
    assert {"copy_s", "graph_cut_s", "pairwise_loop_s"} <= set(times) and all(t > 0 for t in times.values())
    assert bench["speedup_vs_loop"] == pytest.approx(bench["pairwise_loop_s"] / bench["graph_cut_s"], rel=1e-12)
    assert bench["times_copy_floor"] == pytest.approx(bench["graph_cut_s"] / bench["copy_s"], rel=1e-12)
    kernels = [key[: -len("_vs_graph_cut")] for key in bench if key.endswith("_vs_graph_cut")]
    assert "graph_cut" in kernels and bench["graph_cut_vs_graph_cut"] == pytest.approx(1.0)
    for kernel in kernels:
        assert bench[f"{kernel}_vs_graph_cut"] == pytest.approx(bench[f"{kernel}_s"] / bench["graph_cut_s"], rel=1e-12)


# ------------------------------------------------------------------------------------------ 03: training

def test_training_results_files_record_pass_at_k_and_dra_weights(run_notebook):
    run_notebook("03")
    results = experiment.load_results(PROFILE)
    assert any(r["arm"] == "base" for r in results) and any(r["arm"].startswith("dra") for r in results)
    for r in results:
        assert r["profile"] == PROFILE and r["key"]
        evaluation = r["evaluation"]
        ks = sorted(int(key[len("pass@"):]) for key in evaluation if re.fullmatch(r"pass@\d+", key))
        assert ks[0] == 1 and len(ks) >= 2 and set(ks) <= set(experiment.PASS_AT_K)  # k up to the samples drawn
        curve = [evaluation[f"pass@{k}"] for k in ks]
        assert all(in_unit(v) for v in curve) and np.all(np.diff(curve) >= -TOL), f"{r['arm']}: {curve}"
        assert in_unit(evaluation["home_share"]) and in_unit(evaluation["format_rate"])
        for step in r.get("curve", []):
            if r["arm"].startswith("dra") and "dra/weight_mean" in step:
                assert 0 < step["dra/weight_mean"] <= 1 + TOL


def test_training_summary_claims_and_overhead(run_notebook):
    summary = recorded(run_notebook, "03", "mini_training_summary")["result"]
    for claim in summary["claims"]:
        for key in ("p_value", "p_holm"):
            assert claim[key] is None or in_unit(claim[key])
        if claim["p_value"] is not None and claim["p_holm"] is not None:
            assert claim["p_holm"] >= claim["p_value"] - TOL  # Holm only raises p-values
        if claim["low"] is not None:
            assert claim["low"] - TOL <= claim["mean"] <= claim["high"] + TOL
    # every arm runs at smoke, so every exploratory pair and every claim's comparison has a row
    assert {row["comparison"] for row in summary["exploratory"]} == {
        experiment.comparison_label(arm, baseline) for arm, baseline in experiment.EXPLORATORY_PAIRS}
    secondary = pd.DataFrame(summary["secondary"])
    assert set(secondary.comparison) == {row["comparison"] for row in summary["claims"]}
    assert set(experiment.SECONDARY_METRICS) < set(secondary.metric)
    assert secondary.metric.str.startswith("accuracy_by_home_type/").any()
    defined = secondary.dropna(subset=["low", "high"])
    assert ((defined["low"] - TOL <= defined["mean"]) & (defined["mean"] <= defined["high"] + TOL)).all()
    by_kind = pd.DataFrame(summary["world_check_by_kind"])  # the world check on each home type's problems
    assert set(by_kind["home type"]) == {"plus_one", "plus_five", "minus_one"} and set(by_kind.arm) == {"GRPO", "Dr. GRPO"}
    assert all(in_unit(v) for v in by_kind.base)
    rows = recorded(run_notebook, "03", "dra_overhead")["result"]
    grpo = next(row for row in rows if row["configuration"] == "GRPO")
    for row in rows:
        assert row["seconds_per_step"] > 0
        assert row["ratio_to_grpo"] == pytest.approx(row["seconds_per_step"] / grpo["seconds_per_step"])


def test_the_long_grid_analyses_its_own_runs_and_overwrites_nothing(run_notebook):
    """Notebook 03 with grid=long: its summary records the grid and its overrides, its results are the grid's
    runs (trained with the overrides, its arms only), and the main grid's summary, tables and figures are left
    as they were (every output of the long grid carries its name)."""
    base = run_notebook("03")
    main_path = base / "data" / PROFILE / f"mini_training_summary_{PROFILE}.json"
    figures = base / "figures" / PROFILE
    before = {path.name: path.read_bytes() for path in [main_path, *figures.iterdir()]}
    run_notebook("03", grid="long")
    after = {path.name: path.read_bytes() for path in [main_path, *figures.iterdir()]}
    assert {name: after[name] for name in before} == before
    new = set(after) - set(before)
    assert new and all("_long" in name for name in new)
    saved = recorded(run_notebook, "03", "mini_training_summary_long")
    long = experiment.profiles.get(PROFILE).mini_experiment().grid("long")
    assert saved["grid"] == "long" and saved["overrides"] == dict(long.overrides)
    summary = saved["result"]
    assert {row["arm"] for row in summary["arms"]} == {experiment.ARM_LABELS[a] for a in ("base", *long.arms)}
    assert not summary["missing"]
    in_grid = {experiment.comparison_label(arm, baseline) for arm, baseline in experiment.CLAIM_PAIRS
               if {arm, baseline} <= set(long.arms)}
    assert in_grid and all(row["seeds"] == 0 for row in summary["claims"] if row["comparison"] not in in_grid)
    assert all(row["seeds"] == 1 for row in summary["claims"] if row["comparison"] in in_grid and row["metric"] == "pass@1")


# ------------------------------------------------------------------------------------------ 04: the tables

def test_table1_averages_equal_a_recomputation(run_notebook):
    base = run_notebook("04")
    shown = pd.read_csv(PROJECT_ROOT / "data/paper_table1.csv").set_index("model")
    written = (base / "figures" / PROFILE / "04_table1_paper.md").read_text().splitlines()
    header = [cell.strip() for cell in written[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(header[1:], cells[1:])) for cells in
            ([cell.strip() for cell in line.strip("|").split("|")] for line in written[2:])}
    scores = ["AIME24", "MATH-500", "AMC23", "Minerva", "OlympiadBench"]  # the five benchmarks Avg averages
    assert set(rows) == set(shown.index)
    for model, row in shown.iterrows():
        if row[scores].notna().all():
            assert float(rows[model]["Avg (recomputed)"]) == pytest.approx(round(row[scores].mean(), 2), abs=5e-4)
