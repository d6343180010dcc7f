"""pyproject's lower bounds admit only versions the code runs with, and admit the pinned ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from mlops.validate.schema_checks.schemas import KUBERNETES_VERSION
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

# The oldest release each library's API, as the code uses it, exists in (upstream changelogs/tags).
_NEEDED = {
    # kubernetes-validate X.Y ships the vX.Y.0-local-strict schemas that validate/schemas.py loads.
    "kubernetes-validate": Version(KUBERNETES_VERSION),
    # hera 7.0: models updated for Argo Workflows 4.0.
    "hera": Version("7.0"),
    # python-hcl2 8.1: the rewritten parser (terraform_hcl.py strips its quoting and markers).
    "python-hcl2": Version("8.1"),
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    return {r.name.lower(): r for r in requirements}


def _constraints() -> dict[str, Version]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    return {name.lower().replace("_", "-"): Version(version) for name, version in pins}


def test_lower_bounds_exclude_what_the_code_cannot_run_with() -> None:
    requirements = _requirements()
    for name, needed in _NEEDED.items():
        lower = [Version(s.version) for s in requirements[name].specifier if s.operator == ">="]
        assert lower, f"pyproject.toml: {name} has no lower bound"
        assert lower[0] >= needed, f"pyproject.toml: {name}>={lower[0]} admits versions older than {needed}"


def test_constraints_satisfy_every_runtime_requirement() -> None:
    pins = _constraints()
    for name, requirement in _requirements().items():
        assert name in pins, f"constraints.txt: no pin for {name}"
        assert requirement.specifier.contains(pins[name]), (
            f"constraints.txt: {name}=={pins[name]} breaks {requirement}"
        )
