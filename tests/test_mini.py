"""The mini world: every strategy computes exactly and is right exactly on its own kind, splits are seeded and
disjoint, the parser recovers strategies."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from dra import mini, tasks
from dra.rewards import format_reward, is_correct

ALL_PROBLEMS = [mini.Problem(a, b) for a in mini.first_factors() for b in mini.factors()]
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


def test_the_world_has_81_factors_and_27_first_factors():
    numbers = mini.factors()
    assert len(numbers) == 81 and all(n % 10 and 11 <= n <= 99 for n in numbers)
    assert mini.first_factors() == [n for n in numbers if n % 10 in (1, 5, 9)] and len(ALL_PROBLEMS) == 27 * 81


@pytest.mark.parametrize("strategy", mini.STRATEGIES)
def test_every_strategy_computes_exactly_and_is_right_exactly_on_its_own_kind(strategy):
    for problem in ALL_PROBLEMS:
        text = mini.completion(problem, strategy)
        assert _check_arithmetic(text) >= 2  # every written step is exact arithmetic
        last = text.split("\n</think>\n")[0].splitlines()[-1]
        reached = int(last.rsplit("=", 1)[1])
        assert text.endswith(f"<answer> \\boxed{{{reached}}} </answer>")  # the box holds what the steps reach
        # Right iff the strategy is the problem's home shortcut, or grid (exact everywhere), as the real grader says.
        right = strategy in ("grid", problem.home_strategy)
        assert (reached == problem.a * problem.b) == right == mini.is_exact(problem, strategy)
        assert is_correct(text, problem.answer) == right
        assert mini.parse_strategy(text) == strategy


def test_a_shortcut_off_its_kind_misses_by_the_digit_it_assumes():
    assumed = {"plus_one": 1, "plus_five": 5, "minus_one": 9}
    for problem in ALL_PROBLEMS:
        for strategy, digit in assumed.items():
            reached = int(mini.solution_steps(problem, strategy)[-1].rsplit("=", 1)[1])
            assert problem.a * problem.b - reached == (problem.a % 10 - digit) * problem.b


def test_strategies_are_graded_by_the_real_rewards():
    rng = random.Random(0)
    problems = rng.sample(ALL_PROBLEMS, 60)
    texts = [mini.completion(p, s) for p in problems for s in mini.STRATEGIES]
    assert format_reward(texts) == [1.0] * len(texts)
    wrong = [p.a * p.b + 1 for p in problems]
    assert not any(is_correct(mini.completion(p, "grid"), str(w)) for p, w in zip(problems, wrong))


def test_strategies_are_genuinely_different_paths():
    problem = mini.Problem(49, 83)
    steps = {s: tuple(mini.solution_steps(problem, s)[1:]) for s in mini.STRATEGIES}
    assert len(set(steps.values())) == len(mini.STRATEGIES)
    assert steps["minus_one"] == ("50*83=4150", "4150-83=4067")
    assert steps["plus_one"] == ("40*83=3320", "3320+83=3403")
    assert len(steps["grid"]) == 5


@pytest.mark.parametrize("a, b", [(47, 83), (10, 31), (31, 100), (31, 40), ("31", 12), (31.0, 12)])
def test_problems_outside_the_world_are_refused(a, b):
    with pytest.raises(ValueError, match="first must end in 1, 5 or 9"):
        mini.Problem(a, b)


def test_splits_are_deterministic_by_seed_and_disjoint_by_factor_pair():
    first, again, other = mini.make_splits(7), mini.make_splits(7), mini.make_splits(8)
    assert first == again
    assert first.test != other.test
    pairs = {name: {p.pair for p in first[name]} for name in mini.SPLITS}
    for i, a in enumerate(mini.SPLITS):
        for b in mini.SPLITS[i + 1:]:
            assert not pairs[a] & pairs[b], (a, b)
    everything = [p for name in mini.SPLITS for p in first[name]]
    assert sorted((p.a, p.b) for p in everything) == sorted((p.a, p.b) for p in ALL_PROBLEMS)
    assert len(first.test) >= 700 and len(first.validation) >= 350
    assert len(mini.distinct_pairs(first.test)) >= 500  # the pre-registered 500 distinct evaluation pairs
    assert abs(len(first.rl) - len(first.sft)) < 0.05 * len(first.sft)  # rl_fraction 0.5 of the pairs


def test_split_sizes_are_validated():
    with pytest.raises(ValueError, match="quarter"):
        mini.make_splits(0, n_test=2000)
    with pytest.raises(ValueError, match="rl_fraction"):
        mini.make_splits(0, rl_fraction=1.0)
    with pytest.raises(ValueError, match="unknown split"):
        mini.make_splits(0)["train"]


def test_distinct_pairs_keeps_one_ordering_of_each_pair():
    test = mini.make_splits(0).test
    chosen = mini.distinct_pairs(test, seed=3)
    assert len(chosen) == len({p.pair for p in test}) == len({p.pair for p in chosen})
    assert chosen == mini.distinct_pairs(test, seed=3)
    assert {(p.a, p.b) for p in chosen} <= {(p.a, p.b) for p in test}
    # Both orderings are used (the order is drawn, not always the smaller factor first).
    assert any(p.a > p.b for p in chosen) and any(p.a < p.b for p in chosen)


def test_home_strategy_and_kind_are_read_from_the_first_factors_ones_digit():
    assert mini.Problem(41, 57).home_strategy == "plus_one" and mini.Problem(41, 57).kind == "A"
    assert mini.Problem(55, 41).home_strategy == "plus_five" and "(kind B)" in mini.Problem(55, 41).question
    assert mini.Problem(49, 12).home_strategy == "minus_one" and mini.Problem(49, 12).kind == "C"
    homes = Counter(p.home_strategy for p in ALL_PROBLEMS)
    assert homes == {"plus_one": 9 * 81, "plus_five": 9 * 81, "minus_one": 9 * 81}  # grid: no home


def test_sft_records_are_exact_and_flag_what_the_grader_says():
    weights = {"plus_one": 0.64, "plus_five": 0.16, "minus_one": 0.12, "grid": 0.08}
    problems = mini.make_splits(0).sft
    records = mini.sft_records(problems, 6000, weights, seed=3, balanced_fraction=0.5)
    assert records == mini.sft_records(problems, 6000, weights, seed=3, balanced_fraction=0.5)
    problem_of = {p.question: p for p in problems}
    for r in records:
        p = problem_of[r["prompt"][-1]["content"]]
        text = r["completion"][0]["content"]
        assert r["correct"] == is_correct(text, p.answer) == (r["strategy"] in ("grid", p.home_strategy))
    first, second = Counter(r["strategy"] for r in records[:3000]), Counter(r["strategy"] for r in records[3000:])
    assert all(abs(first[s] / 3000 - 0.25) < 0.03 for s in mini.STRATEGIES)
    assert abs(second["plus_one"] / 3000 - 0.64) < 0.03 and abs(second["grid"] / 3000 - 0.08) < 0.02
    # Strategies are drawn independently of the problem's kind.
    at_home = [r["strategy"] == problem_of[r["prompt"][-1]["content"]].home_strategy for r in records[:3000]]
    assert abs(sum(at_home) / 3000 - 0.25) < 0.03


def test_strict_accuracy_rewards_only_well_formed_correct_answers():
    problem = mini.Problem(41, 83)
    good = mini.completion(problem, "grid")
    wrong = mini.completion(problem, "minus_one")
    no_think = good.replace("\n</think>\n", " ")
    two_closes = good.replace("</answer>", "\n</think>\n</answer>")
    assert mini.strict_accuracy_reward([good, wrong, no_think, two_closes], answer=[problem.answer] * 4) == [1.0, 0.0, 0.0, 0.0]
    as_messages = [[{"role": "assistant", "content": good}]]
    assert mini.strict_accuracy_reward(as_messages, answer=[problem.answer]) == [1.0]


def test_oracle_embedder_weights_are_one_over_the_strategy_mode_size():
    from dra.kernels import diversity_weights

    problem = mini.Problem(21, 58)
    strategies = ["plus_one", "plus_one", "plus_one", "grid", "minus_one", "minus_one"]
    texts = [mini.completion(problem, s) for s in strategies]
    vectors = mini.StrategyEmbedder().encode(texts)
    assert vectors.shape == (6, len(mini.STRATEGIES) + 1)
    weights = diversity_weights(vectors, 6)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5])
    unknown = mini.StrategyEmbedder().encode(["garbage", "more garbage"])
    assert unknown[:, -1].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("garbage", [None, "", 123, b"bytes", "Split the", "Round up to 50", "<think>\n</think>",
                                     "\x00\xff" * 50, "take 4 times 5, add one more 5.", ["Grid of partial products."]])
def test_parser_returns_none_on_garbage(garbage):
    assert mini.parse_strategy(garbage) is None


def test_parser_reads_the_first_announced_strategy_despite_wrong_arithmetic():
    text = mini.completion(mini.Problem(49, 83), "minus_one").replace("4150", "4151")
    assert mini.parse_strategy(text) == "minus_one"
    mixed = "<think>\nGrid of partial products.\nTake 40 times 83, add one more 83.\n"
    assert mini.parse_strategy(mixed) == "grid"
    truncated = mini.completion(mini.Problem(15, 34), "plus_five")[:48]
    assert mini.parse_strategy(truncated) == "plus_five"


def test_sft_records_follow_the_requested_imbalance():
    weights = {"plus_one": 0.7, "plus_five": 0.1, "minus_one": 0.1, "grid": 0.1}
    problems = mini.make_splits(0).sft
    records = mini.sft_records(problems, 4000, weights, seed=3)
    assert records == mini.sft_records(problems, 4000, weights, seed=3)
    shares = Counter(r["strategy"] for r in records)
    assert abs(shares["plus_one"] / 4000 - 0.7) < 0.03
    assert all(mini.parse_strategy(r["completion"][0]["content"]) == r["strategy"] for r in records[:200])
    assert {(r["prompt"][-1]["content"]) for r in records} <= {p.question for p in problems}
    assert records[0]["prompt"][0] == {"role": "system", "content": mini.SYSTEM_PROMPT}


@pytest.mark.parametrize("weights", [{}, {"plus_one": -1.0}, {"magic": 1.0}, {"grid": 0.0}])
def test_bad_strategy_weights_are_refused(weights):
    with pytest.raises(ValueError, match="strategy weights"):
        mini.sft_records(mini.make_splits(0).sft, 10, weights)


def test_system_prompt_keeps_the_papers_tags():
    for tag in ("<think>", "</think>", "<answer>", "</answer>", "\\boxed{}"):
        assert tag in mini.SYSTEM_PROMPT and tag in tasks.PAPER_SYSTEM_PROMPT
