"""The experiment's statistics against hand-computed values, and table export."""

import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dra import experiment
from dra.reports import save_result, save_table
from dra.stats import Interval, holm


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


def test_compare_arms_pairs_seeds_and_verdict():
    test = experiment.compare_arms(fake_results(), "dra_grpo", "grpo", "pass@1")
    diffs = np.array([0.05, 0.02, 0.09])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    d = test.difference
    assert (d.estimate, d.low, d.high, d.n) == pytest.approx((diffs.mean(), diffs.mean() - half, diffs.mean() + half, 3))
    assert experiment.verdict(d) == ("higher" if d.low > 0 else "no clear difference")
    nan = float("nan")
    assert experiment.verdict(Interval(0.1, nan, nan, 0.95, "t", 1)) == "too few seeds"
    assert experiment.verdict(Interval(-0.15, -0.2, -0.1, 0.95, "t", 3)) == "lower"
    same = experiment.compare_arms(fake_results(), "dra_grpo", "grpo", "missing_metric")
    assert same.difference.n == 0 and experiment.verdict(same.difference) == "too few seeds"


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


def test_compare_arms_is_scipys_paired_t_test():
    result = experiment.compare_arms(fake_results(), "dra_grpo", "grpo", "pass@1")
    expected = stats.ttest_rel([0.45, 0.44, 0.47], [0.40, 0.42, 0.38])
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.sd == pytest.approx(np.std([0.05, 0.02, 0.09], ddof=1))


def test_comparison_table_pairs_by_seed_and_skips_absent_arms():
    results = fake_results() + [{"arm": "dra_grpo_policy_embed", "seed": s, "evaluation": {"pass@1": v}}
                                for s, v in enumerate([0.46, 0.43])]
    table = experiment.comparison_table(results, [("dra_grpo_policy_embed", "dra_grpo", "pass@1"),
                                                  ("dra_grpo_oracle", "grpo", "pass@1")])
    assert len(table) == 1  # no oracle runs, no row
    row = table.iloc[0]
    assert row["comparison"] == "DRA-GRPO, policy embedder - DRA-GRPO" and row["seeds"] == 2  # seeds 0 and 1 only
    assert row["mean"] == pytest.approx(np.mean([0.46 - 0.45, 0.43 - 0.44]))
    assert row["p_value"] == pytest.approx(stats.ttest_rel([0.46, 0.43], [0.45, 0.44]).pvalue)


def test_secondary_table_pairs_nested_per_type_accuracy_by_seed():
    results = []
    for seed, (g, d) in enumerate([(0.30, 0.50), (0.20, 0.25), (0.40, 0.40)]):
        for arm, value in (("grpo", g), ("dra_grpo", d)):
            results.append({"arm": arm, "seed": seed, "evaluation": {
                "pass@1": value, "accuracy_by_home_type": {"grid": value / 2, "plus_one": 1 - value}}})
    results.append({"arm": "dra_grpo", "seed": 3, "evaluation": {"pass@1": 0.9, "accuracy_by_home_type": {}}})
    table = experiment.secondary_table(results, pairs=[("dra_grpo", "grpo")], metrics_=["pass@1"])
    assert list(table.metric) == ["pass@1", "accuracy_by_home_type/grid", "accuracy_by_home_type/plus_one"]
    assert (table.seeds == 3).all()  # seed 3 has no GRPO run: unpaired, left out
    differences = np.array([0.20, 0.05, 0.0])
    by_metric = table.set_index("metric")["mean"]
    assert by_metric["pass@1"] == pytest.approx(differences.mean())
    assert by_metric["accuracy_by_home_type/grid"] == pytest.approx(differences.mean() / 2)
    assert by_metric["accuracy_by_home_type/plus_one"] == pytest.approx(-differences.mean())
    assert experiment.metric_value({"pass@1": 0.3}, "accuracy_by_home_type/grid") is None


