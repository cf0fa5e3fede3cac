"""Every ```python block of the README runs as pasted, each in a fresh namespace (a block that needs a GPU says
so on its first line, `# GPU only`, and is skipped). The TRL drop-in script is also checked for what it claims."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
GPU_ONLY = "# GPU only"


def readme_blocks() -> list[tuple[str, str]]:
    """(id, code) of every python block: the id is the heading above it and its number under that heading."""
    blocks, heading, count = [], "top", 0
    for part in re.split(r"(^#{2,3} [^\n]*$|^```python\n.*?^```)", README.read_text(), flags=re.M | re.S):
        if part.startswith("#"):
            heading, count = part.lstrip("#").strip(), 0
        elif part.startswith("```python"):
            count += 1
            blocks.append((f"{heading} #{count}", part[len("```python\n"):-3]))
    return blocks


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """One runs folder for the module, so the blocks share the tiny smoke policy (trained once, in seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("runs")
        patch.setenv("DRA_RUNS_DIR", str(path))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield path


def test_the_readme_has_python_blocks_and_marks_the_gpu_ones():
    assert len(BLOCKS) >= 6
    assert [name for name, code in BLOCKS if code.startswith(GPU_ONLY)] == ["Evaluation and the paper's tables (notebook 04) #1"]


@pytest.mark.slow
@pytest.mark.parametrize("name, code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_block_runs_as_pasted(name, code, policies, tmp_path, monkeypatch):
    if code.startswith(GPU_ONLY):
        pytest.skip(code.splitlines()[0])
    if "load(" in code and not os.environ.get("DRA_DATA_DIR"):
        pytest.skip("the block reads the external data; DRA_DATA_DIR is not set (tests never download)")
    monkeypatch.chdir(tmp_path)  # blocks that write (runs/my_dra_run) write here
    namespace: dict = {}
    exec(compile(code, f"README.md: {name}", "exec"), namespace)
    CLAIMS.get(name.rsplit(" #", 1)[0], lambda _: None)(namespace)


def trl_script_claims(namespace: dict) -> None:
    """Two DRA-GRPO steps were trained, DRA weights were logged, and the user's LoRA config was applied."""
    trainer = namespace["trainer"]
    assert trainer.state.global_step == 2
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(0 < entry["dra/weight_mean"] <= 1 for entry in logs)
    assert type(trainer.model).__name__.startswith("PeftModel")


def kernel_claims(namespace: dict) -> None:
    """The advantages of each prompt's group are centred, as GRPO's are."""
    assert abs(namespace["advantages"].reshape(4, 6).sum(axis=1)).max() < 1e-5


CLAIMS = {"Use DRA in your own TRL script": trl_script_claims, "The kernel": kernel_claims}
