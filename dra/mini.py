"""The mini world: two-digit multiplication with four solution strategies, each exact on its own kind of problem.

No real language model can be downloaded on a CPU-only machine, so the ``mini`` profile studies the paper's
phenomenon in a world small enough to train from scratch: every problem ``a * b`` (two-digit factors, not
multiples of ten, the first ending in 1, 5 or 9) can be attempted by four genuinely different reasoning paths,
a scalar reward cannot tell them apart, and a policy can collapse onto one of them.

Strategies (`STRATEGIES`), each a short chain of sub-results written in the paper's completion format:

- ``plus_one``: tens of a times b, plus one more b (exact when a ends in 1).
- ``plus_five``: tens of a times b, plus five times b (exact when a ends in 5).
- ``minus_one``: the next ten above a times b, minus one b (exact when a ends in 9).
- ``grid``: the four partial products of tens and ones (long multiplication), summed: exact on every problem.

Every completion reads ``<think>\\n<steps>\\n</think>\\n<answer> \\boxed{N} </answer>``, so the project's real
reward functions (`dra.rewards`) grade it unchanged: exactly one ``"\\n</think>\\n"`` for `format_reward`, the
last ``\\boxed{}`` for `is_correct`. Each strategy announces itself in its first line, and `parse_strategy`
recovers it from that line (the arithmetic that follows may be wrong; grading is `dra.rewards`' job).

Prompts are chat messages: a system prompt and the question. `SYSTEM_PROMPT` is a documented shortened form
of the paper's system prompt (`dra.tasks.PAPER_SYSTEM_PROMPT`, verbatim from the authors' recipes): it keeps
the ``<think> </think>``, ``<answer> </answer>`` and ``\\boxed{}`` instructions but drops the 80-word preamble,
which would otherwise be most of every sequence the tiny CPU policy processes (about 100 of its tokens, against
about 70 for a whole completion). Any prompt can be passed instead (`prompt_messages(..., system_prompt=)`).

Why diversity can pay here (world version 4). Each problem has a *home* strategy, the shortcut that hard-codes
the ones digit of its first factor (`Problem.home_strategy`, `HOME_BY_ONES_DIGIT`: 1 plus one, 5 plus five,
9 minus one); grid is nobody's home. The prompt shows the problem's kind (A, B, C: `Problem.kind`), so the type
is visible in one token; which strategy fits which kind is not said anywhere. The demonstrations
(`sft_records`) always execute their strategy exactly, and a shortcut used off its kind is wrong *by
construction* (``tens*b + b`` on ``25 * b`` misses ``4*b``): no token-level repair turns it into the right
answer short of switching to another procedure. Grid is right everywhere but long, and the tiny policy's long
sums are unreliable. Strategies are drawn independently of the problem (the base policy's deliberate
64/16/12/8 imbalance), so the base policy knows every strategy but not which one fits which problem:
collapsing onto one shortcut caps accuracy near a third of its home accuracy, while choosing each problem's
home shortcut raises it towards the home accuracy. The share of samples that take their problem's home
strategy (`home_share`) is the mechanistic readout.

Versions 2 and 3 (kept in the pre-registration's deviations) made off-home failure a *habit*: exact
procedures whose demonstrations dropped a carry off home. The 0.5M-parameter policy learned that habit only
partly, so GRPO unlearned it token by token without choosing better strategies (version 2), or learned it as
noise in its additions (version 3).

Splits (`make_splits`) are seeded and disjoint *by problem*: ``a * b`` and ``b * a`` count as one problem (the
unordered factor pair) and always land in the same split, so a test prompt's factor pair is never trained on.
There are 27 x 81 = 2,187 ordered prompts (first factors ending in 1, 5 or 9). Test and validation come
first; the remaining pairs are divided between supervised fine-tuning (``sft``) and RL (``rl``), so RL
prompts were never seen in SFT. `distinct_pairs` picks one ordering per pair for evaluation,
so evaluation prompts are independent.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

STRATEGIES: tuple[str, ...] = ("plus_one", "plus_five", "minus_one", "grid")
SPLITS: tuple[str, ...] = ("sft", "rl", "validation", "test")
# The shortcut that is exact on a problem, by the ones digit of its first factor (world version 4).
HOME_BY_ONES_DIGIT: dict[int, str] = {1: "plus_one", 5: "plus_five", 9: "minus_one"}
# The prompt names the problem's kind; which strategy fits which kind is for the policy to learn.
KIND_OF_HOME: dict[str, str] = {"plus_one": "A", "plus_five": "B", "minus_one": "C"}

SYSTEM_PROMPT = "Reason in <think> </think>, then answer in <answer> \\boxed{} </answer>."

FACTOR_MIN, FACTOR_MAX = 11, 99

# The opening line of each strategy; parse_strategy looks for exactly these.
_HEADERS: dict[str, str] = {
    "plus_one": "Take {a_tens} times {b}, add one more {b}.",
    "plus_five": "Take {a_tens} times {b}, add five times {b}.",
    "minus_one": "Take {a_next} times {b}, take away one {b}.",
    "grid": "Grid of partial products.",
}
_HEADER_PATTERNS: dict[str, re.Pattern[str]] = {
    "plus_one": re.compile(r"Take \d+ times \d+, add one more \d+\."),
    "plus_five": re.compile(r"Take \d+ times \d+, add five times \d+\."),
    "minus_one": re.compile(r"Take \d+ times \d+, take away one \d+\."),
    "grid": re.compile(r"Grid of partial products\."),
}


@dataclass(frozen=True)
class Problem:
    """One multiplication problem ``a * b``; `answer` is the gold answer as the rewards' `answer` column."""

    a: int
    b: int

    def __post_init__(self) -> None:
        if not (isinstance(self.a, int) and isinstance(self.b, int) and 10 < self.a < 100 and 10 < self.b < 100
                and self.a % 10 in HOME_BY_ONES_DIGIT and self.b % 10):
            raise ValueError(
                f"Problem({self.a!r}, {self.b!r}) is outside the mini world: both factors must be two-digit integers, "
                "not multiples of ten, and the first must end in 1, 5 or 9 (its kind)."
            )

    @property
    def answer(self) -> str:
        return str(self.a * self.b)

    @property
    def pair(self) -> tuple[int, int]:
        """The unordered factor pair: the unit by which splits are disjoint."""
        return (min(self.a, self.b), max(self.a, self.b))

    @property
    def question(self) -> str:
        return f"What is {self.a} * {self.b}? (kind {self.kind})"

    @property
    def kind(self) -> str:
        """The visible problem type the prompt shows (A, B or C), which fixes the home strategy."""
        return KIND_OF_HOME[self.home_strategy]

    @property
    def home_strategy(self) -> str:
        """The shortcut that is exact on this problem (see the module docstring)."""
        return HOME_BY_ONES_DIGIT[self.a % 10]


