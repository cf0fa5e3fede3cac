"""Killed runs finish, on rerun, exactly as if they had never been killed, and leave no temporary files.

A smoke DRA-GRPO run (training with a checkpoint every step, then evaluation) is run once without
interruption, then again killed with SIGKILL at several points (and with the states a kill can leave on disk:
a half-written checkpoint), rerun to the end and compared: the evaluation and the training curve (without its
wall times) must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["-m", "dra.experiment", "--profile", "smoke", "--arms", "dra_grpo", "--seeds", "0", "--skip-base",
        "--set", "max_steps=4", "save_steps=1"]
TIMINGS = {"step_time", "dra/embed_seconds"}

pytestmark = pytest.mark.slow


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DRA_RUNS_DIR": str(root / "runs"),
            "DRA_RESULTS_DIR": str(root / "data")}


def _run(root: Path, kill_after: float | None = None) -> None:
    process = subprocess.Popen([sys.executable, *ARGS], env=_env(root), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        return
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _result(root: Path) -> tuple[dict, list[dict]]:
    (path,) = (root / "data" / "mini_training" / "smoke").glob("*.json")
    saved = json.loads(path.read_text())
    return saved["evaluation"], [{k: v for k, v in point.items() if k not in TIMINGS} for point in saved["curve"]]


def _wait_until_gone(group: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process group {group} still alive {timeout} s after SIGKILL")


def _stray(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".partial")) or ".tmp" in p.suffixes]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    _run(root)
    return root


def _fresh(reference: Path, tmp_path: Path) -> Path:
    """A new root that shares the reference's base policy (so the kill lands in the RL run)."""
    shutil.copytree(reference / "runs" / "mini_policy", tmp_path / "runs" / "mini_policy")
    return tmp_path


def test_a_half_written_checkpoint_is_skipped_and_the_rerun_is_identical(reference, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(reference / "runs", root / "runs")
    (run,) = (root / "runs" / "smoke" / "dra_grpo").iterdir()
    for name in ("checkpoint-3", "checkpoint-4", "model.safetensors", "training_done.json"):
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    (run / "checkpoint-2" / "trainer_state.json").unlink()  # killed while saving checkpoint 2
    shutil.rmtree(root / "runs" / "evals")
    _run(root)
    assert _result(root) == _result(reference)
    assert not _stray(root)


@pytest.mark.parametrize("kill_after", [5.0, 9.0])
def test_a_run_killed_at_any_point_finishes_identically(reference, tmp_path, kill_after):
    root = _fresh(reference, tmp_path)
    _run(root, kill_after)
    _run(root)
    assert _result(root) == _result(reference)
    assert not _stray(root)


def test_a_killed_notebook_run_leaves_no_executed_copy_and_the_rerun_writes_it(tmp_path):
    """make reproduce's unit of work: the executed notebook appears only when its run finished."""
    root = Path(__file__).resolve().parents[1]
    target = tmp_path / "executed" / "02_smi_kernel_smoke.ipynb"
    env = {**_env(tmp_path), "DRA_FIGURES_DIR": str(tmp_path / "figures"), "DRA_CACHE_DIR": str(tmp_path / "cache"),
           "DRA_DATA_DIR": os.environ.get("DRA_DATA_DIR", "")}
    cmd = [sys.executable, str(root / "scripts" / "run_notebook.py"), str(root / "notebooks" / "02_smi_kernel.ipynb"),
           str(target), "smoke"]
    # Its own process group, killed whole (as a terminal's or CI's kill does), so the kernel dies with it.
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    time.sleep(8.0)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _wait_until_gone(process.pid)
    assert not target.exists()
    # A kill in the middle of an atomic write leaves that write's hidden temporary file; the rerun removes it.
    assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in _stray(tmp_path)), _stray(tmp_path)
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert target.exists() and not _stray(tmp_path)
    assert not list((tmp_path / "cache" / "executing").glob("*.ipynb"))  # the killed run's partial copy is gone
