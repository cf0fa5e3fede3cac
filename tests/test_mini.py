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
    pairs = {name: {p.pair for p in first[name]} for name in mini.SPLITS}
    for i, a in enumerate(mini.SPLITS):
        for b in mini.SPLITS[i + 1:]:
            assert not pairs[a] & pairs[b], (a, b)
    everything = [p for name in mini.SPLITS for p in first[name]]
    assert sorted((p.a, p.b) for p in everything) == sorted((p.a, p.b) for p in ALL_PROBLEMS)
    assert len(first.test) >= 3000 and len(first.validation) >= 600
    assert abs(len(first.rl) - len(first.sft)) < 0.05 * len(first.sft)  # rl_fraction 0.5 of the pairs


def test_split_sizes_are_validated():
    with pytest.raises(ValueError, match="quarter"):
        mini.make_splits(0, n_test=6000)
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


def test_home_strategy_is_read_from_the_first_factors_ones_digit():
    assert mini.Problem(41, 57).home_strategy == "split_first"
    assert mini.Problem(57, 41).home_strategy == "round_up"
    assert mini.Problem(49, 12).home_strategy == "round_up"
    assert mini.Problem(35, 12).home_strategy == "split_second"
    homes = Counter(p.home_strategy for p in ALL_PROBLEMS)
    assert homes == {"split_first": 2 * 9 * 81, "split_second": 3 * 9 * 81, "round_up": 4 * 9 * 81}  # grid: no home


@pytest.mark.parametrize("strategy", mini.STRATEGIES)
def test_a_carry_slip_makes_only_the_last_step_and_the_answer_10_too_high(strategy):
    for problem in random.Random(1).sample(ALL_PROBLEMS, 300):
        exact, slipped = mini.solution_steps(problem, strategy), mini.solution_steps(problem, strategy, True)
        assert exact[:-1] == slipped[:-1]
        assert int(slipped[-1].rsplit("=", 1)[1]) == problem.a * problem.b + 10
        text = mini.completion(problem, strategy, carry_slip=True)
        assert text.endswith(f"\\boxed{{{problem.a * problem.b + 10}}} </answer>")
        assert not is_correct(text, problem.answer) and mini.parse_strategy(text) == strategy
        assert format_reward([text]) == [1.0]


def test_sft_records_slip_only_off_home_at_the_requested_rate():
    weights = {"split_first": 0.64, "split_second": 0.16, "round_up": 0.12, "grid": 0.08}
    problems = mini.make_splits(0).sft
    records = mini.sft_records(problems, 6000, weights, seed=3, off_home_error=0.85, balanced_fraction=0.5)
    assert records == mini.sft_records(problems, 6000, weights, seed=3, off_home_error=0.85, balanced_fraction=0.5)
    problem_of = {p.question: p for p in problems}
    home, off = [], []
    for r in records:
        p = problem_of[r["prompt"][-1]["content"]]
        text = r["completion"][0]["content"]
        assert r["correct"] == is_correct(text, p.answer)  # the flag is what the real grader says
        (home if r["strategy"] == p.home_strategy else off).append(r["correct"])
    assert all(home)
    assert abs(1 - sum(off) / len(off) - 0.85) < 0.03
    first, second = Counter(r["strategy"] for r in records[:3000]), Counter(r["strategy"] for r in records[3000:])
    assert all(abs(first[s] / 3000 - 0.25) < 0.03 for s in mini.STRATEGIES)
    assert abs(second["split_first"] / 3000 - 0.64) < 0.03 and abs(second["grid"] / 3000 - 0.08) < 0.02


def test_strict_accuracy_rewards_only_well_formed_correct_answers():
    problem = mini.Problem(47, 83)
    good = mini.completion(problem, "grid")
    wrong = mini.completion(problem, "grid", carry_slip=True)
    no_think = good.replace("\n</think>\n", " ")
    two_closes = good.replace("</answer>", "\n</think>\n</answer>")
    assert mini.strict_accuracy_reward([good, wrong, no_think, two_closes], answer=[problem.answer] * 4) == [1.0, 0.0, 0.0, 0.0]
    as_messages = [[{"role": "assistant", "content": good}]]
    assert mini.strict_accuracy_reward(as_messages, answer=[problem.answer]) == [1.0]


def test_oracle_embedder_weights_are_one_over_the_strategy_mode_size():
    from dra.kernels import diversity_weights

    problem = mini.Problem(23, 58)
    strategies = ["split_first", "split_first", "split_first", "grid", "round_up", "round_up"]
    texts = [mini.completion(problem, s) for s in strategies]
    vectors = mini.StrategyEmbedder().encode(texts)
    assert vectors.shape == (6, len(mini.STRATEGIES) + 1)
    weights = diversity_weights(vectors, 6)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5])
    unknown = mini.StrategyEmbedder().encode(["garbage", "more garbage"])
    assert unknown[:, -1].tolist() == [1.0, 1.0]


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
    problems = mini.make_splits(0).sft
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
        mini.sft_records(mini.make_splits(0).sft, 10, weights)


def test_system_prompt_keeps_the_papers_tags():
    for tag in ("<think>", "</think>", "<answer>", "</answer>", "\\boxed{}"):
        assert tag in mini.SYSTEM_PROMPT and tag in mini.PAPER_SYSTEM_PROMPT
