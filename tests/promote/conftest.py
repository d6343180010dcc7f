"""Fixtures for promote/rollback/status/diff: real git remotes and clones, a real MLflow registry.

The GitOps repository used here is a copy of this repository's tracked files, committed
into a bare "remote" in a temp dir, so `mlops validate` can run on the clones.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from promote_support import ARTIFACTS_DESTINATION, REPO_ROOT, FakeGitHub, GitOpsRepo, RegistryHelper, git
from support.servers import start_mlflow_server


@pytest.fixture(scope="session")
def seed_remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository holding one commit: this repository's tracked files."""
    work = tmp_path_factory.mktemp("seed") / "work"
    work.mkdir()
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO_ROOT / rel
        if src.is_file():
            dst = work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Initial import of the GitOps repository")
    bare = work.parent / "seed.git"
    git(work.parent, "clone", "-q", "--bare", str(work), str(bare))
    return bare


@pytest.fixture
def gitops(seed_remote: Path, tmp_path: Path) -> GitOpsRepo:
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed_remote), str(remote))
    return GitOpsRepo(remote=remote, root=tmp_path)


@pytest.fixture
def clone(gitops: GitOpsRepo) -> Path:
    return gitops.clone("clone")


@pytest.fixture(scope="session")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("mlflow-sqlite")
    with start_mlflow_server(
        f"sqlite:///{workdir / 'mlflow.db'}", workdir / "artifacts", serve_artifacts=True
    ) as url:
        yield url


@pytest.fixture
def registry(mlflow_sqlite: str, monkeypatch: pytest.MonkeyPatch) -> RegistryHelper:
    """A fresh `support-chat` registered model on the shared SQLite-backed server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_sqlite)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", ARTIFACTS_DESTINATION)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    helper = RegistryHelper(mlflow_sqlite)
    helper.reset()
    return helper


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A local stand-in for the GitHub REST API (GITHUB_API_URL points at it)."""
    FakeGitHub.reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield FakeGitHub.requests
    server.shutdown()
    server.server_close()
