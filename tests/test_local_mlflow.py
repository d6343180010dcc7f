"""The demo's MLflow (mlops.local.local_mlflow): a real server with the cluster's auth app and roles."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from mlops.local import local_mlflow

REPO = Path(__file__).resolve().parents[1]
API = "/api/2.0/mlflow"
MODEL = "support-chat"
TIMEOUT = 60


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def registry(work: Path) -> Iterator[local_mlflow.LocalRegistry]:
    with ExitStack() as stack:
        yield local_mlflow.start(REPO, work, stack)


def _post(registry: local_mlflow.LocalRegistry, path: str, body: dict, login: local_mlflow.Login | None):
    auth = (login.username, login.password) if login else None
    return httpx.post(f"{registry.url}{API}{path}", json=body, auth=auth, timeout=TIMEOUT)


def test_the_roles_are_the_rendered_overlays(registry: local_mlflow.LocalRegistry) -> None:
    assert (registry.trainer.username, registry.promoter.username) == ("trainer", "git-bot")
    ini = (registry.folder / "basic_auth.ini").read_text()
    assert "authorization_function = registry_access:authenticate" in ini
    assert "{{" not in ini


def test_passwords_are_random_private_files_and_never_logged(
    registry: local_mlflow.LocalRegistry, work: Path
) -> None:
    files = sorted(registry.folder.glob("*.password"))
    assert [f.name for f in files] == [
        "admin.password", "flask-secret-key.password", "git-bot.password", "trainer.password"
    ]  # fmt: skip
    for file in [*files, registry.folder / "basic_auth.ini"]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert len({f.read_text() for f in files}) == len(files)
    log = (work / "mlflow.log").read_text()
    assert registry.trainer.password not in log and registry.promoter.password not in log


def test_each_identity_writes_only_what_its_role_allows_and_anonymous_writes_nothing(
    registry: local_mlflow.LocalRegistry,
) -> None:
    trainer, promoter = registry.trainer, registry.promoter
    assert _post(registry, "/registered-models/create", {"name": MODEL}, trainer).status_code == 200
    created = _post(registry, "/model-versions/create", {"name": MODEL, "source": "s3://b/m"}, trainer)
    assert created.status_code == 200, created.text
    version = created.json()["model_version"]["version"]
    alias = {"name": MODEL, "alias": "dev", "version": version}
    tag = {"name": MODEL, "version": version, "key": "gate_passed", "value": "true"}

    assert _post(registry, "/model-versions/set-tag", tag, None).status_code == 401
    assert _post(registry, "/registered-models/alias", alias, None).status_code == 401
    refused = _post(registry, "/registered-models/alias", alias, trainer)
    assert refused.status_code == 403 and "may not move alias 'dev'" in refused.text
    assert _post(registry, "/model-versions/set-tag", tag, promoter).status_code == 403
    assert _post(registry, "/registered-models/alias", alias, promoter).status_code == 200
    assert _post(registry, "/model-versions/set-tag", tag, trainer).status_code == 200


def test_a_restart_over_the_kept_folder_keeps_the_logins(
    registry: local_mlflow.LocalRegistry, work: Path
) -> None:
    with ExitStack() as stack:
        again = local_mlflow.start(REPO, work, stack)
        assert again.trainer == registry.trainer
        answer = httpx.get(
            f"{again.url}{API}/registered-models/alias",
            params={"name": MODEL, "alias": "dev"},
            auth=(again.promoter.username, again.promoter.password),
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