def test_every_compared_arm_is_a_recipe_arm():
    """comparison_table and claims_table skip arms without results, so a misspelt arm would drop rows silently."""
    from dra import recipes
    known = set(recipes.ARMS) | set(recipes.CONTROLS)
    compared = {name for pair in (*experiment.EXPLORATORY_PAIRS, *experiment.CLAIM_PAIRS) for name in pair}
    assert compared <= known, compared - known
    assert compared <= set(experiment.ARM_LABELS)


def test_power_rule_waits_for_8_seeds_then_asks_the_noncentral_t():
    from dra.stats import seeds_for_power
    rng = np.random.default_rng(1)

    def results(n_seeds, noise):
        rows = []
        for seed in range(n_seeds):
            base = 0.3 + rng.normal(0, 0.01)
            rows += [{"arm": "grpo", "seed": seed, "evaluation": {"pass@1": base}},
                     {"arm": "dra_grpo", "seed": seed, "evaluation": {"pass@1": base + rng.normal(0, noise)}}]
        return rows

    early = experiment.power_rule(results(3, 0.01)).iloc[0]
    assert early["seeds"] == 3 and early["action"].startswith("wait")
    noisy = results(8, 0.05)
    row = experiment.power_rule(noisy).iloc[0]
    sd = experiment.compare_arms(noisy, "dra_grpo", "grpo").sd
    assert row["seeds_for_power"] == seeds_for_power(sd, 0.02, 0.025, 0.8)
    assert row["seeds_for_power"] > 8 and row["target"] == min(row["seeds_for_power"], 20)
    assert row["action"] == f"extend both arms to {row['target']} seeds"
    quiet = experiment.power_rule(results(8, 0.001)).iloc[0]
    assert quiet["target"] == 8 and quiet["action"] == "stop: enough seeds"
    missing = experiment.power_rule(noisy).iloc[1]  # no Dr. GRPO runs
    assert missing["seeds"] == 0 and pd.isna(missing["seeds_for_power"]) and missing["action"].startswith("wait")


def test_world_check_is_the_arm_minus_the_base_with_a_t_interval_over_seeds():
    results = [{"arm": "base", "seed": 0, "evaluation": {"pass@1": 0.20}}] + [
        {"arm": "grpo", "seed": s, "evaluation": {"pass@1": v}} for s, v in enumerate([0.30, 0.34, 0.29])]
    row = experiment.world_check(results).loc["GRPO"]
    expected = stats.t.interval(0.95, 2, loc=np.mean([0.10, 0.14, 0.09]), scale=stats.sem([0.10, 0.14, 0.09]))
    assert row["mean difference"] == pytest.approx(0.11) and row["seeds"] == 3 and row["base"] == 0.20
    assert (row["low"], row["high"]) == pytest.approx(expected)
    assert "Dr. GRPO" not in experiment.world_check(results).index  # no runs, no row
    assert experiment.world_check(results).index.name == "arm"  # a saved summary's rows say "arm", not "index"
    assert experiment.world_check(results[1:]).empty  # no base evaluation, nothing to compare with
    nested = [{**r, "evaluation": {"accuracy_by_home_type": {"plus_five": r["evaluation"]["pass@1"] / 2}}} for r in results]
    by_kind = experiment.world_check(nested, metric="accuracy_by_home_type/plus_five").loc["GRPO"]
    assert by_kind["base"] == 0.10 and by_kind["mean difference"] == pytest.approx(0.055)  # one kind's accuracy


def test_claims_table_applies_the_preregistered_rule():
    """Both primary comparisons clearly positive over 8 seeds: Holm-adjusted p < 0.05 and verdict "yes"; a
    comparison without results: "too few seeds"; columns as notebook 03 prints them."""
    rng = np.random.default_rng(0)
    results = []
    for arm, shift in (("grpo", 0.0), ("dra_grpo", 0.05), ("dr_grpo", 0.0), ("dra_dr_grpo", 0.04)):
        for seed, noise in enumerate(rng.normal(0, 0.005, 8)):
            results.append({"arm": arm, "seed": seed, "evaluation": {"pass@1": 0.4 + shift + noise}})
    table = experiment.claims_table(results)
    assert list(table.columns) == ["claim", "comparison", "metric", "mean", "low", "high", "seeds", "p_value", "sd",
                                   "p_holm", "verdict"]
    primary = table[table.claim == experiment.PRIMARY_CLAIM]
    p = [experiment.compare_arms(results, a, b).p_value for a, b in (("dra_grpo", "grpo"), ("dra_dr_grpo", "dr_grpo"))]
    assert primary.p_holm.tolist() == pytest.approx(holm(p))
    assert primary.verdict.tolist() == ["yes", "yes"]
    assert set(table[table.claim == "the gain comes from redundancy"].verdict) == {"too few seeds"}
    # Fewer seeds than the pre-registration asks: the same numbers, labelled interim instead of a verdict.
    interim = experiment.claims_table([r for r in results if r["seed"] < 3])
    assert interim[interim.claim == experiment.PRIMARY_CLAIM].verdict.tolist() == ["interim (3 of 8 seeds)"] * 2


