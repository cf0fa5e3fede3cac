"""The source notebooks as a user and a reviewer meet them: typed, documented parameters with one default
profile, no outputs beyond nbval's references, and a py:percent pair (notebooks/py/) in sync with each."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from dra.config import PROJECT_ROOT
from dra.profiles import DEFAULT as DEFAULT_PROFILE

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"  # cells whose stored outputs are nbval's references


def parameters_cell(notebook: Path) -> str:
    cells = [cell for cell in nbformat.read(notebook, as_version=4).cells
             if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters', has {len(cells)}"
    return cells[0].source


def test_there_are_notebooks():
    assert [n.name[:2] for n in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_are_typed_literals_with_help_and_the_default_profile(notebook):
    inferred = papermill.inspect_notebook(str(notebook))
    for name, parameter in inferred.items():  # what `papermill --help-notebook` prints
        assert parameter["inferred_type_name"] != "None", f"{notebook.name}: {name} shows as 'Unknown type'"
        assert parameter["help"].strip(), f"{notebook.name}: {name} has no trailing # comment for --help-notebook"
    assignments = [node for node in ast.parse(parameters_cell(notebook)).body]
    assert all(isinstance(node, ast.AnnAssign) for node in assignments), \
        f"{notebook.name}: every parameter is `name: type = literal  # help`"
    assert [node.target.id for node in assignments] == list(inferred), \
        f"{notebook.name}: papermill dropped a parameter (an annotation it cannot read?)"
    for node in assignments:
        ast.literal_eval(node.value)  # a plain literal: no environment lookups or calls
    assert inferred["profile"]["default"] == f'"{DEFAULT_PROFILE}"'  # the library's and README's default


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_source_notebooks_carry_no_outputs_beyond_nbval_references(notebook):
    nb = nbformat.read(notebook, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(CHECKED):  # nbval treats a reference without an execution count as unrun
            assert cell.outputs and cell.execution_count, f"{notebook.name} cell {index}: a checked cell needs its reference"
        else:
            assert cell.outputs == [], f"{notebook.name} cell {index} carries outputs; clear them before committing"
            assert cell.execution_count is None, f"{notebook.name} cell {index} has an execution count"
    assert not {"widgets", "papermill"} & set(nb.metadata), f"{notebook.name} carries run metadata"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_notebook_has_a_py_percent_pair_in_sync(notebook):
    pair = notebook.parent / "py" / f"{notebook.stem}.py"
    assert pair.is_file(), f"{notebook.name} has no pair {pair.relative_to(PROJECT_ROOT)}: run make sync-notebooks"
    expected = jupytext.writes(jupytext.read(notebook), fmt="py:percent")
    assert pair.read_text() == expected, (
        f"{pair.relative_to(PROJECT_ROOT)} differs from {notebook.name}: run make sync-notebooks "
        "(jupytext --sync keeps whichever side was edited last)")
