"""MLOPS084: a pod its namespace's Pod Security admission would reject is a problem before merge.

A copy of the repository gets a privileged pod in namespace `argo` (a workflow template whose
container needs unconfined seccomp and AppArmor, SYS_ADMIN and a hostPath) and `mlops validate
dev` runs once over it; so does a destination `buildkit` in the ML training project. Each test
asserts the exact problem line a user would read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, validate_lines

WORKFLOWS = "overlays/dev/workflows"
_LEVEL = "namespace argo enforces Pod Security {level}, whose admission rejects this pod (Baseline controls)"

PRIVILEGED_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "debug-node", "namespace": "argo"},
    "spec": {
        "entrypoint": "shell",
        "templates": [
            {
                "name": "shell",
                "container": {
                    "image": "busybox:1.37.0",
                    "command": ["sh"],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"memory": "64Mi"},
                    },
                    "securityContext": {
                        "runAsNonRoot": True,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                        "seccompProfile": {"type": "Unconfined"},
                        "appArmorProfile": {"type": "Unconfined"},
                        "privileged": True,
                    },
                    "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                },
                "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            }
        ],
    },
}


def _hinted(line: str) -> str:
    return f"{line} [MLOPS084: {HINTS['MLOPS084']}]"


def _level_of(repo: Path, namespace: str) -> str:
    docs = yaml.safe_load_all((repo / "base/platform/namespaces.yaml").read_text())
    namespace_doc = next(d for d in docs if d["metadata"]["name"] == namespace)
    return str(namespace_doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"])


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant the privileged template in argo (enforcing baseline), and let ML training reach buildkit."""
    workflows = repo_copy / "base/workflows"
    (workflows / "debug-node.yaml").write_text(yaml.safe_dump(PRIVILEGED_TEMPLATE, sort_keys=False))
    kustomization = workflows / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n  - debug-node.yaml\n")
    )
    # ... a copy of the build Job that lands in argo instead of buildkit ...
    # (the base's manifest, and dev's patch, which sets the env's pull-through-cache images)
    for generated in (
        workflows / "generated/train-and-promote.yaml",
        repo_copy / "overlays/dev/workflows/generated/train-and-promote.patch.yaml",
    ):
        text = generated.read_text()
        assert text.count("namespace: buildkit\n") == 1
        generated.write_text(text.replace("namespace: buildkit\n", "namespace: argo\n"))
    project = repo_copy / "apps/projects/ml-training.yaml"
    text = project.read_text()
    assert "      namespace: mlflow\n" in text
    destination = "    - server: https://kubernetes.default.svc\n      namespace: buildkit\n"
    project.write_text(
        text.replace("      namespace: mlflow\n", "      namespace: mlflow\n" + destination, 1)
    )
    return validate_lines(repo_copy, crds_dir, "dev")


def _expected(field: str, what: str) -> str:
    return _hinted(
        f"{WORKFLOWS}: WorkflowTemplate/debug-node: spec.templates[0].{field}: {what}: "
        + _LEVEL.format(level="baseline")
    )


@pytest.mark.parametrize(
    ("field", "what"),
    [
        (
            "container.securityContext.seccompProfile.type",
            "seccomp profile Unconfined lifts the syscall filter",
        ),
        (
            "container.securityContext.appArmorProfile.type",
            "AppArmor profile Unconfined lifts the confinement",
        ),
        ("container.securityContext.privileged", "a privileged container disables most isolation"),
        ("container.securityContext.capabilities.add[0]", "adds capability SYS_ADMIN"),
        ("volumes[0].hostPath", "volume host is a hostPath"),
    ],
)
def test_a_privileged_pod_in_a_baseline_namespace_is_refused(lines: list[str], field: str, what: str) -> None:
    assert _expected(field, what) in by_folder(lines)


def test_a_resource_step_creating_the_build_job_in_argo_is_refused(lines: list[str], repo_root: Path) -> None:
    workflow = yaml.safe_load((repo_root / "base/workflows/generated/train-and-promote.yaml").read_text())
    index = next(i for i, t in enumerate(workflow["spec"]["templates"]) if t["name"] == "image-build")
    job = (
        f"Job/image-build- (in WorkflowTemplate/train-and-promote spec.templates[{index}].resource.manifest)"
    )
    field = "spec.template.spec.containers[0].securityContext.seccompProfile.type"
    line = (
        f"{WORKFLOWS}: {job}: {field}: seccomp profile Unconfined lifts the syscall filter: "
        + _LEVEL.format(level="baseline")
    )
    assert _hinted(line) in by_folder(lines)
    # Only the planted objects break a control: everything else the repository renders fits.
    flagged = {line.split(": ")[1] for line in lines if "[MLOPS084:" in line}
    assert flagged == {"WorkflowTemplate/debug-node", job}


def test_the_build_namespace_is_reached_by_platform_projects_only(lines: list[str]) -> None:
    line = (
        "clusters/dev: AppProject/ml-training: spec.destinations[1].namespace: reaches namespace "
        "buildkit, which enforces Pod Security privileged: only platform projects "
        "(platform, platform-*) may deploy there"
    )
    assert f"{line} [MLOPS083: {HINTS['MLOPS083']}]" in by_folder(lines)


def test_argo_enforces_baseline_and_only_buildkit_is_privileged(repo_root: Path) -> None:
    assert _level_of(repo_root, "argo") == "baseline"
    assert _level_of(repo_root, "buildkit") == "privileged"