@pytest.mark.slow
def test_a_changed_recipe_is_retrained_not_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    one_step = experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1})
    first = experiment.train_run(one_step)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert experiment.train_run(experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1})) == first  # same config: reused
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    changed = experiment.train_run(experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1, "learning_rate": 3e-5}))
    assert changed != first and (changed / "training_done.json").exists()
    # A finished folder whose marker names another configuration is not trusted.
    (first / "training_done.json").write_text('{"key": "something-else"}')
    again = experiment.train_run(one_step)
    assert again == first and (first / "model.safetensors").stat().st_mtime_ns != stamp
    capsys.readouterr()
    result = experiment.run_arm(one_step, eval_prompts=4)
    assert "evaluating GRPO seed 0 on test" in capsys.readouterr().err  # the bar names the run it evaluates
    assert result["evaluation"]["problems"] == 4 and result["recipe"]["learning_rate"] == 1e-4
    assert experiment.run_arm(one_step, eval_prompts=4)["key"] == result["key"]
    assert (tmp_path / "data/mini_training/smoke/grpo_max_steps=1_seed0.json").is_file()  # named by its overrides


def test_grid_runs_are_labelled_with_arm_seed_and_position(monkeypatch):
    labels = []

    def record(run, eval_prompts, split, progress_label):
        labels.append(progress_label)
        return {"arm": run.arm, "seed": run.seed}

    monkeypatch.setattr(experiment, "run_arm", record)
    experiment.run_experiment("smoke", ["grpo", "dra_grpo"], seeds=[0, 1], base=False)
    assert labels == ["GRPO seed 0, run 1/4", "DRA-GRPO seed 0, run 2/4", "GRPO seed 1, run 3/4",
                      "DRA-GRPO seed 1, run 4/4"]


def test_arms_preregistered_on_fewer_seeds_run_and_count_as_missing_only_on_those(monkeypatch, tmp_path):
    """The mini profile runs the paper-reward arms on seeds 0-3 (the pre-registration), every other arm on 0-7:
    the default grid skips the others' extra seeds for them, and `collect` does not list them as missing;
    explicit seeds override both."""
    mini = experiment.profiles.get("mini").mini_experiment()
    assert mini.seeds_of("grpo_paper_reward") == (0, 1, 2, 3) and mini.seeds_of("grpo") == tuple(range(8))
    runs = []
    monkeypatch.setattr(experiment, "run_arm", lambda run, *args, **kwargs: runs.append((run.arm, run.seed)) or {})
    experiment.run_experiment("mini", ["grpo", "grpo_paper_reward"], base=False)
    assert runs == [(arm, seed) for seed in range(8) for arm in ("grpo", "grpo_paper_reward") if arm == "grpo" or seed < 4]
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path))  # no results at all: everything is missing
    _, missing = experiment.collect("mini", ["grpo", "grpo_paper_reward"], train_missing=False)
    assert sorted(missing) == sorted(runs)
    _, missing = experiment.collect("mini", ["grpo_paper_reward"], seeds=[6], train_missing=False)
    assert missing == [("grpo_paper_reward", 6)]


