"""First-apply policies (MLOPS100-107, MLOPS022 on workflow kinds): each planted defect is one exact line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from mlops import cli
from mlops.repository import bootstrap
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def fresh_install_run(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant one defect per first-apply policy in the copy and return `mlops validate`'s lines."""
    # MLOPS022: a CronWorkflow synced by Argo CD without SkipDryRunOnMissingResource.
    _replace(
        repo_copy / "base/workflows/generated/canary-analysis-cron.yaml",
        "    argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true\n",
        "",
    )
    # MLOPS104: a NodePool Argo CD would delete, an ApplicationSet whose deletion cascades.
    _replace(
        repo_copy / "base/karpenter/nodepool-cpu.yaml",
        "SkipDryRunOnMissingResource=true,Delete=false",
        "SkipDryRunOnMissingResource=true",
    )
    _replace(repo_copy / "apps/gateway.yaml", "OnDeletion: true", "OnDeletion: false")
    _replace(
        repo_copy / "apps/mlflow.yaml",
        "  template:\n    metadata:\n",
        "  template:\n    metadata:\n      finalizers: [resources-finalizer.argocd.argoproj.io]\n",
    )
    # MLOPS107: the PyTorchJob's pods labelled as the workflow's own.
    _replace(
        repo_copy / "base/workflows/generated/train-and-promote.yaml",
        "                    mlops.platform/workflow: {{=toJson(workflow.name)}}",
        "                    workflows.argoproj.io/workflow: {{=toJson(workflow.name)}}",
    )
    # MLOPS102: no metrics-server for the gateway's CPU-scaled HPA.
    _replace(
        repo_copy / "apps/upstream-charts.yaml",
        "                - chart: metrics-server\n",
        "                - chart: metrics-server-planted-away\n",
    )
    # MLOPS103: prod scrapes the EKS scheduler again.
    _replace(
        repo_copy / "apps/upstream/kube-prometheus-stack/values-prod.yaml",
        "kubeScheduler:\n  enabled: false",
        "kubeScheduler:\n  enabled: true",
    )
    # MLOPS100: a count in git beside the ScaledObject that owns it.
    _replace(
        repo_copy / "overlays/dev/models/support-chat/resources.yaml",
        "  name: vllm\nspec:\n",
        "  name: vllm\nspec:\n  replicas: 2\n",
    )
    # MLOPS100 again: prod served (out of bootstrap) with a count in git.
    prod_model = repo_copy / "overlays/prod/models/support-chat"
    (prod_model / "kustomization.yaml").write_text(
        bootstrap.without_bootstrap((prod_model / "kustomization.yaml").read_text())
    )
    _replace(prod_model / "resources.yaml", "  name: vllm\nspec:\n", "  name: vllm\nspec:\n  replicas: 3\n")
    # MLOPS105: prod's window holds manual syncs too.
    _replace(repo_copy / "clusters/prod/addons-sync-window.yaml", "manualSync: true", "manualSync: false")
    # MLOPS106: a relabeling without its action, which the API server defaults.
    _replace(repo_copy / "base/monitoring/servicemonitor-mlflow.yaml", "- action: replace\n          ", "- ")
    # MLOPS101: the weights fetch back on a bare `s5cmd sync`, which checks nothing that arrived.
    _replace(
        repo_copy / "base/models/vllm/deployment.yaml",
        '          image: amazon/aws-cli:2.36.7\n          command: ["/bin/sh", "-ec"]',
        "          image: peakcom/s5cmd:v2.3.0\n"
        '          command: ["/s5cmd", "sync", "$(WEIGHTS_URI)/*", "/models/weights/"]',
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo_copy))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            assert cli.main(["validate"]) == 1
    finally:
        mp.undo()
    return out.getvalue().splitlines()


def _line(file: str, resource: str, field: str, message: str, policy: str) -> str:
    return f"{file}: {resource}: {field}: {message} [{policy}: {HINTS[policy]}]"


