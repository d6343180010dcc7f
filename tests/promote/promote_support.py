"""Helpers for the promote tests: git in a temp dir, a bare remote with clones, a registry helper."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "support-chat"
ARTIFACTS_DESTINATION = "s3://mlops-dev-mlflow-artifacts"
"""What the test servers' `mlflow-artifacts:/` URIs stand for (the cluster's --artifacts-destination)."""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Promote Test",
    "GIT_AUTHOR_EMAIL": "promote-test@example.invalid",
    "GIT_COMMITTER_NAME": "Promote Test",
    "GIT_COMMITTER_EMAIL": "promote-test@example.invalid",
}


def digest_of_run(run_id: str) -> str:
    """A well-formed weights digest unique to a run (the tests' trainer writes no real weights)."""
    return "sha256:" + hashlib.sha256(run_id.encode()).hexdigest()


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@dataclass
class GitOpsRepo:
    """A bare remote for one test and a way to make clones of it."""

    remote: Path
    root: Path

    def clone(self, name: str) -> Path:
        path = self.root / name
        git(self.root, "clone", "-q", str(self.remote), str(path))
        for key, value in (("user.name", "Promote Test"), ("user.email", "promote-test@example.invalid")):
            git(path, "config", key, value)
        return path

    def refs(self) -> str:
        return git(self.remote, "for-each-ref", "--format=%(refname) %(objectname)")

    def main_log(self) -> list[str]:
        return git(self.remote, "log", "--format=%H", "main").split()


class RegistryHelper:
    """Registers versions of `support-chat` the way the trainer and evaluation do."""

    def __init__(self, url: str) -> None:
        from mlflow import MlflowClient

        self.url = url
        self.client = MlflowClient(tracking_uri=url, registry_uri=url)
        self.experiment_id = self.client.create_experiment(f"promote-tests-{uuid.uuid4().hex[:8]}")

    def reset(self, model: str = MODEL) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_registered_model(model)
        self.client.create_registered_model(model)

    def register(self, gate: str | None = "true", model: str = MODEL, weights_digest: str | None = "") -> str:
        """Register a version the way the trainer does: the run's `model/` artifacts, tags, a gate verdict.

        `weights_digest` is the tag the trainer writes from its weights manifest: by default one
        derived from the run id (each version its own), None for none.
        """
        run = self.client.create_run(self.experiment_id)
        tags = {"git_commit": "0" * 40, "image_digest": "sha256:" + "a" * 64, "dataset_hash": "b" * 16}
        if weights_digest is not None:
            tags["weights_digest"] = weights_digest or digest_of_run(run.info.run_id)
        if gate is not None:
            # trainer.evaluate logs the metric on the run and copies it into the gate tags
            self.client.log_metric(run.info.run_id, "eval_perplexity", 12.5)
            tags.update(
                gate_metric="eval_perplexity", gate_threshold="30.0", gate_value="12.500000", gate_passed=gate
            )
        mv = self.client.create_model_version(
            model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
        )
        return str(mv.version)

    def weights_digest(self, version: str, model: str = MODEL) -> str:
        """The `weights_digest` tag of `version`: what promote must write as data.weightsDigest."""
        return str(self.client.get_model_version(model, version).tags["weights_digest"])

    def weights_uri(self, version: str, model: str = MODEL) -> str:
        """The S3 path promote must write for `version` (its `mlflow-artifacts:/` source, mapped)."""
        source = self.client.get_model_version(model, version).source
        assert source.startswith("mlflow-artifacts:/"), source
        return ARTIFACTS_DESTINATION + "/" + source.removeprefix("mlflow-artifacts:/").lstrip("/")

    def alias(self, alias: str, model: str = MODEL) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(model, alias).version)
        except Exception:
            return None

    def snapshot(self, model: str = MODEL) -> dict[str, object]:
        """Everything promote could change: aliases and tags of every version."""
        versions = self.client.search_model_versions(f"name='{model}'")
        return {
            str(v.version): (sorted(v.aliases or []), sorted((v.tags or {}).items()), v.source)
            for v in versions
        }


class FakeGitHub(BaseHTTPRequestHandler):
    """A local stand-in for GitHub's pull request API: one open PR per head branch, as GitHub keeps.

    POST /repos/O/N/pulls answers 201 with a new number (from 17), or 422 "A pull request already
    exists" when one is open for that head; GET /repos/O/N/pulls?head=O:B&state=open lists it.
    """

    requests: list[tuple[str, str, dict[str, str], dict[str, object]]] = []
    pulls: dict[str, int] = {}
    lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.requests, cls.pulls = [], {}

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        owner = self.path.split("/")[2]
        with self.lock:
            self.requests.append(("POST", self.path, dict(self.headers), body))
            head = f"{owner}:{body['head']}"
            if head in self.pulls:
                message = f"A pull request already exists for {head}."
                self._reply(422, {"message": "Validation Failed", "errors": [{"message": message}]})
                return
            self.pulls[head] = 17 + len(self.pulls)
            number = self.pulls[head]
        self._reply(201, {"number": number, "html_url": f"https://github.example/acme/gitops/pull/{number}"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        head = parse_qs(url.query).get("head", [""])[0]
        with self.lock:
            self.requests.append(("GET", self.path, dict(self.headers), {}))
            found = [
                {"number": n, "html_url": f"https://github.example/acme/gitops/pull/{n}"}
                for h, n in self.pulls.items()
                if h == head
            ]
        self._reply(200, found)

    def log_message(self, *args: object) -> None:
        pass