def test_a_grid_runs_and_collects_only_its_own_runs(monkeypatch):
    """The long grid (`profiles` mini, "long"): `collect` with its overrides reads exactly the committed runs
    trained with them (max_steps=960, the results files tagged so), lists the rest of its arms x seeds as
    missing, and never lets a run of another grid in; the main grid never sees the long runs either."""
    from dra.config import PROJECT_ROOT
    from dra.io import read_json
    monkeypatch.setenv("DRA_RESULTS_DIR", str(PROJECT_ROOT / "data"))
    long = experiment.profiles.get("mini").mini_experiment().grid("long")
    assert dict(long.overrides) == {"max_steps": 960} and "grpo_paper_reward" not in long.arms
    results, missing = experiment.collect("mini", long.arms, overrides=long.overrides, train_missing=False)
    folder = experiment.results_file("mini", "x").parent
    tagged = {(read_json(path)["arm"], read_json(path)["seed"]) for path in folder.glob("*_max_steps=960_seed*.json")}
    found = {(r["arm"], r["seed"]) for r in results if r["arm"] != "base"}
    assert tagged and found == tagged  # every long run, and nothing else but the base policy
    assert all(r["recipe"]["max_steps"] == 960 for r in results if r["arm"] != "base")
    assert [r["arm"] for r in results].count("base") == 1
    # the planned runs: each arm's eight seeds, plus the seeds the power rule adds to the primary arms once it has
    # applied (the committed runs of both comparisons reached eight seeds, so it has)
    settings = experiment.profiles.get("mini").mini_experiment()
    extension = experiment.extension_seeds(settings, results)
    assert set(extension) <= set(experiment.PRIMARY_ARMS)
    planned = {(arm, seed) for arm in long.arms for seed in (*range(8), *extension.get(arm, ()))}
    assert set(missing) | found == planned and not set(missing) & found
    main, _ = experiment.collect("mini", train_missing=False)
    assert all(r["recipe"]["max_steps"] == 240 for r in main if r["arm"] != "base")


def test_the_command_line_grid_is_its_overrides_and_arms(monkeypatch, capsys):
    """`--grid long` runs the grid's arms with its overrides (the same keys as `--set max_steps=960`, so the runs
    made before --grid existed are found); --arms and --set refine it; an unknown grid is a usage error."""
    calls = []
    monkeypatch.setattr(experiment, "run_experiment", lambda profile, arms, seeds, **kwargs: calls.append(
        (arms, seeds, kwargs["overrides"])) or [])
    long = experiment.profiles.get("mini").mini_experiment().grid("long")
    experiment.main(["--grid", "long", "--skip-base"])
    experiment.main(["--grid", "long", "--arms", "grpo", "--seeds", "3", "--set", "learning_rate=1e-5"])
    experiment.main(["--arms", "grpo", "--set", "max_steps=960"])
    experiment.main([])
    assert calls == [(list(long.arms), None, {"max_steps": 960}),
                     (["grpo"], [3], {"max_steps": 960, "learning_rate": 1e-5}),
                     (["grpo"], None, {"max_steps": 960}),
                     (list(experiment.PRIMARY_ARMS), None, {})]
    with pytest.raises(SystemExit):
        experiment.main(["--grid", "longer"])
    assert "unknown grid 'longer'; this profile's grids are main, long." in capsys.readouterr().err


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


@pytest.mark.parametrize("grid", ["main", "long"])
def test_the_committed_mini_summary_is_what_the_committed_runs_give(monkeypatch, grid):
    """The numbers README and notebook 03 quote (data/mini_training_summary[_long]_mini.json) are recomputed from
    the committed run files that notebook 03 reads for the grid (`experiment.collect` with the grid's arms and
    overrides: the main grid never sees the long grid's runs, nor the long grid the main's): a summary left
    stale after new runs landed, or edited by hand, fails here."""
    from dra.config import PROJECT_ROOT
    from dra.reports import load_result
    monkeypatch.setenv("DRA_RESULTS_DIR", str(PROJECT_ROOT / "data"))  # make test points it at a temporary folder
    chosen = experiment.profiles.get("mini").mini_experiment().grid(grid)
    runs, _ = experiment.collect("mini", chosen.arms, overrides=chosen.overrides, train_missing=False)
    summary = load_result("mini_training_summary" + experiment.grid_suffix(grid), "mini")["result"]
    columns = ["claim", "comparison", "metric", "mean", "low", "high", "seeds", "p_value", "p_holm", "verdict"]
    recomputed = experiment.claims_table(runs)[columns]
    numbers = ["mean", "low", "high", "p_value", "p_holm"]  # JSON null reads back as None, here NaN again
    committed = pd.DataFrame(summary["claims"])[columns].astype(dict.fromkeys(numbers, float))
    pd.testing.assert_frame_equal(committed, recomputed, check_dtype=False, atol=1e-12)
    arms = pd.DataFrame(summary["arms"]).set_index("arm")
    pd.testing.assert_frame_equal(arms, experiment.arm_table(runs), check_dtype=False, atol=1e-12)


