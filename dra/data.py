"""The registry of every external dataset the project uses, and one loader for all of them.

``load(name, split=None) -> list[dict]`` returns plain Python records (a list of dicts, not a
``datasets.Dataset``: the sets are small, and plain records are what the graders, samplers and notebooks
iterate over; wrap with ``datasets.Dataset.from_list`` when a trainer needs one). Every record has

- ``id`` (str), ``problem`` (str), ``answer`` (str: the gold answer as bare LaTeX, normalised as below),
- ``solution`` (str) where the source has a worked solution,
- ``answers`` (list[str]) for OlympiadBench items with several answers (``answer`` joins them with ", "),
- ``meta`` (dict): the source's remaining small fields (level, subject, url, answer_type, ...).

Completions datasets add, per prompt:

- ``completions`` (list[str]): the sampled completions,
- ``correct`` (list[bool]): the source's own grade of each completion (qwen_math_cot_100: ``score``;
  game24: ``infos[k]["r"] == 1``); qwen_math_cot_100 also keeps the source's extracted answers in ``preds``.
  For game24, ``problem`` is the four numbers ("4 5 6 10") and ``answer`` is "24".

Rows without any gold answer are an error, except in math_train, whose source has four (rows 886, 1009, 5328,
5330: null or empty answers): they are left out with a logged warning, so it loads 7,470 of 7,474 problems.

Answer normalisation: AMC floats become integers where they are whole (27.0 -> "27"); answers made of digits
lose leading zeros (AIME "025" -> "25"); Minerva's gold answer is the last ``\\boxed{}`` of its solution;
OlympiadBench's ``final_answer`` strings lose their ``$`` delimiters and several answers are split into
``answers``.

Where files come from, in order: ``$DRA_DATA_DIR/<path>`` (checked against the registry's sha256; a
mismatch raises), then the cache (``dra.config.cache_dir()/data/<path>``), then a download of the pinned
upstream file (raw.githubusercontent.com at a fixed commit), verified before it enters the cache.
Downloads are skipped when ``DRA_OFFLINE``, ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set; then, or
when the download fails, the error names the environment variable and the file expected. ``open_rs``
(knoveleng/open-rs, the paper's training set) exists on the Hugging Face Hub only and is loaded with
``datasets.load_dataset``; the five benchmarks can also be read from their Hub copies with
``load(name, source="hub")``. Hub datasets are not pinned to a revision here (pass ``revision=``).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from dra import checks, embed
from dra.config import cache_dir, data_dir
from dra.io import BadFileError, atomic_path, read_json, read_jsonl
from dra.rewards import last_boxed

logger = logging.getLogger(__name__)

QWEN_EVAL = "QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/evaluation/data"
SIMPLERL = "hkust-nlp/simpleRL-reason/cf1c7858bfc145a27aa733e75d930d34f0d318a6/examples/simplelr_math_eval/data"
TOT = "princeton-nlp/tree-of-thought-llm/ab400345c5ea39d28ea6d7d3be0e417b11113c87"
RLLM = "agentica-project/rllm/874daa4acb7f451dc2a4b2b6e8ce28f5aa88d1f5/rllm/data/train/math"
RAW = "https://raw.githubusercontent.com/"
DOWNLOAD_TIMEOUT_S = 30
OFFLINE_VARS = ("DRA_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class DataFile:
    """One upstream file: where it lives under the data directory, its pinned URL and its sha256."""

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: str  # "benchmark" | "completions" | "train"
    license: str
    normaliser: Callable[..., list[dict]] | None  # (*local file paths) -> records; None for Hub-only sets
    files: tuple[DataFile, ...] = ()
    hub_id: str | None = None
    hub_split: str = "train"
    split: str = "test"  # the one split the local files hold
    description: str = ""


# ------------------------------------------------------------------------------------------ normalisers

_DIGITS = re.compile(r"^\d+$")
_DOLLAR_ITEMS = re.compile(r"\$([^$]*)\$")


def normalise_answer(value: Any) -> str:
    """A gold answer as a bare string: whole floats as integers, leading zeros of digit strings dropped.

    Takes a string or a finite number; None, a bool, NaN or anything else raises (a missing answer is the
    caller's to handle, not an empty string to grade against).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"a gold answer must be a string or a number, got {type(value).__name__} {value!r:.60}.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a gold answer must be a finite number, got {value!r}.")
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    if _DIGITS.match(text):
        return str(int(text))
    if len(text) >= 2 and text.startswith("$") and text.endswith("$") and text.count("$") == 2:
        text = text[1:-1].strip()
    return text


def split_olympiad_answers(final_answer: Iterable[str]) -> list[str]:
    """OlympiadBench's answer strings ("$69$,$84$", "1,3,5", "$(1,1), (3,2)$") as a list of answers.

    Items are separated where the source delimits each with dollars ("$a$,$b$"); a single string such as
    "1,3,5" or "$(1,1), (3,2)$" stays one answer (math-verify compares it as a set/tuple).
    """
    answers: list[str] = []
    for text in checks.items(final_answer, "final_answer", "answer strings"):
        if not isinstance(text, str):
            raise TypeError(f"final_answer must hold strings, got {type(text).__name__} {text!r:.60}.")
        items = _DOLLAR_ITEMS.findall(text)
        if len(items) > 1:
            answers.extend(normalise_answer(item) for item in items)
        else:
            answers.append(normalise_answer(items[0] if items else text))
    return answers


_PROBLEM_KEYS = ("problem", "question", "Problem", "query")
_ANSWER_KEYS = ("answer", "final_answer", "gt", "Answer", "expected_answer")
_ID_KEYS = ("id", "idx", "unique_id", "ID")
_TEXT_KEYS = _PROBLEM_KEYS + ("solution", "gt_cot", "code", "response", "pred", "score", "report", "pred_score",
                              "history", "system", "context")


def math_record(row: dict, index: int, name: str) -> dict:
    """Any of the sources' field layouts -> {id, problem, answer[, solution, answers], meta}."""
    if not isinstance(row, dict):
        raise TypeError(f"{name} row {index} must be a JSON object (a dict), got {type(row).__name__}.")
    problem = next((row[k] for k in _PROBLEM_KEYS if row.get(k)), None)
    if problem is None:
        raise ValueError(f"{name} row {index} has no problem field (looked for {_PROBLEM_KEYS}); fields: {sorted(row)}.")
    record: dict[str, Any] = {"id": f"{name}-{row.get(next((k for k in _ID_KEYS if k in row), ''), index)}",
                              "problem": str(problem)}
    raw_answer = next((row[k] for k in _ANSWER_KEYS if row.get(k) not in (None, "", [])), None)
    solution = row.get("solution")
    if isinstance(raw_answer, list):
        answers = split_olympiad_answers(raw_answer)
        record["answer"] = ", ".join(answers)
        if len(answers) > 1:
            record["answers"] = answers
    elif raw_answer is not None:
        record["answer"] = normalise_answer(raw_answer)
    elif solution and last_boxed(solution) is not None:  # Minerva: the answer is boxed in the solution
        record["answer"] = normalise_answer(last_boxed(solution))
    else:
        raise MissingAnswer(f"{name} row {index} has no answer field (looked for {_ANSWER_KEYS} and a boxed solution).")
    if solution:
        record["solution"] = str(solution)
    record["meta"] = {k: v for k, v in row.items() if k not in _TEXT_KEYS and k not in _ANSWER_KEYS
                      and k not in _ID_KEYS and not isinstance(v, (list, dict))}
    return record


def _read_rows(path: Path) -> list[dict]:
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if not isinstance(rows, list):
        raise BadFileError(path, f"expected a list of records, got a JSON {type(rows).__name__}.")
    return rows


class MissingAnswer(ValueError):
    """A source row without a gold answer."""


def _math_file(name: str, drop_unanswered: bool = False) -> Callable[[Path], list[dict]]:
    def normalise(path: Path) -> list[dict]:
        records, dropped = [], []
        for i, row in enumerate(_read_rows(path)):
            try:
                records.append(math_record(row, i, name))
            except MissingAnswer:
                if not drop_unanswered:
                    raise
                dropped.append(i)
        if dropped:
            logger.warning("%s: left out %d source rows without a gold answer (rows %s)", name, len(dropped), dropped)
        return records

    normalise.__name__ = f"normalise_{name}"
    return normalise


def _math_hub(name: str) -> Callable[[Iterable[dict]], list[dict]]:
    def normalise(rows: Iterable[dict]) -> list[dict]:
        return [math_record(dict(row), i, name) for i, row in enumerate(rows)]

    normalise.__name__ = f"normalise_{name}_hub"
    return normalise


def normalise_qwen_math_cot(path: Path) -> list[dict]:
    """100 MATH prompts x 8 Qwen2.5-Math completions with the source's grades (``score``) and predictions."""
    records = []
    for i, row in enumerate(_read_rows(path)):
        record = math_record({**row, "answer": row.get("gt", row.get("answer"))}, i, "qwen_math_cot_100")
        record.update(completions=list(row["code"]), correct=[bool(s) for s in row["score"]],
                      preds=[str(p) for p in row["pred"]])
        records.append(record)
    return records


def normalise_game24(completions_path: Path, puzzles_path: Path) -> list[dict]:
    """100 Game-of-24 puzzles (idx 900-999) x 100 GPT-4 chain-of-thought samples with 0/1 rewards."""
    with puzzles_path.open(encoding="utf-8", newline="") as handle:
        puzzles = [row["Puzzles"] for row in csv.DictReader(handle)]
    records = []
    for row in _read_rows(completions_path):
        idx = int(row["idx"])
        records.append({
            "id": f"game24-{idx}", "problem": puzzles[idx], "answer": "24",
            "completions": list(row["ys"]), "correct": [info.get("r") == 1 for info in row["infos"]],
            "meta": {"puzzle_index": idx},
        })
    return records


def _github(repo_path: str) -> str:
    return RAW + repo_path


def _benchmark(name: str, upstream: str, sha256: str, hub_id: str, hub_split: str, license: str) -> DatasetEntry:
    return DatasetEntry(
        name=name, kind="benchmark", license=license, normaliser=_math_file(name),
        files=(DataFile(f"benchmarks/{name}.jsonl", _github(upstream), sha256),),
        hub_id=hub_id, hub_split=hub_split, split="test",
    )


REGISTRY: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in [
        _benchmark("aime24", f"{QWEN_EVAL}/aime24/test.jsonl",
                   "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
                   "HuggingFaceH4/aime_2024", "train", "MIT (QwenLM/Qwen2.5-Math)"),
        _benchmark("math500", f"{SIMPLERL}/math500/test.jsonl",
                   "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
                   "HuggingFaceH4/MATH-500", "test", "MIT (hkust-nlp/simpleRL-reason; MATH-500 of openai/prm800k)"),
        _benchmark("amc23", f"{QWEN_EVAL}/amc23/test.jsonl",
                   "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
                   "knoveleng/AMC-23", "train", "MIT (QwenLM/Qwen2.5-Math)"),
        _benchmark("minerva", f"{QWEN_EVAL}/minerva_math/test.jsonl",
                   "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
                   "knoveleng/Minerva-Math", "train", "MIT (QwenLM/Qwen2.5-Math)"),
        _benchmark("olympiadbench", f"{QWEN_EVAL}/olympiadbench/test.jsonl",
                   "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
                   "knoveleng/OlympiadBench", "train", "MIT (QwenLM/Qwen2.5-Math)"),
        DatasetEntry(
            name="qwen_math_cot_100", kind="completions", license="MIT (QwenLM/Qwen2.5-Math)",
            normaliser=normalise_qwen_math_cot, split="test",
            files=(DataFile("completions/qwen_math_cot_100.jsonl",
                            _github(f"{QWEN_EVAL}/eval_rm_maj_example/math_cot_100.jsonl"),
                            "5b9128525733336c4b5bf5d3222f72b18655a305258dc09c301b546e9365ba5e"),),
            description="100 MATH prompts x 8 sampled, graded completions",
        ),
        DatasetEntry(
            name="game24", kind="completions", license="MIT (princeton-nlp/tree-of-thought-llm)",
            normaliser=normalise_game24, split="test",
            files=(
                DataFile("completions/game24_gpt4_cot_100x100.json",
                         _github(f"{TOT}/logs/game24/gpt-4_0.7_naive_cot_sample_100_start900_end1000.json"),
                         "fd2850ed9f9265129d9dca1d9de306e2026bdf0e367668eb99146e64922d6824"),
                DataFile("completions/game24_puzzles.csv", _github(f"{TOT}/src/tot/data/24/24.csv"),
                         "b9f12b3e36d987a3c714c4cef17d89a137d7c59da26532fcfb93b4821d8111b5"),
            ),
            description="100 Game-of-24 puzzles x 100 GPT-4 CoT samples with 0/1 rewards",
        ),
        DatasetEntry(
            name="math_train", kind="train", license="MIT (agentica-project/rllm)", normaliser=_math_file("math_train", drop_unanswered=True),
            split="train",
            files=(DataFile("train/math_train.json", _github(f"{RLLM}/math.json"),
                            "569230b362fd501e1a33d8f29aae3b4b989d32e2b91b07c3f48493528c3bf6d2"),),
            description="7,474 MATH training problems (offline stand-in for open_rs)",
        ),
        DatasetEntry(
            name="aime_train", kind="train", license="MIT (agentica-project/rllm)", normaliser=_math_file("aime_train"),
            split="train",
            files=(DataFile("train/aime_1983_2023.json", _github(f"{RLLM}/aime.json"),
                            "78f1b9bae6d00794b43e79a5842917f7ef4e355d9b705743c61f255f3c7c5d49"),),
            description="975 AIME 1983-2023 problems (a DeepScaleR component; offline stand-in for open_rs)",
        ),
        DatasetEntry(
            name="open_rs", kind="train", license="MIT (knoveleng/open-rs)", normaliser=None,
            hub_id="knoveleng/open-rs", hub_split="train", split="train",
            description="the paper's 7,000 training problems (s1 + DeepScaleR); Hugging Face Hub only",
        ),
    ]
}
BENCHMARKS: tuple[str, ...] = tuple(n for n, e in REGISTRY.items() if e.kind == "benchmark")


