"""DRA-GRPO: diversity-aware reward adjustment for GRPO (arXiv 2505.09655), as a small library.

The kernel entry points are re-exported here; the other concerns live in their own modules
(`dra.embed`, `dra.rewards`, `dra.data`, ...), imported on use so that `import dra` stays light.
"""

from dra.kernels import (
    KERNELS,
    adjust_rewards,
    diversity_weights,
    group_advantages,
    similarity,
    smi_scores,
)

__all__ = [
    "KERNELS",
    "adjust_rewards",
    "diversity_weights",
    "group_advantages",
    "similarity",
    "smi_scores",
]
__version__ = "0.1.0"
