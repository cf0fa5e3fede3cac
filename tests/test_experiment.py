"""The experiment's statistics against hand-computed values, and table export."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dra import experiment
from dra.reports import save_table


def fake_results():
    rows = []
    for seed, (g, d) in enumerate([(0.40, 0.45), (0.42, 0.44), (0.38, 0.47)]):
        rows.append({"arm": "grpo", "seed": seed, "evaluation": {"pass@1": g, "strategy_entropy": 0.3}})
        rows.append({"arm": "dra_grpo", "seed": seed, "evaluation": {"pass@1": d, "strategy_entropy": 0.3 + seed / 10}})
    rows.append({"arm": "base", "seed": None, "evaluation": {"pass@1": 0.397, "strategy_entropy": 1.0}})
    return rows


def test_arm_table_mean_and_t_interval():
    table = experiment.arm_table(fake_results(), ["pass@1"])
    assert list(table.index) == ["base", "GRPO", "DRA-GRPO"]
    values = np.array([0.45, 0.44, 0.47])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)  # t(0.975, 2) = 4.303
    assert table.loc["DRA-GRPO", "pass@1"] == pytest.approx(values.mean())
    assert table.loc["DRA-GRPO", "pass@1 ±"] == pytest.approx(half)
    assert table.loc["DRA-GRPO", "seeds"] == 3 and math.isnan(table.loc["base", "pass@1 ±"])


def test_paired_difference_and_verdict():
    d = experiment.paired_difference(fake_results(), "dra_grpo", "grpo", "pass@1")
    diffs = np.array([0.05, 0.02, 0.09])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert (d["mean"], d["low"], d["high"], d["seeds"]) == pytest.approx((diffs.mean(), diffs.mean() - half, diffs.mean() + half, 3))
    assert experiment.verdict(d) == ("higher" if d["low"] > 0 else "no clear difference")
    assert experiment.verdict({"seeds": 1, "low": float("nan"), "high": float("nan")}) == "too few seeds"
    assert experiment.verdict({"seeds": 3, "low": -0.2, "high": -0.1}) == "lower"
    same = experiment.paired_difference(fake_results(), "dra_grpo", "grpo", "missing_metric")
    assert same["seeds"] == 0 and experiment.verdict(same) == "too few seeds"


def test_curves_frame_is_long_format():
    results = [{"arm": "grpo", "seed": 0, "curve": [{"step": 1, "raw_reward": 1.5, "mini/accuracy": 0.4}]}]
    frame = experiment.curves_frame(results)
    assert set(frame.metric) == {"raw_reward", "mini/accuracy"} and frame.arm.unique().tolist() == ["GRPO"]


def test_save_table_writes_markdown_and_latex(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_FIGURES_DIR", str(tmp_path))
    md, tex = save_table(pd.DataFrame({"pass@1": [0.41234]}, index=["GRPO"]), "t")
    assert "0.412" in md.read_text() and "|" in md.read_text()
    assert "\\begin{tabular}" in tex.read_text() and "0.412" in tex.read_text()
