"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Path:
    """The local data copy ($DRA_DATA_DIR); tests that need the real files skip when it is unset."""
    value = os.environ.get("DRA_DATA_DIR")
    if not value:
        pytest.skip("DRA_DATA_DIR is not set: no local copy of the external data")
    return Path(value)