@dataclass(frozen=True)
class MiniSplits:
    """Disjoint SFT / RL / validation / test problems (see `make_splits`)."""

    sft: tuple[Problem, ...]
    rl: tuple[Problem, ...]
    validation: tuple[Problem, ...]
    test: tuple[Problem, ...]
    seed: int

    def __getitem__(self, name: str) -> tuple[Problem, ...]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}.")
        return getattr(self, name)


def factors(low: int = FACTOR_MIN, high: int = FACTOR_MAX) -> list[int]:
    """The two-digit factors the world uses: low..high without multiples of ten (they make splits trivial)."""
    if not (10 <= low <= high <= 99):
        raise ValueError(f"factor range must lie within 10..99 with low <= high, got {low}..{high}.")
    return [n for n in range(low, high + 1) if n % 10]


def first_factors() -> list[int]:
    """The first factors the world uses: those whose ones digit has a home shortcut (1, 5 or 9)."""
    return [n for n in factors() if n % 10 in HOME_BY_ONES_DIGIT]


def make_splits(seed: int = 0, n_test: int = 700, n_validation: int = 350, rl_fraction: float = 0.5) -> MiniSplits:
    """Seeded SFT / RL / validation / test split of every ordered problem, disjoint by unordered factor pair.

    Unordered pairs are shuffled with `seed`; the first ones go to test until it holds at least `n_test`
    prompts, the next to validation until it holds at least `n_validation`; of the remaining pairs, the first
    `rl_fraction` go to RL and the rest to SFT. Each split lists its problems in the shuffled pair order (both
    orders of a pair next to each other). Raises ValueError when the requested sizes leave fewer than a quarter
    of the prompts for SFT and RL together, or when `rl_fraction` is outside [0, 1).
    """
    numbers = factors()
    pairs = [(x, y) for i, x in enumerate(numbers) for y in numbers[i:] if _orderings(x, y)]
    total = len(first_factors()) * len(numbers)
    if n_test < 1 or n_validation < 0 or n_test + n_validation > 0.75 * total:
        raise ValueError(
            f"n_test={n_test} and n_validation={n_validation} must be positive and leave at least a quarter of the "
            f"{total} prompts for training."
        )
    if not 0 <= rl_fraction < 1:
        raise ValueError(f"rl_fraction must lie in [0, 1), got {rl_fraction}.")
    random.Random(seed).shuffle(pairs)
    held_out: dict[str, list[Problem]] = {"test": [], "validation": []}
    rest: list[tuple[int, int]] = []
    for x, y in pairs:
        name = "test" if len(held_out["test"]) < n_test else "validation" if len(held_out["validation"]) < n_validation else None
        if name is None:
            rest.append((x, y))
        else:
            held_out[name].extend(_orderings(x, y))
    n_rl = round(rl_fraction * len(rest))
    rl = [p for x, y in rest[:n_rl] for p in _orderings(x, y)]
    sft = [p for x, y in rest[n_rl:] for p in _orderings(x, y)]
    return MiniSplits(sft=tuple(sft), rl=tuple(rl), validation=tuple(held_out["validation"]),
                      test=tuple(held_out["test"]), seed=seed)


