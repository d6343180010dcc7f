"""Delivery policies (MLOPS020-029): each defect of issue 13, planted in a copy, is one exact problem line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from mlops import cli
from mlops.validate.env_rules.delivery import repository_version
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder

REPO_VERSION = repository_version(Path(__file__).parents[2])

SERVICE_MONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "planted-no-skip"},
    "spec": {"selector": {"matchLabels": {"app": "planted"}}, "endpoints": [{"port": "http"}]},
}
# A chart Application as the ApplicationSets were before: a wave on the template, 10 retries.
CHART_APPSET = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "ApplicationSet",
    "metadata": {"name": "planted-chart", "namespace": "argocd"},
    "spec": {
        "goTemplate": True,
        "generators": [{"list": {"elements": [{"chart": "planted"}]}}],
        "template": {
            "metadata": {
                "name": "dev-addon-{{.chart}}",
                "annotations": {"argocd.argoproj.io/sync-wave": "-3"},
            },
            "spec": {
                "project": "platform-addons",
                "source": {
                    "repoURL": "https://charts.example.com",
                    "chart": "{{.chart}}",
                    "targetRevision": "1.0.0",
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "monitoring"},
                "syncPolicy": {
                    "automated": {"prune": True, "selfHeal": True},
                    "syncOptions": ["ServerSideApply=true"],
                    "retry": {"limit": 10, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}},
                },
            },
        },
    },
}


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _add_resources(folder: Path, filename: str, docs: list[dict]) -> None:
    (folder / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    kustomization.setdefault("resources", []).append(filename)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))


@pytest.fixture(scope="module")
def delivery_run(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant one defect per delivery policy in the copy and return `mlops validate`'s lines."""
    _add_resources(repo_copy / "overlays/dev/monitoring", "planted.yaml", [SERVICE_MONITOR])
    _add_resources(repo_copy / "clusters/dev", "planted.yaml", [CHART_APPSET])
    karpenter = repo_copy / "overlays/prod/karpenter"
    _replace(karpenter / "ami-release.yaml", "alias: al2023@v20260209\n---", "alias: al2023@latest\n---")
    _replace(karpenter / "gpu-disruption.yaml", "expireAfter: Never", "expireAfter: 720h")
    (karpenter / "cpu-disruption.yaml").write_text(
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: cpu\n"
        'spec:\n  disruption:\n    budgets:\n      - nodes: "1"\n'
    )
    _replace(repo_copy / "overlays/prod/mlflow/kustomization.yaml", "newTag: 0.4.0", "newTag: 3.17.2")
    _replace(
        repo_copy / "overlays/dev/gateway/kustomization.yaml",
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/mlops/gateway",
        "444455556666.dkr.ecr.us-west-2.amazonaws.com/mlops/gateway",
    )
    _replace(
        repo_copy / "terraform/modules/ecr/main.tf", 'tagPatternList = ["*.*.*"]', 'tagPatternList = ["*"]'
    )
    _replace(
        repo_copy / ".github/workflows/images.yaml",
        "/mlops-cache/${{ matrix.image }}:buildcache,mode",
        "/mlops/${{ matrix.image }}:buildcache,mode",
    )
    _replace(repo_copy / "terraform/envs/dev/terraform.tfvars", '"1.35"', '"1.33"')
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
            "clusters/dev",
            "ApplicationSet/planted-chart",
            'spec.template.metadata.annotations["argocd.argoproj.io/sync-wave"]',
            "a sync-wave on generated Applications orders nothing: "
            "the ApplicationSet creates them all at once",
            "MLOPS020",
        ),
        id="MLOPS020-wave-on-generated-applications",
    ),
    pytest.param(
        _line(
            "clusters/dev",
            "ApplicationSet/planted-chart",
            "spec.template.spec.syncPolicy.retry.limit",
            "sync retries give up (limit 10): an Application whose CRDs or namespace come later stays failed",
            "MLOPS021",
        ),
        id="MLOPS021-retries-give-up",
    ),
    pytest.param(
        _line(
            "clusters/dev",
            "ApplicationSet/planted-chart",
            "spec.template.spec.syncPolicy.syncOptions",
            'source "{{.chart}}" renders objects this repository cannot annotate, and no '
            "SkipDryRunOnMissingResource=true: a custom resource whose CRD another Application "
            "installs fails the dry run",
            "MLOPS022",
        ),
        id="MLOPS022-chart-without-skip-dry-run",
    ),
    pytest.param(
        _line(
            "overlays/dev/monitoring",
            "ServiceMonitor/planted-no-skip",
            'metadata.annotations["argocd.argoproj.io/sync-options"]',
            "ServiceMonitor (monitoring.coreos.com) has no SkipDryRunOnMissingResource=true: its CRD "
            "comes from another Application, so the first sync fails its dry run",
            "MLOPS022",
        ),
        id="MLOPS022-custom-resource-without-skip-dry-run",
    ),
    pytest.param(
        _line(
            "overlays/prod/mlflow",
            "Deployment/mlflow",
            "spec.template.spec.containers[0].image",
            'image "444455556666.dkr.ecr.us-west-2.amazonaws.com/mlops/mlflow:3.17.2": this repository has '
            f"no release 3.17.2 yet (pyproject.toml version {REPO_VERSION}), "
            "so .github/workflows/images.yaml never pushed it",
            "MLOPS023",
        ),
        id="MLOPS023-tag-never-built",
    ),
    pytest.param(
        _line(
            "overlays/dev/gateway",
            "Deployment/gateway",
            "spec.template.spec.containers[0].image",
            'image "444455556666.dkr.ecr.us-west-2.amazonaws.com/mlops/gateway:0.4.0" has registry '
            '"444455556666.dkr.ecr.us-west-2.amazonaws.com": dev pulls mlops/* from '
            "111122223333.dkr.ecr.us-west-2.amazonaws.com",
            "MLOPS023",
        ),
        id="MLOPS023-other-accounts-registry",
    ),
    pytest.param(
        _line(
            "overlays/prod/karpenter",
            "EC2NodeClass/gpu",
            "spec.amiSelectorTerms[0].alias",
            'AMI alias "al2023@latest" floats: every EKS AMI release drifts and replaces every node',
            "MLOPS024",
        ),
        id="MLOPS024-floating-ami",
    ),
    pytest.param(
        _line(
            "overlays/prod/karpenter",
            "NodePool/gpu",
            "spec.template.spec.expireAfter",
            'GPU nodes expire after "720h": expiry is forced and no budget holds it, so serving and '
            "training nodes drain in business hours",
            "MLOPS025",
        ),
        id="MLOPS025-gpu-expiry",
    ),
    pytest.param(
        _line(
            "overlays/prod/karpenter",
            "NodePool/cpu",
            "spec.disruption.budgets",
            'no scheduled budget with nodes "0": drift and consolidation may replace nodes at any hour',
            "MLOPS026",
        ),
        id="MLOPS026-cpu-pool-without-window",
    ),
    pytest.param(
        _line(
            "terraform/modules/ecr",
            "aws_ecr_lifecycle_policy.image",
            "rules[rulePriority=2]",
            "release tags (X.Y.Z) are counted with commit and cache tags by rule "
            '"Keep release images (X.Y.Z), which prod pins": builds expire the releases prod pins',
            "MLOPS027",
        ),
        id="MLOPS027-release-tags-counted-with-commits",
    ),
    pytest.param(
        _line(
            ".github/workflows/images.yaml",
            "step docker/build-push-action",
            "cache-to",
            'build cache "${{ steps.ecr.outputs.registry }}/mlops/${{ matrix.image }}:buildcache" is in '
            "aws_ecr_repository.image, whose tags are IMMUTABLE: the second build fails",
            "MLOPS028",
        ),
        id="MLOPS028-cache-in-immutable-repository",
    ),
    pytest.param(
        _line(
            "terraform/envs/dev/terraform.tfvars",
            "variable/kubernetes_version",
            "kubernetes_version",
            "EKS 1.33 left standard support on 2026-07-29",
            "MLOPS029",
        ),
        id="MLOPS029-eks-out-of-standard-support",
    ),
]


@pytest.mark.parametrize("expected", EXPECTED)
def test_planted_delivery_defect_is_reported(delivery_run: list[str], expected: str) -> None:
    assert expected in by_folder(delivery_run), "\n".join(line for line in delivery_run if "MLOPS02" in line)


def test_repository_checks_report_once_for_both_environments(delivery_run: list[str]) -> None:
    assert len([line for line in delivery_run if "[MLOPS027:" in line]) == 1
