"""dra.io: durable atomic writes, strict JSON, readers that name the file, safe names."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from adversarial import Raises, case, check
from dra import io
from dra.io import BadFileError, read_json, read_jsonl, safe_name, slug, to_json, write_json, write_text


def strict_loads(text: str):
    """json.loads that refuses NaN/Infinity, as strict parsers (JavaScript, jq, Go) do."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


NAMES = [
    case("slash", lambda: safe_name("a/b", "benchmark"), Raises(ValueError, "benchmark must be a plain name")),
    case("backslash", lambda: safe_name("a\\b", "benchmark"), Raises(ValueError, "benchmark")),
    case("dotdot", lambda: safe_name("..", "profile"), Raises(ValueError, "profile")),
    case("dotdot-inside", lambda: safe_name("a..b", "profile"), Raises(ValueError, r"'\.\.'")),
    case("dot", lambda: safe_name(".", "profile"), Raises(ValueError, "profile")),
    case("hidden", lambda: safe_name(".hidden", "benchmark"), Raises(ValueError, "benchmark")),
    case("dash", lambda: safe_name("-rf", "benchmark"), Raises(ValueError, "benchmark")),
    case("empty", lambda: safe_name("", "benchmark"), Raises(ValueError, "benchmark")),
    case("nul", lambda: safe_name("a\x00b", "benchmark"), Raises(ValueError, "benchmark")),
    case("newline", lambda: safe_name("a\nb", "benchmark"), Raises(ValueError, "benchmark")),
    case("not-str", lambda: safe_name(3, "benchmark"), Raises(ValueError, "benchmark")),
    case("plain", lambda: safe_name("math500", "benchmark"), "math500"),
    case("slug-hub-id", lambda: slug("SpiceRL/DRA-GRPO", "model_label"), "SpiceRL_DRA-GRPO"),
    case("slug-escape", lambda: slug("../../etc/passwd", "model_label"), "etc_passwd"),
    case("slug-absolute", lambda: slug("/tmp/models/x", "model_label"), "tmp_models_x"),
    case("slug-dots", lambda: slug("...", "model_label"), Raises(ValueError, "model_label")),
    case("slug-only-slashes", lambda: slug("///", "model_label"), Raises(ValueError, "model_label")),
    case("slug-not-str", lambda: slug(None, "model_label"), Raises(TypeError, "model_label")),
    case("write_text-bytes", lambda: write_text("/nonexistent/x.txt", b"x"), Raises(TypeError, "text must be a str")),
    case("to_json-object", lambda: to_json({"a": object()}), Raises(TypeError, "cannot write object as JSON")),
    case("to_json-set", lambda: to_json({1, 2}), Raises(TypeError, "set")),
    case("to_json-nan", lambda: to_json([math.nan, math.inf, -math.inf, 1.5], indent=None), "[null, null, null, 1.5]"),
    case("to_json-numpy", lambda: to_json({"a": np.array([1.0, np.nan]), "b": np.float32(2), "c": np.int64(3),
                                           "d": np.bool_(True)}, indent=None),
         '{"a": [1.0, null], "b": 2.0, "c": 3, "d": true}'),
    case("to_json-numpy-key", lambda: to_json({np.int64(1): "x"}, indent=None), '{"1": "x"}'),
    case("to_json-path", lambda: to_json(Path("/a/b"), indent=None), '"/a/b"'),
    case("to_json-tuple-key", lambda: to_json({(1, 2): 3}), Raises(TypeError, "keys must be")),
]


@pytest.mark.parametrize("call, expected", NAMES)
def test_adversarial_case(call, expected):
    check(call, expected)


def test_write_json_is_strict_json_with_null_for_non_finite(tmp_path):
    path = write_json(tmp_path / "r.json", {"loss": float("nan"), "rows": [[1.0, float("-inf")]],
                                             "arr": np.array([np.nan, 2.0])})
    assert strict_loads(path.read_text()) == {"loss": None, "rows": [[1.0, None]], "arr": [None, 2.0]}


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = write_text(tmp_path / "r.txt", "old")
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error):
            with io.atomic_path(target) as tmp:
                tmp.write_text("half")
                raise error()
        assert target.read_text() == "old" and temp_files(tmp_path) == []
    with pytest.raises(TypeError):
        write_json(target, {"x": object()})  # fails before anything is written
    assert target.read_text() == "old" and temp_files(tmp_path) == []


