"""What notebooks show: tables as HTML with formatted numbers (and aligned text), and quiet libraries."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from dra.reports import MISSING, format_table, quiet_libraries, show_table, table_bundle

TABLE = pd.DataFrame({"share": [0.157, 0.5], "rho": [0.4321, np.nan], "prompts": [3001, 12], "reward": ["paper", "length"]},
                     index=["qwen", "mini"])


def test_numbers_are_formatted_per_type_and_column():
    shown = format_table(TABLE, digits=2, formats={"share": "{:.1%}"})
    assert shown.loc["qwen"].tolist() == ["15.7%", "0.43", "3,001", "paper"]
    assert shown.loc["mini", "rho"] == MISSING  # NaN reads as a dash, not "nan"
    assert format_table(TABLE, formats={"rho": lambda v: f"ρ={v:.1f}"}).loc["qwen", "rho"] == "ρ=0.4"


def test_a_format_for_a_missing_column_names_the_columns():
    with pytest.raises(KeyError, match="share"):
        format_table(TABLE, formats={"shares": "{:.1%}"})


def test_bundle_has_the_same_cells_as_html_and_text_and_is_deterministic():
    bundle = table_bundle(TABLE, formats={"share": "{:.1%}"}, title="Shares <G=6>")
    assert set(bundle) == {"text/html", "text/plain"}
    assert "<td>15.7%</td>" in bundle["text/html"] and "<td>3,001</td>" in bundle["text/html"]
    assert "<b>Shares &lt;G=6&gt;</b>" in bundle["text/html"]  # the title is escaped
    assert bundle["text/plain"].splitlines()[0] == "Shares <G=6>" and "15.7%" in bundle["text/plain"]
    assert table_bundle(TABLE, formats={"share": "{:.1%}"}, title="Shares <G=6>") == bundle  # no random ids
    assert "<th>qwen</th>" not in table_bundle(TABLE, index=False)["text/html"]


def test_outside_a_notebook_the_table_prints_as_aligned_text(capsys):
    show_table(TABLE, digits=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["share", "rho", "prompts", "reward"]
    assert lines[1].split() == ["qwen", "0.2", "0.4", "3,001", "paper"]
    assert len({len(line) for line in lines}) == 1  # columns aligned


@pytest.fixture
def restore_library_verbosity():
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as transformers_logging

    before = transformers_logging.get_verbosity(), datasets.utils.logging.get_verbosity()
    yield
    transformers_logging.set_verbosity(before[0])
    datasets.utils.logging.set_verbosity(before[1])
    transformers_logging.enable_progress_bar()
    datasets.enable_progress_bars()
    huggingface_hub.utils.enable_progress_bars()


def test_quiet_libraries_silences_loading_bars_and_logs_but_not_downloads(restore_library_verbosity, capsys):
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as transformers_logging

    quiet_libraries()
    assert transformers_logging.get_verbosity() == logging.ERROR
    assert not transformers_logging.is_progress_bar_enabled()  # "Loading weights", "Writing model shards"
    assert not datasets.is_progress_bar_enabled()              # per-map bars while TRL tokenizes
    assert not huggingface_hub.utils.are_progress_bars_disabled()  # download bars stay
    transformers_logging.get_logger("transformers.modeling_utils").warning("noise")
    datasets.Dataset.from_dict({"x": list(range(50))}).map(lambda row: row)
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == ""
