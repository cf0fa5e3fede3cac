"""DRA-GRPO: diversity-aware reward adjustment for GRPO (arXiv 2505.09655), as a small library.

The kernel entry points are re-exported here, and the TRL drop-in `DRAGRPOTrainer` / `DRAGRPOConfig` (loaded
on first use, so that `import dra` does not import TRL); the other concerns live in their own modules
(`dra.embed`, `dra.rewards`, `dra.data`, ...).
"""

from dra.kernels import (
    KERNELS,
    adjust_rewards,
    diversity_weights,
    group_advantages,
    scoped_weights,
    similarity,
    smi_scores,
)

__all__ = [
    "DRAGRPOConfig",
    "DRAGRPOTrainer",
    "KERNELS",
    "adjust_rewards",
    "diversity_weights",
    "group_advantages",
    "scoped_weights",
    "similarity",
    "smi_scores",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("DRAGRPOConfig", "DRAGRPOTrainer"):
        from dra import train

        return getattr(train, name)
    raise AttributeError(f"module 'dra' has no attribute {name!r}")
