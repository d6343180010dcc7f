"""`make validate` needs only the CLI: `mlops validate` runs with torch and the other extras unimportable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

# A meta path finder that refuses what only the extras install, as a venv made with
# `pip install -e .` (no extras) lacks it: any import of them fails the run. (fastapi and
# uvicorn come with mlflow's server, so the light venv has them.)
_BLOCKED = ("torch", "transformers", "tokenizers", "safetensors", "vllm")
_RUN = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_BLOCKED!r}:
            raise ModuleNotFoundError(f"blocked for this test: {{name}}")
        return None
sys.meta_path.insert(0, Refuse())
from mlops import cli
code = cli.main(["validate", "dev"])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {_BLOCKED!r})
print("leaked:", leaked)
sys.exit(code)
"""


def test_validate_runs_without_torch(repo_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MLOPS_REPO": str(repo_root), "MLOPS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN], capture_output=True, text=True, env=env, cwd=repo_root, timeout=600
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "leaked: []" in proc.stdout
    assert re.search(r"^0 problems in \d+ documents across dev ", proc.stdout, re.M)


def test_cli_dependencies_have_no_torch(repo_root: Path) -> None:
    """What `pip install -e .` (make cli) installs: the CLI's dependencies, none of the extras' stacks."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert not names & {"torch", "transformers", "tokenizers", "safetensors", "vllm"}


def test_make_validate_uses_the_cli_venv(repo_root: Path) -> None:
    makefile = (repo_root / "Makefile").read_text()
    rule = re.search(r"^\$\(CLI_VENV\)/\.installed:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert rule and "pip install -q -c constraints.txt -e .\n" in rule.group(1)
    validate = re.search(r"^validate: (.*?) ##.*\n\t(.*)\n", makefile, re.M)
    assert validate and validate.group(1) == "cli" and validate.group(2) == "$(CLI_VENV)/bin/mlops validate"
