"""Train (or load the cached) mini-world base policy, evaluate it on the test split, write the figures.

    python scripts/train_mini_policy.py --profile mini      # SFT <= 15 min on 2 cores, then 3,000 x 6 samples
    python scripts/train_mini_policy.py --profile smoke     # seconds; proves the pipeline only

Prints and writes ``data/mini_base_policy_<profile>.json``: SFT wall time (from the training summary of the
cached run when it was cached), pass@1 and pass@G on the test split at the training temperature, the
strategy distribution, per-strategy accuracy, format rate, completion lengths and sampling throughput
(completions per second with batched generation), plus provenance (versions, hardware, config key).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dra import generation, metrics, mini, policy, profiles
from dra.config import results_dir
from dra.reports import NESTED, load_result, save_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="smoke or mini (default: $DRA_PROFILE, else mini)")
    parser.add_argument("--prompts", type=int, default=None, help="test prompts to sample (default: by profile)")
    parser.add_argument("--group-size", type=int, default=6)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=768, help="sequences generated together")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args()
    profile = profiles.from_environment(args.profile)
    config = profile.mini_policy()

    started = time.perf_counter()
    cached = (policy.run_dir(config) / "model" / policy.SUMMARY_FILE).is_file()
    model_dir = policy.base_policy(config)
    load_or_train_s = time.perf_counter() - started
    summary = policy.training_summary(model_dir)
    print(f"base policy: {model_dir} ({'cached' if cached else 'trained now'}; {summary['n_parameters']:,} parameters)")
    print(f"SFT wall time: {summary['sft_seconds_this_session']:.1f} s for {summary['steps']} steps "
          f"({summary.get('trainer_seconds_this_session', float('nan')):.1f} s in the trainer)"
          f"{' (resumed from ' + summary['resumed_from'] + ')' if summary['resumed_from'] else ''}")

    model, tokenizer = policy.load_policy(model_dir)
    problems = config.task.evaluation_problems("test", args.prompts or profile.benchmarks.base_policy_prompts)
    prompts = [config.task.messages(p) for p in problems]

    started = time.perf_counter()
    groups = generation.sample_groups(
        model, prompts, args.group_size, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
        seed=args.seed, batch_size=args.batch_size, tokenizer=tokenizer, progress=True,
    )
    sampling_s = time.perf_counter() - started
    n_completions = len(problems) * args.group_size

    started = time.perf_counter()
    report = metrics.group_report(groups, [p.answer for p in problems], strategy_of=mini.parse_strategy)
    grading_s = time.perf_counter() - started
    tokens = metrics.completion_lengths([t for g in groups for t in g], tokenizer)
    report.update(metrics.home_metrics([p.home_strategy for p in problems], report.pop("strategies"),
                                       report.pop("correct"), mini.STRATEGIES))

    result = {
        **report,
        "mean_length_tokens": float(tokens.mean()),
        "max_length_tokens": int(tokens.max()),
        "truncated_share": float(np.mean(tokens >= args.max_new_tokens)),
        "sft_seconds": summary["sft_seconds_this_session"],
        "sft_trainer_seconds": summary.get("trainer_seconds_this_session"),
        "sft_resumed_from": summary["resumed_from"],
        "load_or_train_seconds": round(load_or_train_s, 2),
        "sampling_seconds": round(sampling_s, 2),
        "completions_per_second": n_completions / sampling_s,
        "grading_seconds": round(grading_s, 2),
        "examples": {p.question: g[:2] for p, g in list(zip(problems, groups))[:3]},
    }
    path = save_result(
        "mini_base_policy", result, profile.name, args.seed, path=results_dir() / f"mini_base_policy_{profile.name}.json",
        layout=NESTED, policy_key=config.key(), model_dir=model_dir, policy_config=config.as_dict(),
        split="test", n_prompts=len(problems), group_size=args.group_size, temperature=args.temperature,
        top_p=1.0, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, backend="transformers",
    )
    _print_result(load_result(path=path), n_completions)
    print(f"written: {path}")


def _print_result(result: dict, n_completions: int) -> None:
    g = result["group_size"]
    print(f"test split: {result['n_prompts']} prompts x {g} samples (temperature "
          f"{result['provenance']['temperature']})")
    print(f"  pass@1 {result['pass@1']:.3f}   pass@{g} {result[f'pass@{g}']:.3f}   format rate "
          f"{result['format_rate']:.3f}   unrecognised strategy {result['unrecognised_share']:.3f}")
    print(f"  strategy entropy {result['strategy_entropy']:.3f} bits; distinct correct strategies per "
          f"prompt {result['distinct_correct_strategies']:.2f}")
    for name, share in result["strategy_shares"].items():
        print(f"    {name:<13} share {share:.3f}   accuracy {result['accuracy_by_strategy'][name]:.3f}   at home "
              f"{_rate(result['accuracy_at_home_by_strategy'].get(name))}   off home "
              f"{_rate(result['accuracy_off_home_by_strategy'].get(name))}")
    print(f"  share of samples using their problem's home strategy: {result['home_share']:.3f}; routing ceiling "
          f"(every problem on its home strategy) {_rate(result['routing_ceiling'])}")
    print(f"  completion length: {result['mean_length_tokens']:.1f} tokens on average, max "
          f"{result['max_length_tokens']}, truncated {result['truncated_share']:.3f}")
    print(f"  sampling: {n_completions} completions in {result['sampling_seconds']:.1f} s = "
          f"{result['completions_per_second']:.1f} completions/s; grading {result['grading_seconds']:.1f} s")


def _rate(value: float | None) -> str:
    """A rate read back from JSON, where a rate with no samples (NaN) was stored as null."""
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
