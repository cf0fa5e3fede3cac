"""The environment definitions agree with each other and with what is installed."""

from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_environment_yml_repeats_the_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    yml_pins = dict(p.lower().split("==") for p in pip_block)
    expected = {k: v for k, v in constraint_pins().items() if k != "vllm"}  # GPU-only, commented out there
    assert yml_pins == expected
    assert "python=3.11" in env["dependencies"]
    assert env["channels"] == ["conda-forge"]


@pytest.mark.parametrize("name", ["torch", "transformers", "trl", "sentence-transformers", "math-verify", "numpy"])
def test_installed_versions_match_the_pins(name):
    installed = metadata.version(name).split("+")[0]  # torch reports 2.13.0+cpu
    assert installed == constraint_pins()[name]
