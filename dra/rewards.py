"""The paper's reward functions and the project's single grading function.

`is_correct(completion, gold)` is what every other module grades with: the final ``\\boxed{...}`` of the
completion (the paper's ``<answer> \\boxed{...} </answer>`` format puts it there) is compared with the gold
answer by math-verify (inside an ``<answer>`` block several boxes are read as one list of answers, see
`final_answer`); a completion without a box falls back to math-verify's own anchored extraction
("the final answer is ..."). It never raises on a completion: malformed text, an unparseable answer, a box
longer than MAX_ANSWER_CHARS, an unparseable gold answer or a comparison that runs past the time limit all count
as incorrect. The time limit (5 s by default) holds in every thread: math-verify runs in a worker process
that is killed when it overruns (`dra._verify`). Arguments that cannot be right raise instead: a gold answer that is
None, a bool, NaN or a list, a timeout that is not a positive number, a single string where the reward
functions expect a list of completions or of gold answers, a cosine option that is not a finite number.

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
  answer gets 0.0 and a long one -0.5 (the paper's description reads the other way round; the code is what
  ran: docs/paper_facts.md, section 6). A gold answer that cannot be parsed gives 1.0 (open-r1 skips such
  examples that way). There is no clamp: past max_len the cosine turns back up (at 2 x max_len the reward is
  back at its short-text value). ``clamp=True`` caps the progress at 1, so every text longer than max_len gets
  the floor value.
- Correctness inside the rewards is `is_correct` (boxed first), not open-r1's exact parse call; on the
  paper's format, which always ends in a box, both read the same box.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import re
from typing import Any, Callable, Sequence

from dra import _verify, checks
from dra.embed import message_content

logger = logging.getLogger(__name__)

THINK_CLOSE = "\n</think>\n"
DEFAULT_TIMEOUT_S = 5.0
# Text beyond this many characters before the end is never parsed when a completion boxes nothing.
MAX_PARSE_CHARS = 4000
# A boxed answer longer than this is graded incorrect unparsed (the longest gold answer of the five
# benchmarks and the training sets has 210 characters); it bounds the work an adversarial box can cause.
MAX_ANSWER_CHARS = 1000

# A box opener (its "{" included), or a lone brace.
_BRACE_TOKEN = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")


# ----------------------------------------------------------------------------------------------- grading

def _box_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the content of every complete top-level box, in order; one pass, O(len(text))."""
    spans: list[tuple[int, int]] = []
    open_braces: list[int] = []  # content start of an open box, -1 for a plain brace
    for token in _BRACE_TOKEN.finditer(text):
        if token.group() == "{":
            open_braces.append(-1)
        elif token.group() != "}":
            open_braces.append(token.end())
        elif open_braces and (start := open_braces.pop()) >= 0:
            while spans and spans[-1][0] > start:  # boxes closed inside this one are part of its content
                spans.pop()
            spans.append((start, token.start()))
    return spans


def boxed_contents(text: str) -> list[str]:
    """The contents of the complete ``\\boxed{...}`` (or ``\\fbox{...}``) in `text`, braces balanced, in order.

    Only top-level boxes count: a box inside another complete box is part of that box's content
    (``\\boxed{\\boxed{3}}`` gives ``["\\boxed{3}"]``). Unclosed boxes are skipped. Linear in the length of
    `text`; not a string gives [].
    """
    if not isinstance(text, str):
        return []
    return [text[start:end].strip() for start, end in _box_spans(text)]


def last_boxed(text: str) -> str | None:
    """The content of the last complete top-level ``\\boxed{...}`` in `text`, else None."""
    spans = _box_spans(text) if isinstance(text, str) else []
    return text[spans[-1][0]:spans[-1][1]].strip() if spans else None


