"""Tasks own their problems, splits, prompts and answers: the mini world's and the math datasets'."""

from __future__ import annotations

import pytest

from dra import data, mini, profiles, tasks
from dra.rewards import is_correct
from dra.train import RecipeArguments, training_task


def test_the_default_mini_task_is_the_worlds_default_split():
    assert tasks.MiniTask().splits() == mini.make_splits(0)
    assert profiles.get("mini").mini_policy().task == tasks.MiniTask()


def test_a_policy_configs_task_carries_its_split_settings():
    config = profiles.get("smoke").mini_policy()
    task = config.task
    assert (task.split_seed, task.n_test, task.n_validation, task.rl_fraction, task.system_prompt) == \
           (config.split_seed, config.n_test, config.n_validation, config.rl_fraction, config.system_prompt)
    splits = task.splits()
    assert len(splits.test) >= 200 and len(splits.validation) >= 50
    pairs = {name: {p.pair for p in splits[name]} for name in mini.SPLITS}
    assert not pairs["rl"] & (pairs["test"] | pairs["validation"] | pairs["sft"])  # RL prompts never seen elsewhere


def test_evaluation_items_are_distinct_pairs_with_answers_and_prompts():
    task = profiles.get("smoke").mini_policy().task
    items = task.evaluation_items("validation", limit=20)
    problems = task.evaluation_problems("validation", limit=20)
    assert len(items) == 20 and len({item["id"] for item in items}) == 20
    assert len({p.pair for p in problems}) == 20 and {p.pair for p in problems} <= {p.pair for p in task.splits().validation}
    for item, problem in zip(items, problems):
        assert item["id"] == f"{problem.a}x{problem.b}" and item["answer"] == str(problem.a * problem.b)
        assert item["prompt"] == task.messages(problem) == [{"role": "system", "content": mini.SYSTEM_PROMPT},
                                                            {"role": "user", "content": problem.question}]
        assert item["home_strategy"] == problem.home_strategy
    assert len(task.evaluation_items("test")) == len({p.pair for p in task.splits().test})


def test_training_records_are_the_rl_split_as_grpo_takes_it():
    task = tasks.MiniTask(system_prompt="")
    records = task.training_records()
    assert len(records) == len(task.splits().rl)
    first = records[0]
    assert first["prompt"] == [{"role": "user", "content": task.splits().rl[0].question}]  # no empty system turn
    assert {"answer", "a", "b", "home_strategy"} <= set(first)


def test_labels_and_training_metrics_read_the_strategy_and_the_home():
    problem = mini.Problem(21, 34)  # kind A: plus_one is exact, plus_five is not
    right, wrong = mini.completion(problem, "plus_one"), mini.completion(problem, "plus_five")
    assert tasks.MiniTask.label(right) == {"strategy": "plus_one", "format": True}
    assert tasks.MiniTask.label("no idea") == {"strategy": None, "format": False}
    example = {"answer": problem.answer, "home_strategy": problem.home_strategy}
    logged = tasks.MiniTask.completion_metrics([right, wrong, right, right], [example] * 4)
    assert logged["mini/accuracy"] == 0.75 == logged["mini/home_share"] == logged["mini/dominant_share"]
    assert is_correct(right, problem.answer) and not is_correct(wrong, problem.answer)


def test_math_prompts_are_the_papers():
    assert tasks.MathTask.training_messages("1 + 1?") == [
        {"role": "system", "content": tasks.PAPER_SYSTEM_PROMPT}, {"role": "user", "content": "1 + 1?"}]
    (message,) = tasks.MathTask.evaluation_messages("1 + 1?")
    assert message["role"] == "user" and message["content"] == f"{tasks.EVAL_PROMPT}\n\n1 + 1?"
    assert tasks.BENCHMARKS == data.BENCHMARKS
    with pytest.raises(ValueError, match="limit"):
        tasks.MathTask("aime24").rows(limit=-1)


def test_math_items_and_records_come_from_the_dataset(data_dir):
    rows = data.load("aime24")[:3]
    items = tasks.MathTask("aime24").evaluation_items(limit=3)
    assert [item["id"] for item in items] == [r["id"] for r in rows]
    assert [item["answer"] for item in items] == [r["answer"] for r in rows]
    records = tasks.MathTask("aime24").training_records(limit=3)
    assert [r["prompt"][1]["content"] for r in records] == [r["problem"] for r in rows]


def test_a_recipe_names_its_training_task():
    assert training_task(RecipeArguments(profile="smoke", task="mini")) == profiles.get("smoke").mini_policy().task
    assert training_task(RecipeArguments(profile="paper", task="open_rs")) == tasks.MathTask("open_rs")
    with pytest.raises(ValueError, match="unknown task 'gsm8k'; choose one of mini, open_rs, math_train"):
        training_task(RecipeArguments(task="gsm8k"))
    with pytest.raises(ValueError, match="no mini-world policy"):
        training_task(RecipeArguments(profile="paper", task="mini"))