EXPECTED = [
    pytest.param(
        _line(
            "overlays/dev/models/support-chat",
            "Deployment/support-chat-vllm",
            "spec.replicas",
            "is 2 while ScaledObject/support-chat-vllm is paused at 0: the Deployment starts pods the "
            "pause then removes",
            "MLOPS100",
        ),
        id="MLOPS100-replicas-beside-a-paused-scaledobject",
    ),
    pytest.param(
        _line(
            "overlays/prod/models/support-chat",
            "Deployment/support-chat-vllm",
            "spec.replicas",
            "set to 3 while ScaledObject/support-chat-vllm owns the count: "
            "Argo CD and KEDA overwrite each other",
            "MLOPS100",
        ),
        id="MLOPS100-replicas-beside-a-scaling-scaledobject",
    ),
    pytest.param(
        _line(
            "overlays/prod/models/support-chat",
            "Deployment/support-chat-vllm",
            "spec.template.spec.initContainers[0].args",
            "s5cmd sync exits 0 when the source holds no object: the container succeeds with nothing "
            "fetched and the server that needs it crash-loops",
            "MLOPS101",
        ),
        id="MLOPS101-weights-fetch-without-arrival-check",
    ),
    pytest.param(
        _line(
            "overlays/dev/gateway",
            "HorizontalPodAutoscaler/gateway",
            "spec.metrics[0].type",
            "scales on a Resource metric but clusters/dev installs no metrics-server: the HPA never gets "
            "a metric and stays Degraded",
            "MLOPS102",
        ),
        id="MLOPS102-hpa-without-metrics-server",
    ),
    pytest.param(
        _line(
            "apps/upstream/kube-prometheus-stack/values-prod.yaml",
            "Application/prod-addon-kube-prometheus-stack",
            "kubeScheduler.enabled",
            "not false: EKS does not expose kubeScheduler to Prometheus, so its target is missing and its "
            "Down alert fires from the first hour",
            "MLOPS103",
        ),
        id="MLOPS103-eks-scheduler-scraped",
    ),
    pytest.param(
        _line(
            "overlays/prod/workflows",
            "CronWorkflow/canary-analysis",
            'metadata.annotations["argocd.argoproj.io/sync-options"]',
            "CronWorkflow (argoproj.io) has no SkipDryRunOnMissingResource=true: its CRD comes from "
            "another Application, so the first sync fails its dry run",
            "MLOPS022",
        ),
        id="MLOPS022-workflow-kind-without-skip-dry-run",
    ),
    pytest.param(
        _line(
            "overlays/dev/karpenter",
            "NodePool/cpu",
            'metadata.annotations["argocd.argoproj.io/sync-options"]',
            "NodePool has no Delete=false: deleting or renaming its Application deletes it and "
            "everything that runs on it",
            "MLOPS104",
        ),
        id="MLOPS104-nodepool-without-delete-false",
    ),
    pytest.param(
        _line(
            "clusters/prod",
            "ApplicationSet/gateway",
            "spec.syncPolicy.preserveResourcesOnDeletion",
            "not true: deleting this ApplicationSet, or renaming an element of its generator, deletes "
            "everything its Applications deployed "
            '(or annotate mlops.platform/deletes-with-element: "<reason>")',
            "MLOPS104",
        ),
        id="MLOPS104-applicationset-deletion-cascades",
    ),
    pytest.param(
        _line(
            "clusters/dev",
            "ApplicationSet/mlflow",
            "spec.template.metadata.finalizers[0]",
            "resources-finalizer.argocd.argoproj.io on the generated Applications deletes what they deployed "
            "whenever one is deleted, whatever preserveResourcesOnDeletion says",
            "MLOPS104",
        ),
        id="MLOPS104-template-resources-finalizer",
    ),
    pytest.param(
        _line(
            "clusters/prod",
            "AppProject/platform-addons",
            "spec.syncWindows[0].manualSync",
            "deny window '0 14 * * 1-5' for 10h blocks manual syncs: a first apply or a fix started in "
            "it waits until it ends",
            "MLOPS105",
        ),
        id="MLOPS105-window-blocks-manual-sync",
    ),
    pytest.param(
        _line(
            "overlays/dev/monitoring",
            "ServiceMonitor/mlflow",
            "spec.endpoints[0].relabelings[0].action",
            "omitted in a list item; the API server stores its default 'replace', so Argo CD sees the list "
            "differ from git on every sync (OutOfSync)",
            "MLOPS106",
        ),
        id="MLOPS106-relabeling-without-action",
    ),
    pytest.param(
        _line(
            "overlays/dev/workflows",
            "PyTorchJob/{{workflow.name}}- (in WorkflowTemplate/train-and-promote "
            "spec.templates[3].resource.manifest)",
            'spec.pytorchReplicaSpecs.Master.template.metadata.labels["workflows.argoproj.io/workflow"]',
            'label "workflows.argoproj.io/workflow" on an object the workflow creates: the workflow '
            "controller treats pods carrying it as its own",
            "MLOPS107",
        ),
        id="MLOPS107-pytorchjob-pods-with-workflow-label",
    ),
]


@pytest.mark.parametrize("expected", EXPECTED)
def test_planted_first_apply_defect_is_reported(fresh_install_run: list[str], expected: str) -> None:
    policy = expected.rsplit("[", 1)[1].split(":")[0]
    shown = "\n".join(line for line in fresh_install_run if policy in line)
    assert expected in by_folder(fresh_install_run), shown


def test_the_repository_passes_the_first_apply_policies(fresh_install_run: list[str]) -> None:
    # Only the planted defects are reported: nothing else in the tree breaks these rules.
    planted = (
        "canary-analysis",
        "NodePool/cpu",
        "ApplicationSet/gateway",
        "ApplicationSet/mlflow",
        "PyTorchJob/",
        "Deployment/support-chat-vllm",
        "HorizontalPodAutoscaler/gateway",
        "kube-prometheus-stack/values-prod.yaml",
        "AppProject/platform-addons",
        "ServiceMonitor/mlflow",
    )
    stray = [line for line in fresh_install_run if "[MLOPS10" in line and not any(p in line for p in planted)]
    assert stray == []
