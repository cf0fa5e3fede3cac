"""dra.evaluate: bad settings, items, names and results files raise clearly; outcomes do not depend on chunking."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from adversarial import Raises, case, check
from dra import evaluate, profiles, tasks
from dra.profiles import EvalSettings
from dra.io import BadFileError

ITEMS = [{"id": "p1", "prompt": "What is 2 + 2?", "answer": "4"}, {"id": "p2", "prompt": "1 + 1?", "answer": 2}]
SMOKE = profiles.get("smoke").evaluation


def run(**overrides):
    """evaluate() on a model that does not exist: every refusal must come before anything is loaded."""
    arguments = {"model": "/nonexistent/model", "items": ITEMS, "benchmark": "toy", "profile": "smoke",
                 "settings": SMOKE, "path": None, **overrides}
    return lambda: evaluate.evaluate(**arguments)


CASES = [
    case("n_samples-zero", lambda: EvalSettings(n_samples=0), Raises(ValueError, "n_samples")),
    case("n_samples-float", lambda: EvalSettings(n_samples=2.5), Raises(TypeError, "n_samples")),
    case("n_samples-bool", lambda: EvalSettings(n_samples=True), Raises(TypeError, "n_samples")),
    case("temperature-negative", lambda: EvalSettings(temperature=-0.1), Raises(ValueError, "temperature")),
    case("temperature-nan", lambda: EvalSettings(temperature=float("nan")), Raises(ValueError, "temperature")),
    case("top_p-zero", lambda: EvalSettings(top_p=0.0), Raises(ValueError, "top_p")),
    case("top_p-95", lambda: EvalSettings(top_p=95), Raises(ValueError, "top_p")),
    case("max_new_tokens-zero", lambda: EvalSettings(max_new_tokens=0), Raises(ValueError, "max_new_tokens")),
    case("seed-negative", lambda: EvalSettings(seed=-1), Raises(ValueError, "seed")),
    case("backend-unknown", lambda: EvalSettings(backend="tpu"), Raises(ValueError, "backend")),
    case("batch_size-zero", lambda: EvalSettings(batch_size=0), Raises(ValueError, "batch_size")),
    case("ci-level-95", lambda: evaluate.pass_at_1_interval([[1, 0], [1, 1]], level=95), Raises(ValueError, "level")),
    case("ci-level-1", lambda: evaluate.pass_at_1_interval([[1, 0], [1, 1]], level=1.0), Raises(ValueError, "level")),
    case("ci-level-nan", lambda: evaluate.pass_at_1_interval([[1, 0], [1, 1]], level=float("nan")),
         Raises(ValueError, "level")),
    case("ci-resamples-zero", lambda: evaluate.pass_at_1_interval([[1, 0], [1, 1]], n_resamples=0), Raises(ValueError, "n_resamples")),
    case("ci-seed-float", lambda: evaluate.pass_at_1_interval([[1, 0], [1, 1]], seed=0.5), Raises(TypeError, "seed")),
    case("ci-outcome-2", lambda: evaluate.pass_at_1_interval([[2, 0], [1, 1]]), Raises(ValueError, "0/1")),
    case("ci-outcome-nan", lambda: evaluate.pass_at_1_interval([[np.nan, 0], [1, 1]]), Raises(ValueError, "0/1")),
    case("ci-one-per-problem", lambda: evaluate.pass_at_1_interval([True, False, True, True]).estimate, 0.75),
    case("ci-one-problem", lambda: evaluate.pass_at_1_interval([[1, 0]]), Raises(ValueError, "at least 2 problems")),
    case("summary-k-zero", lambda: evaluate.pass_at_k_summary([[1, 0], [1, 1]], ks=[0]), Raises(ValueError, "k in ks")),
    case("summary-k-float", lambda: evaluate.pass_at_k_summary([[1, 0], [1, 1]], ks=[2.5]), Raises(TypeError, "k in ks")),
    case("summary-ks-str", lambda: evaluate.pass_at_k_summary([[1, 0], [1, 1]], ks="12"), Raises(TypeError, "ks")),
    case("summary-outcome-str", lambda: evaluate.pass_at_k_summary([["a", "b"], ["c", "d"]]), Raises(TypeError, "0/1")),
    case("summary-k-above-n-left-out", lambda: sorted(evaluate.pass_at_k_summary([[1, 0], [1, 1]], ks=(2, 4))),
         ["pass@1", "pass@1_ci_high", "pass@1_ci_low", "pass@2", "problems", "samples"]),
    case("path-benchmark-escape", lambda: evaluate.results_path("m", "../../evil", "smoke"), Raises(ValueError, "benchmark")),
    case("path-profile-slash", lambda: evaluate.results_path("m", "aime24", "a/b"), Raises(ValueError, "profile")),
    case("path-label-dots", lambda: evaluate.results_path("..", "aime24", "smoke"), Raises(ValueError, "model_label")),
    case("path-label-hub", lambda: evaluate.results_path("SpiceRL/DRA-GRPO", "aime24", "paper").parent.name,
         "SpiceRL_DRA-GRPO"),
    case("path-label-escape", lambda: evaluate.results_path("../../x", "aime24", "paper").parent.parent.name, "evals"),
    case("items-str", run(items="p1"), Raises(TypeError, "items")),
    case("item-not-dict", run(items=["p1"]), Raises(ValueError, r"items\[0\] needs")),
    case("item-no-answer", run(items=[{"id": 1, "prompt": "x"}]), Raises(ValueError, r"items\[0\].*'answer'")),
    case("item-answer-None", run(items=[{"id": 1, "prompt": "x", "answer": None}]), Raises(TypeError, r"items\[0\]\['answer'\]")),
    case("item-id-bool", run(items=[{"id": True, "prompt": "x", "answer": "1"}]), Raises(ValueError, r"\['id'\]")),
    case("item-id-empty", run(items=[{"id": "", "prompt": "x", "answer": "1"}]), Raises(ValueError, r"\['id'\]")),
    case("items-duplicate-ids", run(items=[ITEMS[0], {**ITEMS[1], "id": "p1"}]), Raises(ValueError, "'p1' occurs 2 times")),
    case("items-id-int-vs-str", run(items=[{**ITEMS[0], "id": 1}, {**ITEMS[1], "id": "1"}]), Raises(ValueError, "unique")),
    case("chunk_size-zero", run(chunk_size=0), Raises(ValueError, "chunk_size")),
    case("chunk_size-float", run(chunk_size=2.0), Raises(TypeError, "chunk_size")),
    case("settings-dict", run(settings={"n_samples": 2}), Raises(TypeError, "settings must be an EvalSettings")),
    case("annotate-int", run(annotate=3), Raises(TypeError, "annotate")),
    case("loaded-model-no-label", run(model=object()), Raises(TypeError, "model_label")),
    case("label-empty", run(model_label="  "), Raises(ValueError, "model_label")),
    case("benchmark-escape", run(benchmark="../x"), Raises(ValueError, "benchmark")),
    case("profile-escape", run(profile="/etc"), Raises(ValueError, "profile")),
    case("load-field-unknown", lambda: evaluate.load_outcomes("/nonexistent.json", field="nope"), Raises(ValueError, "field")),
    case("load-missing-file", lambda: evaluate.load_outcomes("/nonexistent/eval.json"), Raises(FileNotFoundError, "eval.json")),
    case("benchmark_items-limit-negative", lambda: tasks.MathTask("aime24").evaluation_items(limit=-1), Raises(ValueError, "limit")),
    case("problem_seed-stable", lambda: evaluate.problem_seed(0, "p1") == evaluate.problem_seed(0, "p1")
         != evaluate.problem_seed(1, "p1") != evaluate.problem_seed(0, "p2"), True),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_adversarial_case(call, expected):
    check(call, expected)


def results_file(problems) -> dict:
    return {"identity": {"model": "m"}, "problems": problems}


BAD_RESULTS = [
    ("empty", "", "empty"),
    ("truncated", json.dumps(results_file({"a": {"correct": [True]}}))[:40], "not valid a results file"),
    ("no-problems-key", json.dumps({"identity": {}}), "no 'problems' field"),
    ("problems-list", json.dumps(results_file([1, 2])), "'problems' must map"),
    ("no-problems", json.dumps(results_file({})), "no problems yet"),
    ("ragged", json.dumps(results_file({"a": {"correct": [True, False]}, "b": {"correct": [True]}})), "different numbers"),
    ("not-0-1", json.dumps(results_file({"a": {"correct": [2, 0]}})), "0/1"),
    ("no-labels", json.dumps(results_file({"a": {"correct": [True]}})), "annotate"),
]


@pytest.mark.parametrize("name, text, message", BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_bad_results_files_name_the_file(tmp_path, name, text, message):
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        evaluate.load_outcomes(path, field="label" if name == "no-labels" else "correct")
    assert str(path) in str(error.value)


def test_a_corrupt_partial_file_is_refused_before_sampling(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text('{"identity": {"model": "/nonexist')
    with pytest.raises(BadFileError, match="eval.json"):
        run(path=path)()


def test_a_partial_file_of_the_old_sampler_is_refused(tmp_path):
    path = tmp_path / "eval.json"
    identity = {"model": "/nonexistent/model", "benchmark": "toy", "profile": "smoke",
                "settings": SMOKE.__dict__}  # no "sampling": written by the chunk-seeded evaluator
    path.write_text(json.dumps({"identity": identity, "problems": {}}))
    with pytest.raises(ValueError, match="other settings"):
        run(path=path)()


@pytest.mark.slow
def test_outcomes_do_not_depend_on_chunk_size_batch_size_or_order(smoke_policy_dir, tmp_path):
    smoke_policy = str(smoke_policy_dir)
    items = profiles.get("smoke").mini_policy().task.evaluation_items("test", 7)
    settings = replace(SMOKE, n_samples=3, max_new_tokens=40)
    runs = {
        "chunk 7": ({"chunk_size": 7}, settings, items),
        "chunk 1": ({"chunk_size": 1}, settings, items),
        "chunk 3, batch 6": ({"chunk_size": 3}, replace(settings, batch_size=6), items),
        "reversed, chunk 2": ({"chunk_size": 2}, settings, items[::-1]),
    }
    problems = {}
    for name, (options, run_settings, run_items) in runs.items():
        path = tmp_path / f"{name}.json"
        evaluate.evaluate(smoke_policy, run_items, benchmark="mini", profile="smoke", settings=run_settings,
                          path=path, annotate=len, **options)
        problems[name] = json.loads(path.read_text())["problems"]
    reference = problems["chunk 7"]
    assert len(reference) == 7 and len({json.dumps(p["length"]) for p in reference.values()}) > 1
    for name, outcome in problems.items():
        assert outcome == reference, name
    # Another seed gives other samples.
    other = tmp_path / "seed1.json"
    evaluate.evaluate(smoke_policy, items, benchmark="mini", profile="smoke", settings=replace(settings, seed=1),
                      path=other, annotate=len, chunk_size=7)
    assert json.loads(other.read_text())["problems"] != reference
