"""The mini world: every strategy is exact, splits are seeded and disjoint, the parser recovers strategies."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from dra import mini
from dra.rewards import format_reward, is_correct

ALL_PROBLEMS = [mini.Problem(a, b) for a in mini.factors() for b in mini.factors()]
_LINE = re.compile(r"^(\d+(?:[*+-]\d+)+)=(\d+)$")


def _check_arithmetic(text: str) -> int:
    """Re-evaluate every 'x op y ... = z' line of a completion with Python integers; return the lines checked."""
    checked = 0
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            tokens = re.split(r"([*+-])", match.group(1))
            value = int(tokens[0])
            for op, operand in zip(tokens[1::2], tokens[2::2]):
                value = {"*": value * int(operand), "+": value + int(operand), "-": value - int(operand)}[op]
            assert value == int(match.group(2)), line
            checked += 1
    return checked


def test_the_world_has_81_factors_and_no_multiples_of_ten():
    numbers = mini.factors()
    assert len(numbers) == 81 and all(n % 10 and 11 <= n <= 99 for n in numbers)


@pytest.mark.parametrize("strategy", mini.STRATEGIES)
def test_every_strategy_is_exact_on_every_problem(strategy):
    for problem in ALL_PROBLEMS:
        text = mini.completion(problem, strategy)
        assert _check_arithmetic(text) >= 3
        assert text.endswith(f"<answer> \\boxed{{{problem.a * problem.b}}} </answer>")
        last = text.split("\n</think>\n")[0].splitlines()[-1]
        assert last.endswith(f"={problem.a * problem.b}")  # the steps reach the answer, not just the box
        assert mini.parse_strategy(text) == strategy


def test_strategies_are_graded_correct_by_the_real_rewards():
    rng = random.Random(0)
    problems = rng.sample(ALL_PROBLEMS, 60)
    texts = [mini.completion(p, s) for p in problems for s in mini.STRATEGIES]
    golds = [p.answer for p in problems for _ in mini.STRATEGIES]
    assert all(is_correct(t, g) for t, g in zip(texts, golds))
    assert format_reward(texts) == [1.0] * len(texts)
    wrong = [p.a * p.b + 1 for p in problems]
    assert not any(is_correct(mini.completion(p, "grid"), str(w)) for p, w in zip(problems, wrong))


def test_strategies_are_genuinely_different_paths():
    problem = mini.Problem(47, 83)
    steps = {s: tuple(mini.solution_steps(problem, s)[1:]) for s in mini.STRATEGIES}
    assert len(set(steps.values())) == len(mini.STRATEGIES)
    assert "50*83=4150" in steps["round_up"] and steps["round_up"][-1] == "4150-249=3901"
    assert len(steps["grid"]) == 5


def test_splits_are_deterministic_by_seed_and_disjoint_by_factor_pair():
    first, again, other = mini.make_splits(7), mini.make_splits(7), mini.make_splits(8)
    assert first == again
    assert first.test != other.test
    pairs = {name: {p.pair for p in first[name]} for name in ("train", "validation", "test")}
    assert not pairs["train"] & pairs["test"]
    assert not pairs["train"] & pairs["validation"]
    assert not pairs["validation"] & pairs["test"]
    everything = [p for name in ("train", "validation", "test") for p in first[name]]
    assert sorted((p.a, p.b) for p in everything) == sorted((p.a, p.b) for p in ALL_PROBLEMS)
    assert len(first.test) >= 3000 and len(first.validation) >= 300 and len(first.train) > 3000


def test_split_sizes_are_validated():
    with pytest.raises(ValueError, match="quarter"):
        mini.make_splits(0, n_test=6000)
    with pytest.raises(ValueError, match="unknown split"):
        mini.make_splits(0)["dev"]


@pytest.mark.parametrize("garbage", [None, "", 123, b"bytes", "Split the", "Round up to 50", "<think>\n</think>",
                                     "\x00\xff" * 50, "split the first number: 4 = 4 + 0", ["Grid of partial products."]])
def test_parser_returns_none_on_garbage(garbage):
    assert mini.parse_strategy(garbage) is None


def test_parser_reads_the_first_announced_strategy_despite_wrong_arithmetic():
    text = mini.completion(mini.Problem(47, 83), "round_up").replace("4150", "4151")
    assert mini.parse_strategy(text) == "round_up"
    mixed = "<think>\nGrid of partial products.\nSplit the first number: 47 = 40 + 7.\n"
    assert mini.parse_strategy(mixed) == "grid"
    truncated = mini.completion(mini.Problem(12, 34), "split_second")[:40]
    assert mini.parse_strategy(truncated) == "split_second"


def test_sft_records_follow_the_requested_imbalance():
    weights = {"split_first": 0.7, "split_second": 0.1, "round_up": 0.1, "grid": 0.1}
    problems = mini.make_splits(0).train
    records = mini.sft_records(problems, 4000, weights, seed=3)
    assert records == mini.sft_records(problems, 4000, weights, seed=3)
    shares = Counter(r["strategy"] for r in records)
    assert abs(shares["split_first"] / 4000 - 0.7) < 0.03
    assert all(mini.parse_strategy(r["completion"][0]["content"]) == r["strategy"] for r in records[:200])
    assert {(r["prompt"][-1]["content"]) for r in records} <= {p.question for p in problems}
    assert records[0]["prompt"][0] == {"role": "system", "content": mini.SYSTEM_PROMPT}


@pytest.mark.parametrize("weights", [{}, {"split_first": -1.0}, {"magic": 1.0}, {"grid": 0.0}])
def test_bad_strategy_weights_are_refused(weights):
    with pytest.raises(ValueError, match="strategy weights"):
        mini.sft_records(mini.make_splits(0).train, 10, weights)


def test_system_prompt_keeps_the_papers_tags():
    for tag in ("<think>", "</think>", "<answer>", "</answer>", "\\boxed{}"):
        assert tag in mini.SYSTEM_PROMPT and tag in mini.PAPER_SYSTEM_PROMPT
