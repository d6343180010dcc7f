"""`mlops demo` end to end in a temporary copy of the repository, run twice.

Real everything that can run here: kustomize + validation, torchrun with 2 ranks, MLflow on
SQLite with the cluster's basic-auth app and roles, git pushes to a bare remote, vLLM (its CPU
build, the checkout's .venv-vllm) and the gateway over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from mlops.conventions.paths import default_crds_dir
from mlops.local import local_mlflow
from mlops.local.local_vllm import VENV_ENV_VAR, vllm_python
from mlops.repository.bootstrap import is_bootstrapping

REPO = Path(__file__).resolve().parents[1]
VERSION_FILE = "overlays/dev/models/support-chat/model-version.yaml"
KUSTOMIZATION = "overlays/dev/models/support-chat/kustomization.yaml"
IGNORED = shutil.ignore_patterns(".git", ".venv*", ".mlops", "__pycache__", ".*_cache", "*.egg-info")


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "platform"
    shutil.copytree(REPO, copy, ignore=IGNORED)
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "--quiet", "--initial-branch=main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "platform"], check=True)
    return copy


def _demo(repo: Path) -> subprocess.CompletedProcess[str]:
    # The copy reuses this checkout's vLLM venv (made here by `make vllm` when missing).
    venv = vllm_python(REPO).parent.parent
    env = {**os.environ, "MLOPS_CRDS_DIR": str(default_crds_dir(REPO)), VENV_ENV_VAR: str(venv)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "mlops", "--repo", str(repo), "demo"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _left_running(repo: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    servers = ("gateway", "vllm", "mlflow")
    return [line for line in out.splitlines() if str(repo) in line and any(s in line for s in servers)]


@pytest.mark.slow
# two whole demos (about 6 min each on two shared cores) and a restart of the registry
@pytest.mark.timeout(1500)
def test_demo_promotes_a_trained_version_and_answers_through_the_gateway(repo_copy: Path) -> None:
    bootstrapping = is_bootstrapping((repo_copy / KUSTOMIZATION).read_text())
    for attempt in (1, 2):  # a second run starts from scratch and works too
        proc = _demo(repo_copy)
        assert proc.returncode == 0, f"run {attempt}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        summary = json.loads((repo_copy / ".mlops/demo/summary.json").read_text())
        version = summary["model_version"]
        assert version != summary["previous_version"]

        # The commit in the remote changes the dev version file, with parseable trailers; being the
        # first promote of a model folder still in bootstrap mode, it also takes that component out.
        remote = Path(summary["remote"])
        git = ["git", "--git-dir", str(remote)]
        message = subprocess.run([*git, "log", "-1", "--format=%B", "main"], capture_output=True, text=True)
        assert "Model: support-chat" in message.stdout and f"Version: {version}" in message.stdout
        assert "Env: dev" in message.stdout
        changed = subprocess.run(
            [*git, "diff", "--name-only", "main~1", "main"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert changed == sorted([VERSION_FILE, *([KUSTOMIZATION] if bootstrapping else [])])
        served = subprocess.run(
            [*git, "show", f"main:{VERSION_FILE}"], capture_output=True, text=True, check=True
        ).stdout
        assert f'version: "{version}"' in served

        # The demo's MLflow ran with auth on, and no password reached its output.
        passwords = [
            f.read_text().strip() for f in (repo_copy / ".mlops/demo/mlflow-auth").glob("*.password")
        ]
        assert len(passwords) == 4 and not [p for p in passwords if p in proc.stdout + proc.stderr]

        # The chat answer was streamed by vLLM through the gateway, from the promoted version, and
        # answers the question rather than echoing the system prompt it was trained under.
        assert summary["answer"].strip()
        assert "You are a helpful" not in summary["answer"]
        assert summary["answer"].replace("\n", " ").strip() in proc.stdout
        assert f"--served-model-name support-chat support-chat:{version}" in proc.stdout
        assert f'version="{version}"' in proc.stdout
        assert not _left_running(repo_copy), "the demo left its servers running"

    _registry_kept_its_roles(repo_copy, summary)


def _registry_kept_its_roles(repo: Path, summary: dict[str, str]) -> None:
    """The demo's registry, started again over what it kept: its identities' writes, nobody else's."""
    api, model, version = "/api/2.0/mlflow", "support-chat", summary["model_version"]
    with ExitStack() as stack:
        registry = local_mlflow.start(repo, repo / ".mlops" / "demo", stack)
        trainer, promoter = registry.trainer, registry.promoter
        # what the demo's trainer (the version, its gate) and git-bot (alias dev) wrote
        with local_mlflow.logged_in(promoter):
            registered = MlflowClient(tracking_uri=registry.url).get_model_version_by_alias(model, "dev")
        assert str(registered.version) == version
        assert registered.tags["gate_passed"] == "true"
        assert registered.tags["weights_digest"].startswith("sha256:")

        def post(path: str, body: dict[str, str], login: local_mlflow.Login | None) -> httpx.Response:
            auth = (login.username, login.password) if login else None
            return httpx.post(f"{registry.url}{api}{path}", json=body, auth=auth, timeout=60)

        tag = {"name": model, "version": version, "key": "gate_passed", "value": "false"}
        back = {"name": model, "alias": "dev", "version": summary["previous_version"]}
        assert post("/model-versions/set-tag", tag, None).status_code == 401
        assert post("/registered-models/alias", back, None).status_code == 401
        # the trainer could not have moved dev: only the promotion identity did
        assert post("/registered-models/alias", back, trainer).status_code == 403
        assert post("/model-versions/set-tag", tag, promoter).status_code == 403
        with local_mlflow.logged_in(promoter):
            after = MlflowClient(tracking_uri=registry.url).get_model_version_by_alias(model, "dev")
        assert str(after.version) == version and after.tags["gate_passed"] == "true"


@pytest.mark.slow
def test_canary_demo_rolls_the_bad_canary_back(repo_copy: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("the prometheus binary is not installed (Debian package prometheus)")
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "--repo", str(repo_copy), "demo", "--canary"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "at 20%: abort: the canary is worse than stable" in proc.stdout
    remote = repo_copy / ".mlops" / "demo-canary" / "remote.git"
    log = ["git", "-C", str(remote), "log", "-1", "--format=%s", "main"]
    subject = subprocess.run(log, capture_output=True, text=True, check=True).stdout.strip()
    assert subject == "Abort canary of support-chat version 2 in dev: weight 20% -> 0%"
