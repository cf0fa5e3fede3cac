"""--help of the two command lines, read as a user reads it: every option's default, DRA's options together."""

from __future__ import annotations

import re

import pytest

from dra import experiment, train


def help_text(main, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def option_entries(section: str) -> dict[str, str]:
    """Option -> its help text (the lines from '  --name' up to the next option), in one --help section."""
    entries, current = {}, None
    for line in section.splitlines():
        start = re.match(r"  (-\w|--[\w-]+)", line)
        if start:
            current = start.group(1)
            entries[current] = line
        elif current and line.startswith("   "):
            entries[current] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in entries.items()}


def sections(text: str) -> dict[str, str]:
    """Section title -> body, for the 'title:' lines that argparse writes for each argument group."""
    parts = re.split(r"^(\S[^\n]*):\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_experiment_help_shows_every_options_default(capsys):
    text = help_text(experiment.main, capsys)
    entries = option_entries(text)
    assert set(entries) == {"-h", "--profile", "--arms", "--seeds", "--split", "--grid", "--set", "--skip-base",
                            "--missing", "--workers"}
    for name, help_ in entries.items():
        if name != "-h":
            assert "default:" in help_, f"{name} does not say its default: {help_}"
    assert "(default: mini)" in entries["--profile"] and "(default: test)" in entries["--split"]
    assert "(default: grpo dr_grpo dra_grpo dra_dr_grpo;" in entries["--arms"]  # as one would type it
    assert "mini: long (max_steps=960)" in entries["--grid"] and "None" not in entries["--grid"]
    assert "mini: 0, 1, 2, 3, 4, 5, 6, 7" in entries["--seeds"] and "None" not in entries["--seeds"]
    assert "python -m dra.experiment --profile mini --arms grpo dra_grpo" in text  # the examples, unwrapped


def test_train_help_groups_the_dra_options_and_says_which_matter(capsys):
    text = help_text(train.main, capsys)
    usage = text.split("\n\n", 1)[0]
    assert usage.startswith("usage: dra-train --config RECIPE.yaml") and len(usage.splitlines()) == 1
    found = sections(text)
    titles = [title for title in found if title != "options"]
    assert titles == ["recipe: what to train on and how the run is organised",
                      "DRA options (what this project adds to GRPOConfig)", "GRPO settings the recipes fix",
                      "every other TRL GRPOConfig / TrainingArguments option"]
    dra_section = found[titles[1]]
    dra_options = {name for name in option_entries(dra_section) if not name.startswith("--no_")}  # boolean negations
    config_fields = {"--" + name for name in train.DRAGRPOConfig.__dataclass_fields__ if name.startswith("dra")}
    assert dra_options == config_fields  # all of DRA's options, and only those, in its section
    for title in titles[2:]:
        assert not {name for name in option_entries(found[title]) if name.startswith("--dra")}
    description = " ".join(dra_section.split("\n\n", 1)[0].split())
    assert "--dra_embedder and --dra_scope decide what DRA computes" in description
    for name, help_ in option_entries(dra_section).items():
        assert "(default:" in help_, f"{name} does not say its default"
    recipe_options = option_entries(found[titles[2]])
    assert {"--" + name for name in train.RECIPE_GRPO_OPTIONS} <= set(recipe_options)
