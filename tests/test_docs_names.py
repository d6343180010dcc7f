"""The docs name the module that holds a setting: "`path.py` (`NAME`)" must point at NAME's definition."""

from __future__ import annotations

import re
from pathlib import Path

# "`workflows/canary_analysis.py` (`GIT_BOT_TAG`, 0.3.0)": where a reader goes to change a value.
_NAMED = re.compile(r"`(?P<path>[A-Za-z0-9_./-]+\.py)` \(`(?P<name>[A-Za-z_][A-Za-z0-9_]*)`[,)]")


def _defines(source: str, name: str) -> bool:
    return (
        re.search(rf"^(?:{name}\b\s*(?::[^=\n]+)?=|(?:async\s+)?def {name}\b|class {name}\b)", source, re.M)
        is not None
    )


def test_every_named_setting_is_defined_in_the_file_the_docs_name(repo_root: Path) -> None:
    docs = [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]
    found = [
        (doc.relative_to(repo_root), number, match["path"], match["name"])
        for doc in docs
        for number, line in enumerate(doc.read_text().splitlines(), 1)
        for match in _NAMED.finditer(line)
    ]
    assert found, "no `path.py` (`NAME`) reference left in the docs: this test checks nothing"
    wrong = [
        f"{doc}:{number}: {path} does not define {name}"
        for doc, number, path, name in found
        if not (repo_root / path).is_file() or not _defines((repo_root / path).read_text(), name)
    ]
    assert not wrong, "\n".join(wrong)
