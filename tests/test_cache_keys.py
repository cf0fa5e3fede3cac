"""Every cache key is what it was when the pre-registered grid started filling (tests/fixtures/cache_keys.json,
made at commit 685f54c): base policy, training runs, results files, evaluation files, the study's embeddings,
and the inputs behind them (recipes, evaluation prompts, RL prompts, study prompts, per-profile settings)."""

from __future__ import annotations

import json
from pathlib import Path


import cache_keys

from dra import recipes

FIXTURE = Path(__file__).parent / "fixtures" / "cache_keys.json"


def differences(expected, found, where: str = "") -> list[str]:
    """Paths at which two JSON-like values differ (so a failure names the key that moved, not a 40 kB diff)."""
    if isinstance(expected, dict) and isinstance(found, dict):
        keys = sorted(set(expected) | set(found))
        return [d for k in keys for d in differences(expected.get(k), found.get(k), f"{where}/{k}")]
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        return [d for i, (e, f) in enumerate(zip(expected, found)) for d in differences(e, f, f"{where}[{i}]")]
    return [] if expected == found else [f"{where}: {expected!r} -> {found!r}"]


def test_every_cache_key_and_its_inputs_are_unchanged(monkeypatch):
    monkeypatch.setenv("DRA_RUNS_DIR", "/RUNS")  # evaluation files are recorded relative to it
    found = json.loads(json.dumps(cache_keys.all_keys()))  # tuples as lists, as in the file
    moved = differences(json.loads(FIXTURE.read_text()), found)
    assert not moved, f"{len(moved)} cache keys or inputs moved, e.g.:\n" + "\n".join(moved[:20])


def test_the_check_sees_a_moved_key():
    fixture = json.loads(FIXTURE.read_text())
    changed = json.loads(FIXTURE.read_text())
    changed["profiles"]["mini"]["runs"]["dra_grpo/seed1"]["train_key"] = "something-else"
    assert differences(fixture, changed) == ["/profiles/mini/runs/dra_grpo/seed1/train_key: "
                                             f"{fixture['profiles']['mini']['runs']['dra_grpo/seed1']['train_key']!r}"
                                             " -> 'something-else'"]
    assert len(fixture["profiles"]["mini"]["runs"]) == len(recipes.arms("mini")) * 3 and len(fixture["profiles"]["smoke"]["runs"]) == len(recipes.arms("smoke")) * 3
