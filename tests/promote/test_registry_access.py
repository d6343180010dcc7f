"""Attacks on the registry's write boundary: a real MLflow with the basic-auth app and the platform's roles.

The server is `mlflow server --app-name basic-auth` with `registry_access:authenticate` as its
authorization function (images/mlflow/registry_access), as base/mlflow runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlops.release.promotion import promote
from mlops.release.registry import RegistryError
from mlops.repository import model_version_file
from promote_support import ARTIFACTS_DESTINATION, MODEL, GitOpsRepo, digest_of_run, git
from support.servers import ADMIN, OUTSIDER, PROMOTER, TRAINER, RegistryUser, start_mlflow_server

API = "/api/2.0/mlflow"
TIMEOUT = 60
"""Seconds per request: the server shares two CPUs with every other test run."""
DEV_FILE = f"overlays/dev/models/{MODEL}/model-version.yaml"


@pytest.fixture(scope="module")
def mlflow_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("mlflow-auth")
    # the auth app migrates its own user store on start: slow on a loaded machine
    with start_mlflow_server(
        f"sqlite:///{workdir / 'mlflow.db'}", workdir / "artifacts", auth=True, timeout=400
    ) as url:
        yield url


def _as(monkeypatch: pytest.MonkeyPatch, user: RegistryUser) -> None:
    for key, value in user.env.items():
        monkeypatch.setenv(key, value)


def _post(url: str, path: str, body: dict[str, object], user: RegistryUser | None) -> httpx.Response:
    return httpx.post(url + API + path, json=body, auth=user.auth if user else None, timeout=TIMEOUT)


def _set_tag(url: str, version: str, key: str, value: str, user: RegistryUser) -> httpx.Response:
    return _post(
        url, "/model-versions/set-tag", {"name": MODEL, "version": version, "key": key, "value": value}, user
    )


def _version_tags(url: str, version: str) -> dict[str, str]:
    answer = httpx.get(
        url + API + "/model-versions/get",
        params={"name": MODEL, "version": version},
        auth=PROMOTER.auth,
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return {t["key"]: t["value"] for t in answer.json()["model_version"].get("tags", [])}


def _aliases(url: str) -> dict[str, str]:
    answer = httpx.get(
        url + API + "/registered-models/get", params={"name": MODEL}, auth=OUTSIDER.auth, timeout=TIMEOUT
    )
    answer.raise_for_status()
    return {a["alias"]: a["version"] for a in answer.json()["registered_model"].get("aliases", [])}


@pytest.fixture(scope="module")
def trained(mlflow_auth: str) -> Iterator[dict[str, str]]:
    """As the trainer: `support-chat` versions 1 (deployed) and 2 (passed), 3 and 4 (failed their gate).

    Each version's run logged eval_perplexity and the version carries the gate tags, the way
    trainer.evaluate records them. Each test uses its own version, so the module shares them.
    """
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        _as(patch, TRAINER)
        client = MlflowClient(tracking_uri=mlflow_auth, registry_uri=mlflow_auth)
        experiment_id = client.create_experiment("registry-access")
        client.create_registered_model(MODEL)
        versions = {}
        for label, perplexity in (("deployed", 11.0), ("passed", 12.5), ("failed", 41.0), ("forged", 41.0)):
            run = client.create_run(experiment_id)
            client.log_metric(run.info.run_id, "eval_perplexity", perplexity)
            tags = {
                "gate_metric": "eval_perplexity",
                "gate_threshold": "30.0",
                "gate_value": f"{perplexity:.6f}",
                "gate_passed": "true" if perplexity <= 30 else "false",
                # trainer.weights_manifest's digest of the weights it saved (none are saved here)
                "weights_digest": digest_of_run(run.info.run_id),
            }
            source = f"{run.info.artifact_uri}/model"
            versions[label] = str(
                client.create_model_version(MODEL, source, run_id=run.info.run_id, tags=tags).version
            )
    yield versions


@pytest.fixture
def as_promoter(mlflow_auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The git-bot's environment: the registry, its artifact bucket, the promotion identity's credentials."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_auth)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", ARTIFACTS_DESTINATION)
    _as(monkeypatch, PROMOTER)


def test_anonymous_requests_are_refused_reads_and_writes(mlflow_auth: str) -> None:
    write = _post(mlflow_auth, "/experiments/create", {"name": "anonymous"}, None)
    read = httpx.get(mlflow_auth + API + "/experiments/search", params={"max_results": 1}, timeout=TIMEOUT)
    assert (write.status_code, read.status_code) == (401, 401)
    assert (
        httpx.get(mlflow_auth + "/health", timeout=TIMEOUT).status_code == 200
    )  # kubelet probes stay anonymous


def test_a_client_without_the_trainer_role_cannot_write(mlflow_auth: str, trained: dict[str, str]) -> None:
    answer = _post(mlflow_auth, "/experiments/create", {"name": "from-outside"}, OUTSIDER)
    assert answer.status_code == 403
    assert (
        "user 'someone' may not write to the registry (POST /api/2.0/mlflow/experiments/create)"
        in answer.text
    )
    # reads stay open to every authenticated user
    search = httpx.get(
        mlflow_auth + API + "/experiments/search",
        params={"max_results": 5},
        auth=OUTSIDER.auth,
        timeout=TIMEOUT,
    )
    assert search.status_code == 200


@pytest.mark.parametrize("user", [OUTSIDER, PROMOTER], ids=["outsider", "promoter"])
def test_setting_gate_passed_is_refused_to_anyone_but_the_trainer(
    mlflow_auth: str, trained: dict[str, str], user: RegistryUser
) -> None:
    failed = trained["failed"]
    answer = _set_tag(mlflow_auth, failed, "gate_passed", "true", user)
    assert answer.status_code == 403, answer.text
    assert f"user {user.username!r} may not write to the registry" in answer.text
    assert _version_tags(mlflow_auth, failed)["gate_passed"] == "false"


@pytest.mark.parametrize("user", [PROMOTER, OUTSIDER], ids=["promoter", "outsider"])
def test_the_weights_digest_is_refused_to_anyone_but_the_trainer(
    mlflow_auth: str, trained: dict[str, str], user: RegistryUser
) -> None:
    # Whoever swaps the weights in the bucket would also need to rewrite the digest promote copies.
    passed = trained["passed"]
    recorded = _version_tags(mlflow_auth, passed)["weights_digest"]
    answer = _set_tag(mlflow_auth, passed, "weights_digest", "sha256:" + "e" * 64, user)
    assert answer.status_code == 403, answer.text
    assert f"user {user.username!r} may not write to the registry" in answer.text
    assert _version_tags(mlflow_auth, passed)["weights_digest"] == recorded


def test_the_trainer_cannot_move_an_environment_alias_but_the_promoter_can(
    mlflow_auth: str, trained: dict[str, str]
) -> None:
    body = {"name": MODEL, "alias": "prod", "version": trained["failed"]}
    by_trainer = _post(mlflow_auth, "/registered-models/alias", body, TRAINER)
    assert by_trainer.status_code == 403
    assert (
        "user 'trainer' may not move alias 'prod': only the promotion identity (git-bot)" in by_trainer.text
    )
    by_outsider = httpx.request(
        "DELETE",
        mlflow_auth + API + "/registered-models/alias",
        params={"name": MODEL, "alias": "candidate"},
        auth=OUTSIDER.auth,
        timeout=TIMEOUT,
    )
    assert by_outsider.status_code == 403
    assert "prod" not in _aliases(mlflow_auth)
    # the trainer moves `candidate` (trainer.tracking.register), the promoter the environments'
    candidate = {"name": MODEL, "alias": "candidate", "version": trained["passed"]}
    assert _post(mlflow_auth, "/registered-models/alias", candidate, TRAINER).status_code == 200
    assert (
        _post(mlflow_auth, "/registered-models/alias", body | {"alias": "dev"}, PROMOTER).status_code == 200
    )
    assert _aliases(mlflow_auth) == {"candidate": trained["passed"], "dev": trained["failed"]}


@pytest.mark.usefixtures("as_promoter")
def test_promote_by_the_promoter_identity_commits_and_moves_the_alias(
    gitops: GitOpsRepo, clone: Path, trained: dict[str, str], mlflow_auth: str
) -> None:
    change = promote(clone, env="dev", model=MODEL, version=trained["passed"], log=lambda _: None)
    assert change.commit is not None and change.alias == trained["passed"]
    written = model_version_file.parse(git(gitops.remote, "show", "main:" + DEV_FILE), DEV_FILE)
    assert written.weights_digest == _version_tags(mlflow_auth, trained["passed"])["weights_digest"]
    assert _aliases(mlflow_auth)["dev"] == trained["passed"]


@pytest.mark.usefixtures("as_promoter")
def test_promote_ignores_a_gate_passed_tag_the_recorded_numbers_contradict(
    gitops: GitOpsRepo, clone: Path, trained: dict[str, str], mlflow_auth: str
) -> None:
    # Even a break-glass admin, whom the registry lets write anything, cannot make promote ship it.
    failed = trained["forged"]
    aliases = _aliases(mlflow_auth)
    assert _set_tag(mlflow_auth, failed, "gate_passed", "true", ADMIN).status_code == 200
    before = git(gitops.remote, "rev-parse", "main")
    with pytest.raises(RegistryError) as refused:
        promote(clone, env="dev", model=MODEL, version=failed, automated=True, log=lambda _: None)
    assert (
        f"version {failed} of 'support-chat' in the MLflow registry at {mlflow_auth}: "
        "gate_passed says passed, but eval_perplexity 41.0 is above threshold 30.0"
    ) in str(refused.value)
    # a forged value tag too: the run's own metric still says 41
    assert _set_tag(mlflow_auth, failed, "gate_value", "12.0", ADMIN).status_code == 200
    with pytest.raises(RegistryError, match=r"tag gate_value=12.0 but run \w+ logged eval_perplexity=41.0"):
        promote(clone, env="dev", model=MODEL, version=failed, automated=True, log=lambda _: None)
    assert git(gitops.remote, "rev-parse", "main") == before
    assert _aliases(mlflow_auth) == aliases


@pytest.mark.usefixtures("as_promoter")
def test_promote_without_credentials_stops_before_any_commit(
    gitops: GitOpsRepo, clone: Path, trained: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    before = git(gitops.remote, "rev-parse", "main")
    with pytest.raises(RegistryError) as refused:
        promote(clone, env="dev", model=MODEL, version=trained["passed"], log=lambda _: None)
    assert "401" in str(refused.value) or "credentials" in str(refused.value).lower(), str(refused.value)
    assert git(gitops.remote, "rev-parse", "main") == before
    assert json.dumps(refused.value.args)  # one printable line
