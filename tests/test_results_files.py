"""Results files: one writer (`save_result`, provenance added there) and one reader (`load_result`) for every
file under data/, in the three layouts the committed files use; every committed results file loads with its
provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dra.config import PROJECT_ROOT
from dra.io import PROVENANCE_FIELDS, BadFileError
from dra.reports import LAYOUTS, MERGED, NESTED, WRAPPED, load_result, provenance_of, result_path, save_result

COMMITTED = sorted(p for p in (PROJECT_ROOT / "data").rglob("*.json") if "smoke" not in p.relative_to(PROJECT_ROOT).parts)
RESULT = {"key": "abc123", "share": 0.25, "rows": [1, 2]}


@pytest.fixture
def results_base(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DRA_RESULTS_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_round_trips_with_provenance(results_base, layout):
    path = save_result("probe", RESULT, "smoke", 3, layout=layout, script="x.py")
    assert path == results_base / "smoke" / "probe_smoke.json" == result_path("probe", "smoke")
    saved = load_result("probe", "smoke")
    made_by = provenance_of(saved)
    assert set(PROVENANCE_FIELDS) <= set(made_by) and made_by["profile"] == "smoke" and made_by["seed"] == 3
    body = {WRAPPED: lambda: saved["result"], MERGED: lambda: {k: saved[k] for k in RESULT},
            NESTED: lambda: {k: v for k, v in saved.items() if k != "provenance"}}[layout]()
    assert body == RESULT
    if layout == NESTED:  # the scripts' extras sit with the provenance
        assert made_by["script"] == "x.py"


def test_merged_keeps_the_cache_key_at_the_top_level(results_base):
    """The experiment compares a results file's "key" with the current one; it must stay where it was."""
    path = save_result("base", RESULT, "smoke", layout=MERGED, path=results_base / "mini_training" / "smoke" / "base.json")
    text = path.read_text()
    assert json.loads(text)["key"] == "abc123" and text.index('"key"') < text.index('"profile"')


def test_an_explicit_path_wins_and_committed_profiles_write_to_the_base(results_base, tmp_path):
    assert save_result("r", RESULT, "mini") == results_base / "r_mini.json"
    assert save_result("r", RESULT, "smoke", path=tmp_path / "elsewhere.json") == tmp_path / "elsewhere.json"
    assert load_result(path=tmp_path / "elsewhere.json")["result"] == RESULT


def test_bad_requests_and_files_are_named(results_base, tmp_path):
    with pytest.raises(ValueError, match="layout"):
        save_result("r", RESULT, "smoke", layout="flat")
    with pytest.raises(TypeError, match="name and a profile"):
        load_result("r")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(BadFileError, match="list.json.*JSON object"):
        load_result(path=tmp_path / "list.json")
    save_result("r", RESULT, "smoke")
    with pytest.raises(BadFileError, match="identity"):
        load_result("r", "smoke", keys=("identity",))
    with pytest.raises(KeyError, match="no provenance"):
        provenance_of({"result": 1})


def test_there_are_committed_results_files():
    assert any(p.name == "study_mini.json" for p in COMMITTED) and any(p.name == "base.json" for p in COMMITTED)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(PROJECT_ROOT / "data")))
def test_every_committed_results_file_loads_with_its_provenance(path):
    saved = load_result(path=path)
    made_by = provenance_of(saved)
    assert made_by["profile"] in ("mini", "paper") and made_by["created"]
