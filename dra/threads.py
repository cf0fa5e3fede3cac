"""CPU threads: part of what makes a mini-world result, so every one is made on the same number.

PyTorch splits a CPU reduction (a matrix product's sums, a gradient's accumulation over a batch) across its
intra-op threads, and the split sets the order of the floating-point additions. So the same seed on 1 and on 2
threads gives different rounding: measured on a tiny Qwen2 of the mini policy's size (batch 64 x 100 tokens),
the loss agreed but 82% of the gradient entries differed (by at most 2.8e-9); 1 thread against 1 thread was
bit-identical. Over the 1,500 steps of the mini base policy's SFT the difference grows into a different model:
trained on 2 threads it scored test pass@1 0.244 (pass@16 0.614) where the committed, single-threaded one
scores 0.257 (0.640). The configuration key cannot see this, so a cached result would silently stand for a
model it does not describe.

Every mini-world computation behind a committed number (the base policy's SFT, an arm's RL training, their
evaluations) therefore runs inside `result_threads()`, on `RESULT_THREADS` threads whatever the machine has.
One thread: what every committed result was made with, and what the grid's workers use anyway (one per core).
The thread count is recorded in each result's provenance (``hardware.torch_threads``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

RESULT_THREADS = 1


@contextmanager
def result_threads(n: int = RESULT_THREADS) -> Iterator[None]:
    """Run the block on `n` torch intra-op threads, then restore the previous count (also on an exception).
    Process-wide, like `torch.set_num_threads`: not for blocks that run beside other threads doing torch work."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
