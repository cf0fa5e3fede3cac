"""dra.data: bad names, answers and files raise clearly, with the file's path."""

from __future__ import annotations

import math

import pytest

from adversarial import Raises, case, check
from dra import data
from dra.io import BadFileError

CASES = [
    case("name-list", lambda: data.load(["aime24"]), Raises(ValueError, "unknown dataset")),
    case("name-None", lambda: data.load(None), Raises(ValueError, "unknown dataset")),
    case("name-path", lambda: data.load("../aime24"), Raises(ValueError, "unknown dataset")),
    case("source-unknown", lambda: data.load("aime24", source="web"), Raises(ValueError, "source must be")),
    case("split-other", lambda: data.load("aime24", split="train"), Raises(ValueError, "one split")),
    case("hub-only-from-files", lambda: data.load("open_rs", source="files"), Raises(ValueError, "Hub only")),
    case("answer-None", lambda: data.normalise_answer(None), Raises(TypeError, "gold answer must be a string or a number")),
    case("answer-bool", lambda: data.normalise_answer(False), Raises(TypeError, "gold answer")),
    case("answer-nan", lambda: data.normalise_answer(math.nan), Raises(ValueError, "finite")),
    case("answer-inf", lambda: data.normalise_answer(-math.inf), Raises(ValueError, "finite")),
    case("answer-list", lambda: data.normalise_answer(["1"]), Raises(TypeError, "gold answer")),
    case("answer-zeros", lambda: data.normalise_answer(" 007 "), "7"),
    case("answer-whole-float", lambda: data.normalise_answer(27.0), "27"),
    case("answer-int", lambda: data.normalise_answer(12), "12"),
    case("answer-dollars", lambda: data.normalise_answer("$\\pi$"), "\\pi"),
    case("answer-two-dollar-items-kept", lambda: data.normalise_answer("$1$, $2$"), "$1$, $2$"),
    case("olympiad-str", lambda: data.split_olympiad_answers("$1$,$2$"), Raises(TypeError, "final_answer.*single str")),
    case("olympiad-ints", lambda: data.split_olympiad_answers([1, 2]), Raises(TypeError, "final_answer must hold strings")),
    case("olympiad-list", lambda: data.split_olympiad_answers(["$1$,$2$", "3"]), ["1", "2", "3"]),
    case("record-not-dict", lambda: data.math_record("row", 0, "x"), Raises(TypeError, "row 0 must be a JSON object")),
    case("record-no-problem", lambda: data.math_record({"answer": "1"}, 3, "x"), Raises(ValueError, "row 3 has no problem")),
    case("record-no-answer", lambda: data.math_record({"problem": "p"}, 4, "x"), Raises(ValueError, "row 4 has no answer")),
    case("record-answer-dict", lambda: data.math_record({"problem": "p", "answer": {"v": 1}}, 5, "x"),
         Raises(TypeError, "gold answer")),
    case("record-answer-nan", lambda: data.math_record({"problem": "p", "answer": math.nan}, 6, "x"),
         Raises(ValueError, "finite")),
    case("record-boxed-solution", lambda: data.math_record({"problem": "p", "solution": "so \\boxed{5}"}, 7, "x")["answer"],
         "5"),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_adversarial_case(call, expected):
    check(call, expected)


@pytest.mark.parametrize("suffix, content, message", [
    (".jsonl", '{"problem": "p", "answer": "1"}\n{"problem": \n{"problem": "q", "answer": "2"}\n', "line 2 is not valid JSON"),
    (".json", '[{"problem": "p", "answer": "1"}', "not valid JSON"),
    (".json", '{"problem": "p"}', "expected a list of records"),
    (".json", "", "empty"),
])
def test_damaged_source_files_name_the_file(tmp_path, suffix, content, message):
    path = tmp_path / f"source{suffix}"
    path.write_text(content)
    with pytest.raises(BadFileError, match=message) as error:
        data.REGISTRY["aime24"].normaliser(path)
    assert str(path) in str(error.value)


def test_data_dir_that_is_a_file(tmp_path, monkeypatch):
    not_a_dir = tmp_path / "data.txt"
    not_a_dir.write_text("x")
    monkeypatch.setenv("DRA_DATA_DIR", str(not_a_dir))
    with pytest.raises(FileNotFoundError, match="DRA_DATA_DIR=.*data.txt is not a directory"):
        data.load("aime24")
