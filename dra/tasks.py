"""Tasks: what a policy is asked and how its answers are checked, one object per source of problems.

As in nanochat's ``tasks/``, a task owns its problems (and, for the mini world, their splits), renders each as
chat messages, and carries each problem's gold answer in the column the reward functions grade against
(``answer``). Training (`dra.train`), evaluation (`dra.experiment`, notebook 04), the study (notebook 01) and
the scripts take their prompts from a task, so each prompt is built in one place:

- `MiniTask`: the mini world (`dra.mini` defines it) with its seeded, disjoint splits and shortened system
  prompt; it labels each completion with the strategy it took and names what training logs about them.
- `MathTask`: a math dataset of `dra.data` (training pools `open_rs` and `math_train`, the five benchmarks),
  rendered with the paper's R1 system prompt for training and the paper's evaluation prompt for evaluation.

The reward functions grade a completion against the task's ``answer`` column; which of them train a run is the
recipe's choice (`reward_funcs`), not the task's: the mini world's primary reward is
`dra.mini.strict_accuracy_reward`, but two of its controls train with the paper's reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from dra import checks, data, metrics, mini
from dra.rewards import is_correct, well_formatted

# The paper's R1 system prompt, verbatim from the authors' recipes (docs/paper_facts.md, section 5).
PAPER_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer, "
    "and put your final answer within \\boxed{} . The reasoning process and answer are enclosed within <think> "
    "</think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> "
    "answer here </answer>. Note that respond by English, NOT use other languages."
)
# The paper's evaluation prompt: lighteval's MATH prompt as the authors ran it (docs/paper_facts.md, section 7).
EVAL_PROMPT = (
    "Solve the following math problem efficiently and clearly. The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering."
)
TRAINING_POOLS: tuple[str, ...] = ("open_rs", "math_train")  # the math datasets a recipe may train on
BENCHMARKS: tuple[str, ...] = data.BENCHMARKS


@dataclass(frozen=True)
class MiniTask:
    """The mini world as a task: seeded splits disjoint by factor pair (`dra.mini.make_splits`), prompts with
    `system_prompt`, gold answers, the strategy label of each completion, and the metrics training logs."""

    split_seed: int = 0
    n_test: int = 700
    n_validation: int = 350
    rl_fraction: float = 0.5
    system_prompt: str = mini.SYSTEM_PROMPT

    name: ClassVar[str] = "mini"

    def splits(self) -> mini.MiniSplits:
        """SFT / RL / validation / test problems: the one place they are built from these settings."""
        return mini.make_splits(self.split_seed, n_test=self.n_test, n_validation=self.n_validation,
                                rl_fraction=self.rl_fraction)

    def messages(self, problem: mini.Problem) -> list[dict[str, str]]:
        """The chat prompt of one problem (system prompt, then the question)."""
        return mini.prompt_messages(problem, self.system_prompt)

    def records(self, problems: Sequence[mini.Problem]) -> list[dict[str, Any]]:
        """One training/study record per problem: ``prompt`` (messages), ``answer`` and the problem's columns
        (`dra.mini.prompt_records`)."""
        return mini.prompt_records(problems, self.system_prompt)

    def training_records(self) -> list[dict[str, Any]]:
        """The RL split's records: the prompts GRPO trains on (never seen in SFT)."""
        return self.records(self.splits().rl)

    def evaluation_problems(self, split: str = "test", limit: int | None = None) -> list[mini.Problem]:
        """One ordering per factor pair of `split` (`dra.mini.distinct_pairs`: independent prompts), the first
        `limit` of them."""
        return mini.distinct_pairs(self.splits()[split])[:limit]

    def evaluation_items(self, split: str = "test", limit: int | None = None) -> list[dict[str, Any]]:
        """`evaluation_problems` as `dra.evaluate` items: id ("AxB"), prompt, answer and the home strategy."""
        problems = self.evaluation_problems(split, limit)
        return [{"id": f"{p.a}x{p.b}", "prompt": record["prompt"], "answer": record["answer"],
                 "home_strategy": p.home_strategy} for p, record in zip(problems, self.records(problems))]

    @staticmethod
    def label(text: str) -> dict[str, Any]:
        """What an evaluation keeps of each completion besides its grade: the strategy it took and whether it
        is well formatted."""
        return {"strategy": mini.parse_strategy(text), "format": well_formatted(text)}

    @staticmethod
    def completion_metrics(texts: list[str], examples: list[dict[str, Any]]) -> dict[str, float]:
        """What training logs per step (`mini/...`): accuracy, strategy entropy (bits), the dominant strategy's
        share and the share of completions that took their problem's home strategy."""
        labels = [mini.parse_strategy(t) for t in texts]
        _, share = metrics.dominant_strategy(labels)
        accuracy = float(np.mean([is_correct(t, e["answer"]) for t, e in zip(texts, examples)])) if texts else float("nan")
        home = float(np.mean([label == e.get("home_strategy") for label, e in zip(labels, examples)])) if texts else float("nan")
        return {"mini/accuracy": accuracy, "mini/strategy_entropy": metrics.strategy_entropy(labels),
                "mini/dominant_share": share, "mini/home_share": home}


@dataclass(frozen=True)
class MathTask:
    """A math dataset of `dra.data` with ``problem`` and ``answer`` columns: the paper's training pools and
    benchmarks, in the paper's prompts."""

    name: str

    label: ClassVar[None] = None  # nothing to read off a completion beyond its grade
    completion_metrics: ClassVar[None] = None

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The dataset's problems (`dra.data.load`), the first `limit` of them."""
        if limit is not None:
            checks.integer(limit, "limit", minimum=0)
        return data.load(self.name)[:limit]

    @staticmethod
    def training_messages(problem: str) -> list[dict[str, str]]:
        """A training prompt as the authors trained: the R1 system prompt, then the problem."""
        return [{"role": "system", "content": PAPER_SYSTEM_PROMPT}, {"role": "user", "content": problem}]

    @staticmethod
    def evaluation_messages(problem: str) -> list[dict[str, str]]:
        """An evaluation prompt as the authors evaluated: the evaluation prompt and the problem, one user turn."""
        return [{"role": "user", "content": f"{EVAL_PROMPT}\n\n{problem}"}]

    def training_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Records with ``prompt`` (training messages) and ``answer``, the shape TRL's GRPOTrainer takes."""
        return [{"prompt": self.training_messages(r["problem"]), "answer": r["answer"]} for r in self.rows(limit)]

    def evaluation_items(self, limit: int | None = None) -> list[dict[str, Any]]:
        """`dra.evaluate` items: id, prompt (evaluation messages), answer."""
        return [{"id": r["id"], "prompt": self.evaluation_messages(r["problem"]), "answer": r["answer"]}
                for r in self.rows(limit)]
