"""dra.rewards on hand-made completions: grading, each reward, the cosine's shape, and robustness."""

from __future__ import annotations

import functools
import math
import time

import pytest

from dra.rewards import (
    PAPER_REWARD_FUNCS,
    PAPER_REWARD_WEIGHTS,
    accuracy_reward,
    clamped_cosine_reward,
    cosine_reward,
    cosine_value,
    final_answer,
    format_reward,
    is_correct,
    named_partial,
    paper_reward,
)


def paper_completion(answer: str, reasoning: str = "We compute it.") -> str:
    return f"<think>\n{reasoning}\n</think>\n<answer>\n\\boxed{{{answer}}}\n</answer>"


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("written, gold", [
    ("\\frac{1}{2}", "0.5"), ("0.5", "\\frac12"), ("025", "25"), ("27", 27.0),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"), ("84, 69", "69, 84"),
])
def test_is_correct_accepts_equivalent_answers(written, gold):
    assert is_correct(paper_completion(written), gold)


def test_is_correct_rejects_wrong_and_prefers_the_final_box():
    assert not is_correct(paper_completion("3"), "4")
    # An intermediate box in the reasoning does not count once the answer block boxes something else.
    assert not is_correct("<think>\n\\boxed{4}\n</think>\n<answer> \\boxed{3} </answer>", "4")
    assert final_answer("<answer> \\boxed{69}, \\boxed{84} </answer>") == "69, 84"
    assert is_correct("Therefore, the final answer is: $\\boxed{12}$. I hope it is correct", "12")


@pytest.mark.parametrize("garbage", [None, "", "   ", 42, b"\\boxed{3}", "\\boxed{", "\\boxed{}}}{", "}{" * 500,
                                     "\\boxed{\\frac{}{}}", "\x00\\boxed{3\x00}", ["\\boxed{3}"]])
def test_is_correct_never_raises_on_garbage(garbage):
    assert is_correct(garbage, "3") is False


def test_unparseable_gold_is_incorrect_but_rewards_skip_it():
    assert is_correct(paper_completion("3"), "") is False
    assert accuracy_reward([paper_completion("3")], answer=[""]) == [1.0]
    assert cosine_reward([paper_completion("3")], answer=[""]) == [1.0]


def test_timeout_guards_pathological_expressions():
    start = time.perf_counter()
    assert is_correct("\\boxed{9^{9^{9^{9^{9}}}}}", "9^{9^{9^{9^{8}}}}", timeout=1.0) is False
    assert time.perf_counter() - start < 4.0


def test_format_reward_counts_the_closing_think_tag_exactly_once():
    good = paper_completion("3")
    assert format_reward([good, "no tags", good + "\n</think>\n", "<think>x</think><answer>3</answer>"]) == \
        [1.0, 0.0, 0.0, 0.0]
    assert format_reward([chat(good)]) == [1.0]  # conversational mode


def test_accuracy_reward_standard_and_conversational_and_solution_fallback():
    completions = [paper_completion("4"), paper_completion("5")]
    assert accuracy_reward(completions, answer=["4", "4"]) == [1.0, 0.0]
    assert accuracy_reward([chat(c) for c in completions], answer=["4", "4"]) == [1.0, 0.0]
    assert accuracy_reward(completions, solution=["so \\boxed{4}", "so \\boxed{4}"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="answer"):
        accuracy_reward(completions)
    with pytest.raises(ValueError, match="align"):
        accuracy_reward(completions, answer=["4"])


def expected_cosine(correct: bool, length: int, max_len: int = 1000) -> float:
    # Independent restatement of open-r1's formula with the authors' grpo.py arguments.
    hi, lo = (1.0, 0.5) if correct else (0.0, -0.5)
    return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * length / max_len))


def test_cosine_reward_matches_open_r1_for_correct_wrong_and_malformed():
    short_right, short_wrong = paper_completion("4"), paper_completion("5")
    malformed = "I think it is four"
    rewards = cosine_reward([short_right, short_wrong, malformed], answer=["4", "4", "4"])
    assert rewards == pytest.approx([expected_cosine(True, len(short_right)),
                                     expected_cosine(False, len(short_wrong)),
                                     expected_cosine(False, len(malformed))])
    assert 0.99 < rewards[0] <= 1.0 and -0.01 < rewards[1] <= 0.0


def test_cosine_end_points_and_turn_back_past_max_len():
    assert cosine_value(True, 0) == pytest.approx(1.0)
    assert cosine_value(True, 1000) == pytest.approx(0.5)
    assert cosine_value(False, 0) == pytest.approx(0.0)
    assert cosine_value(False, 1000) == pytest.approx(-0.5)
    # Unclamped (faithful): the cosine turns back, 2 x max_len scores like an empty text.
    assert cosine_value(True, 1500) == pytest.approx(0.75)
    assert cosine_value(True, 2000) == pytest.approx(1.0)
    # Clamped: everything past max_len gets the floor.
    assert cosine_value(True, 2000, clamp=True) == pytest.approx(0.5)
    assert cosine_value(False, 2000, clamp=True) == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        cosine_value(True, 10, max_len=0)


def test_overlong_completion_unclamped_vs_clamped_and_partials_have_names():
    overlong = paper_completion("4", reasoning="x" * 1900)
    length = len(overlong)
    assert cosine_reward([overlong], answer=["4"]) == pytest.approx([expected_cosine(True, length)])
    assert clamped_cosine_reward([overlong], answer=["4"]) == pytest.approx([0.5])
    assert clamped_cosine_reward.__name__ == "clamped_cosine_reward"
    short = named_partial(cosine_reward, "cosine_500", max_len=500)
    assert isinstance(short, functools.partial) and short.__name__ == "cosine_500"
    assert short([overlong], answer=["4"]) == pytest.approx([expected_cosine(True, length, 500)])


def test_paper_reward_is_one_format_plus_two_cosine():
    completions = [paper_completion("4"), paper_completion("5"), "\\boxed{4}"]
    answers = ["4"] * 3
    total = paper_reward(completions, answer=answers)
    fmt, cos = format_reward(completions), cosine_reward(completions, answer=answers)
    assert total == pytest.approx([f + 2 * c for f, c in zip(fmt, cos)])
    assert PAPER_REWARD_FUNCS == [format_reward, cosine_reward] and PAPER_REWARD_WEIGHTS == [1.0, 2.0]
