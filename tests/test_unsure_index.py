"""docs/unsure.md, the index of unverified provider facts, points at places that exist.

Each row's "where" column names the files that mark the fact UNSURE; a file moved,
renamed or split (as the fakes were) must not leave the index pointing nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "unsure.md"


def rows() -> list[tuple[str, list[str]]]:
    """(row id, the files its last column names) for every fact in the index."""
    found = []
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| ([A-Z]+\d+) \|", line)
        if match:
            where = line.rstrip(" |").rsplit(" | ", 1)[-1]
            found.append((match.group(1), re.findall(r"`([\w./-]+\.(?:py|toml|md))`", where)))
    return found


def test_every_fact_says_where_it_is_marked_and_the_file_marks_it() -> None:
    facts = rows()
    assert len(facts) > 50  # the table was read
    wrong = []
    for fact, files in facts:
        if not files:
            wrong.append(f"{fact}: no file named")
        for name in files:
            path = ROOT / name
            if not path.is_file():
                wrong.append(f"{fact}: {name} does not exist")
            elif "UNSURE" not in path.read_text(encoding="utf-8"):
                wrong.append(f"{fact}: {name} has no UNSURE mark")
    assert not wrong, "\n".join(wrong)
