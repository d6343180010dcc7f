"""checkov over terraform/: no failed check, and every skip says why in the file itself.

checkov pins heavy dependencies, so it lives in its own venv `.venv-tools/` (`make tools`),
not in the project venv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from tfrepo import REPO_ROOT, TERRAFORM

CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-tools" / "bin" / "checkov"))
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([^\s:]+)(?::(.*))?")


def test_every_checkov_skip_carries_its_reason() -> None:
    skips = []
    problems = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if not match:
                continue
            skips.append(match.group(1))
            where = f"{path.relative_to(REPO_ROOT)}:{number}"
            if not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", match.group(1)):
                problems.append(f"{where}: {match.group(1)} is not a checkov check id")
            if len((match.group(2) or "").strip()) < 20:
                problems.append(f"{where}: skip of {match.group(1)} gives no reason (#checkov:skip=ID:why)")
    assert skips, "no checkov skip found: the pattern no longer matches the files"
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    if not CHECKOV.is_file():
        pytest.fail(f"checkov not installed at {CHECKOV}: `make test` installs it (or set $CHECKOV)")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform) == 1, f"no terraform report from checkov: {[r.get('check_type') for r in reports]}"
    return terraform[0]


def test_checkov_finds_no_failed_check(checkov_report: dict) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    # Guard against an empty scan passing: every module is read.
    assert summary["resource_count"] > 100, summary
    failed = [
        f"{f['check_id']} {f['resource']} {f['file_path']}:{f['file_line_range'][0]} {f['check_name']}"
        for f in checkov_report["results"]["failed_checks"]
    ]
    assert not failed, "fix these or skip with `#checkov:skip=ID:reason` on the resource:\n" + "\n".join(
        failed
    )


def test_checkov_skips_are_the_reasoned_ones(checkov_report: dict) -> None:
    assert checkov_report["results"]["skipped_checks"], (
        "checkov reports no skip: the skip comments are not read"
    )
    unreasoned = [
        f"{s['check_id']} {s['resource']}"
        for s in checkov_report["results"]["skipped_checks"]
        if len((s["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert not unreasoned, unreasoned
