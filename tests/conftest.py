"""Shared fixtures: the repository root, and one vLLM per session over a model the trainer trained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.vllm_servers import VllmReplica, serve_like_dev, train_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder a two-step trainer run saved (what MLflow registers and vLLM loads)."""
    return train_tiny_model(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def vllm(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmReplica]:
    """vLLM serving the trained model with the dev Deployment's flags; started once per session (~40 s+)."""
    with serve_like_dev(trained_model_dir, tmp_path_factory.mktemp("vllm") / "vllm.log") as replica:
        yield replica
