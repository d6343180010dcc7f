"""The repository's CLI: render, validate, diff, promote, rollback, status, workflows, demo."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of truth: pyproject.toml's version, as installed.
    __version__ = version("mlops-platform")
except PackageNotFoundError:  # run from a source tree without an install
    __version__ = "0+unknown"
