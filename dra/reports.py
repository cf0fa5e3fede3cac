"""Saving what notebooks produce: figures by name into figures/, results with provenance into data/.

Both honour DRA_FIGURES_DIR / DRA_RESULTS_DIR (the tests point them at a temporary folder, so running the
test suite never rewrites tracked files), and both write atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dra.config import figures_dir, results_dir
from dra.io import atomic_path, provenance, write_json, write_text


def save_figure(fig, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as figures/<name>.png."""
    path = figures_dir() / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


def save_result(name: str, result: dict[str, Any], profile: str, seed: int | None = None) -> Path:
    """Write data/<name>_<profile>.json: the result plus the provenance of the run that made it."""
    return write_json(results_dir() / f"{name}_{profile}.json", {"result": result, **provenance(profile, seed)})


def save_table(table, name: str, float_format: str = "{:.3f}") -> tuple[Path, Path]:
    """Write a pandas table as figures/<name>.md (Markdown) and figures/<name>.tex (LaTeX)."""
    formatted = table.map(lambda v: float_format.format(v) if isinstance(v, float) else v)
    md = write_text(figures_dir() / f"{name}.md", formatted.to_markdown() + "\n")
    tex = write_text(figures_dir() / f"{name}.tex", formatted.to_latex() + "\n")
    return md, tex
