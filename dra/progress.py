"""Labelled progress bars for the long steps (base-policy SFT, GRPO runs), in a notebook and in a terminal.

Transformers' `Trainer` shows an unlabelled bar and prints every log dict as a line of text (with
``disable_tqdm`` it prints the dicts alone), so a notebook that trains several runs shows a wall of dicts and
nothing says which arm and seed is training. `label_training_progress` swaps both for one bar that names
the run ("DRA-GRPO seed 1, run 5/24") and shows the latest loss and reward beside it. The bar comes from
`tqdm.auto`: a widget in JupyterLab (with ipywidgets installed), text in a terminal.
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

# The log entries worth seeing while a run trains; everything else still goes to the logs and metrics.jsonl.
SHOWN_LOG_KEYS: tuple[str, ...] = ("loss", "reward", "dra/weight_mean")


class LabelledProgress(TrainerCallback):
    """One progress bar per training run, described by `label`, with the latest loss (and reward) as postfix.

    A resumed run starts the bar at the step it resumes from. Only the main process draws a bar.
    """

    def __init__(self, label: str) -> None:
        if not isinstance(label, str) or not label:
            raise TypeError(f"label must be a non-empty string naming the run, got {label!r}.")
        self.label = label
        self.bar: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            # A resumed run has loaded its checkpoint's state by now: the bar starts at that step.
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.label, unit="step",
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            shown = {key.split("/")[-1]: f"{logs[key]:.3g}" for key in SHOWN_LOG_KEYS
                     if isinstance(logs.get(key), (int, float))}
            if shown:
                self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def label_training_progress(trainer, label: str) -> None:
    """Replace `trainer`'s own progress bar and printed log dicts with one `LabelledProgress(label)` bar."""
    for default in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(default)
    trainer.add_callback(LabelledProgress(label))
