"""What notebooks show and save: tables as HTML, quiet libraries; figures and tables into figures/, results
with provenance into data/.

Every function takes the profile that made the output. Outputs of the committed profiles (`dra.profiles.COMMITTED`:
mini, and paper on a GPU) go to figures/ and data/; any other profile (smoke) writes into a subfolder named
after it (figures/smoke/, data/smoke/, ignored by git), so running a notebook at smoke, from papermill,
JupyterLab or the tests, never changes a tracked file. DRA_FIGURES_DIR / DRA_RESULTS_DIR move the base
folders; every write is atomic.

Every results file under data/ (notebooks, the experiment's cache entries, evaluation files, the scripts) is
written by `save_result`, which adds the provenance, and read by `load_result`; the three layouts of the
committed files are kept (WRAPPED, MERGED, NESTED) and `provenance_of` reads the provenance of any of them.

`show_table` displays a table as HTML with its numbers formatted (and as aligned text where there is no
HTML), and `quiet_libraries` keeps the libraries' loading bars and log lines out of a notebook's output.
"""

from __future__ import annotations

import html
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from dra.config import figures_dir, results_dir
from dra.io import PROVENANCE_FIELDS, BadFileError, atomic_path, provenance, read_json, write_json, write_text
from dra.profiles import COMMITTED, Profile

if TYPE_CHECKING:
    import pandas as pd


def _profile_name(profile: str | Profile) -> str:
    name = profile.name if isinstance(profile, Profile) else profile
    if not isinstance(name, str) or not name:
        raise TypeError(f"profile must be a profile or its name, such as 'mini' or 'smoke', got {profile!r}.")
    return name


def output_dir(base: Path, profile: str | Profile) -> Path:
    """`base` for a committed profile, `base/<profile>` for any other."""
    name = _profile_name(profile)
    return base if name in COMMITTED else base / name


def save_figure(fig, name: str, profile: str | Profile, dpi: int = 120) -> Path:
    """Save a matplotlib figure as figures/[<profile>/]<name>.png."""
    path = output_dir(figures_dir(), profile) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


# The three layouts of a results file, all committed under data/ and kept so every committed file still loads
# (a rewrite would change their bytes): WRAPPED for notebooks and the study script, MERGED for files whose
# fields are read at the top level (the experiment's cache entries, whose "key" is compared; evaluation files),
# NESTED for the benchmark and calibration scripts.
WRAPPED = "wrapped"  # {"result": result, "profile": ..., "seed": ..., ...provenance}
MERGED = "merged"    # {**result, "profile": ..., "seed": ..., ...provenance}
NESTED = "nested"    # {"provenance": {...}, **result}
LAYOUTS = (WRAPPED, MERGED, NESTED)


def result_path(name: str, profile: str | Profile) -> Path:
    """data/[<profile>/]<name>_<profile>.json: where `save_result` writes unless given a path."""
    profile = _profile_name(profile)
    return output_dir(results_dir(), profile) / f"{name}_{profile}.json"


def save_result(name: str, result: Mapping[str, Any], profile: str | Profile, seed: int | None = None, *,
                path: str | Path | None = None, layout: str = WRAPPED, **extra: Any) -> Path:
    """Write `result` with the provenance of the run that made it (`dra.io.provenance`: profile, seed, time,
    versions, hardware, plus `extra`), atomically, to `path` or `result_path(name, profile)`, in `layout`.

    Every results file under data/ is written here, so provenance is added in one place."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    profile = _profile_name(profile)
    made_by = provenance(profile, seed, **extra)
    if layout == WRAPPED:
        content = {"result": result, **made_by}
    elif layout == MERGED:
        content = {**result, **made_by}
    else:
        content = {"provenance": made_by, **result}
    return write_json(result_path(name, profile) if path is None else path, content)


def load_result(name: str | None = None, profile: str | Profile | None = None, *, path: str | Path | None = None,
                keys: Sequence[str] = (), what: str = "results file") -> dict[str, Any]:
    """The content of a file `save_result` wrote (any layout), read from `path` or, without one,
    `result_path(name, profile)`.

    Raises `dra.io.BadFileError` naming the file when it is not a JSON object or lacks one of `keys`."""
    if path is None:
        if name is None or profile is None:
            raise TypeError("load_result needs a name and a profile, or a path.")
        path = result_path(name, profile)
    path = Path(path)
    saved = read_json(path, keys=keys, what=what)
    if not isinstance(saved, dict):
        raise BadFileError(path, f"not a {what}: a JSON object was expected, found {type(saved).__name__}.")
    return saved


def provenance_of(saved: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance of a loaded results file, whatever its layout; KeyError when it has none."""
    if isinstance(saved.get("provenance"), dict):
        return dict(saved["provenance"])
    if "profile" not in saved or "created" not in saved:
        raise KeyError("the results file records no provenance (no 'provenance', or no 'profile' and 'created').")
    return {key: saved[key] for key in PROVENANCE_FIELDS if key in saved}


