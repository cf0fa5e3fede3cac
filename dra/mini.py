"""The mini world: two-digit multiplication with four solution strategies that reach the same answer.

No real language model can be downloaded on a CPU-only machine, so the ``mini`` profile studies the paper's
phenomenon in a world small enough to train from scratch: every problem ``a * b`` (both factors two-digit
numbers that are not multiples of ten) can be solved by four genuinely different reasoning paths, a scalar
reward cannot tell them apart, and a policy can collapse onto one of them.

Strategies (`STRATEGIES`), each a short chain of sub-results written in the paper's completion format:

- ``split_first``: split the first factor into tens and ones, multiply each part, add.
- ``split_second``: split the second factor into tens and ones, multiply each part, add.
- ``round_up``: round the first factor up to the next ten, multiply, subtract the correction.
- ``grid``: the four partial products of tens and ones (grid / long multiplication), summed.

Every completion reads ``<think>\\n<steps>\\n</think>\\n<answer> \\boxed{N} </answer>``, so the project's real
reward functions (`dra.rewards`) grade it unchanged: exactly one ``"\\n</think>\\n"`` for `format_reward`, the
last ``\\boxed{}`` for `is_correct`. Each strategy announces itself in its first line, and `parse_strategy`
recovers it from that line (the arithmetic that follows may be wrong; grading is `dra.rewards`' job).

Prompts are chat messages: a system prompt and the question. `SYSTEM_PROMPT` is a documented shortened form
of the paper's system prompt (`PAPER_SYSTEM_PROMPT`, verbatim from the authors' recipes): it keeps the
``<think> </think>``, ``<answer> </answer>`` and ``\\boxed{}`` instructions but drops the 80-word preamble, which
would otherwise be most of every sequence the tiny CPU policy processes (about 100 of its tokens, against
about 70 for a whole completion). Any prompt can be passed instead (`prompt_messages(..., system_prompt=)`).

Splits (`make_splits`) are seeded and disjoint *by problem*: ``a * b`` and ``b * a`` count as one problem (the
unordered factor pair) and always land in the same split, so a test prompt's factor pair is never trained on.
There are 81 x 81 = 6,561 ordered prompts over 3,321 unordered pairs; the default test split holds at least
3,000 prompts.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

STRATEGIES: tuple[str, ...] = ("split_first", "split_second", "round_up", "grid")

PAPER_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer, "
    "and put your final answer within \\boxed{} . The reasoning process and answer are enclosed within <think> "
    "</think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> "
    "answer here </answer>. Note that respond by English, NOT use other languages."
)
SYSTEM_PROMPT = "Reason in <think> </think>, then answer in <answer> \\boxed{} </answer>."

FACTOR_MIN, FACTOR_MAX = 11, 99

# The opening line of each strategy; parse_strategy looks for exactly these.
_HEADERS: dict[str, str] = {
    "split_first": "Split the first number: {a} = {a_tens} + {a_ones}.",
    "split_second": "Split the second number: {b} = {b_tens} + {b_ones}.",
    "round_up": "Round {a} up to {a_round}, then correct.",
    "grid": "Grid of partial products.",
}
_HEADER_PATTERNS: dict[str, re.Pattern[str]] = {
    "split_first": re.compile(r"Split the first number:"),
    "split_second": re.compile(r"Split the second number:"),
    "round_up": re.compile(r"Round \d+ up to \d+, then correct\."),
    "grid": re.compile(r"Grid of partial products\."),
}


@dataclass(frozen=True)
class Problem:
    """One multiplication problem ``a * b``; `answer` is the gold answer as the rewards' `answer` column."""

    a: int
    b: int

    @property
    def answer(self) -> str:
        return str(self.a * self.b)

    @property
    def pair(self) -> tuple[int, int]:
        """The unordered factor pair: the unit by which splits are disjoint."""
        return (min(self.a, self.b), max(self.a, self.b))

    @property
    def question(self) -> str:
        return f"What is {self.a} * {self.b}?"


@dataclass(frozen=True)
class MiniSplits:
    """Disjoint train / validation / test problems (see `make_splits`)."""

    train: tuple[Problem, ...]
    validation: tuple[Problem, ...]
    test: tuple[Problem, ...]
    seed: int

    def __getitem__(self, name: str) -> tuple[Problem, ...]:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {name!r}; choose train, validation or test.")
        return getattr(self, name)


def factors(low: int = FACTOR_MIN, high: int = FACTOR_MAX) -> list[int]:
    """The two-digit factors the world uses: low..high without multiples of ten (they make splits trivial)."""
    if not (10 <= low <= high <= 99):
        raise ValueError(f"factor range must lie within 10..99 with low <= high, got {low}..{high}.")
    return [n for n in range(low, high + 1) if n % 10]


