"""What bfloat16 autocast costs the base policy's SFT on this CPU: one forward and backward pass of a randomly
initialised model of the profile's size (`dra.policy.build_model`, with the profile's tokenizer) on a batch of its SFT batch size,
in float32 and under bfloat16 autocast (what TRL's SFT default, bf16=True, runs), on one torch thread as every
mini-world result is made (`dra.threads`). The optimiser step and the data pipeline are left out.

On a CPU with native bfloat16 the autocast pass is about as fast as float32; where bfloat16 is emulated (AVX2
only) it is about ten times slower (12x on an AVX2 AMD EPYC), which is why the SFT's progress bar says about 1 s
a step on the one and about 9 s on the other (README, "One kind of CPU, checked").

    .venv/bin/python scripts/bench_sft_precision.py --profile mini
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dra import policy, profiles
from dra.io import hardware
from dra.threads import result_threads


def step_seconds(model, batch: torch.Tensor, bf16: bool, repeats: int) -> float:
    """Median seconds of one forward and backward pass (the first, warm-up pass not counted)."""
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mini", choices=sorted(profiles.PROFILES))
    parser.add_argument("--tokens", type=int, default=96, help="sequence length (prompt and completion)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    config = profiles.get(args.profile).mini_policy()
    with tempfile.TemporaryDirectory() as scratch:  # the profile's own tokenizer, so the model is the SFT's
        tokenizer = policy.train_tokenizer(config, config.task.splits().sft, Path(scratch))
    torch.manual_seed(0)
    model = policy.build_model(config, tokenizer).train()
    batch = torch.randint(0, len(tokenizer), (config.batch_size, args.tokens))
    with result_threads():
        machine = hardware()
        float32 = step_seconds(model, batch, bf16=False, repeats=args.repeats)
        bfloat16 = step_seconds(model, batch, bf16=True, repeats=args.repeats)
    print(f"{machine['cpu']} ({machine['torch_cpu_capability']}, native bfloat16: {machine['native_bf16']}), "
          f"{machine['torch_threads']} torch thread")
    print(f"profile {args.profile}: batch {config.batch_size} x {args.tokens} tokens, forward + backward")
    print(f"float32:           {float32:.3f} s a step")
    print(f"bfloat16 autocast: {bfloat16:.3f} s a step ({bfloat16 / float32:.1f}x float32)")


if __name__ == "__main__":
    main()