def test_every_committed_mini_run_of_a_seed_started_from_the_same_samples():
    """Before its first update every arm samples the same completions at a given seed (same base policy, prompts
    and sampling seeds; the arms differ only in what they do with them), so the first logged step's statistics of
    the samples are equal, to the last bit, across every committed run of that seed: both grids, every arm, every
    session and machine that made them. A run trained from another base policy (`check_base_policy` now refuses
    one; the results made before it record no CPU) would differ here."""
    from dra.config import PROJECT_ROOT
    from dra.io import read_json

    sample_statistics = ("completions/mean_length", "mini/strategy_entropy", "mini/home_share", "mini/accuracy",
                         "mini/dominant_share")
    first_steps: dict[int, set[tuple]] = {}
    runs = [read_json(path) for path in (PROJECT_ROOT / "data/mini_training/mini").glob("*_seed*.json")]
    for run in (r for r in runs if r["split"] == "test"):
        first = run["curve"][0]
        assert first["step"] == 1
        first_steps.setdefault(run["seed"], set()).add(tuple(first[name] for name in sample_statistics))
    assert len(first_steps) >= 8 and all(len(seen) == 1 for seen in first_steps.values()), first_steps
    assert len({seen.pop() for seen in first_steps.values()}) == len(first_steps)  # and each seed its own samples


def test_breakdown_tables_average_each_entry_over_seeds_and_count_an_unused_strategy_as_zero():
    results = [
        {"arm": "grpo", "seed": 0, "evaluation": {"accuracy_by_home_type": {"plus_one": 0.8, "plus_five": 0.1},
                                                  "strategy_shares": {"plus_one": 0.9, "plus_five": 0.1}}},
        {"arm": "grpo", "seed": 1, "evaluation": {"accuracy_by_home_type": {"plus_one": 0.6, "plus_five": 0.3},
                                                  "strategy_shares": {"plus_one": 0.7, "minus_one": 0.3}}},
        {"arm": "base", "seed": None, "evaluation": {"accuracy_by_home_type": {"plus_one": 0.5, "plus_five": 0.2},
                                                     "strategy_shares": {"plus_one": 0.6, "plus_five": 0.4}}},
    ]
    accuracy = experiment.breakdown_table(results)
    assert accuracy.loc["GRPO"].to_dict() == pytest.approx({"plus_one": 0.7, "plus_five": 0.2})
    shares = experiment.breakdown_table(results, "strategy_shares")
    assert shares.loc["GRPO"].to_dict() == pytest.approx({"plus_one": 0.8, "plus_five": 0.05, "minus_one": 0.15})
    assert list(shares.columns) == ["plus_one", "plus_five", "minus_one"]  # by mean share over the arms
    assert shares.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
    assert experiment.breakdown_table([]).empty


def _primary_results(target_noise: float, quiet_noise: float = 0.0005, seeds: range = range(8)) -> list[dict]:
    """GRPO / DRA-GRPO with paired differences of SD ~`target_noise`, Dr. GRPO / DRA-Dr. GRPO nearly equal."""
    rng = np.random.default_rng(3)
    rows = [{"arm": "base", "seed": None, "evaluation": {"pass@1": 0.25}}]
    for seed in seeds:
        for (arm, baseline), noise in ((("dra_grpo", "grpo"), target_noise), (("dra_dr_grpo", "dr_grpo"), quiet_noise)):
            level = 0.4 + rng.normal(0, 0.01)
            rows += [{"arm": baseline, "seed": seed, "evaluation": {"pass@1": level}},
                     {"arm": arm, "seed": seed, "evaluation": {"pass@1": level + 0.05 + rng.normal(0, noise)}}]
    return rows