def make_splits(seed: int = 0, n_test: int = 3000, n_validation: int = 300) -> MiniSplits:
    """Seeded train / validation / test split of every ordered problem, disjoint by unordered factor pair.

    Unordered pairs are shuffled with `seed`; the first ones go to test until it holds at least `n_test`
    prompts, the next to validation until it holds at least `n_validation`, the rest to train. Each split's
    problems are listed in the shuffled pair order (both orders of a pair next to each other). Raises
    ValueError when the requested sizes leave fewer than a quarter of the prompts for training.
    """
    numbers = factors()
    pairs = [(x, y) for i, x in enumerate(numbers) for y in numbers[i:]]
    total = len(numbers) ** 2
    if n_test < 1 or n_validation < 0 or n_test + n_validation > 0.75 * total:
        raise ValueError(
            f"n_test={n_test} and n_validation={n_validation} must be positive and leave at least a quarter of the "
            f"{total} prompts for training."
        )
    random.Random(seed).shuffle(pairs)
    buckets: dict[str, list[Problem]] = {"test": [], "validation": [], "train": []}
    for x, y in pairs:
        if len(buckets["test"]) < n_test:
            name = "test"
        elif len(buckets["validation"]) < n_validation:
            name = "validation"
        else:
            name = "train"
        buckets[name].extend([Problem(x, y)] if x == y else [Problem(x, y), Problem(y, x)])
    return MiniSplits(**{k: tuple(v) for k, v in buckets.items()}, seed=seed)


def solution_steps(problem: Problem, strategy: str) -> list[str]:
    """The reasoning lines of `strategy` for `problem` (its header line first), all arithmetic exact."""
    a, b = problem.a, problem.b
    a_tens, a_ones, b_tens, b_ones = a - a % 10, a % 10, b - b % 10, b % 10
    a_round = a_tens + 10
    header = _HEADERS[_check_strategy(strategy)].format(
        a=a, b=b, a_tens=a_tens, a_ones=a_ones, b_tens=b_tens, b_ones=b_ones, a_round=a_round
    )
    if strategy == "split_first":
        parts = [(a_tens, b), (a_ones, b)]
    elif strategy == "split_second":
        parts = [(a, b_tens), (a, b_ones)]
    elif strategy == "round_up":
        parts = [(a_round, b), (a_round - a, b)]
    else:  # grid
        parts = [(a_tens, b_tens), (a_tens, b_ones), (a_ones, b_tens), (a_ones, b_ones)]
    # Equations carry no spaces: every token counts when the policy is trained and sampled on a CPU.
    lines = [header] + [f"{x}*{y}={x * y}" for x, y in parts]
    products = [str(x * y) for x, y in parts]
    operator = "-" if strategy == "round_up" else "+"
    lines.append(f"{operator.join(products)}={a * b}")
    return lines


def completion(problem: Problem, strategy: str) -> str:
    """A correct completion of `problem` by `strategy`, in the paper's think/answer format."""
    steps = "\n".join(solution_steps(problem, strategy))
    return f"<think>\n{steps}\n</think>\n<answer> \\boxed{{{problem.answer}}} </answer>"


def prompt_messages(problem: Problem, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The chat prompt of `problem`: a system message (omitted when `system_prompt` is empty) and the question."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": problem.question}]


def parse_strategy(text: Any) -> str | None:
    """The strategy a completion announced (one of `STRATEGIES`), or None when it announced none.

    Looks for each strategy's opening line (e.g. ``"Round 47 up to 50, then correct."``) and returns the one
    that appears first in the text. It recognises the path the completion took, not whether its arithmetic is
    right. Never raises: non-strings, empty strings and garbage give None.
    """
    if not isinstance(text, str) or not text:
        return None
    found = [(match.start(), name) for name, pattern in _HEADER_PATTERNS.items()
             if (match := pattern.search(text)) is not None]
    return min(found)[1] if found else None


def sample_strategies(n: int, weights: Mapping[str, float], rng: random.Random) -> list[str]:
    """`n` strategy names drawn independently with the given (unnormalised, non-negative) weights."""
    unknown = set(weights) - set(STRATEGIES)
    if unknown or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(
            f"strategy weights must be non-negative, not all zero, over {STRATEGIES}; got {dict(weights)}."
        )
    names = list(weights)
    return rng.choices(names, weights=[weights[k] for k in names], k=n)


def sft_records(
    problems: Sequence[Problem],
    n_examples: int,
    weights: Mapping[str, float],
    seed: int = 0,
    system_prompt: str = SYSTEM_PROMPT,
) -> list[dict[str, Any]]:
    """`n_examples` conversational prompt-completion records for TRL's SFTTrainer.

    Problems are drawn uniformly with replacement from `problems`, strategies independently with `weights`
    (the deliberate imbalance of the base policy). Each record has ``prompt`` (messages), ``completion`` (one
    assistant message), ``answer`` and ``strategy``.
    """
    if not problems:
        raise ValueError("sft_records needs at least one problem.")
    rng = random.Random(seed)
    chosen = [rng.choice(problems) for _ in range(n_examples)]
    strategies = sample_strategies(n_examples, weights, rng)
    return [
        {
            "prompt": prompt_messages(problem, system_prompt),
            "completion": [{"role": "assistant", "content": completion(problem, strategy)}],
            "answer": problem.answer,
            "strategy": strategy,
        }
        for problem, strategy in zip(chosen, strategies)
    ]


def prompt_records(problems: Sequence[Problem], system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """One record per problem with ``prompt`` (messages), ``answer``, ``a`` and ``b``: the shape TRL's
    GRPOTrainer and the study take (extra columns reach the reward functions as keyword arguments)."""
    return [
        {"prompt": prompt_messages(p, system_prompt), "answer": p.answer, "a": p.a, "b": p.b} for p in problems
    ]


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    return strategy