def _orderings(x: int, y: int) -> list[Problem]:
    """The prompts of the unordered pair {x, y}: each order whose first factor has a home shortcut."""
    orders = [(x, y)] if x == y else [(x, y), (y, x)]
    return [Problem(a, b) for a, b in orders if a % 10 in HOME_BY_ONES_DIGIT]


def distinct_pairs(problems: Sequence[Problem], seed: int = 0) -> list[Problem]:
    """One ordering of each unordered factor pair in `problems` (chosen with `seed`), in first-seen order.

    Evaluation prompts from distinct pairs are independent draws, so a per-prompt interval needs no clustering.
    """
    rng = random.Random(seed)
    by_pair: dict[tuple[int, int], list[Problem]] = {}
    for problem in problems:
        by_pair.setdefault(problem.pair, []).append(problem)
    return [rng.choice(options) for options in by_pair.values()]


def solution_steps(problem: Problem, strategy: str) -> list[str]:
    """The reasoning lines of `strategy` for `problem` (its header line first), every step computed exactly.

    A shortcut used off its kind still computes exactly what it says (``tens*b + b`` for ``plus_one``), so its
    last line, and the answer, is wrong unless the problem is of the shortcut's kind.
    """
    a, b = problem.a, problem.b
    a_tens, a_ones, b_tens, b_ones = a - a % 10, a % 10, b - b % 10, b % 10
    header = _HEADERS[_check_strategy(strategy)].format(a_tens=a_tens, a_next=a_tens + 10, b=b)
    if strategy == "grid":
        parts = [(a_tens, b_tens), (a_tens, b_ones), (a_ones, b_tens), (a_ones, b_ones)]
    else:
        parts = {"plus_one": [(a_tens, b)], "plus_five": [(a_tens, b), (5, b)], "minus_one": [(a_tens + 10, b)]}[strategy]
    products = [x * y for x, y in parts]
    # Equations carry no spaces: every token counts when the policy is trained and sampled on a CPU.
    lines = [header] + [f"{x}*{y}={p}" for (x, y), p in zip(parts, products)]
    if strategy == "plus_one":
        lines.append(f"{products[0]}+{b}={products[0] + b}")
    elif strategy == "minus_one":
        lines.append(f"{products[0]}-{b}={products[0] - b}")
    else:
        lines.append(f"{'+'.join(map(str, products))}={sum(products)}")
    return lines


