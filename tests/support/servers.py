"""Real servers for tests: a throw-away PostgreSQL and an MLflow tracking server, on 127.0.0.1.

Both are context managers that stop the server and delete its files on exit::

    with start_postgres(tmp_path) as dsn, start_mlflow_server(dsn, tmp_path / "artifacts") as url:
        os.environ["MLFLOW_TRACKING_URI"] = url

``start_mlflow_server(..., auth=True)`` runs it as the cluster does: MLflow's basic-auth app with
the platform's roles (images/mlflow/registry_access); the users below exist, and a client acts as
one through ``user.env`` (MLFLOW_TRACKING_USERNAME/PASSWORD).

PostgreSQL's initdb refuses to run as root, so as root the data directory (made under the system
temp folder, which user postgres can traverse; pytest's tmp_path is private to root) is owned by
user ``postgres`` and the binaries run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops.local.local_servers import free_port, running

__all__ = [
    "ADMIN",
    "OUTSIDER",
    "PG_BIN",
    "PROMOTER",
    "TRAINER",
    "RegistryUser",
    "free_port",
    "start_mlflow_server",
    "start_postgres",
]


@dataclass(frozen=True)
class RegistryUser:
    """A user of an MLflow server started with ``auth=True``."""

    username: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        """The variables MLflow's client reads its basic-auth credentials from."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}

    @property
    def auth(self) -> tuple[str, str]:
        """``(username, password)`` for httpx."""
        return (self.username, self.password)


ADMIN = RegistryUser("admin", "admin-password-for-tests-only")
TRAINER = RegistryUser("trainer", "trainer-password-for-tests-only")
"""The trainer identity (``[registry_access] trainers``): runs, versions, gate tags, alias `candidate`."""
PROMOTER = RegistryUser("git-bot", "git-bot-password-for-tests-only")
"""The promotion identity (``[registry_access] promoters``): environment aliases."""
OUTSIDER = RegistryUser("someone", "someone-password-for-tests-only")
"""An authenticated user with no role: reads only."""


def _write_auth_config(path: Path, database_uri: str) -> None:
    """The basic-auth app's config as base/mlflow's ExternalSecret renders it, with the test users' roles."""
    path.write_text(
        "[mlflow]\n"
        "default_permission = EDIT\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {ADMIN.username}\n"
        "authorization_function = registry_access:authenticate\n"
        "\n[registry_access]\n"
        f"trainers = {TRAINER.username}\n"
        f"promoters = {PROMOTER.username}\n",
        encoding="utf-8",
    )


def _create_users(url: str) -> None:
    import httpx

    for user in (TRAINER, PROMOTER, OUTSIDER):
        answer = httpx.post(
            f"{url}/api/2.0/mlflow/users/create",
            json={"username": user.username, "password": user.password},
            auth=ADMIN.auth,
            timeout=30,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"creating MLflow user {user.username}: {answer.status_code} {answer.text}")


def _postgres_bin() -> Path:
    """The folder of initdb and pg_ctl: `$PG_BIN`, else initdb's on PATH, else Debian's newest.

    Debian's postgresql package keeps them in /usr/lib/postgresql/<major>/bin, off PATH.
    """
    if env := os.environ.get("PG_BIN"):
        return Path(env)
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/local/bin")


PG_BIN = _postgres_bin()


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def start_postgres(tmp: Path, database: str = "mlflow") -> Iterator[str]:
    """Start PostgreSQL on a free 127.0.0.1 port with an empty ``database``; yields its DSN.

    Args:
        tmp: a test's temporary directory; the server log is written there as ``postgres.log``.
        database: database created for the caller (trust auth, user ``postgres``).

    Yields:
        ``postgresql+psycopg2://postgres@127.0.0.1:<port>/<database>``, a SQLAlchemy URL for
        ``mlflow server --backend-store-uri`` (SQLAlchemy 2.1 would pick psycopg 3 for a bare
        ``postgresql://``, and only psycopg2 is installed).
    """
    base = Path(tempfile.mkdtemp(prefix="pg-"))
    data = base / "data"
    log = Path(tmp) / "postgres.log"
    port = free_port()
    try:
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        _run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            "initdb",
        )
        server_log = base / "server.log"
        _run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(server_log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start",
                ]
            ),
            "pg_ctl start",
        )
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        if (base / "server.log").exists():
            shutil.copyfile(base / "server.log", log)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def start_mlflow_server(
    backend_uri: str,
    artifacts_dir: Path,
    *,
    serve_artifacts: bool = True,
    artifacts_destination: str | None = None,
    auth: bool = False,
    timeout: float = 90.0,
) -> Iterator[str]:
    """Start ``mlflow server`` (one worker) on a free 127.0.0.1 port; yields its URL.

    Args:
        backend_uri: tracking/registry store, e.g. the DSN from :func:`start_postgres`.
        artifacts_dir: local artifact root.
        serve_artifacts: like production (``--serve-artifacts``): clients upload through the server
            and artifact URIs read ``mlflow-artifacts:/...``; False gives clients the plain path.
        artifacts_destination: where served artifacts go instead of `artifacts_dir` (e.g.
            ``s3://mlops-dev-mlflow-artifacts`` on moto, reached through this process's AWS_* variables).
        auth: run the basic-auth app with the platform's roles and create ADMIN's users (TRAINER,
            PROMOTER, OUTSIDER); its user store is a SQLite file beside the artifacts.
        timeout: seconds to wait for ``/health``.

    Yields:
        ``http://127.0.0.1:<port>``.
    """
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        f"localhost:*,127.0.0.1:*,127.0.0.1:{port}",
    ]
    if serve_artifacts:
        command += [
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts_destination or artifacts_dir.as_uri(),
        ]
    else:
        command += ["--no-serve-artifacts", "--default-artifact-root", artifacts_dir.as_uri()]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if auth:
        config = artifacts_dir.parent / f"basic-auth-{port}.ini"
        _write_auth_config(config, f"sqlite:///{artifacts_dir.parent / f'auth-{port}.db'}")
        command += ["--app-name", "basic-auth"]
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-secret-for-tests-only",
        }
    log_path = artifacts_dir.parent / f"mlflow-server-{port}.log"
    # its own process group (mlops.local.local_servers), so stopping it also stops its uvicorn worker
    with running(
        command,
        url=f"http://127.0.0.1:{port}",
        name="mlflow server",
        log=log_path,
        env=env,
        timeout=timeout,
    ) as server:
        if auth:
            _create_users(server.url)
        yield server.url
