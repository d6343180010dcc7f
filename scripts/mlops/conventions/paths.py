"""Where things live in the repository: the root, the environments, the components."""

from __future__ import annotations

import os
from pathlib import Path

from mlops.conventions.environments import ENVS as ENVS  # the workflows package reads the list from here
from mlops.conventions.errors import MlopsError

CRDS_ENV_VAR = "MLOPS_CRDS_DIR"
"""Overrides the CRD directory: a folder of upstream CRD files (e.g. at other versions)."""

# the schemas sit at the package root (mlops/crd_schemas), one level above this room
PACKAGED_CRDS_DIR = Path(__file__).resolve().parents[1] / "crd_schemas"
"""The compact CRD schemas that ship with the CLI (see mlops.validate.schema_checks.packaged_crds)."""


class RepoNotFoundError(MlopsError):
    """Raised when no repository root is found above the working directory."""


def find_repo_root(start: Path | None = None) -> Path:
    """Return the repository root: `$MLOPS_REPO`, else the first parent holding `overlays/` and `apps/`."""
    if env := os.environ.get("MLOPS_REPO"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "overlays").is_dir() and (candidate / "apps").is_dir():
            return candidate
    raise RepoNotFoundError(f"no repository root above {here}: run inside the repository or set MLOPS_REPO")


def default_crds_dir(repo: Path | None = None) -> Path:
    """Return the CRD directory: `$MLOPS_CRDS_DIR`, else the schemas packaged with the CLI.

    `repo` is unused: the packaged schemas belong to the installed CLI, not to a checkout, so
    an installed `mlops` validates any clone. It stays for the callers that pass it.
    """
    if env := os.environ.get(CRDS_ENV_VAR):
        return Path(env).resolve()
    return PACKAGED_CRDS_DIR


def cache_root() -> Path:
    """Return the folder for derived data (schemas, builds): `$MLOPS_CACHE_DIR` or `~/.cache/mlops`."""
    if env := os.environ.get("MLOPS_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops"
