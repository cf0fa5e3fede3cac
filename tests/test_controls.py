"""The mini world's controls: weight transforms (dra.kernels.reweight), the step statistics the trainer logs, and
the policy-embedder control arm (its recipe, and a smoke run of it through the experiment's command line)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dra import experiment, recipes
from dra.io import read_json
from dra.kernels import group_advantages, reweight
from dra.train import zero_variance_stats

G = 6


@pytest.fixture
def weights() -> torch.Tensor:
    return torch.rand(5 * G, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.15


def test_raw_is_the_identity(weights):
    assert torch.equal(reweight(weights, G, "raw"), weights)


def test_mean_normalized_groups_have_mean_one_and_keep_their_ratios(weights):
    out = reweight(weights, G, "mean_normalized").view(-1, G)
    grouped = weights.view(-1, G)
    assert torch.allclose(out.mean(dim=1), torch.ones(5))
    assert torch.allclose(out / out[:, :1], grouped / grouped[:, :1])


def test_group_mean_is_constant_within_a_group_and_changes_nothing_under_grpo(weights):
    out = reweight(weights, G, "group_mean").view(-1, G)
    assert torch.allclose(out, weights.view(-1, G).mean(dim=1, keepdim=True).expand(-1, G))
    rewards = torch.tensor([1.0, 0, 0, 1, 1, 0] * 5)
    plain = group_advantages(rewards, G, "group")
    scaled = group_advantages(rewards * out.reshape(-1), G, "group")
    # std normalisation removes a per-group constant factor, up to TRL's 1e-4 in the denominator
    assert torch.allclose(plain, scaled, atol=2e-3)
    # ... but under Dr. GRPO (no std) it scales every advantage by the group's mean weight
    dr = group_advantages(rewards * out.reshape(-1), G, "none").view(-1, G)
    assert torch.allclose(dr, group_advantages(rewards, G, "none").view(-1, G) * out[:, :1])


def test_shuffled_permutes_within_each_group_reproducibly(weights):
    first = reweight(weights, G, "shuffled", torch.Generator().manual_seed(3)).view(-1, G)
    again = reweight(weights, G, "shuffled", torch.Generator().manual_seed(3)).view(-1, G)
    assert torch.equal(first, again)
    grouped = weights.view(-1, G)
    for out_row, in_row in zip(first, grouped):
        assert torch.equal(out_row.sort().values, in_row.sort().values)
    assert not torch.equal(first, grouped)


def test_numpy_in_numpy_out_and_bad_mode(weights):
    out = reweight(weights.numpy(), G, "mean_normalized")
    assert isinstance(out, np.ndarray) and out.shape == (5 * G,)
    with pytest.raises(ValueError, match="mode"):
        reweight(weights, G, "inverse")
    with pytest.raises(ValueError):
        reweight(weights[:-1], G)


def test_zero_variance_stats_on_hand_made_groups():
    # group 0: all correct, group 1: all wrong, group 2: mixed (3 of 6)
    raw = torch.tensor([[1.0]] * 6 + [[0.0]] * 6 + [[1.0], [0.0]] * 3)
    reward_weights = torch.tensor([1.0])
    plain = zero_variance_stats(raw, raw, reward_weights, G, "group")
    assert plain["groups/zero_variance_share"] == pytest.approx(2 / 3)
    assert plain["groups/zero_variance_abs_advantage"] == 0.0
    # mixed group under GRPO: |A| = 0.5 / (std + 1e-4) for every member, std of 3 ones and 3 zeros (unbiased)
    std = np.std([1, 0] * 3, ddof=1)
    assert plain["groups/abs_advantage"] == pytest.approx(0.5 / (std + 1e-4) / 3, rel=1e-5)
    # DRA-like weights inside the all-correct group create advantages there; the all-wrong group stays 0
    w = torch.tensor([0.2, 0.2, 0.2, 1.0, 0.5, 0.5] + [0.3] * 6 + [1.0] * 6).unsqueeze(1)
    adjusted = zero_variance_stats(raw, raw * w, reward_weights, G, "group")
    expected = group_advantages((raw * w).squeeze(1)[:6], G, "group").abs().mean().item() / 2
    assert adjusted["groups/zero_variance_abs_advantage"] == pytest.approx(expected, rel=1e-5)
    assert adjusted["groups/zero_variance_abs_advantage"] > 0.3


@pytest.mark.parametrize("profile", ["smoke", "mini"])
def test_policy_embed_control_is_dra_grpo_with_the_policy_embedder(profile):
    control = recipes.recipe(profile, "dra_grpo_policy_embed")
    arm = recipes.recipe(profile, "dra_grpo")
    assert control.pop("dra_embedder") == "policy" and arm.pop("dra_embedder") == "minilm"
    assert control.pop("output_dir") != arm.pop("output_dir")
    assert control == arm  # same seed, reward, schedule, sizes and DRA options
    assert "dra_grpo_policy_embed" not in recipes.arms("paper")


@pytest.mark.slow
def test_policy_embed_control_trains_and_evaluates_at_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    experiment.main(["--profile", "smoke", "--arms", "dra_grpo_policy_embed", "--skip-base"])
    out = capsys.readouterr().out
    assert any(line.startswith("dra_grpo_policy_embed 0 test") for line in out.splitlines())  # the run's report line
    result = read_json(experiment.results_file("smoke", "dra_grpo_policy_embed_seed0"))
    assert result["recipe"]["dra_embedder"] == "policy" and result["evaluation"]["problems"] == 6
    steps = [c for c in result["curve"] if "dra/weight_mean" in c]
    assert len(steps) == recipes.recipe("smoke", "dra_grpo_policy_embed")["max_steps"]
    run_dir = next((tmp_path / "runs" / "smoke" / "dra_grpo_policy_embed").iterdir())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [line for line in lines if "dra/policy_pass_reused" in line]
    # the smoke recipe generates once per step (no old-log-probs pass to reuse): one extra pass per step
    assert [line["dra/policy_pass_reused"] for line in logged] == [0.0] * len(steps)
    assert all(0 < line["dra/weight_min"] <= line["dra/weight_max"] <= 1 for line in logged)
