"""Fixtures for the trainer tests: MLflow on a real PostgreSQL, shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.servers import start_mlflow_server, start_postgres


@pytest.fixture(scope="module")
def mlflow_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow tracking server on a real PostgreSQL with a served local artifact root; yields its URL."""
    tmp = tmp_path_factory.mktemp("mlflow-postgres")
    with start_postgres(tmp) as dsn, start_mlflow_server(dsn, tmp / "artifacts") as url:
        yield url
