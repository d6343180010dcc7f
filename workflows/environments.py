"""Per-environment platform settings the workflows embed: accounts, registries, buckets, URLs.

Which environments exist is `mlops.conventions.paths.ENVS`, the list the CLI reads too; this file holds
only what the workflows need to know about each of them.

The base under `base/workflows/generated/` is compiled with `BASE` (placeholder account and
environment, like every other base in this repository); `mlops workflows compile` compiles
each real environment too and writes the difference as the overlay's patch, so this file is
the one place a platform value changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.conventions.paths import ENVS

REGION = "us-west-2"
GIT_REPOSITORY = "https://github.com/example-org/mlops-platform.git"
"""This repository: BuildKit builds the trainer from it and the git-bot commits to it."""


@dataclass(frozen=True)
class Environment:
    """What differs between clusters for the training workflows.

    Attributes:
        name: `dev` or `prod` (`env` for the base's placeholders).
        account: the AWS account id (contract: dev 111122223333, prod 444455556666).
        mlflow_ui_url: where a person opens MLflow in a browser (links in the workflow's outputs).
        schedule_suspended: whether the retraining CronWorkflow is off in this environment.
    """

    name: str
    account: str
    mlflow_ui_url: str
    schedule_suspended: bool

    @property
    def registry(self) -> str:
        """The ECR registry of this environment's account."""
        return f"{self.account}.dkr.ecr.{REGION}.amazonaws.com"

    def bucket(self, purpose: str) -> str:
        """Return the S3 bucket for a purpose (`datasets`, `model-weights`, ...): `mlops-<env>-<purpose>`."""
        return f"mlops-{self.name}-{purpose}"

    @property
    def default_target_env(self) -> str:
        """The environment a run promotes to unless the person picks another."""
        return "prod" if self.name == "prod" else "dev"


# The MLflow links a run writes (pull request bodies, the template's description) point at the
# front door, https://mlflow.<domain> (docs/access.md; <domain> is terraform/envs/<env>
# `domain`); the base, which no cluster runs, keeps the port-forward address.
_PORT_FORWARD = "http://localhost:5000"

BASE = Environment(
    name="env",
    account="000000000000",
    mlflow_ui_url=_PORT_FORWARD,
    schedule_suspended=True,
)
_SETTINGS: dict[str, dict[str, Any]] = {
    "dev": {
        "account": "111122223333",
        "mlflow_ui_url": "https://mlflow.dev.mlops.example.com",
        "schedule_suspended": False,
    },
    # Production retrains on demand: a person starts the template from the Argo UI.
    "prod": {
        "account": "444455556666",
        "mlflow_ui_url": "https://mlflow.prod.mlops.example.com",
        "schedule_suspended": True,
    },
}
if set(_SETTINGS) != set(ENVS):
    # mlops.conventions.paths.ENVS names the environments; this file only says how each one differs
    raise ValueError(
        f"workflows/environments.py sets {sorted(_SETTINGS)} "
        f"but mlops.conventions.paths.ENVS is {list(ENVS)}: "
        "give every environment its settings here"
    )
ENVIRONMENTS: dict[str, Environment] = {name: Environment(name=name, **_SETTINGS[name]) for name in ENVS}
"""Each environment of `mlops.conventions.paths.ENVS` with its settings, in that order."""