def final_answer(completion: str) -> str | None:
    """The boxed final answer of a completion, or None when it boxes nothing (or is not a string).

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
    """The gold answer as a bare LaTeX string: numbers formatted, a boxed solution reduced to its box.

    Raises TypeError/ValueError for what cannot be a gold answer (None, a bool, NaN, a list, ...).
    """
    if isinstance(gold, str):
        text = gold.strip()
    elif isinstance(gold, numbers.Real) and not isinstance(gold, bool):
        if not math.isfinite(gold):
            raise ValueError(f"gold must be a finite number or a string, got {gold!r}.")
        text = str(int(gold)) if float(gold).is_integer() else str(gold)
    else:
        hint = (" (a dataset row without an answer? leave such rows out, as dra.data does)" if gold is None else
                " (several answers? join them into one string with ', ')" if isinstance(gold, (list, tuple)) else "")
        raise TypeError(f"gold must be the gold answer as a string or a number, got {type(gold).__name__}{hint}.")
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return text


def _answer_of(completion: Any) -> tuple[str | None, bool]:
    """(what to parse, whether it is a boxed answer); None when the completion gives no answer to grade."""
    if not isinstance(completion, str) or not completion.strip():
        return None, True
    boxed = final_answer(completion)
    if boxed is None:
        return completion[-MAX_PARSE_CHARS:], False
    return (boxed, True) if len(boxed) <= MAX_ANSWER_CHARS else (None, True)


def grade(completion: str, gold: Any, timeout: float | None = DEFAULT_TIMEOUT_S) -> bool | None:
    """True/False for a correct/incorrect completion, None when the gold answer itself cannot be parsed.

    Never raises on a completion: one that is not a string, empty, boxes nothing readable, boxes more than
    MAX_ANSWER_CHARS characters, makes math-verify raise, or takes more than `timeout` seconds is False. Bad
    arguments do raise: a `gold` that is not a string or a finite number (TypeError/ValueError; "" is a gold
    answer that cannot be parsed, so None), a `timeout` that is not a positive number or None (TypeError for
    a non-number such as "5", ValueError for 0, a negative number, NaN or inf).

    The time limit holds in any thread: math-verify runs in a worker process (started on first use, about
    1 s, then reused), which stops at `timeout` and is killed if it has not answered 1 s later (see
    `dra._verify`); the caller's signals and timers are not touched. ``timeout=None`` grades in the calling
    thread with no limit at all: only for trusted text. A worker process that cannot start raises
    RuntimeError with its error output.
    """
    seconds = None if timeout is None else checks.real(timeout, "timeout (seconds, or None for no limit)", 0,
                                                         low_open=True)
    gold_text = _clean_gold(gold)
    answer, boxed = _answer_of(completion)
    if seconds is None:
        result = _verify.verdict(gold_text, answer, boxed)
    else:
        result = _verify.POOL.ask(gold_text, answer, boxed, seconds)
    if result in ("timeout", "error"):
        logger.debug("grading ended with %s (timeout %ss)", result, seconds)
    return None if result == "none" else result == "true"


def is_correct(completion: str, gold: Any, timeout: float | None = DEFAULT_TIMEOUT_S) -> bool:
    """Whether `completion` reaches the `gold` answer: last boxed answer first, math-verify equivalence.

    Never raises on a completion: garbage, an unparseable answer or gold, or a comparison past `timeout`
    seconds gives False, in any thread (see `grade`, which also says which arguments raise).
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
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return message_content(completion)
    if isinstance(completion, (list, tuple)):
        return completion_text(completion[-1]) if completion else ""
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}.")


def _texts(completions: Any) -> list[str]:
    return [completion_text(c) for c in checks.items(completions, "completions", "completions (strings or message lists)")]


def _gold_answers(n: int, answer: Sequence[Any] | None, kwargs: dict[str, Any]) -> list[Any]:
    name = "answer" if answer is not None else "solution"
    gold = answer if answer is not None else kwargs.get("solution")
    if gold is None:
        raise ValueError(
            "reward function needs the gold answers: pass a dataset column named 'answer' "
            "(dra.data's record shape) or open-r1's 'solution' column."
        )
    gold = checks.items(gold, name, "gold answers, one per completion")
    if len(gold) != n:
        raise ValueError(f"got {n} completions but {len(gold)} gold answers; they must align one to one.")
    return gold


