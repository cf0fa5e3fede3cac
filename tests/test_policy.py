"""The base policy at smoke scale: local tokenizer, Qwen2 from a config, SFT, save/load, cache keys, resume."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from dra import mini, policy, profiles, tasks
from dra.io import FolderInUse, folder_in_use, folder_lock
from dra.threads import RESULT_THREADS


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("runs")
        patch.setenv("DRA_RUNS_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def trained(runs):
    """One smoke SFT shared by the tests below (the resume test rebuilds its model when it is done)."""
    config = profiles.get("smoke").mini_policy()
    return config, policy.base_policy(config)


def test_smoke_sft_trains_and_saves_a_loadable_hub_style_model(trained):
    config, path = trained
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert isinstance(model, Qwen2ForCausalLM)
    assert model.config.num_hidden_layers == config.num_hidden_layers
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    eos = model.generation_config.eos_token_id
    assert tokenizer.eos_token_id in (eos if isinstance(eos, list) else [eos])
    summary = policy.training_summary(path)
    assert summary["steps"] == config.max_steps and summary["key"] == config.key()
    assert summary["torch_threads"] == RESULT_THREADS  # the count shapes the model (dra.threads)
    losses = [loss for _, loss in summary["loss_curve"]]
    assert losses[-1] < losses[0]  # it learned something from the SFT data


def test_tokenizer_is_lossless_spells_digits_and_renders_chat(trained):
    _, path = trained
    tokenizer = AutoTokenizer.from_pretrained(path)
    problem = mini.Problem(41, 83)
    for strategy in mini.STRATEGIES:
        text = mini.completion(problem, strategy)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    digits = [tokenizer.decode([i]) for i in tokenizer("3901", add_special_tokens=False)["input_ids"]]
    assert digits == ["3", "9", "0", "1"]
    messages = mini.prompt_messages(problem)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith(f"<|im_start|>user\n{problem.question}<|im_end|>\n<|im_start|>assistant\n")
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "x"}], tokenize=False)
    assert full.startswith(rendered) and full.endswith("x<|im_end|>\n")


def test_cached_model_is_reused_and_any_config_change_gets_a_new_key(trained):
    config, path = trained
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert policy.base_policy(config) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == before
    for change in ({"max_steps": 9}, {"learning_rate": 1e-3}, {"strategy_weights": {"grid": 1.0}},
                   {"system_prompt": tasks.PAPER_SYSTEM_PROMPT}, {"split_seed": 1}, {"hidden_size": 48}):
        changed = dataclasses.replace(config, **change)
        assert changed.key() != config.key(), change
        assert policy.run_dir(changed) != policy.run_dir(config)
    assert dataclasses.replace(config).key() == config.key()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(trained, capsys):
    config, path = trained
    root = policy.run_dir(config)
    checkpoints = sorted((root / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in checkpoints][-2:] == ["checkpoint-4", "checkpoint-8"]
    # Simulate a kill after step 4: no final model, no later checkpoint.
    shutil.rmtree(path)
    shutil.rmtree(checkpoints[-1])
    resumed = policy.base_policy(config)
    summary = policy.training_summary(resumed)
    assert summary["resumed_from"].endswith("checkpoint-4")
    assert summary["steps"] == config.max_steps
    # One labelled bar that starts at the resumed step, instead of the trainer's printed log dicts.
    shown = capsys.readouterr()
    assert "SFT of the smoke base policy:  50%" in shown.err and "100%" in shown.err
    assert "{'loss'" not in shown.out + shown.err


def test_paper_profile_has_no_mini_policy(runs):
    with pytest.raises(ValueError, match="no mini-world policy"):
        policy.base_policy("paper")
    with pytest.raises(ValueError, match="unknown profile"):
        policy.base_policy("huge")
    with pytest.raises(FileNotFoundError, match="no saved model"):
        policy.load_policy(runs)


def test_a_second_process_waits_for_the_policy_another_is_training_instead_of_training_it_too(trained, monkeypatch, caplog):
    config, _ = trained
    other = dataclasses.replace(config, max_steps=9)  # never trained here
    model_dir = policy.run_dir(other) / "model"
    holding = threading.Event()

    def another_process():  # trains `other` (its lock held for a second), then leaves a finished model
        with folder_lock(policy.run_dir(other)):
            holding.set()
            time.sleep(1.0)
            model_dir.mkdir(parents=True)
            (model_dir / policy.SUMMARY_FILE).write_text("{}")

    monkeypatch.setattr(policy, "train_policy", lambda config: pytest.fail("trained a policy another process was training"))
    thread = threading.Thread(target=another_process)
    thread.start()
    holding.wait()
    with caplog.at_level(logging.WARNING, logger="dra.io"):
        assert policy.base_policy(other) == model_dir
    thread.join()
    assert "in use by another process; waiting for it to finish" in caplog.text


def test_folder_lock_refuses_a_second_holder_with_the_message_it_is_given(tmp_path):
    assert not folder_in_use(tmp_path / "never")
    with folder_lock(tmp_path / "run"):
        assert folder_in_use(tmp_path / "run")
        with pytest.raises(FolderInUse, match="^seed 3 is busy$"):
            with folder_lock(tmp_path / "run", busy="seed 3 is busy"):
                pass
    assert not folder_in_use(tmp_path / "run")  # released with its block