def test_orphans_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "r.json"
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {"dead": f".r.json~{host}~{dead_pid}~abcd.tmp", "live": f".r.json~{host}~{sleeper.pid}~abcd.tmp",
                 "other_host": f".r.json~elsewhere.example~{dead_pid}~abcd.tmp", "unrelated": ".other.json~x~1~a.tmp"}
        for name in names.values():
            (tmp_path / name).write_text("partial")
        write_json(target, {"ok": True})
        left = set(temp_files(tmp_path))
        assert names["dead"] not in left
        assert {names["live"], names["other_host"], names["unrelated"]} <= left
    finally:
        sleeper.kill()
        sleeper.wait()


def test_permissions_follow_the_umask_without_touching_it(tmp_path, monkeypatch):
    mask = os.umask(0o027)  # set for this test only; the write itself must never call os.umask
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("dra.io changed the process umask"))
        paths = [tmp_path / f"f{i}.json" for i in range(16)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: write_json(p, {"p": str(p)}), paths))
    finally:
        monkeypatch.undo()
        os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in paths} == {0o640}
    assert all(read_json(p) == {"p": str(p)} for p in paths)


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def record(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_text(tmp_path / "r.txt", "x")
    assert len(synced) == 2
    if isinstance(synced[1], str):
        assert synced[1] == str(tmp_path)


BAD_FILES = [
    ("empty", "", "empty"),
    ("blank", "  \n\n", "empty"),
    ("truncated", '{"identity": {"model": "m"}, "prob', "line 1, column"),
    ("trailing-garbage", '{"a": 1} x', "line 1, column 10"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_read_json_names_the_file_and_the_problem(tmp_path, name, text, message):
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    with pytest.raises(BadFileError, match=message) as error:
        read_json(path, what="a results file")
    assert str(path) in str(error.value) and error.value.path == path


def test_read_json_other_failures(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"a": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(BadFileError, match="not UTF-8"):
        read_json(latin)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(BadFileError, match="no 'identity', 'problems' field"):
        read_json(listed, keys=("identity", "problems"), what="a results file")
    partial = tmp_path / "partial.json"
    partial.write_text('{"identity": {}}')
    with pytest.raises(BadFileError, match="no 'problems' field"):
        read_json(partial, keys=("identity", "problems"))


def test_read_jsonl_skips_a_torn_last_line_with_a_warning(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n\n{"step": 2}\n{"step": 3, "lo')
    with pytest.warns(RuntimeWarning, match=r"metrics.jsonl: skipped line 4, cut short"):
        assert read_jsonl(path) == [{"step": 1}, {"step": 2}]


def test_read_jsonl_raises_on_any_other_bad_line(tmp_path):
    middle = tmp_path / "middle.jsonl"
    middle.write_text('{"step": 1}\n{"step": 2, \n{"step": 3}\n')
    with pytest.raises(BadFileError, match=r"middle.jsonl: line 2 is not valid JSON"):
        read_jsonl(middle)
    last_with_newline = tmp_path / "last.jsonl"
    last_with_newline.write_text('{"step": 1}\n{"step": 2\n')  # complete line, bad JSON: not a torn write
    with pytest.raises(BadFileError, match="line 2"):
        read_jsonl(last_with_newline)
    not_objects = tmp_path / "objects.jsonl"
    not_objects.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(BadFileError, match="line 2 is not a JSON object"):
        read_jsonl(not_objects, objects=True)
    assert read_jsonl(not_objects) == [{"step": 1}, [1, 2]]


def test_folder_getters_create_nothing_and_writes_create_their_folder(tmp_path, monkeypatch):
    """Asking where results, figures, runs or caches go leaves the disk alone; the first write makes the folder."""
    from dra import config
    from dra.reports import save_result

    for var, getter in (("DRA_RESULTS_DIR", config.results_dir), ("DRA_FIGURES_DIR", config.figures_dir),
                        ("DRA_RUNS_DIR", config.runs_dir), ("DRA_CACHE_DIR", config.cache_dir)):
        monkeypatch.setenv(var, str(tmp_path / var))
        assert getter() == tmp_path / var and not (tmp_path / var).exists()
    written = save_result("probe", {"x": 1}, "smoke")
    assert written == tmp_path / "DRA_RESULTS_DIR" / "smoke" / "probe_smoke.json" and written.is_file()
