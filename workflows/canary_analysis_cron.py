"""CronWorkflow `canary-analysis`: every few minutes, run the `canary-analysis` WorkflowTemplate.

It starts the template by reference (workflowTemplateRef), as the controller requires
(`templateReferencing: Strict`, apps/upstream/argo-workflows): what runs with the git-bot's
token is a WorkflowTemplate from this repository, never a spec written into a Workflow.
"""

from __future__ import annotations

from pathlib import Path

from hera.workflows import CronWorkflow
from hera.workflows import models as m

from . import canary_analysis
from .environments import BASE, Environment
from .kubernetes import NAMESPACE
from .parameters import REPO_ROOT

SCHEDULE = "*/5 * * * *"
"""Every five minutes: a step's minDuration is minutes, so a decision is at most one period late."""


def build(env: Environment = BASE, repo: Path = REPO_ROOT) -> CronWorkflow:
    """Return the canary analysis CronWorkflow (the same for every environment; the template differs)."""
    return CronWorkflow(
        name=canary_analysis.NAME,
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/part-of": canary_analysis.NAME},
        # the CRD comes with the Argo Workflows chart, another Application (MLOPS022)
        annotations={"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true"},
        schedules=[SCHEDULE],
        timezone="UTC",
        # one analysis at a time: two would judge the same window and race to commit
        concurrency_policy="Forbid",
        starting_deadline_seconds=240,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=5,
        workflow_template_ref=m.WorkflowTemplateRef(name=canary_analysis.NAME),
    )


def __getattr__(name: str) -> CronWorkflow:
    """`cron_workflow`: the base object the overlays patch, built on first use.

    Not at import: an installed CLI with no checkout beside it imports this module (mlops
    validate's compile check) and compiles against the repository it is given.
    """
    if name == "cron_workflow":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
