"""`mlops workflows run-local` end to end: torchrun training, the gate, a promote commit in a git remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlops.workflow_bridge.workflow_local import run_local

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

MODEL = "support-chat"
VERSION_FILE = f"overlays/dev/models/{MODEL}/model-version.yaml"
# small enough for a few CPU steps on a shared machine
TINY = {"max-steps": "2", "seq-len": "48", "batch-size": "4", "checkpoint-every": "2"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def chain(repo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A bare remote of this repository and a local registry already holding the version dev serves."""
    root = tmp_path_factory.mktemp("run-local")
    remote = root / "remote.git"
    git(root, "clone", "--quiet", "--bare", str(repo_root), str(remote))
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    served = git(remote, "show", f"main:{VERSION_FILE}")
    assert 'version: "1"' in served
    client = MlflowClient(tracking_uri=tracking_uri)
    client.create_registered_model(MODEL)
    (root / "v1").mkdir()
    client.create_model_version(MODEL, source=str(root / "v1"))  # version 1: what dev runs today
    yield root, remote, tracking_uri, client


def test_run_local_trains_gates_and_commits_the_new_version(repo_root, chain):
    root, remote, tracking_uri, client = chain
    before = git(remote, "rev-parse", "main").strip()

    outcome = run_local(
        repo_root,
        remote=str(remote),
        work_dir=root / "passing",
        tracking_uri=tracking_uri,
        nproc="2",
        overrides={**TINY, "eval-threshold": "1000000"},
    )

    assert [(s.name, s.status) for s in outcome.steps] == [
        ("build", "Skipped"),
        ("train", "Succeeded"),
        ("evaluate", "Succeeded"),
        ("promote", "Succeeded"),
    ], outcome.report
    assert outcome.status == "Succeeded"
    # MLflow: a new registered version from this run, gated and promoted to dev
    assert outcome.model_version == "2"
    version = client.get_model_version(MODEL, "2")
    assert version.run_id == outcome.run_id
    assert version.tags["gate_passed"] == "true"
    assert len(outcome.commit) == 40 and version.tags["git_commit"] == outcome.commit
    assert str(client.get_model_version_by_alias(MODEL, "dev").version) == "2"
    assert client.get_run(outcome.run_id).info.run_name == outcome.workflow
    assert outcome.mlflow_run_url.endswith(f"/runs/{outcome.run_id}")
    # git: one commit on main that changes dev's model version file and, this being the
    # model's first promote, takes it out of bootstrap mode (its kustomization.yaml)
    assert git(remote, "rev-parse", "main~1").strip() == before
    assert git(remote, "diff", "--name-only", before, "main").split() == [
        VERSION_FILE.replace("model-version.yaml", "kustomization.yaml"),
        VERSION_FILE,
    ]
    assert 'version: "2"' in git(remote, "show", f"main:{VERSION_FILE}")
    message = git(remote, "log", "-1", "--format=%B", "main")
    assert f"Workflow: {outcome.workflow}" in message
    assert f"MLflow-Run: {outcome.run_id}" in message
    assert f"workflow {outcome.workflow}: Succeeded" in outcome.report


def test_a_failing_gate_stops_the_chain_with_no_commit(repo_root, chain):
    root, remote, tracking_uri, client = chain
    before = git(remote, "rev-parse", "main").strip()

    outcome = run_local(
        repo_root,
        remote=str(remote),
        work_dir=root / "failing",
        tracking_uri=tracking_uri,
        nproc="1",
        overrides={**TINY, "max-steps": "1", "eval-threshold": "1.0001"},  # no model is that good
    )

    assert outcome.status == "Failed"
    assert [(s.name, s.status) for s in outcome.steps] == [
        ("build", "Skipped"),
        ("train", "Succeeded"),
        ("evaluate", "Failed"),
    ]
    assert git(remote, "rev-parse", "main").strip() == before
    version = client.get_model_version(MODEL, outcome.model_version)
    assert version.tags["gate_passed"] == "false"
    assert str(client.get_model_version_by_alias(MODEL, "dev").version) != outcome.model_version
    assert "failed step evaluate:" in outcome.report
    assert f"MLflow run: {outcome.mlflow_run_url}" in outcome.report


def test_run_local_without_the_training_extra_names_the_install_command(tmp_path: Path) -> None:
    """A CLI installed without `.[train]`: one line naming the fix, before any step runs."""
    blocker = (
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from mlops.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    proc = subprocess.run(
        [sys.executable, "-c", blocker, "workflows", "run-local", "--remote", str(remote),
         "--work-dir", str(tmp_path / "work")],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "MLOPS_REPO": str(REPO_ROOT)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: run-local trains in this Python") and proc.stderr.count("\n") == 1
    assert "cannot import torch: install the training extra with `pip install -e '.[train]'`" in proc.stderr
    assert "(or `make venv`, which does)" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_step_env_for_a_step_the_template_lacks_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from mlops.workflow_bridge.workflow_local import RunLocalError

    with pytest.raises(
        RunLocalError, match=r"step_env names training: the steps are build, train, evaluate, promote"
    ):
        run_local(REPO_ROOT, remote=str(tmp_path / "none.git"), work_dir=tmp_path / "work",
                  step_env={"training": {"MLFLOW_TRACKING_USERNAME": "trainer"}})  # fmt: skip
    assert not (tmp_path / "work").exists()
