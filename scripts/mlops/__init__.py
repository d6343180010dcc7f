"""The repository's CLI: render, validate, diff, promote, rollback, status, workflows, demo."""

from __future__ import annotations

__version__ = "0.2.0"
