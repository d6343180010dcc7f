"""WorkflowTemplate `canary-analysis`: judge each model's canary and commit the decision.

`canary_analysis_cron` starts it every few minutes by reference (the controller runs only
workflows that reference a WorkflowTemplate: `templateReferencing: Strict`).

One step per model that has a canary plan (`overlays/<env>/models/<model>/canary-plan.yaml`),
each running `mlops canary analyze` in the git-bot image: the entrypoint clones the GitOps
repository with the mounted token and the analysis commits wait/start/advance/finish/abort
(docs/promotion.md, Canary analysis). A model without a running canary is a no-op. It needs
no Kubernetes API (the git-bot ServiceAccount has only the executor's WorkflowTaskResult
rights) and no AWS API; it reads Prometheus over HTTP and writes to git.
"""

from __future__ import annotations

from pathlib import Path

from hera.workflows import Container, Env, Steps, WorkflowTemplate
from hera.workflows import models as m

from . import container_images as images
from .environments import BASE, ENVIRONMENTS, GIT_REPOSITORY, Environment
from .kubernetes import GIT_TOKEN_SECRET, NAMESPACE
from .parameters import REPO_ROOT

NAME = "canary-analysis"
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
GIT_BOT_TAG = "0.4.0"
"""The git-bot release the canary analysis runs (its analysis reads only the gateway's series)."""
_GIT_TOKEN_DIR = "/var/run/secrets/git-bot"


def planned_models(env: Environment, repo: Path) -> list[str]:
    """Models with a canary plan in `env` (for the base: in any environment), sorted."""
    envs = list(ENVIRONMENTS) if env is BASE else [env.name]
    return sorted(
        {p.parent.name for e in envs for p in (repo / "overlays" / e / "models").glob("*/canary-plan.yaml")}
    )


def _analyze(env: Environment, model: str) -> Container:
    return Container(
        name=f"analyze-{model}",
        image=f"{env.registry}/{images.GIT_BOT.repository}:{GIT_BOT_TAG}",
        # The entrypoint runs `mlops canary ...` when the first argument is `canary`.
        args=["canary", "analyze", f"--env={env.name}", f"--model={model}", "--workflow={{workflow.name}}"],
        env=[
            Env(name="GIT_REPO_URL", value=GIT_REPOSITORY),
            Env(name="GIT_TOKEN_FILE", value=f"{_GIT_TOKEN_DIR}/token"),
            Env(name="PROMETHEUS_URL", value=PROMETHEUS_URL),
            Env(name="HOME", value="/tmp"),  # git config --global writes here: the root is read-only
        ],
        service_account_name="git-bot",
        resources=m.ResourceRequirements(
            requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "100m", "memory": "256Mi"}
        ),
        security_context=m.SecurityContext(
            run_as_non_root=True,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            capabilities=m.Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[
            m.VolumeMount(name="tmp", mount_path="/tmp"),
            m.VolumeMount(name="git-bot-token", mount_path=_GIT_TOKEN_DIR, read_only=True),
        ],
    )


def build(env: Environment = BASE, repo: Path = REPO_ROOT) -> WorkflowTemplate:
    """Return the canary analysis WorkflowTemplate for `env`: one step per model with a plan, in parallel."""
    with WorkflowTemplate(
        name=NAME,
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/part-of": NAME},
        # the CRD comes with the Argo Workflows chart, another Application (MLOPS022)
        annotations={"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true"},
        entrypoint="analyze",
        service_account_name="git-bot",
        active_deadline_seconds=600,
        volumes=[
            m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource()),
            m.Volume(
                name="git-bot-token",
                secret=m.SecretVolumeSource(
                    secret_name=GIT_TOKEN_SECRET,
                    items=[m.KeyToPath(key="token", path="token")],
                ),
            ),
        ],
    ) as template:
        containers = [_analyze(env, model) for model in planned_models(env, repo)]
        with Steps(name="analyze") as steps, steps.parallel():
            for container in containers:
                container()
    return template


def __getattr__(name: str) -> WorkflowTemplate:
    """`workflow_template`: the base object the overlays patch, built on first use.

    Not at import: an installed CLI with no checkout beside it imports this module (mlops
    validate's compile check) and compiles against the repository it is given.
    """
    if name == "workflow_template":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
