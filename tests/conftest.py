"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest


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
