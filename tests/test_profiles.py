"""One frozen Profile per profile, chosen where a run starts; only dra.profiles reads $DRA_PROFILE."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dra import profiles, recipes
from dra.profiles import Profile, StudySettings

ROOT = Path(__file__).resolve().parents[1]


def test_names_round_trip_and_a_profile_passes_through():
    assert profiles.NAMES == ("smoke", "mini", "paper") and profiles.DEFAULT == "mini"
    for name in profiles.NAMES:
        profile = profiles.get(name)
        assert isinstance(profile, Profile) and profile.name == name and profiles.get(profile) is profile
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of smoke, mini, paper"):
        profiles.get("huge")


def test_the_environment_chooses_only_when_nothing_explicit_does(monkeypatch):
    monkeypatch.delenv(profiles.ENVIRONMENT_VARIABLE, raising=False)
    assert profiles.from_environment().name == "mini"
    monkeypatch.setenv(profiles.ENVIRONMENT_VARIABLE, "smoke")
    assert profiles.from_environment().name == "smoke"
    assert profiles.from_environment("paper").name == "paper"
    monkeypatch.setenv(profiles.ENVIRONMENT_VARIABLE, "tiny")
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        profiles.from_environment()


def test_no_other_module_script_or_notebook_reads_the_profile_from_the_environment():
    sources = [*ROOT.glob("dra/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("notebooks/py/*.py")]
    readers = [path.relative_to(ROOT).as_posix() for path in sources
               if re.search(r"""["']DRA_PROFILE["']""", path.read_text())]  # the name as a value, not in prose
    assert readers == ["dra/profiles.py"]
    notebooks = [path.read_text() for path in ROOT.glob("notebooks/py/*.py")]
    assert not any("from_environment" in text for text in notebooks)  # a notebook's profile is its parameter
    # The paper profile's fallback to the mini world lives in Profile.mini_world, not in each notebook.
    assert not any(re.search(r"""["']mini["'] if profile == ["']paper["']""", text) for text in notebooks)


def test_only_the_paper_profile_lacks_a_mini_world_and_shows_minis():
    smoke, mini, paper = (profiles.get(name) for name in profiles.NAMES)
    assert smoke.mini_world is smoke and mini.mini_world is mini and paper.mini_world is mini
    assert smoke.mini_policy().profile == "smoke" and mini.mini_experiment().seeds == tuple(range(8))
    with pytest.raises(ValueError, match="no mini-world policy: it trains deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"):
        paper.mini_policy()
    with pytest.raises(ValueError, match="runs no mini experiment"):
        paper.mini_experiment()
    assert profiles.COMMITTED == ("mini", "paper")


@pytest.mark.parametrize("name", ["smoke", "mini"])
def test_each_mini_profile_names_its_grids_and_refuses_an_unknown_one(name):
    settings = profiles.get(name).mini_experiment()
    assert list(settings.grids) == [profiles.MAIN_GRID, "long"]
    main = settings.grid(profiles.MAIN_GRID)
    assert not main.overrides and main.arms is None  # the recipes as they are, every arm
    long = settings.grid("long")
    assert set(long.overrides) == {"max_steps"} and long.overrides["max_steps"] > recipes.recipe(name, "grpo")["max_steps"]
    assert set(long.arms) < set(recipes.arms(name))
    for grid in settings.grids.values():
        assert not grid.preregistration or (ROOT / grid.preregistration).is_file()
    with pytest.raises(ValueError, match="unknown grid 'huge'; this profile's grids are main, long"):
        settings.grid("huge")


def test_profiles_cannot_be_changed_in_place():
    mini = profiles.get("mini")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mini.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        mini.evaluation.n_samples = 1
    with pytest.raises(TypeError):
        mini.recipe["learning_rate"] = 1.0


@pytest.mark.parametrize("name", profiles.NAMES)
def test_each_recipe_is_the_algorithm_the_profile_part_and_the_arm(name):
    profile = profiles.get(name)
    for arm in recipes.ARMS:
        mapping = recipes.recipe(name, arm)
        assert mapping["profile"] == name and mapping["output_dir"] == f"runs/{name}/{arm}"
        overridden = set(recipes.ARMS[arm]) | set(recipes.PAPER_ARM_OVERRIDES.get(arm, {}) if name == "paper" else ())
        assert {k: mapping[k] for k in profile.recipe if k not in overridden} == \
               {k: v for k, v in profile.recipe.items() if k not in overridden}
    assert set(recipes.arms(name)) > set(recipes.ARMS) if profile.policy else recipes.arms(name) == tuple(recipes.ARMS)


@pytest.mark.parametrize("name", profiles.NAMES)
def test_study_settings_are_recorded_as_plain_lists_and_read_back(name):
    settings = profiles.get(name).study
    recorded = settings.as_dict()
    assert all(not isinstance(value, tuple) for value in recorded.values())
    assert ("paper_model" in recorded) == (name == "paper")
    assert StudySettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}) == settings
    assert settings.embedders == sorted(set(settings.real_embedders) | set(settings.mini_embedders))
