"""The paper's reward functions and the project's single grading function.

`is_correct(completion, gold)` is what every other module grades with: the final ``\\boxed{...}`` of the
completion (the paper's ``<answer> \\boxed{...} </answer>`` format puts it there) is compared with the gold
answer by math-verify (inside an ``<answer>`` block several boxes are read as one list of answers, see
`final_answer`); a completion without a box falls back to math-verify's own anchored extraction
("the final answer is ..."). It never raises: malformed text, an unparseable answer, an unparseable gold
answer or a comparison that runs past the time limit all count as incorrect.

The reward functions have TRL's reward-function signature and are passed to ``GRPOTrainer`` as they are:
``completions`` is a list of strings (standard mode) or of message lists ``[{"role": "assistant",
"content": ...}]`` (conversational mode), dataset columns arrive as keyword arguments. The gold answer
column is ``answer`` (the normalised record shape of `dra.data`); open-r1's ``solution`` column (a full
solution whose last ``\\boxed{}`` is the answer) is accepted when ``answer`` is absent.

Faithfulness to the authors' code (xiwenc1/DRA-GRPO ``src/open_r1/rewards.py`` and ``grpo.py``, recipe
``dra_grpo.yaml``: ``reward_funcs: [format, cosine]``, ``reward_weights: [1.0, 2.0]``):

- `format_reward`: 1.0 when the completion contains the substring ``"\\n</think>\\n"`` exactly once, else
  0.0. Only the closing tag is checked because the DeepSeek-R1-Distill chat template already opens
  ``<think>`` in the prompt; the ``<answer>`` tags are *not* checked (open-r1's older regex format reward,
  ``^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$``, is not what the authors trained with).
- `cosine_reward`: open-r1's ``get_cosine_scaled_reward`` with the arguments the authors' ``grpo.py``
  passes by default (``cosine_min_value_wrong=0.0``, ``cosine_max_value_wrong=-0.5``,
  ``cosine_min_value_correct=0.5``, ``cosine_max_value_correct=1.0``, ``cosine_max_len=1000``):
  ``r = lo + 0.5 (hi - lo) (1 + cos(pi * len(text) / max_len))`` with length in characters, where a correct
  answer goes from 1.0 (empty) down to 0.5 (at max_len) and a wrong answer goes from 0.0 (empty) down to
  -0.5 (at max_len). Note that open-r1 swaps the two "wrong" values, so with these defaults a *short* wrong
  answer gets 0.0 and a long one -0.5 (PAPER.md section 4 describes the opposite direction; the code is
  what ran). A gold answer that cannot be parsed gives 1.0 (open-r1 skips such examples that way). There
  is no clamp: past max_len the cosine turns back up (at 2 x max_len the reward is back at its short-text
  value). ``clamp=True`` caps the progress at 1, so every text longer than max_len gets the floor value.
- Correctness inside the rewards is `is_correct` (boxed first), not open-r1's exact parse call; on the
  paper's format, which always ends in a box, both read the same box.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import math_verify.grader
import math_verify.parser
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

logger = logging.getLogger(__name__)

# We guard math-verify with our own timer (below); tell it not to warn that its own is switched off.
math_verify.parser.TIMEOUT_WARNING_SHOWN = True
math_verify.grader.TIMEOUT_WARNING_SHOWN = True

THINK_CLOSE = "\n</think>\n"
DEFAULT_TIMEOUT_S = 5.0
# Text beyond this many characters before the final box is never parsed; it bounds the fallback parse.
MAX_PARSE_CHARS = 4000

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LATEX_CONFIG = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


class _GradingTimeout(BaseException):
    """Raised by the timer; a BaseException so math-verify's `except Exception` cannot swallow it."""


# ----------------------------------------------------------------------------------------------- grading

