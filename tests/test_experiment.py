"""The experiment's statistics against hand-computed values, and table export."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dra import experiment
from dra.reports import save_result, save_table


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


def test_smoke_outputs_go_to_an_ignored_subfolder_committed_profiles_to_the_top(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_FIGURES_DIR", str(tmp_path))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    frame = pd.DataFrame({"pass@1": [0.5]}, index=["GRPO"])
    assert save_table(frame, "t", "smoke")[0] == tmp_path / "smoke" / "t.md"
    assert save_table(frame, "t", "mini")[0] == tmp_path / "t.md"
    assert save_result("r", {"x": 1}, "smoke") == tmp_path / "data" / "smoke" / "r_smoke.json"
    with pytest.raises(TypeError, match="profile"):
        save_table(frame, "t", None)


def test_save_table_writes_markdown_and_latex(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_FIGURES_DIR", str(tmp_path))
    md, tex = save_table(pd.DataFrame({"pass@1": [0.41234]}, index=["GRPO"]), "t", "mini")
    assert "0.412" in md.read_text() and "|" in md.read_text()
    assert "\\begin{tabular}" in tex.read_text() and "0.412" in tex.read_text()


def test_holm_against_hand_computed_values():
    # p sorted: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04) -> monotone step-down
    assert experiment.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert experiment.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="p_values"):
        experiment.holm([0.1, 95])


def test_seeds_for_power_matches_a_simulation():
    sd, effect = 0.03, 0.02
    n = experiment.seeds_for_power(sd, effect, alpha=0.025, power=0.8)
    rng = np.random.default_rng(0)
    def power(k):
        diffs = rng.normal(effect, sd, size=(4000, k))
        return np.mean(stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.025)
    assert power(n) >= 0.78 and power(n - 1) < 0.81
    with pytest.raises(ValueError):
        experiment.seeds_for_power(0.0)


def test_paired_test_is_scipys_paired_t_test():
    result = experiment.paired_test(fake_results(), "dra_grpo", "grpo", "pass@1")
    expected = stats.ttest_rel([0.45, 0.44, 0.47], [0.40, 0.42, 0.38])
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["sd"] == pytest.approx(np.std([0.05, 0.02, 0.09], ddof=1))


@pytest.mark.slow
def test_a_changed_recipe_is_retrained_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    first = experiment.train_run("smoke", "grpo", 0, {"max_steps": 1})
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert experiment.train_run("smoke", "grpo", 0, {"max_steps": 1}) == first  # same config: reused
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    changed = experiment.train_run("smoke", "grpo", 0, {"max_steps": 1, "learning_rate": 3e-5})
    assert changed != first and (changed / "training_done.json").exists()
    # A finished folder whose marker names another configuration is not trusted.
    (first / "training_done.json").write_text('{"key": "something-else"}')
    again = experiment.train_run("smoke", "grpo", 0, {"max_steps": 1})
    assert again == first and (first / "model.safetensors").stat().st_mtime_ns != stamp
    result = experiment.run_arm("smoke", "grpo", 0, eval_prompts=4, overrides={"max_steps": 1})
    assert result["evaluation"]["problems"] == 4 and result["recipe"]["learning_rate"] == 1e-4
    assert experiment.run_arm("smoke", "grpo", 0, eval_prompts=4, overrides={"max_steps": 1})["key"] == result["key"]


def test_overhead_table_ratios_are_per_round_against_hand_computed_values():
    def steps(name, round_, seconds, embed=None):
        return [{"configuration": name, "round": round_, "step": i + 1, "seconds": s,
                 **({"dra/embed_seconds": embed} if embed is not None else {})} for i, s in enumerate(seconds)]

    records = (steps("GRPO", 0, [1.0, 3.0]) + steps("DRA", 0, [1.5, 3.5], 0.25)
               + steps("DRA", 1, [4.0, 4.0], 0.5) + steps("GRPO", 1, [2.0, 2.0]))  # round 1: a slow machine
    table = experiment.overhead_table(records)
    # round 0: 2.5 / 2.0 = 1.25; round 1: 4.0 / 2.0 = 2.0; step 1: 1.5 / 1.0 and 4.0 / 2.0
    row = table.loc["DRA"]
    assert (row.ratio_to_grpo, row.ratio_min, row.ratio_max) == pytest.approx((1.625, 1.25, 2.0))
    assert (row.first_step_ratio, row.first_step_ratio_min, row.first_step_ratio_max) == pytest.approx((1.75, 1.5, 2.0))
    assert row.seconds_per_step == pytest.approx(3.25) and row.embed_seconds_per_step == pytest.approx(0.375)
    assert row.embedding_share_of_grpo_step == pytest.approx(np.median([0.25 / 2.0, 0.5 / 2.0]))
    assert table.loc["GRPO", "ratio_to_grpo"] == 1.0 and table.loc["GRPO", "embed_seconds_per_step"] == 0.0
    assert (row.rounds, row.steps_timed) == (2, 4)
    extra = np.array([0.5 / 2.0, 2.0 / 2.0])  # extra seconds per step over GRPO's, in GRPO steps
    assert row.overhead == pytest.approx(extra.mean())
    assert row.overhead_ci_half_width == pytest.approx(stats.t.ppf(0.975, 1) * extra.std(ddof=1) / np.sqrt(2))
