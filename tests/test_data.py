"""dra.data: the registry's checksums and normalisation on the real files, and the failure messages."""

from __future__ import annotations

import shutil

import pytest

from dra.data import BENCHMARKS, REGISTRY, load, normalise_answer, sha256_of, split_olympiad_answers

EXPECTED_ROWS = {"aime24": 30, "math500": 500, "amc23": 40, "minerva": 272, "olympiadbench": 675,
                 "qwen_math_cot_100": 100, "game24": 100, "math_train": 7470, "aime_train": 975}


def test_registry_covers_every_dataset_with_pinned_sources():
    assert set(REGISTRY) == set(EXPECTED_ROWS) | {"open_rs"}
    for entry in REGISTRY.values():
        assert entry.license
        for f in entry.files:
            assert f.url.startswith("https://raw.githubusercontent.com/") and len(f.sha256) == 64
            assert any(len(part) == 40 for part in f.url.split("/")), f"{f.url} is not pinned at a commit"
    assert REGISTRY["open_rs"].hub_id == "knoveleng/open-rs" and not REGISTRY["open_rs"].files


def test_answer_normalisation_rules():
    assert normalise_answer(27.0) == "27" and normalise_answer(2.5) == "2.5"
    assert normalise_answer("025") == "25" and normalise_answer("0") == "0"
    assert normalise_answer("$\\frac{1}{2}$") == "\\frac{1}{2}"
    assert split_olympiad_answers(["$69$,$84$"]) == ["69", "84"]
    assert split_olympiad_answers(["$(1,1), (3,2)$"]) == ["(1,1), (3,2)"]


def test_checksums_of_the_real_files(data_dir):
    for entry in REGISTRY.values():
        for f in entry.files:
            assert sha256_of(data_dir / f.path) == f.sha256, f.path


@pytest.mark.parametrize("name", list(EXPECTED_ROWS))
def test_every_dataset_loads_in_one_shape(data_dir, name):
    records = load(name)
    assert len(records) == EXPECTED_ROWS[name]
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert isinstance(r["problem"], str) and r["problem"].strip()
        assert isinstance(r["answer"], str) and r["answer"].strip()


def test_benchmark_quirks_are_normalised(data_dir):
    amc = load("amc23")
    assert amc[0]["answer"] == "27" and all("." not in r["answer"] for r in amc if r["answer"].replace(".", "").isdigit())
    assert all(not (r["answer"].isdigit() and r["answer"].startswith("0") and r["answer"] != "0")
               for name in ("aime24", "aime_train") for r in load(name))
    minerva = load("minerva")
    assert minerva[0]["answer"] == "1.6" and "\\boxed{1.6}" in minerva[0]["solution"]
    olympiad = {r["id"]: r for r in load("olympiadbench")}
    multi = [r for r in olympiad.values() if "answers" in r]
    assert len(multi) == 19 and all(r["answer"] == ", ".join(r["answers"]) for r in multi)
    assert all("$" not in r["answer"] for r in olympiad.values())


def test_completion_sets_keep_completions_and_grades(data_dir):
    qwen = load("qwen_math_cot_100")
    assert all(len(r["completions"]) == len(r["correct"]) == len(r["preds"]) == 8 for r in qwen)
    assert sum(all(r["correct"]) for r in qwen) == 86 and sum(not any(r["correct"]) for r in qwen) == 4
    game = load("game24")
    assert [r["meta"]["puzzle_index"] for r in game] == list(range(900, 1000))
    assert game[0]["problem"] == "4 5 6 10"  # puzzle 900; its samples start "10 - 4 = 6 (left: 5 6 6)"
    assert "(left: 5 6 6)" in game[0]["completions"][0]
    assert sum(0 < sum(r["correct"]) < len(r["correct"]) for r in game) == 49


def test_missing_file_names_the_env_var_and_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DRA_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="DRA_DATA_DIR") as error:
        load("aime24")
    assert "benchmarks/aime24.jsonl" in str(error.value) and REGISTRY["aime24"].files[0].sha256 in str(error.value)


def test_wrong_checksum_is_refused(data_dir, tmp_path, monkeypatch):
    target = tmp_path / "benchmarks" / "aime24.jsonl"
    target.parent.mkdir()
    shutil.copyfile(data_dir / "benchmarks" / "aime24.jsonl", target)
    with target.open("a") as handle:
        handle.write("\n")
    monkeypatch.setenv("DRA_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load("aime24")


def test_cache_is_used_when_the_data_dir_lacks_a_file(data_dir, tmp_path, monkeypatch):
    cached = tmp_path / "cache" / "data" / "benchmarks" / "amc23.jsonl"
    cached.parent.mkdir(parents=True)
    shutil.copyfile(data_dir / "benchmarks" / "amc23.jsonl", cached)
    monkeypatch.delenv("DRA_DATA_DIR")
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DRA_OFFLINE", "1")
    assert len(load("amc23")) == 40


def test_hub_only_set_fails_offline_naming_the_stand_ins(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="math_train"):
        load("open_rs")


def test_bad_names_and_splits():
    with pytest.raises(ValueError, match="unknown dataset"):
        load("nope")
    with pytest.raises(ValueError, match="one split"):
        load("aime24", split="train")
