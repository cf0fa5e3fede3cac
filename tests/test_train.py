"""The DRA trainer: the reward override (one and two processes), refusals, recipes, resume, smoke training."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trl import GRPOConfig

import dra
from dra import recipes, train
from trainer_fixtures import HashingEmbedder, all_completions, all_rewards_per_func

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = torch.tensor([1.0, 2.0])


def options(**dra_fields) -> train.DRAGRPOConfig:
    return train.DRAGRPOConfig(output_dir="unused", use_cpu=True, bf16=False, **dra_fields)


def single_process(scope: str, device_batch_size: int | None = None) -> torch.Tensor:
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    args = options(dra_scope=scope, dra_device_batch_size=device_batch_size)
    adjusted, _ = train.adjust_reward_rows(all_rewards_per_func(), emb, WEIGHTS, 6, args)
    return adjusted


def test_rows_scale_the_summed_reward_exactly_like_the_kernel():
    rewards = all_rewards_per_func()
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    adjusted, stats = train.adjust_reward_rows(rewards, emb, WEIGHTS, 6, options())
    summed = (rewards * WEIGHTS).sum(1)
    torch.testing.assert_close((adjusted * WEIGHTS).sum(1), dra.adjust_rewards(summed, emb, 6))
    assert stats["dra/reward_after"] == pytest.approx(dra.adjust_rewards(summed, emb, 6).mean().item(), rel=1e-5)
    assert 0 < stats["dra/weight_min"] <= stats["dra/weight_mean"] <= stats["dra/weight_max"] <= 1


def test_adjust_negative_false_keeps_non_positive_sums():
    rewards = all_rewards_per_func()
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    args = options(dra_adjust_negative=False)
    adjusted, _ = train.adjust_reward_rows(rewards, emb, WEIGHTS, 6, args)
    summed = (rewards * WEIGHTS).sum(1)
    keep = summed <= 0
    assert keep.any()
    torch.testing.assert_close(adjusted[keep], rewards[keep])


def _mean_similarity(emb: torch.Tensor, set_size: int) -> float:
    """Mean cosine between distinct members of each consecutive set of `set_size` rows, from the full matrix."""
    units = torch.nn.functional.normalize(emb.double(), dim=-1).view(-1, set_size, emb.shape[1])
    sim = units @ units.transpose(1, 2)
    off = ~torch.eye(set_size, dtype=torch.bool)
    return sim[:, off].mean().item()


@pytest.mark.parametrize("scope, device_batch_size, per_device, set_size", [
    ("group", None, 9, 6),   # the paper's formula: each prompt's 6
    ("device", 9, 3, 9),     # the authors' code with an explicit slice that splits the middle group
    ("device", None, 3, 3),  # the slice defaults to the per-device batch
])
def test_trainer_weights_and_logged_similarity_are_the_kernels(scope, device_batch_size, per_device, set_size):
    rewards = all_rewards_per_func()
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    args = options(dra_scope=scope, dra_device_batch_size=device_batch_size, per_device_train_batch_size=per_device,
                   num_generations=6, generation_batch_size=18)
    assert args.dra_slice_size() == (None if scope == "group" else set_size)
    adjusted, stats = train.adjust_reward_rows(rewards, emb, WEIGHTS, 6, args)
    summed = (rewards * WEIGHTS).sum(1)
    want = dra.adjust_rewards(summed, emb, 6, scope=scope, device_batch_size=args.dra_slice_size())
    torch.testing.assert_close((adjusted * WEIGHTS).sum(1), want)
    assert stats["dra/group_similarity"] == pytest.approx(_mean_similarity(emb, set_size), rel=1e-5)


def test_trainer_and_kernel_refuse_the_same_scopes():
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    summed = (all_rewards_per_func() * WEIGHTS).sum(1)
    args = options(dra_scope="device", dra_device_batch_size=4, per_device_train_batch_size=6, num_generations=6,
                   generation_batch_size=18)
    message = "not divisible by device_batch_size=4"
    with pytest.raises(ValueError, match=message):
        train.adjust_reward_rows(all_rewards_per_func(), emb, WEIGHTS, 6, args)
    with pytest.raises(ValueError, match=message):
        dra.adjust_rewards(summed, emb, 6, scope="device", device_batch_size=4)
    with pytest.raises(ValueError, match="only applies to dra_scope: device"):
        options(dra_scope="group", dra_device_batch_size=4)
    with pytest.raises(ValueError, match="only applies to scope='device'"):
        dra.adjust_rewards(summed, emb, 6, scope="group", device_batch_size=4)


def test_the_trainer_never_builds_the_similarity_matrix_for_the_papers_kernel(monkeypatch):
    """Graph cut with cosines as they are: weights and the logged similarity come from row sums alone."""
    from dra import kernels

    def no_matrix(*_):
        raise AssertionError("the G x G similarity matrix was built")

    monkeypatch.setattr(kernels, "_gram", no_matrix)
    emb = torch.from_numpy(HashingEmbedder().encode(all_completions()))
    _, stats = train.adjust_reward_rows(all_rewards_per_func(), emb, WEIGHTS, 6, options())
    assert stats["dra/group_similarity"] == pytest.approx(_mean_similarity(emb, 6), rel=1e-5)


@pytest.mark.slow
def test_two_processes_with_split_groups_equal_one_process(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(ROOT / "tests/helpers/two_process_rewards.py"), str(out), str(ROOT / "tests")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world"] == 2 and result["local"] == 9  # 9 per rank: the middle group is split
    torch.testing.assert_close(torch.tensor(result["group"]), single_process("group"))
    # The authors' scope: each rank's 9 completions form one similarity slice.
    torch.testing.assert_close(torch.tensor(result["device"]), single_process("device", device_batch_size=9))
    assert not torch.allclose(torch.tensor(result["group"]), torch.tensor(result["device"]))


def test_refuses_normalize_then_sum():
    with pytest.raises(ValueError, match="sum_then_normalize"):
        options(multi_objective_aggregation="normalize_then_sum")
    assert options(dra=False, multi_objective_aggregation="normalize_then_sum").dra is False  # fine without DRA


def test_dra_is_on_by_default_and_a_plain_grpo_config_is_refused():
    assert options().dra is True
    args = GRPOConfig(output_dir="unused", use_cpu=True, bf16=False)
    with pytest.raises(TypeError, match="DRAGRPOConfig"):
        train.DRAGRPOTrainer(model="unused", reward_funcs=[], args=args)
    assert dra.DRAGRPOConfig is train.DRAGRPOConfig and dra.DRAGRPOTrainer is train.DRAGRPOTrainer


def test_an_unexpected_trl_hook_fails_at_import_with_the_supported_versions(monkeypatch):
    monkeypatch.setattr(train.GRPOTrainer, "_calculate_rewards", lambda self, inputs, prompts: None)
    with pytest.raises(ImportError, match=r"trl>=1\.16\.0,<1\.17"):
        train._check_trl_hook()


@pytest.mark.parametrize("method", ["_generate", "_get_per_token_logps_and_entropies"])
def test_each_overridden_trl_method_is_checked(monkeypatch, method):
    monkeypatch.setattr(train.GRPOTrainer, method, lambda self, batch: None)
    with pytest.raises(ImportError, match=rf"GRPOTrainer\.{method}.*defines as \('batch',\)"):
        train._check_trl_hook()
    monkeypatch.delattr(train.GRPOTrainer, method)
    with pytest.raises(ImportError, match="does not have"):
        train._check_trl_hook()


@pytest.mark.parametrize("field, value, message", [("dra_kernel", "dpp", "dra_kernel"), ("dra_scope", "node", "dra_scope"),
                                                   ("dra_negative_similarity", "abs", "one of keep, clip"),
                                                   ("dra_weighting", "inverse", "dra_weighting")])
def test_bad_dra_options_raise(field, value, message):
    with pytest.raises(ValueError, match=message):
        options(**{field: value})


def test_committed_recipes_match_the_table():
    for rel, mapping in recipes.recipe_files().items():
        assert (ROOT / rel).read_text() == recipes.render(mapping), f"{rel} is stale: run python -m dra.recipes"


@pytest.mark.parametrize("arm", list(recipes.ARMS))
def test_paper_recipes_parse_and_pin_the_paper_settings(arm):
    run = train.parse(["--config", str(ROOT / f"recipes/paper/{arm}.yaml"), "--dry_run"])
    recipe, args = run.recipe, run.args
    expected = {"grpo": ("grpo", "group"), "dr_grpo": ("dr_grpo", "none")}[arm.replace("dra_", "")]
    assert (args.loss_type, args.scale_rewards) == expected
    assert args.dra == arm.startswith("dra_")
    assert args.beta == 0.04 and args.temperature == 0.7 and args.learning_rate == 1e-6
    assert args.use_vllm and args.vllm_mode == "server" and args.vllm_importance_sampling_correction is False
    assert args.num_generations == 6 and args.max_completion_length == 3584 and args.max_steps == 500
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert args.reward_weights == [1.0, 2.0] and recipe.reward_funcs == ["format", "cosine"]
    assert recipe.model_name_or_path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" and recipe.task == "open_rs"
    report = train.dry_run_report(run)
    assert report["completions_per_step"] == 48 and report["prompts_per_step"] == 8 and report["prompts_seen"] == 4000
    assert report["memory_gb_per_training_gpu"]["parameters_billion"] == pytest.approx(1.777, abs=0.01)


def test_colocate_recipes_keep_48_completions_per_step():
    run = train.parse(["--config", str(ROOT / "recipes/paper/dra_grpo_colocate.yaml"), "--dry_run"])
    assert run.args.vllm_mode == "colocate"
    assert train.dry_run_report(run)["completions_per_step"] == 48


@pytest.mark.parametrize("arm", ["dra_grpo", "dra_dr_grpo"])
def test_authors_scope_recipes_slice_each_process_micro_batch(arm):
    plain = train.parse(["--config", str(ROOT / f"recipes/paper/{arm}.yaml"), "--dry_run"]).args
    authors = train.parse(["--config", str(ROOT / f"recipes/paper/{arm}_authors_scope.yaml"), "--dry_run"]).args
    assert plain.dra_scope == "group" and plain.dra_slice_size() is None
    # the authors' slice: each process's micro-batch of 4 completions (groups of 6 split and mixed)
    assert authors.dra_scope == "device" and authors.dra_slice_size() == authors.per_device_train_batch_size == 4
    files = recipes.recipe_files()
    plain_recipe, authors_recipe = files[f"recipes/paper/{arm}.yaml"], files[f"recipes/paper/{arm}_authors_scope.yaml"]
    assert {k for k in plain_recipe if plain_recipe[k] != authors_recipe[k]} == {"dra_scope", "output_dir"}


def smoke_run(arm: str, output_dir: Path, *extra: str) -> train.RunConfig:
    return train.parse(["--config", str(ROOT / f"recipes/smoke/{arm}.yaml"), "--output_dir", str(output_dir), *extra])


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["grpo", "dr_grpo", "dra_dr_grpo"])
def test_smoke_training_of_each_arm(arm, tmp_path, capsys):
    out = train.train(smoke_run(arm, tmp_path / arm, "--max_steps", "1"))
    shown = capsys.readouterr()
    label = {"grpo": "GRPO seed 0", "dr_grpo": "Dr. GRPO seed 0", "dra_dr_grpo": "DRA-Dr. GRPO seed 0"}[arm]
    assert f"{label}: 100%" in shown.err  # one bar that names the run, with its loss
    assert "loss=" in shown.err and "{'loss'" not in shown.out + shown.err  # no printed log dicts
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 1 and lines[0]["profile"] == "smoke"
    assert ("dra/weight_mean" in lines[0]) == arm.startswith("dra_")
    assert {"mini/strategy_entropy", "mini/accuracy", "mini/home_share", "raw_reward",
            "raw_rewards/strict_accuracy_reward", "groups/zero_variance_share", "groups/abs_advantage"} <= set(lines[0])
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
def test_dra_grpo_resumes_after_interruption(tmp_path):
    out = tmp_path / "dra_grpo"
    train.train(smoke_run("dra_grpo", out))
    first = (out / "metrics.jsonl").read_text().splitlines()
    # Simulate a run killed after step 1: its later checkpoint and final files never got written.
    shutil.rmtree(out / "checkpoint-2")
    assert train.last_checkpoint(out).endswith("checkpoint-1")
    train.train(smoke_run("dra_grpo", out))
    second = (out / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(l)["step"] for l in second if "loss" in json.loads(l)]
    assert steps == [1, 2]  # step 2 once: the stale line of the first run was dropped
    assert second[0] == first[0]  # step 1 was restored, not recomputed
    # step 2 again, from the restored weights, optimiser and random state: the same numbers, bar the clock
    clock = ("step_time", "dra/embed_seconds")
    again, original = ({k: v for k, v in json.loads(line).items() if k not in clock} for line in (second[1], first[1]))
    assert again == original
    assert json.loads((out / "checkpoint-2/trainer_state.json").read_text())["global_step"] == 2