def save_table(table, name: str, profile: str | Profile, float_format: str = "{:.3f}") -> tuple[Path, Path]:
    """Write a pandas table as figures/[<profile>/]<name>.md (Markdown) and .tex (LaTeX)."""
    formatted = table.map(lambda v: float_format.format(v) if isinstance(v, float) else v)
    folder = output_dir(figures_dir(), profile)
    md = write_text(folder / f"{name}.md", formatted.to_markdown() + "\n")
    tex = write_text(folder / f"{name}.tex", formatted.to_latex() + "\n")
    return md, tex


# ------------------------------------------------------------------------------------------------ showing

MISSING = "–"  # how a NaN or None cell reads in a shown table
# Column name (a string, a G value, a (metric, G) tuple) -> format string such as "{:.1%}", or a function.
ColumnFormats = Mapping[Any, str | Callable[[Any], str]]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
                             and math.isnan(value))


def _format_cell(value: Any, digits: int) -> str:
    if _is_missing(value):
        return MISSING
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:,.{digits}f}"
    return str(value)


def format_table(table: pd.DataFrame, digits: int = 3, formats: ColumnFormats | None = None) -> pd.DataFrame:
    """`table` (a pandas DataFrame) with every cell as display text: floats with `digits` decimals, integers
    with thousands separators, NaN as "–"; `formats` maps a column to a format string (e.g. "{:.1%}") or a
    function for that column's values."""
    formats = dict(formats or {})
    unknown = sorted(str(name) for name in formats if name not in table.columns)
    if unknown:
        raise KeyError(f"formats names columns the table does not have: {unknown}; it has {list(table.columns)}.")

    def column_formatter(name) -> Callable[[Any], str]:
        spec = formats.get(name)
        if spec is None:
            return lambda v: _format_cell(v, digits)
        apply = spec if callable(spec) else spec.format
        return lambda v: MISSING if _is_missing(v) else apply(v)

    return table.apply(lambda column: column.map(column_formatter(column.name)))


def table_bundle(table: pd.DataFrame, digits: int = 3, formats: ColumnFormats | None = None,
                 title: str | None = None, index: bool = True) -> dict[str, str]:
    """The display bundle of `show_table`: {"text/html": ..., "text/plain": ...}, both from the same
    formatted cells, deterministic (no random ids, so nbval can compare them run to run)."""
    shown = format_table(table, digits, formats)
    heading_html = f"<p><b>{html.escape(title)}</b></p>\n" if title else ""
    heading_text = f"{title}\n" if title else ""
    return {"text/html": heading_html + shown.to_html(index=index, escape=True),
            "text/plain": heading_text + shown.to_string(index=index)}


def show_table(table: pd.DataFrame, digits: int = 3, formats: ColumnFormats | None = None,
               title: str | None = None, index: bool = True) -> None:
    """Display `table` in a notebook as an HTML table with formatted numbers (see `format_table`); outside
    a notebook the same cells print as aligned text."""
    bundle = table_bundle(table, digits, formats, title, index)
    try:  # IPython comes with the notebooks; the library itself does not need it
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(bundle["text/plain"])
    else:
        display(bundle, raw=True)


def quiet_libraries() -> None:
    """Keep what the libraries print about themselves out of a notebook: transformers' and datasets' log
    lines below errors, the "Loading weights" / "Writing model shards" bars and the per-step bars datasets
    draws while TRL tokenizes. The project's own labelled bars (training, sampling, evaluation) and the
    Hub's download bars stay: they say what is happening and how long it will take."""
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()  # also turns the Hub's bars off; turned back on below
    huggingface_hub.utils.enable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