# ------------------------------------------------------------------------------------------------ loading

def load(name: str, split: str | None = None, *, source: str = "auto", revision: str | None = None) -> list[dict]:
    """Normalised records of a registered dataset (see the module docstring for shape and file order).

    `source`: "auto" (local files where the entry has them, else the Hub), "files" or "hub".
    """
    entry = _entry(name)
    if source not in ("auto", "files", "hub"):
        raise ValueError(f"source must be 'auto', 'files' or 'hub', got {source!r}.")
    use_hub = source == "hub" or (source == "auto" and not entry.files)
    if use_hub:
        if not entry.hub_id:
            raise ValueError(f"{name} has no Hugging Face Hub copy; load it from files (source='files').")
        return _math_hub(name)(_hub_rows(entry, split or entry.hub_split, revision))
    if not entry.files:
        raise ValueError(f"{name} exists on the Hugging Face Hub only ({entry.hub_id}); use source='hub'.")
    if split not in (None, entry.split):
        raise ValueError(f"{name}'s files hold one split, {entry.split!r}; got split={split!r}.")
    return entry.normaliser(*(fetch(f) for f in entry.files))


def _entry(name: str) -> DatasetEntry:
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}


def _verified_sha256(path: Path) -> str:
    """sha256 of `path`, computed once per process for an unchanged file (keyed by path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_of(path)
    return _VERIFIED[key]


def downloads_allowed() -> bool:
    return not any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_VARS)


def fetch(data_file: DataFile) -> Path:
    """A verified local copy of `data_file`: $DRA_DATA_DIR, else the cache, else a checked download."""
    local_root = data_dir()
    if local_root is not None:
        local = local_root / data_file.path
        if local.is_file():
            actual = _verified_sha256(local)
            if actual != data_file.sha256:
                raise ValueError(
                    f"checksum mismatch for {local}: sha256 {actual}, expected {data_file.sha256} (the pinned "
                    f"upstream file {data_file.url}). Replace the file with that version, or unset DRA_DATA_DIR "
                    "to use the cache and download."
                )
            return local
    cached = cache_dir() / "data" / data_file.path
    if cached.is_file():
        if _verified_sha256(cached) == data_file.sha256:
            return cached
        cached.unlink()  # a stale or damaged cache entry: fetch it again
    problem = _download(data_file, cached)
    if problem is None:
        return cached
    where = f"{local_root / data_file.path} is missing" if local_root else "DRA_DATA_DIR is not set"
    raise FileNotFoundError(
        f"cannot find {data_file.path}: {where}, it is not in the cache ({cached}), and {problem}. Point "
        f"DRA_DATA_DIR at a directory holding {data_file.path} (in CI: ../shared/data), or download "
        f"{data_file.url} (sha256 {data_file.sha256}) there."
    )


def _download(data_file: DataFile, target: Path) -> str | None:
    """Download and verify into `target`; None on success, else why it failed."""
    if not downloads_allowed():
        return f"downloads are off ({'/'.join(OFFLINE_VARS)} is set)"
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(data_file.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                tmp.write_bytes(response.read())
            actual = sha256_of(tmp)
            if actual != data_file.sha256:
                raise ValueError(f"the download has sha256 {actual}, expected {data_file.sha256}")
    except (OSError, ValueError) as error:
        return f"the download from {data_file.url} failed ({error})"
    return None


def _hub_rows(entry: DatasetEntry, split: str, revision: str | None) -> Iterable[dict]:
    stand_ins = ", ".join(n for n, e in REGISTRY.items() if e.kind == entry.kind and e.files)
    try:
        import datasets

        if not embed.hub_offline() and not embed.hub_reachable():
            raise ConnectionError("huggingface.co is unreachable")
        return datasets.load_dataset(entry.hub_id, split=split, revision=revision)
    except Exception as error:  # noqa: BLE001 - datasets raises many types; the user needs one message
        raise ConnectionError(
            f"cannot load {entry.hub_id} (split {split!r}) from the Hugging Face Hub or its local cache: {error}. "
            f"Offline, use the local files: load(...) of {stand_ins or 'a registered file dataset'} with "
            "DRA_DATA_DIR set."
        ) from error
