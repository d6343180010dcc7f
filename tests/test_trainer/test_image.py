"""The image builds what the tests ran: pinned requirements equal to the venv, non-root, pinned base."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import torch

IMAGE = Path(__file__).resolve().parents[2] / "images" / "trainer"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (IMAGE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, pinned = line.partition("==")
            assert sep, f"requirements.txt: {line!r} is not pinned with =="
            pins[name] = pinned
    return pins


def test_requirements_are_pinned_to_the_tested_versions() -> None:
    pins = _pins()
    assert "torch" not in pins  # it comes with the CUDA base image
    for name, pinned in pins.items():
        assert version(name) == pinned, f"requirements.txt pins {name}=={pinned}, tests ran {version(name)}"


def test_dockerfile_runs_as_non_root_on_the_tested_torch() -> None:
    text = (IMAGE / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base, "Dockerfile: BASE_IMAGE default missing"
    image, _, tag = base.group(1).partition(":")
    assert image == "pytorch/pytorch" and "cuda" in tag and tag != "latest"
    tested = torch.__version__.split("+")[0]
    assert tag.startswith(f"{tested}-"), f"base image {tag} is not torch {tested}"
    assert f"torch.__version__.startswith('{tested}')" in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
