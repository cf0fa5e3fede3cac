"""dra.rewards under attack: bad arguments raise clearly, odd completions grade as documented, every call ends.

Time limits are checked with short timeouts so the module stays quick; scripts/check_grader.py measures the
full adversarial set at the default 5 s.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adversarial import Raises, case, check
from dra import _verify
from dra.rewards import (
    MAX_ANSWER_CHARS,
    accuracy_reward,
    boxed_contents,
    completion_text,
    cosine_reward,
    cosine_value,
    final_answer,
    format_reward,
    grade,
    is_correct,
    last_boxed,
    named_partial,
    paper_reward,
)

BOX = "<think>\nok\n</think>\n<answer>\n\\boxed{4}\n</answer>"
DET_9 = ("\\boxed{\\det\\begin{pmatrix}" + "\\\\".join(" & ".join(f"a_{{{i}{j}}}" for j in range(9)) for i in range(9))
         + "\\end{pmatrix}}")
SLOW = {"power_tower": ("\\boxed{9^{9^{9^{9}}}}", "9^{9^{9^{8}}}"), "symbolic_det_9x9": (DET_9, "0")}

ERRORS = [
    case("gold-None", lambda: is_correct(BOX, None), Raises(TypeError, r"gold .*None.*without an answer")),
    case("gold-bool", lambda: is_correct(BOX, True), Raises(TypeError, "gold")),
    case("gold-nan", lambda: is_correct(BOX, float("nan")), Raises(ValueError, "gold must be a finite number")),
    case("gold-inf", lambda: is_correct(BOX, np.float64("inf")), Raises(ValueError, "gold must be a finite")),
    case("gold-list", lambda: is_correct(BOX, ["4", "5"]), Raises(TypeError, "join them")),
    case("gold-dict", lambda: is_correct(BOX, {"answer": "4"}), Raises(TypeError, "gold")),
    case("gold-bytes", lambda: is_correct(BOX, b"4"), Raises(TypeError, "gold")),
    case("timeout-str", lambda: is_correct(BOX, "4", timeout="5"), Raises(TypeError, "timeout")),
    case("timeout-zero", lambda: is_correct(BOX, "4", timeout=0), Raises(ValueError, "timeout")),
    case("timeout-negative", lambda: is_correct(BOX, "4", timeout=-1), Raises(ValueError, "timeout")),
    case("timeout-nan", lambda: is_correct(BOX, "4", timeout=float("nan")), Raises(ValueError, "timeout")),
    case("timeout-inf", lambda: is_correct(BOX, "4", timeout=math.inf), Raises(ValueError, "timeout")),
    case("timeout-bool", lambda: is_correct(BOX, "4", timeout=True), Raises(TypeError, "timeout")),
    case("grade-timeout-list", lambda: grade(BOX, "4", timeout=[5]), Raises(TypeError, "timeout")),
    case("completions-str", lambda: accuracy_reward(BOX, answer=["4"]), Raises(TypeError, "completions.*single str")),
    case("completions-None", lambda: accuracy_reward(None, answer=["4"]), Raises(TypeError, "completions")),
    case("completions-dict", lambda: format_reward({"content": BOX}), Raises(TypeError, "completions")),
    case("completions-int", lambda: format_reward(3), Raises(TypeError, "completions")),
    case("completion-None-item", lambda: format_reward([None]), Raises(TypeError, "a completion must be")),
    case("completion-int-item", lambda: cosine_reward([4], answer=["4"]), Raises(TypeError, "a completion must be")),
    case("completion-bytes-item", lambda: format_reward([b"\n</think>\n"]), Raises(TypeError, "a completion")),
    case("message-content-int", lambda: format_reward([[{"role": "assistant", "content": 4}]]),
         Raises(TypeError, "content")),
    case("answer-str", lambda: accuracy_reward([BOX], answer="4"), Raises(TypeError, "answer.*single str")),
    case("solution-str", lambda: accuracy_reward([BOX], solution="\\boxed{4}"), Raises(TypeError, "solution")),
    case("answer-missing", lambda: cosine_reward([BOX]), Raises(ValueError, "gold answers")),
    case("answer-too-few", lambda: paper_reward([BOX, BOX], answer=["4"]), Raises(ValueError, "align")),
    case("answer-None-item", lambda: accuracy_reward([BOX], answer=[None]), Raises(TypeError, "gold")),
    case("answer-nan-item", lambda: cosine_reward([BOX], answer=[float("nan")]), Raises(ValueError, "gold")),
    case("max_len-nan", lambda: cosine_reward([BOX], answer=["4"], max_len=float("nan")), Raises(ValueError, "max_len")),
    case("max_len-zero", lambda: cosine_value(True, 3, max_len=0), Raises(ValueError, "max_len")),
    case("max_len-negative", lambda: cosine_value(True, 3, max_len=-10), Raises(ValueError, "max_len")),
    case("max_len-inf", lambda: cosine_value(True, 3, max_len=math.inf), Raises(ValueError, "max_len")),
    case("max_len-str", lambda: cosine_reward([BOX], answer=["4"], max_len="1000"), Raises(TypeError, "max_len")),
    case("clamp-str", lambda: cosine_reward([BOX], answer=["4"], clamp="yes"), Raises(TypeError, "clamp")),
    case("min_value_correct-nan", lambda: cosine_reward([BOX], answer=["4"], min_value_correct=float("nan")),
         Raises(ValueError, "min_value_correct")),
    case("max_value_wrong-inf", lambda: cosine_value(False, 3, max_value_wrong=-math.inf),
         Raises(ValueError, "max_value_wrong")),
    case("max_value_correct-str", lambda: cosine_value(True, 3, max_value_correct="1"),
         Raises(TypeError, "max_value_correct")),
    case("correct-str", lambda: cosine_value("yes", 3), Raises(TypeError, "correct")),
    case("correct-None", lambda: cosine_value(None, 3), Raises(TypeError, "correct")),
    case("length-negative", lambda: cosine_value(True, -1), Raises(ValueError, "length")),
    case("length-float", lambda: cosine_value(True, 1.5), Raises(TypeError, "length")),
    case("length-nan", lambda: cosine_value(True, float("nan")), Raises(TypeError, "length")),
    case("partial-name-space", lambda: named_partial(cosine_reward, "my reward"), Raises(ValueError, "name")),
    case("partial-name-None", lambda: named_partial(cosine_reward, None), Raises(ValueError, "name")),
    case("partial-func-int", lambda: named_partial(3, "x"), Raises(TypeError, "func")),
    case("completion_text-None", lambda: completion_text(None), Raises(TypeError, "completion must be")),
]

RESULTS = [
    # Completions are model output: never an error, and wrong or unreadable ones are incorrect.
    case("completion-None", lambda: is_correct(None, "4"), False),
    case("completion-int", lambda: is_correct(4, "4"), False),
    case("completion-whitespace", lambda: is_correct(" \n\t ", "4"), False),
    case("box-longer-than-cap", lambda: is_correct("\\boxed{" + "4" * (MAX_ANSWER_CHARS + 1) + "}", "4"), False),
    case("box-at-cap-is-read", lambda: is_correct("\\boxed{" + " " * (MAX_ANSWER_CHARS - 1) + "4}", "4"), True),
    case("1MB-box", lambda: is_correct("\\boxed{" + "1+" * 500_000 + "1}", "1"), False),
    case("1MB-text", lambda: is_correct("x" * 1_000_000 + " the final answer is 4", "4"), True),
    case("unclosed-boxes", lambda: is_correct("\\boxed{" * 100_000, "1"), False),
    case("nested-box", lambda: is_correct("\\boxed{\\boxed{3}}", "3"), True),
    case("fbox", lambda: is_correct("so \\fbox{7}", "7"), True),
    case("nul-bytes", lambda: is_correct("\x00\\boxed{3}\x00", "3"), True),
    case("answer-block-two-boxes", lambda: is_correct("<answer>\\boxed{1}, \\boxed{2}</answer>", "1, 2"), True),
    case("gold-float-whole", lambda: is_correct(BOX, 4.0), True),
    case("gold-numpy-int", lambda: is_correct(BOX, np.int64(4)), True),
    case("gold-fraction", lambda: is_correct("\\boxed{\\frac{1}{2}}", Fraction(1, 2)), True),
    case("gold-boxed", lambda: is_correct(BOX, "so \\boxed{4}"), True),
    case("gold-dollars", lambda: is_correct(BOX, "$4$"), True),
    case("gold-empty-is-unparseable", lambda: grade(BOX, ""), None),
    case("gold-empty-rewards-skip", lambda: cosine_reward([BOX], answer=[""]), [1.0]),
    case("timeout-None-no-limit", lambda: is_correct(BOX, "4", timeout=None), True),
    case("timeout-int", lambda: is_correct(BOX, "4", timeout=2), True),
    case("empty-batch", lambda: accuracy_reward([], answer=[]), []),
    case("tuple-completions", lambda: format_reward((BOX,)), [1.0]),
    case("message-content-None", lambda: format_reward([[{"role": "assistant", "content": None}]]), [0.0]),
    case("message-content-parts", lambda: format_reward([[{"role": "assistant", "content": [
        {"type": "text", "text": "a\n</think>\n"}, {"type": "image"}]}]]), [1.0]),
    case("empty-message-list", lambda: format_reward([[]]), [0.0]),
    case("numpy-bool-correct", lambda: cosine_value(np.bool_(True), 0), 1.0),
    case("boxed_contents-not-str", lambda: boxed_contents(None), []),
    case("boxed_contents-top-level", lambda: boxed_contents("\\boxed{a \\boxed{b}} \\boxed{c"), ["a \\boxed{b}"]),
    case("boxed_contents-inner-of-unclosed", lambda: boxed_contents("\\boxed{a \\boxed{b}"), ["b"]),
    case("last_boxed-stray-braces", lambda: last_boxed("}} \\boxed{x}} {"), "x"),
    case("final_answer-not-str", lambda: final_answer(["\\boxed{3}"]), None),
]


@pytest.mark.parametrize("call, expected", ERRORS + RESULTS)
def test_adversarial_case(call, expected):
    check(call, expected)


# ------------------------------------------------------------------------------------- boxes, linear time

def reference_boxes(text: str) -> list[str]:
    """The old quadratic scan (every complete box), keeping boxes not inside another complete box."""
    spans = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth = 1
        for pos in range(match.end(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                spans.append((match.end(), pos))
                break
    top = [s for s in spans if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans)]
    return [text[a:b].strip() for a, b in top]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["\\boxed{", "\\fbox {", "{", "}", "a", " ", "1"]), max_size=40).map("".join))
def test_boxed_contents_equals_the_reference_scan(text):
    assert boxed_contents(text) == reference_boxes(text)


@pytest.mark.parametrize("text", ["\\boxed{" * 200_000, "\\boxed{" * 50_000 + "1" + "}" * 50_000,
                                  "{" * 300_000 + "\\boxed{1}", "}{" * 300_000])
def test_boxed_contents_is_linear_on_pathological_text(text):
    start = time.perf_counter()
    boxed_contents(text)
    final_answer("<answer>" + text)
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------------------------------ time limits

@pytest.mark.parametrize("name", list(SLOW))
def test_time_limit_in_the_main_thread(name):
    is_correct("\\boxed{1}", "1")  # the worker is started (about 1 s, once per process)
    start = time.perf_counter()
    assert is_correct(*SLOW[name], timeout=1.0) is False
    assert time.perf_counter() - start < 1.0 + _verify.KILL_GRACE_S + 0.5


def test_time_limit_in_a_thread_pool():
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: is_correct("\\boxed{1}", "1"), range(2)))  # start the workers first

        def timed(case_):
            start = time.perf_counter()
            return is_correct(*case_, timeout=1.0), time.perf_counter() - start

        results = list(pool.map(timed, SLOW.values()))
    assert all(verdict is False and seconds < 1.0 + _verify.KILL_GRACE_S + 1.5 for verdict, seconds in results), results


def test_grading_in_threads_agrees_with_the_main_thread():
    cases = [(BOX, "4"), (BOX, "5"), ("\\boxed{\\frac{1}{2}}", "0.5"), ("no box", "1"), (BOX, ""),
             ("\ud800 \\boxed{3} \x00", "3"), ("\\boxed{" + "9" * (MAX_ANSWER_CHARS + 1) + "}", "9")]
    expected = [grade(*c) for c in cases]
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(lambda c: grade(*c), cases)) == expected == [True, False, True, False, None, True, False]


def test_a_timer_the_caller_set_is_left_alone():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        assert is_correct(BOX, "4") is True  # graded by a worker: the caller's timer is not touched
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < remaining <= 30.0 and signal.getsignal(signal.SIGALRM) is not previous
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired


def test_the_callers_alarm_handler_is_untouched():
    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        assert is_correct(*SLOW["power_tower"], timeout=0.5) is False
        assert signal.getsignal(signal.SIGALRM) is handler
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_the_worker_timer_fires_again_when_its_exception_is_swallowed():
    before = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(_verify.GradingTimeout):
        with _verify.deadline(0.1):
            try:
                time.sleep(2)
            except _verify.GradingTimeout:
                pass  # as a finaliser or a careless except clause would
            time.sleep(2)
    assert time.perf_counter() - start < 1.0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_a_worker_that_does_not_answer_is_killed_and_replaced():
    pool = _verify.WorkerPool(limit=1)
    try:
        worker = pool._take()
        request = {"gold": "0", "answer": DET_9[len("\\boxed{"):-1], "boxed": True, "timeout": 30.0}
        assert worker.ask(request, seconds=0.2) is None  # no answer in time
        pool._give_back(worker, healthy=False)
        assert worker.process.poll() is not None  # killed
        assert pool.ask("4", "4", True, 5.0) == "true"  # a fresh worker took its place
    finally:
        pool.close()


def test_a_worker_that_cannot_start_raises_and_frees_its_slot(monkeypatch):
    pool = _verify.WorkerPool(limit=1)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(_verify.sys, "executable", "/bin/false")
            with pytest.raises(RuntimeError, match="worker process .* did not start"):
                pool.ask("4", "4", True, 5.0)
        assert pool.ask("4", "4", True, 5.0) == "true"  # the failed start did not use up the only slot
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_grades_with_its_own_workers():
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(is_correct, BOX, "4").result() is True  # the parent now has a worker
    pid = os.fork()
    if pid == 0:  # the child: grade off the main thread, then exit with the verdict
        verdict = [None]
        thread = threading.Thread(target=lambda: verdict.__setitem__(0, is_correct(BOX, "4")))
        thread.start()
        thread.join()
        os._exit(0 if verdict[0] is True else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with ThreadPoolExecutor(1) as pool:  # the parent's worker still answers
        assert pool.submit(is_correct, BOX, "5").result() is False
