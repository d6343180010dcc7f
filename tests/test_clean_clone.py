"""A clean clone validates anywhere: no sibling shared/, no $MLOPS_CRDS_DIR, the packaged schemas."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


@pytest.mark.slow
def test_make_validate_passes_in_a_fresh_clone_without_shared_crds(repo_root: Path, tmp_path: Path) -> None:
    """`git clone` the committed repository into an empty folder (no ../shared), then `make validate`.

    The clone gets the venv `make validate` uses (`.venv-cli`, the CLI alone), but not by
    `make cli` (a fresh venv installs from the package index for minutes): the venv sees this
    test run's site-packages for the dependencies, through a .pth file, and the clone's CLI is
    installed into it from the clone with `pip install --no-deps .` (a real, non-editable
    install: the CRD schemas must come as package data).
    `.installed` is touched so that make takes the venv as made.
    """
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo_root), str(clone)], check=True, timeout=120)
    assert not (tmp_path / "shared").exists()
    venv = clone / ".venv-cli"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "_test_run_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", str(clone)],
        check=True,
        timeout=300,
    )  # fmt: skip
    (venv / ".installed").touch()

    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_CRDS_DIR", "MLOPS_REPO", "PYTHONPATH")}
    env["MLOPS_CACHE_DIR"] = str(tmp_path / "cache")
    where = subprocess.run(
        [python, "-c", "from mlops.conventions.paths import default_crds_dir; print(default_crds_dir())"],
        cwd=clone, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(purelib), f"the clone's CLI reads schemas from {where}, not its own install"
    proc = subprocess.run(
        ["make", "validate"], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "python3 -m venv" not in proc.stdout, "make rebuilt the venv"
    assert "\n0 problems in " in proc.stdout
