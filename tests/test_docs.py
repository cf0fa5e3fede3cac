"""The project's own pages agree with its data, and the code points only at pages that exist."""

from __future__ import annotations

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _markdown_table(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]  # without header and rule


def test_table_1_on_the_facts_page_is_the_committed_csv():
    page = _markdown_table((ROOT / "docs/paper_facts.md").read_text(), "## 8. Table 1")
    with open(ROOT / "data/paper_table1.csv") as handle:
        committed = list(csv.DictReader(handle))
    assert len(page) == len(committed)
    for row, record in zip(page, committed):
        assert row[0].split(" (")[0] == record["model"].split(" (")[0]
        scores = [record[k] or "-" for k in ("AIME24", "MATH-500", "AMC23", "Minerva", "OlympiadBench", "Avg")]
        assert row[1:] == scores


def test_every_docs_page_the_code_names_exists():
    sources = [*ROOT.glob("dra/*.py"), *ROOT.glob("scripts/*.py"), ROOT / "README.md", *ROOT.glob("data/*.md")]
    named = {match for path in sources for match in re.findall(r"docs/[\w.-]+\.md", path.read_text())}
    assert "docs/paper_facts.md" in named
    assert all((ROOT / name).is_file() for name in named), sorted(n for n in named if not (ROOT / n).is_file())
    assert not any("PAPER.md" in path.read_text() for path in sources)
