"""dra.examples' helpers for notebook 02's all-wrong groups, against the reward's closed form."""

import math

import numpy as np
import pytest

import dra
from dra import examples
from dra.rewards import THINK_CLOSE, final_answer, format_reward, is_correct


@pytest.mark.parametrize("length", [47, 110, 1000, 2500])
def test_formatted_completion_has_the_length_format_and_answer(length):
    text = examples.formatted_completion("5", length)
    assert len(text) == length and format_reward([text]) == [1.0] and final_answer(text) == "5"
    with pytest.raises(ValueError, match="length must be at least"):
        examples.formatted_completion("5", 20)


def test_paper_totals_follow_the_closed_form():
    """1 x format + 2 x open-r1 cosine: 2 + (1 + cos(pi L / 1000)) / 2 when correct, (1 + cos(pi L / 1000)) / 2 when
    wrong (the authors' swapped wrong values), so a well-formatted wrong answer is never negative."""
    lengths = [60, 110, 777, 1000, 1500, 3001]
    totals = examples.paper_totals(lengths)
    half_cos = np.array([(1 + math.cos(math.pi * n / 1000)) / 2 for n in lengths])
    np.testing.assert_allclose(totals["correct"], 2 + half_cos, atol=1e-12)
    np.testing.assert_allclose(totals["wrong"], half_cos, atol=1e-12)
    assert totals["correct"][1] == pytest.approx(2.97, abs=5e-3) and totals["wrong"][1] == pytest.approx(0.97, abs=5e-3)


def test_r1_layout_adds_only_the_closing_tag():
    text = "Step one.\n\nStep two.\n\nSo the answer is \\(\\boxed{64}\\)."
    r1 = examples.as_r1_format(text)
    assert r1 == "Step one.\n\nStep two." + THINK_CLOSE + "So the answer is \\(\\boxed{64}\\)."
    assert len(r1) == len(text) + 8 and format_reward([r1]) == [1.0] and final_answer(r1) == final_answer(text)
    assert examples.as_r1_format("one line") == "one line" + THINK_CLOSE


def test_all_wrong_groups_of_the_stored_completions(data_dir):
    groups = examples.all_wrong_groups(6)
    assert [g["index"] for g in groups] == [3, 72, 84, 85]
    for g in groups:
        assert len(g["r1_texts"]) == 6 and g["with_closing_tag"] == 0
        assert not any(is_correct(t, g["gold"]) for t in g["r1_texts"])
        assert format_reward(g["r1_texts"]) == [1.0] * 6


def test_advantage_table_is_the_kernel_and_positive_totals_ignore_adjust_negative():
    e = examples.clustered_group([5, 1], seed=0)
    r = np.array([0.97, 0.96, 0.98, 0.97, 0.95, 0.97])
    table = examples.advantage_table(r, e, 6)
    np.testing.assert_array_equal(table["DRA reward"], dra.adjust_rewards(r, e, 6))
    np.testing.assert_array_equal(table["DRA-GRPO adv"], table["DRA-GRPO adv, adjust_negative=False"])
    assert np.argmax(table["DRA-GRPO adv"]) == 5  # the distinct wrong completion
    np.testing.assert_array_equal(table["Dr. GRPO adv"], r - r.mean())
