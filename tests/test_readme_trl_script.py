"""The README's "Use DRA in your own TRL script" runs as pasted: two DRA-GRPO steps with LoRA and a user reward."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str) -> str:
    section = README.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_own_trl_script_trains_two_dra_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRA_RUNS_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {}
    exec(compile(readme_block("Use DRA in your own TRL script"), "README.md", "exec"), namespace)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == 2
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all("dra/weight_mean" in entry for entry in logs)
    assert all(0 < entry["dra/weight_mean"] <= 1 for entry in logs)
    assert type(trainer.model).__name__.startswith("PeftModel")  # the user's LoRA config was applied
