"""The demo's MLflow, started as the cluster starts it: the basic-auth app with the platform's roles.

The app name and the `basic_auth.ini` (`authorization_function = registry_access:authenticate`
and its `[registry_access]` roles) are read from the rendered `overlays/<env>/mlflow`: the
Deployment's `--app-name` and the `mlflow-auth` ExternalSecret's template, with the user store
a SQLite file instead of the `mlflow_auth` database. The logins are made as docs/first-apply.md
makes them (the bootstrap admin from `MLFLOW_AUTH_ADMIN_PASSWORD`, then the trainer and
promotion users through MLflow's auth client, as admin); their passwords are random per run,
kept in files of mode 0600 under `<work>/mlflow-auth/`, never printed::

    registry = start(repo, work, stack)
    with logged_in(registry.trainer):
        MlflowClient(registry.url).create_registered_model("m")
"""

from __future__ import annotations

import configparser
import secrets
import sys
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.conventions.errors import MlopsError
from mlops.local import local_servers

AUTH_SECRET = "mlflow-auth"
"""The ExternalSecret whose template renders `basic_auth.ini` (base/mlflow/externalsecret-auth.yaml)."""
AUTH_FILE_KEY = "basic_auth.ini"
_USER_STORE_PLACEHOLDER = "{{ .auth_uri }}"


class LocalMlflowError(MlopsError):
    """The rendered MLflow overlay does not say how to start the auth app, or a login failed."""


@dataclass(frozen=True)
class Login:
    """One MLflow user: the variables MLflow's client reads its basic-auth login from."""

    username: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        """MLFLOW_TRACKING_USERNAME/PASSWORD, for a subprocess or `logged_in`."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}


@dataclass(frozen=True)
class LocalRegistry:
    """A running authenticated MLflow and the identities the demo acts as.

    Attributes:
        url: its base URL (the tracking URI).
        trainer: the first of `[registry_access] trainers`: runs, versions, gate tags.
        promoter: the first of `[registry_access] promoters`: environment aliases.
        folder: where its config and the password files are.
        artifacts: its `--artifacts-destination` (a file URI), what promote maps
            `mlflow-artifacts:/` sources onto.
    """

    url: str
    trainer: Login
    promoter: Login
    folder: Path
    artifacts: str


def logged_in(login: Login) -> AbstractContextManager[None]:
    """Make this process's MLflow clients log in as `login` (they read the variables per request)."""
    from mlops.workflow_bridge.workflow_local import environ

    return environ(login.env)


def auth_settings(repo: Path, env: str) -> tuple[str, str]:
    """Return the `--app-name` and the `basic_auth.ini` template of `overlays/<env>/mlflow`, rendered.

    Raises:
        LocalMlflowError: the overlay renders no Deployment with `--app-name`, or no
            `mlflow-auth` ExternalSecret with a `basic_auth.ini` template holding `{{ .auth_uri }}`.
    """
    from mlops.rendering.render import render_kustomization

    overlay = f"overlays/{env}/mlflow"
    documents = render_kustomization(repo, overlay)
    args = [
        str(arg)
        for doc in documents
        if doc.get("kind") == "Deployment"
        for container in doc["spec"]["template"]["spec"].get("containers", [])
        for arg in container.get("args") or []
    ]
    app = next((a.split("=", 1)[1] for a in args if a.startswith("--app-name=")), "")
    if not app:
        raise LocalMlflowError(f"{overlay}: the mlflow Deployment has no --app-name=... argument")
    templates = [
        doc["spec"].get("target", {}).get("template", {}).get("data", {}).get(AUTH_FILE_KEY, "")
        for doc in documents
        if doc.get("kind") == "ExternalSecret" and doc["metadata"].get("name") == AUTH_SECRET
    ]
    template = templates[0] if templates else ""
    if _USER_STORE_PLACEHOLDER not in template:
        raise LocalMlflowError(
            f"{overlay}: ExternalSecret {AUTH_SECRET} has no spec.target.template.data.{AUTH_FILE_KEY} "
            f"naming the user store as {_USER_STORE_PLACEHOLDER}"
        )
    return app, template


def _first(config: configparser.ConfigParser, role: str, ini: Path) -> str:
    names = [n.strip() for n in config.get("registry_access", role, fallback="").split(",") if n.strip()]
    if not names:
        raise LocalMlflowError(f"{ini}: [registry_access] {role} names nobody")
    return names[0]


def _secret_file(path: Path, value: str) -> None:
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def server_argv(folder: Path, app: str, port: int) -> list[str]:
    """The `mlflow server` command line over the registry kept in `folder`'s parent."""
    work = folder.parent
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", (work / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--allowed-hosts", f"localhost:{port},127.0.0.1:{port}",
        "--app-name", app,
    ]  # fmt: skip


def start(repo: Path, work: Path, stack: ExitStack, env: str = "dev") -> LocalRegistry:
    """Start the authenticated MLflow over `work` (stopped when `stack` closes) and return its logins.

    The first start writes the config and random passwords and creates the users; a later
    start over the same `work` (the demo's kept registry) reuses them.
    """
    app, template = auth_settings(repo, env)
    folder = work / "mlflow-auth"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ini = folder / AUTH_FILE_KEY
    fresh = not ini.exists()
    if fresh:
        _secret_file(ini, template.replace(_USER_STORE_PLACEHOLDER, f"sqlite:///{folder / 'users.db'}"))
    config = configparser.ConfigParser(inline_comment_prefixes=("#",))
    config.read(ini)
    admin_name = config.get("mlflow", "admin_username", fallback="admin")
    names = {"admin": admin_name, "trainer": _first(config, "trainers", ini),
             "promoter": _first(config, "promoters", ini)}  # fmt: skip
    for name in (*names.values(), "flask-secret-key"):
        if fresh:
            _secret_file(folder / f"{name}.password", secrets.token_hex(24))
    logins = {
        role: Login(name, (folder / f"{name}.password").read_text().strip()) for role, name in names.items()
    }
    port = local_servers.free_port()
    server = local_servers.start(
        server_argv(folder, app, port),
        url=f"http://127.0.0.1:{port}",
        name="MLflow",
        log=work / "mlflow.log",
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": logins["admin"].password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": (folder / "flask-secret-key.password").read_text().strip(),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    stack.callback(server.stop)
    # the auth app migrates its user store on the first start: slow on a loaded machine
    local_servers.wait_ready(server, "/health", timeout=300, interval=0.3, error=LocalMlflowError)
    if fresh:
        _create_users(app, server.url, logins["admin"], [logins["trainer"], logins["promoter"]])
    return LocalRegistry(
        url=server.url,
        trainer=logins["trainer"],
        promoter=logins["promoter"],
        folder=folder,
        artifacts=(work / "artifacts").as_uri(),
    )


def _create_users(app: str, url: str, admin: Login, users: list[Login]) -> None:
    """As docs/first-apply.md does: MLflow's auth client, logged in as the bootstrap admin."""
    import mlflow.server
    from mlflow.exceptions import MlflowException

    client: Any = mlflow.server.get_app_client(app, tracking_uri=url)
    with logged_in(admin):
        for user in users:
            try:
                client.create_user(user.username, user.password)
            except MlflowException as exc:
                raise LocalMlflowError(
                    f"creating MLflow user {user.username!r} at {url}: {exc.message}"
                ) from exc
