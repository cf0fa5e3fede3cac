"""The math-verify calls behind `dra.rewards.grade`, and the worker processes that run them under a time limit.

This module imports nothing from `dra`: besides being imported by `dra.rewards`, it runs as the grader's
worker process (``python -P dra/_verify.py``), which must start quickly and must not import torch.

Time limits. math-verify can run for minutes on an adversarial answer (a power tower, a symbolic 9 x 9
determinant), and a timer signal in the caller's own process is not a bound: it only works in the main
thread, it can land in code that swallows the exception (a finaliser), and it cannot interrupt a long C call
(a big-integer power). So every bounded grading runs in a worker process (`WorkerPool`, one worker per
concurrent caller, at most MAX_WORKERS = max(4, CPUs); callers beyond that wait for a free worker, so their
call takes longer than its limit), from any thread. Inside the worker, a SIGALRM timer (`deadline`, re-fired every 50 ms
until the work stops) ends ordinary overruns cheaply, the worker survives and answers "timeout". If it has
not answered `KILL_GRACE_S` seconds after the limit, the caller kills it (a new one starts on the next call);
a faulthandler watchdog makes it exit by itself at the same moment should the caller be gone. The caller's
own signals and timers are never touched.

Verdicts are strings so that they cross the process boundary unchanged: "true", "false", "none" (the gold
answer cannot be parsed), "timeout" or "error" (math-verify raised).
"""

from __future__ import annotations

import atexit
import faulthandler
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import math_verify.grader
import math_verify.parser
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

# We guard math-verify with our own timer; tell it not to warn that its own is switched off.
math_verify.parser.TIMEOUT_WARNING_SHOWN = True
math_verify.grader.TIMEOUT_WARNING_SHOWN = True

LATEX_CONFIG = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
VERDICTS = ("true", "false", "none", "timeout", "error")
KILL_GRACE_S = 1.0  # a worker that has not answered `timeout` + this many seconds later is killed
REFIRE_S = 0.05  # the in-worker timer fires again this often until the timed-out work has stopped
STARTUP_TIMEOUT_S = 120.0  # importing math-verify/sympy takes about 1 s on a quiet machine
MAX_WORKERS = max(4, os.cpu_count() or 1)


class GradingTimeout(BaseException):
    """Raised by the SIGALRM timer; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


# ----------------------------------------------------------------------------------------------- verdict

@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    # Wrapping in \boxed{} lets math-verify's LaTeX extractor read bare answers ("25", "\frac{1}{2}").
    return tuple(parse(f"\\boxed{{{gold}}}", extraction_config=LATEX_CONFIG, parsing_timeout=None))


def verdict(gold: str, answer: str | None, boxed: bool) -> str:
    """math-verify's judgement of `answer` (a boxed answer, or raw text to extract one from) against `gold`.

    No time limit here. "none" when the gold answer cannot be parsed, "false" when `answer` is None or yields
    nothing, "error" when math-verify raises.
    """
    try:
        gold_parsed = _parse_gold(gold)
        if not gold_parsed:
            return "none"
        if answer is None:
            return "false"
        text = f"\\boxed{{{answer}}}" if boxed else answer
        answer_parsed = parse(text, extraction_config=LATEX_CONFIG, parsing_timeout=None)
        if not answer_parsed:
            return "false"
        return "true" if verify(list(gold_parsed), answer_parsed, timeout_seconds=None) else "false"
    except Exception:  # noqa: BLE001 - math-verify raises many types on odd input; it is a wrong answer
        return "error"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise GradingTimeout in the main thread after `seconds`, and again every REFIRE_S seconds until the
    block is left (in case the first one was swallowed); restores the previous SIGALRM handler.

    Should the timer fire while the block is being left, the nested ``finally`` still disarms it.
    """
    armed = [True]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            raise GradingTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, REFIRE_S)
    try:
        yield
    finally:
        try:
            armed[0] = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def bounded_verdict(gold: str, answer: str | None, boxed: bool, timeout: float) -> str:
    """`verdict` under a SIGALRM deadline: the worker's loop (main thread of the worker process)."""
    try:
        with deadline(timeout):
            return verdict(gold, answer, boxed)
    except GradingTimeout:
        return "timeout"


