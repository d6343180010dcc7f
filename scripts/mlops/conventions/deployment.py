"""A deployment of a model in an environment, and every name derived from it.

`overlays/<env>/models/<model>/` is the model's stable deployment, `<model>-canary/` its
optional canary; MLflow alias `<env>` (`<env>-canary`) mirrors the version each one runs, and
the gateway's routes (`overlays/<env>/gateway/routes.yaml`) name their two backends `stable`
and `canary`. Code that needs one of these names asks a `Deployment` rather than spelling the
pattern again.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.conventions.environments import PR_ENVS

CANARY_SUFFIX = "-canary"
"""Ends a canary's folder, Kubernetes names and MLflow alias (`support-chat-canary`, `dev-canary`)."""
VERSION_FILE_NAME = "model-version.yaml"
ROUTES_PATH = "overlays/{env}/gateway/routes.yaml"
"""The gateway's routes of an environment: which backends serve a model, with what weight."""
STABLE_BACKEND = "stable"
CANARY_BACKEND = "canary"


@dataclass(frozen=True)
class Deployment:
    """The stable deployment (or, with `canary`, the canary) of `model` in `env`.

    Attributes:
        env: the environment (`dev`, `prod`); checked by the caller (`environments.check_env`).
        model: the registered model name, which is also the stable deployment's folder.
        canary: the model's canary deployment instead of its stable one.
    """

    env: str
    model: str
    canary: bool = False

    @classmethod
    def from_folder(cls, env: str, folder: str) -> Deployment:
        """Return the deployment whose folder under `overlays/<env>/models/` is `folder`."""
        return cls(env, folder.removesuffix(CANARY_SUFFIX), folder.endswith(CANARY_SUFFIX))

    @property
    def name(self) -> str:
        """The folder under `overlays/<env>/models/`, and the prefix of its Kubernetes names."""
        return f"{self.model}{CANARY_SUFFIX}" if self.canary else self.model

    @property
    def overlay(self) -> str:
        """The deployment's overlay folder, relative to the repository root."""
        return f"overlays/{self.env}/models/{self.name}"

    @property
    def version_file(self) -> str:
        """The model version file's path relative to the repository root (POSIX, as git names it)."""
        return f"{self.overlay}/{VERSION_FILE_NAME}"

    @property
    def alias(self) -> str:
        """The MLflow alias that mirrors this deployment's version: `<env>` or `<env>-canary`."""
        return f"{self.env}{CANARY_SUFFIX}" if self.canary else self.env

    @property
    def routes_file(self) -> str:
        """The gateway routes file of the environment, relative to the repository root."""
        return ROUTES_PATH.format(env=self.env)

    @property
    def label(self) -> str:
        """How messages name where it runs: `dev`, or `dev canary`."""
        return f"{self.env} canary" if self.canary else self.env

    @property
    def cli_flag(self) -> str:
        """What command lines that messages suggest add for this deployment: ` --canary` or nothing."""
        return " --canary" if self.canary else ""

    @property
    def through_pull_request(self) -> bool:
        """Whether changes to it go through a pull request (prod) instead of a push to the branch."""
        return self.env in PR_ENVS