def test_power_rule_is_applied_once_on_the_first_8_seeds():
    """The seeds it adds never change its answer: wild seeds 8+ leave the SD and target of seeds 0-7."""
    first = _primary_results(0.03)
    target = experiment.power_rule(first).iloc[0]["target"]
    assert target > 8 and experiment.power_rule(first).iloc[0]["action"] == f"extend both arms to {target} seeds"
    wild = [{**r, "seed": r["seed"] + 8, "evaluation": {"pass@1": r["evaluation"]["pass@1"] * (1 + r["seed"])}}
            for r in _primary_results(0.03, seeds=range(target - 8)) if r["arm"] != "base"]
    row = experiment.power_rule(first + wild).iloc[0]
    assert row["sd"] == pytest.approx(experiment.power_rule(first).iloc[0]["sd"]) and row["target"] == target
    assert row["seeds"] == target and row["action"] == "stop: enough seeds"


def test_claims_wait_for_the_seeds_the_power_rule_adds():
    """An extended comparison's claims stay interim until its target; the primary claim of the comparison that
    is complete waits too, because Holm's adjustment reads both p-values; its other claims get their verdict."""
    results = _primary_results(0.03)
    target = int(experiment.power_rule(results).iloc[0]["target"])
    table = experiment.claims_table(results).set_index(["claim", "comparison", "metric"])["verdict"]
    assert table["DRA raises pass@1", "DRA-GRPO - GRPO", "pass@1"] == f"interim (8 of {target} seeds)"
    assert table["DRA raises pass@1", "DRA-Dr. GRPO - Dr. GRPO", "pass@1"].startswith("interim (Holm")
    extended = results + [r for r in _primary_results(0.03, seeds=range(8, target)) if r["arm"] in ("grpo", "dra_grpo")]
    final = experiment.claims_table(extended).set_index(["claim", "comparison"])
    assert final.loc[("DRA raises pass@1", "DRA-GRPO - GRPO"), "seeds"] == target
    assert set(final.loc["DRA raises pass@1", "verdict"]) <= {"yes", "no", "not shown"}


def test_collect_asks_for_the_power_rules_seeds_in_the_preregistered_order(monkeypatch):
    results = _primary_results(0.03) + [{"arm": "grpo", "seed": 9, "evaluation": {"pass@1": 0.4}},
                                        {"arm": "grpo", "seed": 30, "evaluation": {"pass@1": 0.4}}]
    monkeypatch.setattr(experiment, "load_results", lambda profile: [{**r, "key": "k"} for r in results])
    monkeypatch.setattr(experiment, "result_key", lambda *args: "k")  # every file current
    target = int(experiment.power_rule(results).iloc[0]["target"])
    found, missing = experiment.collect("mini", arms=experiment.PRIMARY_ARMS, train_missing=False)
    assert missing == [(arm, seed) for seed in range(8, target) for arm in ("grpo", "dra_grpo") if (arm, seed) != ("grpo", 9)]
    assert {(r["arm"], r["seed"]) for r in found} == {(r["arm"], r["seed"]) for r in results} - {("grpo", 30)}
    chosen, none_missing = experiment.collect("mini", arms=["grpo"], seeds=[0], train_missing=False)
    assert sorted(r["arm"] for r in chosen) == ["base", "grpo"] and none_missing == []
    assert experiment.run_order([("grpo_entropy", 0), ("dr_grpo_scale", 1), ("dra_grpo", 2), ("grpo", 2), ("dr_grpo_scale", 0)]) == [
        ("grpo", 2), ("dra_grpo", 2), ("dr_grpo_scale", 0), ("dr_grpo_scale", 1), ("grpo_entropy", 0)]


