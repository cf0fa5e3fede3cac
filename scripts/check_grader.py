"""Grade every benchmark's reference answer through dra.rewards.is_correct, as a model would write it.

Checks, per benchmark (AIME24, MATH-500, AMC23, Minerva, OlympiadBench):

- ``paper``: the gold answer at the end of a short solution in the paper's training format
  ``<think>\\n...\\n</think>\\n<answer>\\nThe final answer is \\boxed{ANSWER}.\\n</answer>`` -> must be correct;
- ``eval``: the gold answer in the last line the evaluation prompt asks for ("Therefore, the final answer is:
  $\\boxed{ANSWER}$. I hope it is correct") -> must be correct;
- ``paper_multi_box``: OlympiadBench items with several answers, each answer in its own box inside the
  ``<answer>`` block ("\\boxed{69}, \\boxed{84}") -> must be correct;
- ``wrong``: the next item's (different) answer in the paper format -> must be *incorrect*; a "correct" here
  is a false positive, or two items whose answers are genuinely equal.

Plus the real completions of qwen_math_cot_100 (800 Qwen2.5-Math outputs): is_correct against the source's
own grade (``score``).

Every disagreement is listed with a reason. Writes data/grader_agreement.csv and .json (atomic, with
provenance) and prints the table and answers/s. Needs DRA_DATA_DIR (or the cache / a download).

Then the time limit under attack: a fixed set of adversarial completions (a power tower, a 9 x 9 symbolic
determinant, 200k unclosed boxes, a 1 MB box, ...) is graded once from the main thread and once from a pool of
threads, each call timed (either way a worker process does the work: it stops itself at the limit or is killed
1 s later). Writes data/grader_adversarial.json: seconds per case and mode, the worst case, the time limit,
and how long the pool's worker processes took to start (paid once per process and thread, not per call).

    DRA_DATA_DIR=../shared/data .venv/bin/python scripts/check_grader.py                  # both parts
    .venv/bin/python scripts/check_grader.py --only adversarial                          # the timing alone
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dra import profiles
from dra.config import results_dir
from dra.data import BENCHMARKS, load
from dra.reports import NESTED, save_result
from dra.io import write_text
from dra.rewards import DEFAULT_TIMEOUT_S, final_answer, grade, is_correct

WRAPPERS = {
    "paper": "<think>\nWe work through the problem step by step.\n</think>\n<answer>\nThe final answer is "
             "\\boxed{{{answer}}}.\n</answer>",
    "eval": "We work through the problem step by step.\nTherefore, the final answer is: $\\boxed{{{answer}}}$. "
            "I hope it is correct",
}
GOAL = 0.99
# Gold answers that are not mathematics a grader can compare: code, prose, approximations.
_QUIRK = re.compile(r"np\.|\\text\s*\{[^}]*[a-z]{4,}|\\approx|\bor\b|\\quad|\\mho")


def reason(gold: str, written: str, verdict: bool | None, seconds: float, expected: bool) -> str:
    """Why a check disagreed: a data quirk when the gold answer is not comparable maths, else a grader limit."""
    if seconds >= DEFAULT_TIMEOUT_S * 0.95:
        return "grader limit: math-verify timed out"
    if verdict is None:
        return "grader limit: math-verify cannot parse the gold answer"
    if not expected and grade(WRAPPERS["paper"].format(answer=gold), written) is True:
        return "not an error: the two items' answers are mathematically equal"
    if _QUIRK.search(gold):
        return "data quirk: the gold answer is code, prose or an approximation"
    if not expected:
        return "grader limit: a different answer graded correct"
    return "grader limit: math-verify does not equate the answer with itself"


def timed_grade(completion: str, gold: str) -> tuple[bool | None, float]:
    start = time.perf_counter()
    verdict = grade(completion, gold)
    return verdict, time.perf_counter() - start


def _next_different(records: list[dict], i: int) -> str | None:
    gold = records[i]["answer"]
    return next((r["answer"] for r in records[i + 1:] + records[:i] if r["answer"] != gold), None)


def _separate_boxes(record: dict) -> str | None:
    if "answers" not in record:
        return None
    return "<think>\nWe work through the problem step by step.\n</think>\n<answer>\nThe answers are " + \
        ", ".join(f"\\boxed{{{a}}}" for a in record["answers"]) + ".\n</answer>"


# check name -> (what the model writes for record i, or None to skip; whether it must be graded correct)
CHECKS: dict[str, tuple] = {
    "paper": (lambda recs, i: WRAPPERS["paper"].format(answer=recs[i]["answer"]), True),
    "eval": (lambda recs, i: WRAPPERS["eval"].format(answer=recs[i]["answer"]), True),
    "paper_multi_box": (lambda recs, i: _separate_boxes(recs[i]), True),
    "wrong": (lambda recs, i: (lambda other: other and WRAPPERS["paper"].format(answer=other))(_next_different(recs, i)),
              False),
}


def check_benchmark(name: str) -> tuple[list[dict], list[dict]]:
    records = load(name)
    rows, disagreements = [], []
    for check, (write, expected) in CHECKS.items():
        agree, seconds, n = 0, 0.0, 0
        for i, record in enumerate(records):
            completion = write(records, i)
            if completion is None:
                continue
            verdict, took = timed_grade(completion, record["answer"])
            n += 1
            seconds += took
            if (verdict is True) == expected:
                agree += 1
            else:
                written = final_answer(completion)
                disagreements.append({"benchmark": name, "check": check, "id": record["id"], "gold": record["answer"],
                                      "written": written, "verdict": verdict,
                                      "reason": reason(record["answer"], written, verdict, took, expected)})
        if n:
            rows.append({"benchmark": name, "check": check, "n": n, "agree": agree, "rate": agree / n,
                         "answers_per_s": n / seconds})
    return rows, disagreements


def check_real_completions() -> tuple[list[dict], list[dict]]:
    rows, disagreements = [], []
    agree, n, seconds = 0, 0, 0.0
    for record in load("qwen_math_cot_100"):
        for k, (completion, source_grade) in enumerate(zip(record["completions"], record["correct"])):
            verdict, took = timed_grade(completion, record["answer"])
            n += 1
            seconds += took
            if (verdict is True) == source_grade:
                agree += 1
            else:
                disagreements.append({
                    "benchmark": "qwen_math_cot_100", "check": "vs_source_grade", "id": f"{record['id']}/{k}",
                    "gold": record["answer"], "written": final_answer(completion) or record["preds"][k],
                    "verdict": verdict, "source_grade": source_grade,
                    "reason": ("is_correct accepts what the source grader rejected" if verdict else
                               "is_correct rejects what the source grader accepted")
                              + f" (source pred: {record['preds'][k]!r})",
                })
    rows.append({"benchmark": "qwen_math_cot_100", "check": "vs_source_grade", "n": n, "agree": agree,
                 "rate": agree / n, "answers_per_s": n / seconds})
    return rows, disagreements


def _determinant(n: int) -> str:
    rows = "\\\\".join(" & ".join(f"a_{{{i}{j}}}" for j in range(n)) for i in range(n))
    return f"\\boxed{{\\det\\begin{{pmatrix}}{rows}\\end{{pmatrix}}}}"


# name -> (completion, gold): each took minutes (or never ended) off the main thread before the worker process.
ADVERSARIAL: dict[str, tuple[str, str]] = {
    "power_tower": ("\\boxed{9^{9^{9^{9}}}}", "9^{9^{9^{8}}}"),
    "huge_power": ("\\boxed{9^{999999999}}", "3"),
    "huge_factorial": ("\\boxed{(10^{6})!}", "1"),
    "symbolic_det_9x9": (_determinant(9), "0"),
    "unclosed_boxes_200k": ("\\boxed{" * 200_000, "1"),
    "nested_boxes_50k": ("\\boxed{" * 50_000 + "1" + "}" * 50_000, "1"),
    "box_1MB": ("\\boxed{" + "1+" * 500_000 + "1}", "1"),
    "answer_block_10k_boxes": ("<answer>" + "\\boxed{12345678}, " * 10_000 + "</answer>", "1"),
    "text_1MB_no_box": ("1+" * 500_000 + "1", "1"),
    "open_braces_200k": ("{" * 200_000 + "\\boxed{1}", "1"),
}


def _timed_is_correct(case: tuple[str, str]) -> tuple[bool, float]:
    start = time.perf_counter()
    verdict = is_correct(*case)
    return verdict, time.perf_counter() - start


def adversarial_timing(threads: int = 4) -> dict:
    """Seconds per adversarial call from the main thread and from a thread pool (after its workers started)."""
    main = {name: _timed_is_correct(case) for name, case in ADVERSARIAL.items()}
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()  # start one worker process per thread, as a long-running trainer would
        list(pool.map(_timed_is_correct, [("\\boxed{1}", "1")] * threads))
        startup = time.perf_counter() - start
        pooled = dict(zip(ADVERSARIAL, pool.map(_timed_is_correct, ADVERSARIAL.values())))
    cases = [{"case": name, "main_thread_s": round(main[name][1], 3), "thread_pool_s": round(pooled[name][1], 3),
              "graded_correct": main[name][0] or pooled[name][0]} for name in ADVERSARIAL]
    return {"timeout_s": DEFAULT_TIMEOUT_S, "threads": threads, "cases": cases,
            "worst_main_thread_s": max(c["main_thread_s"] for c in cases),
            "worst_thread_pool_s": max(c["thread_pool_s"] for c in cases),
            "worker_startup_s": round(startup, 3)}


def report_adversarial(out: Path, profile: str) -> None:
    result = adversarial_timing()
    print(f"\n{'adversarial case':<24} {'main thread s':>14} {'thread pool s':>14}")
    for case in result["cases"]:
        print(f"{case['case']:<24} {case['main_thread_s']:>14.2f} {case['thread_pool_s']:>14.2f}")
    print(f"worst case: {result['worst_main_thread_s']:.2f} s (main thread), {result['worst_thread_pool_s']:.2f} s "
          f"(thread pool); time limit {result['timeout_s']} s; {result['threads']} worker processes started in "
          f"{result['worker_startup_s']:.2f} s")
    save_result("grader_adversarial", result, profile, None, path=out / "grader_adversarial.json", layout=NESTED,
                script="scripts/check_grader.py", part="adversarial", load_average_1min=round(os.getloadavg()[0], 2))
    print(f"wrote {out / 'grader_adversarial.json'}")


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def report_agreement(out: Path, profile: str) -> None:
    start = time.perf_counter()
    rows, disagreements = [], []
    for name in BENCHMARKS:
        more_rows, more_disagreements = check_benchmark(name)
        rows += more_rows
        disagreements += more_disagreements
    more_rows, more_disagreements = check_real_completions()
    rows += more_rows
    disagreements += more_disagreements
    wall = time.perf_counter() - start

    print(f"{'benchmark':<18} {'check':<16} {'n':>5} {'agree':>6} {'rate':>7} {'answers/s':>10}")
    for row in rows:
        flag = "" if row["rate"] >= GOAL else "  < goal"
        print(f"{row['benchmark']:<18} {row['check']:<16} {row['n']:>5} {row['agree']:>6} {row['rate']:>7.2%} "
              f"{row['answers_per_s']:>10.0f}{flag}")
    total = sum(r["n"] for r in rows)
    print(f"\n{total} gradings in {wall:.1f} s ({total / wall:.0f} answers/s overall)")
    print(f"\n{len(disagreements)} disagreements:")
    for d in disagreements:
        print(f"  [{d['benchmark']}/{d['check']}] {d['id']}: gold {d['gold']!r}, written {d['written']!r}, "
              f"verdict {d['verdict']} -> {d['reason']}")

    write_text(out / "grader_agreement.csv", to_csv(rows))
    save_result("grader_agreement", {"goal": GOAL, "table": rows, "disagreements": disagreements}, profile, None,
                path=out / "grader_agreement.json", layout=NESTED, script="scripts/check_grader.py",
                wall_seconds=round(wall, 2), timeout_s=DEFAULT_TIMEOUT_S)
    print(f"\nwrote {out / 'grader_agreement.csv'} and .json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=results_dir(), help="where to write grader_*.json/csv")
    parser.add_argument("--only", choices=("agreement", "adversarial"), help="run one part only")
    args = parser.parse_args(argv)
    profile = profiles.from_environment().name  # recorded in the results' provenance
    if args.only != "adversarial":
        report_agreement(args.out, profile)
    if args.only != "agreement":
        report_adversarial(args.out, profile)
    return 0



if __name__ == "__main__":
    sys.exit(main())
