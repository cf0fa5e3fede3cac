"""Paths: where the project reads external data and writes caches, runs, results and figures.

(Profiles, and ``$DRA_PROFILE``, are `dra.profiles`.) Environment variables:

- ``DRA_DATA_DIR``: a local copy of the external datasets (benchmarks, completions, training pools); CI
  points it at ``../shared/data``. Never committed to the project.
- ``DRA_CACHE_DIR``: caches that are safe to delete (default ``<project>/.cache``).
- ``DRA_RUNS_DIR``: trained models and long runs, never deleted by ``make clean`` (default ``<project>/runs``).
- ``DRA_HOME``: the project root, when the package is installed somewhere other than the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("DRA_HOME", Path(__file__).resolve().parents[1]))


def _dir_from_env(var: str, default: Path) -> Path:
    """$var if set, else `default`. Pure: nothing is created here; whatever writes a file creates its folder
    (`dra.io.atomic_path` does for every write), so reading a path never leaves an empty folder behind."""
    return Path(os.environ.get(var) or default).expanduser()


def data_dir() -> Path | None:
    """$DRA_DATA_DIR if set (it must exist), else None: loaders then fall back to cache and download."""
    value = os.environ.get("DRA_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"DRA_DATA_DIR={value} is not a directory; point it at a local copy of the data (in CI: ../shared/data) "
            "or unset it to use the cache and download."
        )
    return path


def cache_dir() -> Path:
    return _dir_from_env("DRA_CACHE_DIR", PROJECT_ROOT / ".cache")


def runs_dir() -> Path:
    return _dir_from_env("DRA_RUNS_DIR", PROJECT_ROOT / "runs")


def results_dir() -> Path:
    """The project's own small results and manifests (committed): <project>/data."""
    return _dir_from_env("DRA_RESULTS_DIR", PROJECT_ROOT / "data")


def figures_dir() -> Path:
    return _dir_from_env("DRA_FIGURES_DIR", PROJECT_ROOT / "figures")
