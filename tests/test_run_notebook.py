"""Executed notebooks written by `make reproduce` carry no stderr noise, no progress widgets and no machine-local
paths."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from dra.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
from run_notebook import clean_outputs, main  # noqa: E402


def test_clean_outputs_drops_stderr_and_local_paths(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(path)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="Loading weights: 100%|####|\n"),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "ab"},
                                                     "text/plain": "GRPO seed 0:   0%|          | 0/8"}),
        nbformat.v4.new_output("stream", name="stdout", text=f"saved to {PROJECT_ROOT}/figures/x.png\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"'{Path.home()}/cache'"}, execution_count=1),
    ]
    nb.cells.append(cell)
    nb.metadata["papermill"] = {"output_path": "/tmp/.x.ipynb.tmp", "input_path": "notebooks/x.ipynb"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    clean_outputs(path, "notebooks/executed/x_mini.ipynb")
    cleaned = nbformat.read(path, as_version=4)
    outputs = cleaned.cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"]
    assert outputs[0].text == "saved to figures/x.png\n" and outputs[1].data["text/plain"] == "'~/cache'"
    assert cleaned.metadata.papermill.output_path == "notebooks/executed/x_mini.ipynb"
    assert "widgets" not in cleaned.metadata  # progress-bar widget state is not kept


def test_a_parameter_without_a_value_is_refused_before_anything_runs(tmp_path):
    target = tmp_path / "03_long_smoke.ipynb"
    with pytest.raises(SystemExit, match=r"NAME=VALUE, e.g. grid=long; got \['grid'\]"):
        main("notebooks/03_dra_training.ipynb", str(target), "smoke", "grid")
    assert not target.exists()