def test_missing_prints_one_command_per_run_left(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path))
    experiment.main(["--profile", "smoke", "--grid", "long", "--arms", "grpo", "dra_grpo", "--missing"])
    lines = capsys.readouterr().out.splitlines()
    seeds = experiment.profiles.get("smoke").mini_experiment().seeds
    assert len(lines) == 2 * len(seeds)  # nothing trained, nothing run
    assert lines[0] == f"python -m dra.experiment --profile smoke --grid long --arms grpo --seeds {seeds[0]}"  # + base
    assert all(line.endswith(" --skip-base") for line in lines[1:])
    experiment.main(["--profile", "smoke", "--arms", "grpo", "--set", "learning_rate=1e-5", "max_steps=2", "--missing"])
    assert capsys.readouterr().out == ("python -m dra.experiment --profile smoke --set learning_rate=1e-5 max_steps=2 "
                                       "--arms grpo --seeds 0\n")
    with pytest.raises(SystemExit):
        experiment.main(["--profile", "smoke", "--split", "validation", "--missing"])
    assert "leave out --split" in capsys.readouterr().err


def test_a_grid_run_without_seeds_goes_on_to_the_seeds_the_power_rule_adds(monkeypatch):
    """`python -m dra.experiment` without --seeds trains seeds 0-7, applies the rule to every current results file,
    then trains the seeds it added; nothing else, and nothing twice."""
    rng = np.random.default_rng(5)
    noise = {seed: rng.normal(0, 0.03) for seed in range(20)}
    store, trained = [], []

    def fake_run_arm(run, eval_prompts, split, label):
        trained.append((run.arm, run.seed))
        value = 0.4 + (0.05 + noise[run.seed] if run.arm == "dra_grpo" else 0.0)
        store.append({"arm": run.arm, "seed": run.seed, "key": "k", "evaluation": {"pass@1": value}})
        return store[-1]

    monkeypatch.setattr(experiment, "run_arm", fake_run_arm)
    monkeypatch.setattr(experiment, "load_results", lambda profile: store)
    monkeypatch.setattr(experiment, "result_key", lambda *args: "k")
    experiment.run_experiment("mini", ["grpo", "dra_grpo"], base=False)
    target = int(experiment.power_rule(store).iloc[0]["target"])
    assert target > 8
    assert trained == [(arm, seed) for seed in range(target) for arm in ("grpo", "dra_grpo")]
    trained.clear()
    experiment.run_experiment("mini", ["grpo"], seeds=[0], base=False)  # seeds given: those only
    assert trained == [("grpo", 0)]


@pytest.mark.slow
def test_workers_fill_what_is_missing_in_parallel_processes_and_name_the_log_of_a_failed_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path))
    real_sleep = experiment.time.sleep
    monkeypatch.setattr(experiment.time, "sleep", lambda seconds: real_sleep(min(seconds, 0.5)))  # poll faster
    held = experiment.Run.of("smoke", "dra_grpo", 0)
    holding, release = threading.Event(), threading.Event()

    def another_process():  # holds DRA-GRPO seed 0, as another terminal would, until the workers have seen it
        with experiment._exclusive(held):
            holding.set()
            release.wait(120)

    def noticing(run):
        busy = in_use(run)
        if busy:
            release.set()
        return busy

    in_use = experiment._in_use
    monkeypatch.setattr(experiment, "_in_use", noticing)
    thread = threading.Thread(target=another_process)
    thread.start()
    holding.wait()
    experiment.main(["--profile", "smoke", "--arms", "grpo", "dra_grpo", "--workers", "2"])
    thread.join()
    shown = capsys.readouterr().out
    assert "DRA-GRPO seed 0: another process is running it; waiting for it" in shown
    assert shown.count(": started") == 2 and "GRPO seed 0: done" in shown and "DRA-GRPO seed 0: done" in shown
    assert shown.index("another process") < shown.index("DRA-GRPO seed 0: started")  # left alone while held
    assert experiment.collect("smoke", ["grpo", "dra_grpo"], train_missing=False)[1] == []
    for arm in ("grpo", "dra_grpo"):
        assert "run 1/1" in (experiment.Run.of("smoke", arm, 0).directory / "worker.log").read_text()
    experiment.main(["--profile", "smoke", "--arms", "grpo", "dra_grpo", "--workers", "2"])
    assert "started" not in capsys.readouterr().out  # nothing left to do
    with pytest.raises(SystemExit, match=r"1 run\(s\) failed; read .*worker\.log") as failure:
        experiment.main(["--profile", "smoke", "--arms", "grpo", "--set", "unknown_setting=1", "--workers", "2"])
    log = Path(str(failure.value).split("read ")[1].rstrip("."))
    assert "unknown_setting" in log.read_text()  # the child's own error, kept for the user