# ------------------------------------------------------------------------------------------------ worker

def _serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """The worker's loop: one JSON request per line in, one verdict per line out, until end of input."""
    replies.write(b'"ready"\n')
    replies.flush()
    with open(os.devnull, "w") as devnull:
        for line in requests:
            request = json.loads(line)
            faulthandler.dump_traceback_later(request["timeout"] + KILL_GRACE_S, exit=True, file=devnull)
            try:
                result = bounded_verdict(request["gold"], request["answer"], request["boxed"], request["timeout"])
            finally:
                faulthandler.cancel_dump_traceback_later()
            replies.write(json.dumps(result).encode() + b"\n")
            replies.flush()


def _worker_main() -> None:
    # The protocol owns the original stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, replies)


class Worker:
    """One worker process and its pipes. Not thread-safe: the pool hands it to one caller at a time."""

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).resolve())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, bufsize=0, start_new_session=True, env=env,
        )
        self._pending = b""
        if self._read(STARTUP_TIMEOUT_S) != "ready":
            self.kill()
            self._stderr.seek(0)
            detail = self._stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(
                f"the grader's worker process ({sys.executable} {Path(__file__).resolve()}) did not start within "
                f"{STARTUP_TIMEOUT_S:.0f} s; grading off the main thread needs it. Its stderr: {detail or '(empty)'}"
            )

    def ask(self, request: dict[str, Any], seconds: float) -> str | None:
        """Send one request; its verdict, or None when no answer came within `seconds` (then kill this worker)."""
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
        except OSError:
            return None
        return self._read(seconds)

    def _read(self, seconds: float) -> str | None:
        end = time.monotonic() + seconds
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # the worker died
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        """End the worker politely (end of input), or kill it when it does not exit within a second."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=1.0)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self._stderr.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def forget(self) -> None:
        """In a forked child: close this process's copies of the pipes, leave the parent's worker alone."""
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            stream.close()


class WorkerPool:
    """Worker processes handed out one per concurrent caller, at most MAX_WORKERS; callers beyond wait."""

    def __init__(self, limit: int = MAX_WORKERS) -> None:
        self.limit = limit
        self._ready = threading.Condition()
        self._idle: list[Worker] = []
        self._live: set[Worker] = set()  # every started worker, idle or busy
        self._starting = 0

    def ask(self, gold: str, answer: str | None, boxed: bool, timeout: float) -> str:
        """The verdict from a worker; "timeout" when it did not answer in `timeout` + KILL_GRACE_S seconds."""
        worker = self._take()
        result = None
        try:
            request = {"gold": gold, "answer": answer, "boxed": boxed, "timeout": timeout}
            result = worker.ask(request, timeout + KILL_GRACE_S)
        finally:
            self._give_back(worker, healthy=result is not None)
        return "timeout" if result is None else result

    def _take(self) -> Worker:
        with self._ready:
            while not self._idle and self._starting + len(self._live) >= self.limit:
                self._ready.wait()
            if self._idle:
                return self._idle.pop()
            self._starting += 1
        worker = None
        try:
            worker = Worker()
        finally:
            with self._ready:
                self._starting -= 1
                if worker is not None:
                    self._live.add(worker)
                self._ready.notify()
        return worker

    def _give_back(self, worker: Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._ready:
            if healthy:
                self._idle.append(worker)
            else:
                self._live.discard(worker)
            self._ready.notify()

    def close(self) -> None:
        """End every idle worker (at exit, or to free their memory; the next call starts new ones)."""
        with self._ready:
            idle, self._idle = self._idle, []
            self._live.difference_update(idle)
        for worker in idle:
            worker.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the workers belong to the parent; drop this process's handles on them."""
        for worker in self._live:
            worker.forget()
        self._idle, self._live, self._starting = [], set(), 0
        self._ready = threading.Condition()


POOL = WorkerPool()
atexit.register(POOL.close)
os.register_at_fork(after_in_child=POOL.forget_after_fork)


if __name__ == "__main__":
    _worker_main()
