"""python -m dra.train: every committed recipe passes a dry run, broken ones fail with one clear message;
metrics.jsonl survives kills and NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from dra import profiles, recipes, train
from dra.io import BadFileError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").glob("[!a]*/*.yaml"))


def dry_run(capsys, *argv: str) -> dict:
    train.main([*argv])
    return json.loads(capsys.readouterr().out)


def refused(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        train.main([*argv])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_every_profile_has_recipes():
    assert {Path(r).parts[1] for r in RECIPES} == {"smoke", "mini", "paper"}
    # every arm at every profile, plus the paper's colocate and authors'-scope variants; nothing else
    assert len(RECIPES) == (sum(len(recipes.arms(p)) for p in profiles.NAMES) + len(recipes.ARMS)
                            + sum(keys["dra"] for keys in recipes.ARMS.values()))
    assert set(RECIPES) == {rel for rel in recipes.recipe_files() if not rel.startswith("recipes/accelerate/")}


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("flag", ["--dry_run", "--dry-run"])
def test_every_committed_recipe_passes_a_dry_run(capsys, monkeypatch, recipe, flag):
    monkeypatch.chdir(ROOT)
    report = dry_run(capsys, "--config", recipe, flag)
    mapping = yaml.safe_load((ROOT / recipe).read_text())
    assert report["completions_per_step"] % mapping["num_generations"] == 0
    assert report["prompts_per_step"] * mapping["num_generations"] == report["completions_per_step"]
    assert report["dra"] == mapping["dra"]
    if recipe.startswith("recipes/paper/"):
        assert report["completions_per_step"] == 48 and report["generation_batch_size"] == 48


def test_dry_run_true_in_the_recipe_counts(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    mapping = {**yaml.safe_load((ROOT / "recipes/paper/dra_grpo.yaml").read_text()), "dry_run": True}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(mapping))
    assert dry_run(capsys, "--config", str(path))["prompts_seen"] == 4000  # bf16 recipe, no GPU: parsed as CPU


def test_hub_names_pass_with_a_note(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    report = dry_run(capsys, "--config", broken(tmp_path, model_name_or_path="gpt2", dra_embedder="owner/embedder"),
                     "--dry_run")
    assert any("gpt2 comes from the Hugging Face Hub" in note for note in report["not_checked_here"])
    assert any("owner/embedder" in note for note in report["not_checked_here"])


@pytest.mark.parametrize("argv, expected", [
    (["--dry_run"], True), (["--dry-run"], True), (["--dry_run", "true"], True), (["--dry-run=yes"], True),
    (["--dry_run", "false"], False), ([], False), (["--dry_run_extra"], False),
])
def test_dry_run_spellings(argv, expected):
    assert train._dry_run_requested(argv, {}) is expected


def broken(tmp_path: Path, base: str = "recipes/paper/dra_grpo.yaml", **changes) -> str:
    mapping = yaml.safe_load((ROOT / base).read_text())
    for key, value in changes.items():
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return str(path)


BROKEN = [
    ("normalize_then_sum", {"multi_objective_aggregation": "normalize_then_sum"}, "undo the DRA weight"),
    ("aggregation-typo", {"multi_objective_aggregation": "sum"}, "multi_objective_aggregation must be one of"),
    ("reward-unknown", {"reward_funcs": ["format", "length"]}, "each of reward_funcs must be one of .*'length'"),
    ("reward-empty", {"reward_funcs": [], "reward_weights": []}, "reward_funcs is empty"),
    ("weights-too-few", {"reward_weights": [1.0]}, "reward_weights has 1 values for 2 reward functions"),
    ("weights-too-many", {"reward_weights": [1.0, 2.0, 3.0]}, "reward_weights has 3 values"),
    ("weights-nan", {"reward_weights": [1.0, math.nan]}, "reward_weights must be finite"),
    ("task-unknown", {"task": "gsm8k"}, "task must be one of mini, open_rs, math_train; got 'gsm8k'"),
    ("profile-unknown", {"profile": "huge"}, "profile must be one of smoke, mini, paper"),
    ("embedder-missing-dir", {"dra_embedder": "/nonexistent/embedder"}, "dra_embedder '/nonexistent/embedder'"),
    ("embedder-typo", {"dra_embedder": "minlm"}, "dra_embedder 'minlm' is neither"),
    ("embedder-remote-code", {"dra_trust_remote_code": False}, "set dra_trust_remote_code: true"),
    ("kernel-unknown", {"dra_kernel": "dpp"}, "dra_kernel must be one of"),
    ("scope-unknown", {"dra_scope": "node"}, "dra_scope must be one of"),
    ("negative-similarity", {"dra_negative_similarity": "abs"}, "dra_negative_similarity must be one of keep, clip"),
    ("loss-unknown", {"loss_type": "ppo"}, "loss_type must be one of"),
    ("scale-unknown", {"scale_rewards": "batchy"}, "scale_rewards must be one of group, batch, none"),
    ("processes-zero", {"num_processes": 0}, "num_processes must be a positive integer"),
    ("max-train-prompts-zero", {"max_train_prompts": 0}, "max_train_prompts must be a positive integer or null"),
    ("device-batch-zero", {"dra_scope": "device", "dra_device_batch_size": 0}, "dra_device_batch_size must be"),
    ("device-batch-group-scope", {"dra_device_batch_size": 4}, "only applies to dra_scope: device"),
    ("device-slices", {"dra_scope": "device", "dra_device_batch_size": 5}, "slices of 5"),
    ("generation-batch", {"num_processes": 5}, "generation_batch_size 48 is not a multiple of the global batch 20"),
    ("groups-split", {"num_processes": 5}, r"80 completions per optimiser step \(on 5 processes\) is not a multiple "
                                          "of num_generations=6"),
    ("groups-split-trl", {"num_generations": 5}, "divisible by num_generations"),
    ("one-generation", {"num_generations": 1}, "at least 2 generations"),
    ("accelerate-missing", {"accelerate_config": "recipes/accelerate/none.yaml"}, "accelerate_config .* does not exist"),
    ("model-missing-dir", {"model_name_or_path": "./no/such/model"}, "model_name_or_path './no/such/model'"),
    ("unknown-key", {"dra_kernal": "graph_cut"}, "dra_kernal"),
    ("two-problems-at-once", {"task": "gsm8k", "reward_weights": [1.0]}, "(?s)task must be.*reward_weights has 1"),
]


@pytest.mark.parametrize("name, changes, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_recipes_fail_the_dry_run_with_a_clear_message(capsys, tmp_path, monkeypatch, name, changes, message):
    monkeypatch.chdir(ROOT)
    err = refused(capsys, "--config", broken(tmp_path, **changes), "--dry_run")
    assert err.startswith("dra.train: error:")
    assert __import__("re").search(message, err), err


def test_a_broken_mini_recipe_fails_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(train, "train", lambda *a: pytest.fail("a bad recipe reached training"))
    err = refused(capsys, "--config", broken(tmp_path, "recipes/mini/dra_grpo.yaml",
                                            multi_objective_aggregation="normalize_then_sum"))
    assert "normalize_then_sum" in err


@pytest.mark.parametrize("content, message", [("- a\n- b\n", "must hold a mapping"), ("a: [1\n", "not valid YAML")])
def test_config_files_that_are_not_recipes(capsys, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert message in refused(capsys, "--config", str(path), "--dry_run")


def test_missing_config_file(capsys, tmp_path):
    assert "no such file" in refused(capsys, "--config", str(tmp_path / "none.yaml"), "--dry_run")


def test_command_line_overrides_are_checked_too(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    err = refused(capsys, "--config", "recipes/paper/grpo.yaml", "--dry-run", "--num_processes", "5")
    assert "generation_batch_size 48 is not a multiple of the global batch 20" in err


# --------------------------------------------------------------------------------------------- metrics.jsonl

def state(step: int, zero: bool = True):
    return SimpleNamespace(is_world_process_zero=zero, global_step=step, epoch=step / 10)


def test_metrics_log_is_strict_json_and_resume_drops_later_steps_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    callback = train.JsonlMetricsCallback(path, extra={"seed": 1})
    for step in (1, 2, 3):
        callback.on_log(None, state(step), None, logs={"loss": float("nan") if step == 2 else 0.5, "kl": math.inf})
    with path.open("a") as handle:
        handle.write('{"step": 4, "loss": 0.')  # killed mid-line
    lines = path.read_text().splitlines()
    assert json.loads(lines[1], parse_constant=lambda c: pytest.fail(f"bare {c}")) == \
        {"step": 2, "epoch": 0.2, "seed": 1, "loss": None, "kl": None}
    with pytest.warns(RuntimeWarning, match="cut short"):
        callback.on_train_begin(None, state(2), None)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    assert path.read_text().splitlines() == lines[:2]  # kept lines unchanged
    callback.on_log(None, state(3), None, logs={"loss": 0.25})
    assert json.loads(path.read_text().splitlines()[-1])["loss"] == 0.25


@pytest.mark.parametrize("content, message", [
    ('{"step": 1}\nnot json\n{"step": 3}\n', "line 2 is not valid JSON"),
    ('{"step": 1}\n[1, 2]\n', "line 2 is not a JSON object"),
    ('{"step": "one"}\n', "non-numeric step"),
])
def test_a_damaged_metrics_log_is_refused_with_its_path(tmp_path, content, message):
    path = tmp_path / "metrics.jsonl"
    path.write_text(content)
    with pytest.raises(BadFileError, match=message) as error:
        train.JsonlMetricsCallback(path).on_train_begin(None, state(5), None)
    assert str(path) in str(error.value)


def test_other_processes_do_not_write(tmp_path):
    path = tmp_path / "metrics.jsonl"
    train.JsonlMetricsCallback(path).on_log(None, state(1, zero=False), None, logs={"loss": 1.0})
    assert not path.exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_mapping_configures_the_run_its_yaml_file_does(monkeypatch, recipe):
    """The experiment builds runs from `dra.recipes.recipe` mappings, the CLI from the YAML files written from
    them: both paths give the same arguments and the same dry-run report."""
    monkeypatch.chdir(ROOT)
    from_file = train.parse(["--config", recipe, "--dry_run"])
    from_mapping = train.run_config({**recipes.recipe_files()[recipe], "dry_run": True}, source=recipe)
    assert from_mapping.recipe == from_file.recipe
    assert from_mapping.args.to_dict() == from_file.args.to_dict()
    assert train.dry_run_report(from_mapping) == train.dry_run_report(from_file)


def test_a_bf16_recipe_mapping_outside_a_dry_run_needs_a_gpu(monkeypatch):
    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="bf16, which needs a GPU"):
        train.run_config(recipes.recipe("paper", "grpo"))
