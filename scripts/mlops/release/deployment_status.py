"""What each environment runs: version in git, MLflow alias, held-back versions, the commit that set it.

One row per deployment folder: a model's stable deployment `<model>/` (alias `<env>`) and,
while a canary runs, `<model>-canary/` (alias `<env>-canary`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops.conventions.deployment import Deployment
from mlops.conventions.environments import ENVS
from mlops.conventions.errors import MlopsError
from mlops.release.registry import Registry, RegistryError
from mlops.repository import gitops, model_version_file

NOT_ASKED = "not asked"
"""The ALIAS of every row when no registry was named: nothing was unreachable, nothing was asked."""
NO_URI = (
    "no MLFLOW_TRACKING_URI set: export it to show the aliases (from a laptop: "
    "`kubectl -n mlflow port-forward svc/mlflow 5000:5000`, then MLFLOW_TRACKING_URI=http://localhost:5000; "
    "docs/runbooks.md, Reaching MLflow from a laptop)"
)


@dataclass
class ModelStatus:
    """One deployment (stable or canary) of a model in one environment."""

    env: str
    model: str
    deployment: str
    git_version: str | None
    alias_version: str  # a version, "none" (alias not set), "unreachable" or NOT_ASKED (no tracking URI)
    alias: str = ""  # the MLflow alias that mirrors this deployment: <env> or <env>-canary
    held_back: list[str] = field(default_factory=list)
    commit: str | None = None
    date: str | None = None
    subject: str | None = None
    error: str | None = None
    registry_error: str | None = None

    @property
    def in_sync(self) -> bool:
        """Whether the MLflow alias names the version git names."""
        return self.alias_version == self.git_version

    def as_dict(self) -> dict[str, object]:
        """Return the status as plain data (for `--json`)."""
        return {**asdict(self), "in_sync": self.in_sync}


def collect(repo: Path, envs: tuple[str, ...] = ENVS, registry: Registry | None = None) -> list[ModelStatus]:
    """Return the status of every deployment in `envs`, read from HEAD (the working tree if uncommitted)."""
    rows = []
    unreachable: str | None = None
    no_uri = registry is None and not os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    for env in envs:
        for deployment in model_version_file.deployments_in(repo, env):
            path = Deployment.from_folder(env, deployment).version_file
            row = ModelStatus(env=env, model=deployment, deployment=deployment, git_version=None,
                              alias_version="unreachable", alias=env)  # fmt: skip
            text = gitops.show_file(repo, "HEAD", path)
            try:
                state = model_version_file.parse(
                    text if text is not None else (repo / path).read_text(), path, deployment=deployment
                )
                row.model, row.git_version, row.held_back = state.model, state.version, state.held_back
                row.alias = Deployment(env, state.model, canary=deployment != state.model).alias
            except MlopsError as exc:
                row.error = str(exc)
            last = gitops.last_commit(repo, "HEAD", path)
            if last:
                row.commit, row.date, row.subject = last.sha[:12], last.date, last.subject
            if no_uri:
                row.alias_version, row.registry_error = NOT_ASKED, NO_URI
                rows.append(row)
                continue
            if unreachable is None:
                try:
                    registry = registry or Registry()
                    row.alias_version = registry.alias_version(row.model, row.alias) or "none"
                except RegistryError as exc:
                    unreachable = str(exc)  # one failure is enough: do not wait on every model
            row.registry_error = unreachable
            rows.append(row)
    return rows


def to_table(rows: list[ModelStatus]) -> str:
    """Format rows as an aligned text table, one line per environment and deployment.

    DEPLOYMENT is the folder (`<model>` or `<model>-canary`); ALIAS is the version its MLflow
    alias (`<env>` or `<env>-canary`) names.
    """
    header = ("ENV", "DEPLOYMENT", "GIT", "ALIAS", "HELD BACK", "COMMIT", "DATE", "SUBJECT")
    lines = [header]
    for r in rows:
        alias = r.alias_version + (
            "" if r.in_sync or r.alias_version in ("unreachable", NOT_ASKED) else " (differs)"
        )
        lines.append(
            (r.env, r.deployment, r.git_version or "invalid", alias, ",".join(r.held_back) or "-",
             r.commit or "-", (r.date or "-")[:19], r.error or r.subject or "-")
        )  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return (
        "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
            for line in lines
        )
        + "\n"
    )
