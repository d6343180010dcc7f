"""CronWorkflow `retrain-support-chat`: retrain the first model every week from `main`.

It starts `train-and-promote` by reference (workflowTemplateRef), so a scheduled run is the
same run a person starts from the Argo UI, with the template's defaults. Each environment's
overlay says whether the schedule is on (`suspend`).
"""

from __future__ import annotations

from pathlib import Path

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from . import train_and_promote
from .environments import BASE, Environment
from .kubernetes import NAMESPACE
from .parameters import REPO_ROOT, defaults

MODEL = "support-chat"
SCHEDULE = "0 3 * * 1"
"""Mondays 03:00 in TIMEZONE: GPUs are cheapest and nobody waits on a promotion then."""
TIMEZONE = "UTC"


def build(env: Environment = BASE, repo: Path = REPO_ROOT) -> CronWorkflow:
    """Return the retraining CronWorkflow for `env` (suspended where the environment turns it off)."""
    values = defaults(env, repo)
    return CronWorkflow(
        name=f"retrain-{MODEL}",
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/part-of": train_and_promote.NAME},
        # the CRD comes with the Argo Workflows chart, another Application (MLOPS022)
        annotations={"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true"},
        schedules=[SCHEDULE],
        timezone=TIMEZONE,
        # a retrain still running a week later is stuck: do not stack another on it
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=4,
        failed_jobs_history_limit=4,
        cron_suspend=env.schedule_suspended,
        workflow_template_ref=m.WorkflowTemplateRef(name=train_and_promote.NAME),
        arguments=[
            Parameter(name="model-name", value=MODEL),
            Parameter(name="git-revision", value="main"),
            Parameter(name="target-env", value=values["target-env"]),
        ],
    )


def __getattr__(name: str) -> CronWorkflow:
    """`cron_workflow`: the base object the overlays patch, built on first use.

    Not at import: an installed CLI with no checkout beside it imports this module (mlops
    validate's compile check) and compiles against the repository it is given.
    """
    if name == "cron_workflow":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