def boxed_contents(text: str) -> list[str]:
    """The contents of every complete ``\\boxed{...}`` (or ``\\fbox{...}``) in `text`, braces balanced, in order."""
    if not isinstance(text, str):
        return []
    contents = []
    for match in _BOX_RE.finditer(text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            char = text[pos]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    contents.append(text[start:pos].strip())
                    break
    return contents


def last_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` in `text`, else None."""
    contents = boxed_contents(text)
    return contents[-1] if contents else None


def final_answer(completion: str) -> str | None:
    """The boxed final answer of a completion, or None when it boxes nothing.

    Inside the paper's ``<answer> ... </answer>`` block every box counts (a model may box several answers,
    "\\boxed{69}, \\boxed{84}"; they are joined with ", "); elsewhere only the last box does, since
    reasoning often boxes intermediate results.
    """
    if not isinstance(completion, str):
        return None
    if "<answer>" in completion:
        block = completion.rsplit("<answer>", 1)[1].split("</answer>", 1)[0]
        boxes = boxed_contents(block)
        if boxes:
            return ", ".join(boxes)
    return last_boxed(completion)


def _clean_gold(gold: Any) -> str:
    """The gold answer as a bare LaTeX string: numbers formatted, a boxed solution reduced to its box."""
    if isinstance(gold, float) and gold.is_integer():
        gold = int(gold)
    text = str(gold).strip()
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return text


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise _GradingTimeout after `seconds` (SIGALRM timer; only possible in the main thread).

    In other threads (e.g. a dataloader worker thread) the guard is skipped and only MAX_PARSE_CHARS bounds
    the work; math-verify's own timeout has the same main-thread restriction.
    """
    usable = seconds is not None and seconds > 0 and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _on_alarm(signum, frame):
        raise _GradingTimeout()

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    # Wrapping in \boxed{} lets math-verify's LaTeX extractor read bare answers ("25", "\frac{1}{2}").
    return tuple(parse(f"\\boxed{{{gold}}}", extraction_config=_LATEX_CONFIG, parsing_timeout=None))


def _parse_completion(completion: str) -> list:
    boxed = final_answer(completion)
    if boxed is not None:
        return parse(f"\\boxed{{{boxed}}}", extraction_config=_LATEX_CONFIG, parsing_timeout=None)
    return parse(completion[-MAX_PARSE_CHARS:], extraction_config=_LATEX_CONFIG, parsing_timeout=None)


def grade(completion: str, gold: Any, timeout: float | None = DEFAULT_TIMEOUT_S) -> bool | None:
    """True/False for a correct/incorrect completion, None when the gold answer itself cannot be parsed.

    Never raises. A timeout, or an answer math-verify cannot read, is False.
    """
    try:
        with _deadline(timeout):
            gold_parsed = _parse_gold(_clean_gold(gold))
            if not gold_parsed:
                return None
            if not isinstance(completion, str) or not completion.strip():
                return False
            answer_parsed = _parse_completion(completion)
            if not answer_parsed:
                return False
            return bool(verify(list(gold_parsed), answer_parsed, timeout_seconds=None))
    except _GradingTimeout:
        logger.debug("grading timed out after %ss", timeout)
        return False
    except Exception:  # noqa: BLE001 - the grader must never raise on model output
        logger.debug("grading failed", exc_info=True)
        return False


def is_correct(completion: str, gold: Any, timeout: float | None = DEFAULT_TIMEOUT_S) -> bool:
    """Whether `completion` reaches the `gold` answer: last boxed answer first, math-verify equivalence.

    Never raises: garbage, an unparseable answer or gold, or a comparison past `timeout` seconds gives False.
    The timeout uses SIGALRM and applies only in the main thread.
    """
    return grade(completion, gold, timeout=timeout) is True


# ----------------------------------------------------------------------------------------------- rewards

def completion_text(completion: Any) -> str:
    """The text that is graded for one TRL completion: a string as it is, or in conversational mode the content
    of the last message (the final answer, also after tool calls; a content of None reads as "").

    An empty conversation gives "". Anything that is not a string, a message dict or a list of them raises
    TypeError. What DRA embeds is `dra.embed.embedding_text` (all messages joined, as the authors' trainer);
    the two agree for one-message completions, i.e. whenever no tool is called.
    """
    from dra.embed import message_content

    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return message_content(completion)
    if isinstance(completion, (list, tuple)):
        return completion_text(completion[-1]) if completion else ""
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}.")


def _gold_answers(n: int, answer: Sequence[Any] | None, kwargs: dict[str, Any]) -> list[Any]:
    gold = answer if answer is not None else kwargs.get("solution")
    if gold is None:
        raise ValueError(
            "reward function needs the gold answers: pass a dataset column named 'answer' "
            "(dra.data's record shape) or open-r1's 'solution' column."
        )
    gold = list(gold)
    if len(gold) != n:
        raise ValueError(f"got {n} completions but {len(gold)} gold answers; they must align one to one.")
    return gold


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion contains "\\n</think>\\n" exactly once, else 0.0 (the authors' definition)."""
    return [1.0 if completion_text(c).count(THINK_CLOSE) == 1 else 0.0 for c in completions]


def accuracy_reward(completions: Sequence[Any], answer: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """1.0 if correct, 0.0 if not; 1.0 when the gold answer cannot be parsed (open-r1 skips such items)."""
    gold = _gold_answers(len(completions), answer, kwargs)
    rewards = []
    for completion, gold_answer in zip(completions, gold):
        verdict = grade(completion_text(completion), gold_answer)
        rewards.append(1.0 if verdict is None else float(verdict))
    return rewards


def cosine_value(
    correct: bool,
    length: int,
    *,
    max_len: int = 1000,
    clamp: bool = False,
    min_value_wrong: float = 0.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
) -> float:
    """open-r1's cosine schedule for one completion of `length` characters (see the module docstring)."""
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}.")
    progress = length / max_len
    if clamp:
        progress = min(progress, 1.0)
    cosine = math.cos(progress * math.pi)
    if correct:
        lo, hi = min_value_correct, max_value_correct
    else:  # open-r1 swaps the two for wrong answers
        lo, hi = max_value_wrong, min_value_wrong
    return lo + 0.5 * (hi - lo) * (1.0 + cosine)


def cosine_reward(
    completions: Sequence[Any],
    answer: Sequence[Any] | None = None,
    *,
    max_len: int = 1000,
    clamp: bool = False,
    min_value_wrong: float = 0.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    **kwargs: Any,
) -> list[float]:
    """open-r1's length-scaled accuracy reward, as the authors ran it (unclamped unless clamp=True)."""
    gold = _gold_answers(len(completions), answer, kwargs)
    rewards = []
    for completion, gold_answer in zip(completions, gold):
        text = completion_text(completion)
        verdict = grade(text, gold_answer)
        if verdict is None:
            rewards.append(1.0)
            continue
        rewards.append(cosine_value(
            verdict, len(text), max_len=max_len, clamp=clamp,
            min_value_wrong=min_value_wrong, max_value_wrong=max_value_wrong,
            min_value_correct=min_value_correct, max_value_correct=max_value_correct,
        ))
    return rewards


def named_partial(func: Callable[..., list[float]], name: str, **options: Any) -> functools.partial:
    """functools.partial with a ``__name__`` (TRL logs each reward function by its name)."""
    bound = functools.partial(func, **options)
    bound.__name__ = name  # type: ignore[attr-defined]
    bound.__qualname__ = name  # type: ignore[attr-defined]
    return bound


clamped_cosine_reward = named_partial(cosine_reward, "clamped_cosine_reward", clamp=True)

PAPER_REWARD_FUNCS: list[Callable[..., list[float]]] = [format_reward, cosine_reward]
PAPER_REWARD_WEIGHTS: list[float] = [1.0, 2.0]


def paper_reward(completions: Sequence[Any], answer: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """The paper's training reward: 1.0 x format_reward + 2.0 x cosine_reward."""
    parts = [func(completions, answer=answer, **kwargs) for func in PAPER_REWARD_FUNCS]
    return [sum(w * r for w, r in zip(PAPER_REWARD_WEIGHTS, values)) for values in zip(*parts)]
