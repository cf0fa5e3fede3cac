"""Labelled training progress: one bar per run that names it, resumes at the right step and shows the loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from dra.progress import LabelledProgress, label_training_progress


def state(step: int, max_steps: int = 10) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True)


def test_the_bar_names_the_run_starts_at_a_resumed_step_and_shows_the_loss(capsys):
    progress = LabelledProgress("DRA-GRPO seed 1, run 2/8")
    progress.on_train_begin(None, state(3), None)  # resumed from checkpoint-3
    assert progress.bar.n == 3 and progress.bar.total == 10
    progress.on_step_end(None, state(4), None)
    assert progress.bar.n == 4
    progress.on_log(None, state(4), None, logs={"loss": 0.123456, "reward": 1.5, "dra/weight_mean": 0.4, "kl": 2.0})
    assert progress.bar.postfix == "loss=0.123, reward=1.5, weight_mean=0.4"
    progress.on_step_end(None, state(10), None)
    progress.on_train_end(None, state(10), None)
    assert progress.bar is None
    assert "DRA-GRPO seed 1, run 2/8: 100%" in capsys.readouterr().err


def test_only_the_main_process_draws_a_bar():
    progress = LabelledProgress("GRPO seed 0")
    progress.on_train_begin(None, SimpleNamespace(global_step=0, max_steps=5, is_world_process_zero=False), None)
    progress.on_step_end(None, state(1), None)
    assert progress.bar is None


def test_a_label_must_be_text():
    with pytest.raises(TypeError, match="label"):
        LabelledProgress("")


def test_the_trainers_own_bar_and_printed_dicts_are_replaced():
    class Trainer:  # the two methods label_training_progress uses, with Trainer's semantics
        def __init__(self):
            self.callbacks = [ProgressCallback(), PrinterCallback()]

        def remove_callback(self, kind):
            self.callbacks = [c for c in self.callbacks if not isinstance(c, kind)]

        def add_callback(self, callback):
            self.callbacks.append(callback)

    trainer = Trainer()
    label_training_progress(trainer, "SFT of the smoke base policy")
    assert [type(c) for c in trainer.callbacks] == [LabelledProgress]
    assert trainer.callbacks[0].label == "SFT of the smoke base policy"
