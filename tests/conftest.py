"""Shared pytest fixtures.

Every test runs with $DRA_RUNS_DIR pointed at a temporary folder of the session (`session_runs_dir`), so what a
test trains or evaluates never lands in the repository's runs/; the session fails if it did. The smoke base
policy is trained once per session into that folder (`smoke_policy_dir`) and shared by every test that needs a
model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from dra import policy
from dra.config import PROJECT_ROOT

REPOSITORY_RUNS = PROJECT_ROOT / "runs"


def _smoke_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under `folder` in a smoke-profile folder (runs/smoke/,
    runs/mini_policy/smoke-*, runs/evals/smoke/). The tests run only the smoke profile, so these are all they
    could write; an experiment at another profile running in the same checkout does not trip the check."""
    found: dict[str, tuple[int, int]] = {}
    for parent, _, files in os.walk(folder):
        relative = Path(parent).relative_to(folder)
        if not any(part == "smoke" or part.startswith("smoke-") for part in relative.parts):
            continue
        for name in files:
            stat = (Path(parent) / name).stat()
            found[str(relative / name)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def session_runs_dir(tmp_path_factory) -> Iterator[Path]:
    """$DRA_RUNS_DIR for the whole session: a temporary folder. Afterwards, the repository's runs/ must hold the
    same smoke-profile files as before (a test that redirected runs_dir() back to it would have written there)."""
    before = _smoke_files(REPOSITORY_RUNS)
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("runs")
        patch.setenv("DRA_RUNS_DIR", str(path))
        yield path
    after = _smoke_files(REPOSITORY_RUNS)
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"tests wrote into {REPOSITORY_RUNS}: {[name for name, _ in changed][:10]}"


@pytest.fixture(scope="session")
def smoke_policy_dir(session_runs_dir: Path) -> Path:
    """The smoke base policy's model directory, trained on first use into the session's runs folder."""
    return policy.base_policy("smoke")


@pytest.fixture
def data_dir() -> Path:
    """The local data copy ($DRA_DATA_DIR); tests that need the real files skip when it is unset."""
    value = os.environ.get("DRA_DATA_DIR")
    if not value:
        pytest.skip("DRA_DATA_DIR is not set: no local copy of the external data")
    return Path(value)


@pytest.fixture(scope="module")
def module_cache_dir(tmp_path_factory) -> Iterator[Path]:
    """A fresh $DRA_CACHE_DIR for one test module (exports, embeddings), removed from the environment after it."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("cache")
        patch.setenv("DRA_CACHE_DIR", str(path))
        yield path
