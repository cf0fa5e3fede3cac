"""Saving what notebooks produce: figures and tables into figures/, results with provenance into data/.

Every function takes the profile that made the output. Outputs of the committed profiles (`COMMITTED_PROFILES`:
mini, and paper on a GPU) go to figures/ and data/; any other profile (smoke) writes into a subfolder named
after it (figures/smoke/, data/smoke/, ignored by git), so running a notebook at smoke, from papermill,
JupyterLab or the tests, never changes a tracked file. DRA_FIGURES_DIR / DRA_RESULTS_DIR move the base
folders; every write is atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dra.config import COMMITTED_PROFILES, figures_dir, results_dir
from dra.io import atomic_path, provenance, write_json, write_text


def output_dir(base: Path, profile: str) -> Path:
    """`base` for a committed profile, `base/<profile>` for any other."""
    if not isinstance(profile, str) or not profile:
        raise TypeError(f"profile must be a profile name such as 'mini' or 'smoke', got {profile!r}.")
    return base if profile in COMMITTED_PROFILES else base / profile


def save_figure(fig, name: str, profile: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as figures/[<profile>/]<name>.png."""
    path = output_dir(figures_dir(), profile) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


def save_result(name: str, result: dict[str, Any], profile: str, seed: int | None = None) -> Path:
    """Write data/[<profile>/]<name>_<profile>.json: the result plus the provenance of the run that made it."""
    return write_json(output_dir(results_dir(), profile) / f"{name}_{profile}.json",
                      {"result": result, **provenance(profile, seed)})


def save_table(table, name: str, profile: str, float_format: str = "{:.3f}") -> tuple[Path, Path]:
    """Write a pandas table as figures/[<profile>/]<name>.md (Markdown) and .tex (LaTeX)."""
    formatted = table.map(lambda v: float_format.format(v) if isinstance(v, float) else v)
    folder = output_dir(figures_dir(), profile)
    md = write_text(folder / f"{name}.md", formatted.to_markdown() + "\n")
    tex = write_text(folder / f"{name}.tex", formatted.to_latex() + "\n")
    return md, tex