def well_formatted(text: str) -> bool:
    """The paper's format check: the text contains "\\n</think>\\n" exactly once (the authors' definition)."""
    return text.count(THINK_CLOSE) == 1


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion is `well_formatted`, else 0.0."""
    return [1.0 if well_formatted(text) else 0.0 for text in _texts(completions)]


def accuracy_reward(completions: Sequence[Any], answer: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """1.0 if correct, 0.0 if not; 1.0 when the gold answer cannot be parsed (open-r1 skips such items)."""
    texts = _texts(completions)
    rewards = []
    for text, gold_answer in zip(texts, _gold_answers(len(texts), answer, kwargs)):
        verdict = grade(text, gold_answer)
        rewards.append(1.0 if verdict is None else float(verdict))
    return rewards


def _check_cosine_options(max_len: Any, clamp: Any, values: dict[str, Any]) -> None:
    checks.real(max_len, "max_len", 0, low_open=True)
    checks.flag(clamp, "clamp")
    for name, value in values.items():
        checks.real(value, name)


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
    """open-r1's cosine schedule for one completion of `length` characters (see the module docstring).

    Raises for a `correct` that is not a bool, a negative or non-integer `length`, a `max_len` that is not a
    positive number, or a value that is not a finite number.
    """
    values = {"min_value_wrong": min_value_wrong, "max_value_wrong": max_value_wrong,
              "min_value_correct": min_value_correct, "max_value_correct": max_value_correct}
    _check_cosine_options(max_len, clamp, values)
    progress = checks.integer(length, "length", minimum=0) / max_len
    if clamp:
        progress = min(progress, 1.0)
    cosine = math.cos(progress * math.pi)
    if checks.flag(correct, "correct"):
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
    values = {"min_value_wrong": min_value_wrong, "max_value_wrong": max_value_wrong,
              "min_value_correct": min_value_correct, "max_value_correct": max_value_correct}
    _check_cosine_options(max_len, clamp, values)
    texts = _texts(completions)
    rewards = []
    for text, gold_answer in zip(texts, _gold_answers(len(texts), answer, kwargs)):
        verdict = grade(text, gold_answer)
        rewards.append(1.0 if verdict is None else cosine_value(verdict, len(text), max_len=max_len, clamp=clamp,
                                                                 **values))
    return rewards


def named_partial(func: Callable[..., list[float]], name: str, **options: Any) -> functools.partial:
    """functools.partial with a ``__name__`` (TRL logs each reward function by its name)."""
    if not callable(func):
        raise TypeError(f"func must be a reward function, got {type(func).__name__}.")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier (TRL logs rewards/<name>), got {name!r}.")
    bound = functools.partial(func, **options)
    bound.__name__ = name  # type: ignore[attr-defined]
    bound.__qualname__ = name  # type: ignore[attr-defined]
    return bound


clamped_cosine_reward = named_partial(cosine_reward, "clamped_cosine_reward", clamp=True)

PAPER_REWARD_FUNCS: list[Callable[..., list[float]]] = [format_reward, cosine_reward]
# The paper's 1:2 weights of (format, cosine): the one copy, read by the recipes, the study and paper_reward.
PAPER_REWARD_WEIGHTS: list[float] = [1.0, 2.0]


def paper_reward(completions: Sequence[Any], answer: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """The paper's training reward: 1.0 x format_reward + 2.0 x cosine_reward."""
    parts = [func(completions, answer=answer, **kwargs) for func in PAPER_REWARD_FUNCS]
    return [sum(w * r for w, r in zip(PAPER_REWARD_WEIGHTS, values)) for values in zip(*parts)]
