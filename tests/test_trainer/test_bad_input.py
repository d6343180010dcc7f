"""Inputs that cannot work fail fast, say what is wrong, exit non-zero and register nothing."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.trainer_runs import run, torchrun, trainer_env


@pytest.fixture(scope="module")
def _registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite registry with support-chat version 1, alias candidate; made once, migrations are slow."""
    import mlflow

    tmp = tmp_path_factory.mktemp("registry")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    experiment = client.create_experiment("support-chat", artifact_location=(tmp / "art").as_uri())
    run_ = client.create_run(experiment)
    client.create_registered_model("support-chat")
    client.create_model_version("support-chat", f"{run_.info.artifact_uri}/model", run_id=run_.info.run_id)
    client.set_registered_model_alias("support-chat", "candidate", "1")
    return tmp / "mlflow.db"


@pytest.fixture
def registry(tmp_path: Path, _registry_template: Path) -> tuple[str, Any]:
    """A copy of the template registry for one test: its URI and a client."""
    import mlflow

    (tmp_path / ".mlops").mkdir()
    shutil.copyfile(_registry_template, tmp_path / ".mlops" / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/.mlops/mlflow.db"
    return uri, mlflow.MlflowClient(tracking_uri=uri)


def _snapshot(client: Any) -> tuple[Any, ...]:
    versions = client.search_model_versions("name = 'support-chat'")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return (
        sorted((v.version, tuple(sorted(v.tags.items())), tuple(v.aliases)) for v in versions),
        sorted(r.info.run_id for r in runs),
    )


def _trainer(module: str, tmp: Path, uri: str, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = run([sys.executable, "-m", module, *args], trainer_env(uri), tmp, timeout=60)
    return done.returncode, done.stderr, time.monotonic() - started


def test_missing_dataset(tmp_path: Path, registry: tuple[str, Any]) -> None:
    uri, client = registry
    before = _snapshot(client)
    missing = tmp_path / "no-such.jsonl"
    code, err, seconds = _trainer("trainer.train", tmp_path, uri, "--dataset", str(missing))
    assert code == 2
    assert f"--dataset {missing}: no such file" in err
    assert "Traceback" not in err
    assert seconds < 10  # before torch, transformers or MLflow are imported
    assert _snapshot(client) == before


def test_unknown_base_model_path(tmp_path: Path, registry: tuple[str, Any]) -> None:
    uri, client = registry
    before = _snapshot(client)
    code, err, _ = _trainer(
        "trainer.train", tmp_path, uri, "--base-model", str(tmp_path / "models/llama-typo")
    )
    assert code == 2
    assert "--base-model" in err and "no such directory" in err
    not_a_model = tmp_path / "empty-dir"
    not_a_model.mkdir()
    code, err, _ = _trainer("trainer.train", tmp_path, uri, "--base-model", str(not_a_model))
    assert code == 2
    assert "no config.json" in err
    assert _snapshot(client) == before


def test_non_numeric_threshold(tmp_path: Path, registry: tuple[str, Any]) -> None:
    uri, client = registry
    before = _snapshot(client)
    code, err, seconds = _trainer("trainer.evaluate", tmp_path, uri, "--threshold", "low")
    assert code == 2
    assert "--threshold: must be a number" in err and "'low'" in err
    assert seconds < 10
    code, err, _ = _trainer("trainer.evaluate", tmp_path, uri, "--threshold", "nan")
    assert code == 2 and "finite perplexity" in err
    # No gate tags were written on the existing version.
    assert _snapshot(client) == before
    assert "gate_passed" not in client.get_model_version("support-chat", "1").tags


def test_bad_dataset_under_torchrun_fails_every_rank(tmp_path: Path, registry: tuple[str, Any]) -> None:
    uri, client = registry
    before = _snapshot(client)
    bad = tmp_path / "chats.jsonl"
    bad.write_text('{"messages": "not a list"}\n')
    done = run(
        torchrun(2, "trainer.train", "--dataset", str(bad), "--max-steps", "2"),
        trainer_env(uri),
        tmp_path,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"dataset {bad} line 1: expected an object with 'messages'" in done.stdout + done.stderr
    assert _snapshot(client) == before


def test_unknown_version_to_evaluate(tmp_path: Path, registry: tuple[str, Any]) -> None:
    uri, client = registry
    before = _snapshot(client)
    code, err, _ = _trainer("trainer.evaluate", tmp_path, uri, "--threshold", "50", "--model-version", "9")
    assert code == 2
    assert "registered model 'support-chat' has no version 9" in err
    assert _snapshot(client) == before