def test_a_run_another_process_holds_is_refused_not_trained_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path))
    run = experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1, "learning_rate": 2e-5})
    with experiment._exclusive(run):  # as a second process would hold it: a separate open file, its own lock
        with pytest.raises(RuntimeError, match=r"GRPO seed 0 is being trained or evaluated by another process"):
            experiment.run_arm(run, eval_prompts=4)
    assert not (run.directory / "metrics.jsonl").exists()  # refused before training started


def test_runs_and_the_base_are_trained_and_evaluated_on_one_thread_whatever_the_process_has(tmp_path, monkeypatch):
    """The thread count changes a CPU run's numbers (dra.threads); every result is made on RESULT_THREADS."""
    import torch

    from dra.threads import RESULT_THREADS

    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    seen = []

    def note(what, value):
        seen.append((what, torch.get_num_threads()))
        return value

    monkeypatch.setattr(experiment, "train_run", lambda run, label=None: note("train", run.directory))
    monkeypatch.setattr(experiment, "_evaluate_model", lambda *args: note("evaluate", {"problems": 4}))
    monkeypatch.setattr(experiment, "training_curve", lambda run_dir: [])
    monkeypatch.setattr(experiment.policy, "base_policy", lambda config: note("base policy", tmp_path))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run = experiment.run_arm(experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1}), eval_prompts=4)
        base = experiment.run_base("smoke", eval_prompts=4)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    # base_policy pins its own SFT (tests/test_policy.py); here it is patched, so it saw the caller's count.
    # run_arm first asks for the base policy (check_base_policy: no stored base evaluation yet, nothing to match)
    assert seen == [("base policy", RESULT_THREADS), ("train", RESULT_THREADS), ("evaluate", RESULT_THREADS),
                    ("base policy", 2), ("evaluate", RESULT_THREADS)]
    assert run["hardware"]["torch_threads"] == base["hardware"]["torch_threads"] == RESULT_THREADS
    assert base["hardware"]["cpu"] and base["hardware"]["torch_cpu_capability"]  # the CPU changes the numbers too
    assert base["hardware"]["native_bf16"] in (True, False, None)


def test_a_run_refuses_a_base_policy_that_does_not_reproduce_the_stored_base_evaluation(tmp_path, monkeypatch):
    """A fresh checkout retrains the base policy (runs/ is not committed), and another CPU can make another model
    under the same key: runs trained from it must not join the stored ones. The policy that made the stored base
    evaluation passes the check; once one stored number differs, training is refused before it starts, with the
    number of differing metrics and both machines named."""
    from dra.io import read_json, write_json

    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    settings = experiment.profiles.get("smoke").mini_experiment()
    stored = experiment.run_base("smoke", settings.eval_prompts)
    experiment.check_base_policy("smoke")  # the same model, evaluated again from its cached file: every number equal
    path = experiment.results_file("smoke", "base")
    tampered = read_json(path)
    tampered["evaluation"]["pass@1"] += 0.01  # as a base policy trained on another machine would differ
    tampered["hardware"] = {**stored["hardware"], "cpu": "Some Other CPU", "torch_cpu_capability": "AVX512"}
    write_json(path, tampered)
    run = experiment.Run.of("smoke", "grpo", 0, {"max_steps": 1})
    with pytest.raises(experiment.BasePolicyMismatch,
                       match=r"1 of \d+ numbers of its test evaluation differ(.|\n)*Some Other CPU, AVX512"):
        experiment.run_arm(run, eval_prompts=4)
    assert not (run.directory / "metrics.jsonl").exists()  # refused before training started