def completion(problem: Problem, strategy: str) -> str:
    """A completion of `problem` by `strategy` in the paper's think/answer format (the box holds what the steps
    reach, which is the right answer only on the strategy's own kind or for grid)."""
    steps = solution_steps(problem, strategy)
    return "<think>\n" + "\n".join(steps) + f"\n</think>\n<answer> \\boxed{{{_reached(steps)}}} </answer>"


def is_exact(problem: Problem, strategy: str) -> bool:
    """Whether `strategy`, executed without error, reaches the right answer on `problem`."""
    return int(_reached(solution_steps(problem, strategy))) == problem.a * problem.b


def _reached(steps: Sequence[str]) -> str:
    """The result the last step of `solution_steps` reaches."""
    return steps[-1].rsplit("=", 1)[1]


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
    balanced_fraction: float = 0.0,
) -> list[dict[str, Any]]:
    """`n_examples` conversational prompt-completion records for TRL's SFTTrainer, in training order.

    Problems are drawn uniformly with replacement from `problems`. The first `balanced_fraction` of the records
    draw strategies uniformly (every strategy's skill is learned), the rest with `weights` (the deliberate
    imbalance of the base policy; train on the records in order to end with it). Strategies are drawn
    independently of the problem and executed exactly (`completion`), so a shortcut off its kind demonstrates
    a wrong answer. Each record has ``prompt`` (messages), ``completion`` (one assistant message), ``answer``
    (the gold answer), ``strategy`` and ``correct``.
    """
    if not problems:
        raise ValueError("sft_records needs at least one problem.")
    if not 0 <= balanced_fraction <= 1:
        raise ValueError(f"balanced_fraction must lie in [0, 1], got {balanced_fraction}.")
    rng = random.Random(seed)
    chosen = [rng.choice(problems) for _ in range(n_examples)]
    n_balanced = round(balanced_fraction * n_examples)
    strategies = (sample_strategies(n_balanced, {name: 1.0 for name in STRATEGIES}, rng)
                  + sample_strategies(n_examples - n_balanced, weights, rng))
    return [{
        "prompt": prompt_messages(problem, system_prompt),
        "completion": [{"role": "assistant", "content": completion(problem, strategy)}],
        "answer": problem.answer,
        "strategy": strategy,
        "correct": is_exact(problem, strategy),
    } for problem, strategy in zip(chosen, strategies)]


def prompt_records(problems: Sequence[Problem], system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """One record per problem with ``prompt`` (messages), ``answer``, ``a`` and ``b``: the shape TRL's
    GRPOTrainer and the study take (extra columns reach the reward functions as keyword arguments)."""
    return [
        {"prompt": prompt_messages(p, system_prompt), "answer": p.answer, "a": p.a, "b": p.b,
         "home_strategy": p.home_strategy} for p in problems
    ]


def strict_accuracy_reward(completions: Sequence[Any], answer: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """The mini world's primary reward: 1.0 for a well-formed (exactly one ``"\\n</think>\\n"``) and correct
    completion, else 0.0. No format bonus and no length term, so a wrong answer is never rewarded and
    completions of equal correctness get exactly equal rewards (TRL reward-function signature)."""
    from dra.rewards import accuracy_reward, format_reward

    correct = accuracy_reward(completions, answer=answer, **kwargs)
    return [float(c == 1.0 and f == 1.0) for c, f in zip(correct, format_reward(completions))]


class StrategyEmbedder:
    """An "oracle" embedder: the one-hot vector of each completion's parsed strategy (unknown: a fifth axis).

    With the graph-cut kernel, 1 + SMI of a completion is then exactly the number of completions in its group
    that took the same strategy, so DRA's weight is 1 / (size of its strategy mode): what DRA would do with
    perfect embeddings. Same interface as `dra.embed` embedders (`encode`, `name`, `as_dict`).
    """

    name = "oracle_strategy"
    last_stats: dict[str, Any] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None):
        import numpy as np

        index = {name: i for i, name in enumerate(STRATEGIES)}
        out = np.zeros((len(texts), len(STRATEGIES) + 1), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, index.get(parse_strategy(text), len(STRATEGIES))] = 1.0
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name}


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    return strategy
