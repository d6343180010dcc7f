"""`mlops validate` passes on the repository and each of its checks bites on a planted problem."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops import cli
from mlops.rendering.render import CLUSTER_COMPONENT, render_env
from mlops.validate.objects.appsets import cluster_params
from mlops.validate.objects.embedded import parse_manifest
from mlops.validate.objects.violations import HINTS

PLANT_OVERLAY = "overlays/dev/mlflow"  # where the planted resources go
PLANTED = f"{PLANT_OVERLAY}/planted.yaml:@LINE"  # their file; @LINE: the field's line in it
BROKEN_OVERLAY = "overlays/prod/mlflow"  # whose base path gets a typo

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "planted"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "planted"}},
        "template": {
            "metadata": {"labels": {"app": "planted"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True},
                "containers": [
                    {
                        "name": "api",
                        "image": "registry.example/planted:v1.0.0",
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"memory": "64Mi"},
                        },
                        "securityContext": {
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    },
}
NODEPOOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "planted"},
    "spec": {
        "limits": {"cpu": "10"},
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
            }
        },
    },
}
PROD_APPLICATION: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "planted-no-selfheal", "namespace": "argocd"},
    "spec": {
        "project": "platform",
        "source": {"repoURL": "https://charts.example.com", "chart": "planted", "targetRevision": "1.0.0"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "mlflow"},
        "syncPolicy": {"automated": {"prune": True}},
    },
}


# Points at an overlay folder that does not exist (a list generator names it).
GHOST_APPSET: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "ApplicationSet",
    "metadata": {"name": "planted-ghost", "namespace": "argocd"},
    "spec": {
        "goTemplate": True,
        "generators": [{"list": {"elements": [{"component": "ghost"}]}}],
        "template": {
            "metadata": {"name": "dev-{{.component}}"},
            "spec": {
                "project": "platform",
                "source": {
                    "repoURL": "(this repository, set by the fixture)",
                    "targetRevision": "main",
                    "path": "overlays/dev/{{.component}}",
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "mlflow"},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
        },
    },
}


def _variant(base: dict[str, Any], name: str) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc["metadata"]["name"] = name
    return doc


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _add_resources(repo: Path, folder: str, filename: str, docs: list[dict[str, Any]]) -> None:
    """Write `docs` into `folder/filename` and list the file in the folder's kustomization."""
    (repo / folder / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kustomization_file = repo / folder / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    kustomization.setdefault("resources", []).append(filename)
    kustomization_file.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def _first_appset(repo: Path) -> tuple[Path, dict[str, Any]]:
    for file in sorted((repo / "apps").rglob("*.yaml")):
        docs = list(yaml.safe_load_all(file.read_text()))
        if docs and isinstance(docs[0], dict) and docs[0].get("kind") == "ApplicationSet":
            return file, docs[0]
    raise AssertionError("apps/ has no ApplicationSet")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = cli.main(["validate", *argv])
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture(scope="module")
def planted(repo_copy: Path, crds_dir: Path) -> dict[str, Any]:
    """Plant one problem per check in the copy; return what the tests need to name the lines."""
    # Where the first ApplicationSet renders (the cluster root that includes apps/).
    appset_file, appset = _first_appset(repo_copy)
    appset_render = next(
        r.path
        for r in render_env(repo_copy, "dev", component=CLUSTER_COMPONENT)
        for d in r.documents
        if d.get("kind") == "ApplicationSet" and d["metadata"]["name"] == appset["metadata"]["name"]
    )
    typo = _variant(DEPLOYMENT, "planted-typo")
    _pod(typo)["terminationGracePeriodSecond"] = 30
    no_limit = _variant(DEPLOYMENT, "planted-no-limit")
    del _pod(no_limit)["containers"][0]["resources"]["limits"]
    latest = _variant(DEPLOYMENT, "planted-latest")
    _pod(latest)["containers"][0]["image"] = "registry.example/planted:latest"
    pool_typo = _variant(NODEPOOL, "planted-typo")
    pool_typo["spec"]["template"]["spec"]["expireAftr"] = "720h"
    pool_cel = _variant(NODEPOOL, "planted-cel")
    pool_cel["spec"]["template"]["spec"]["requirements"][0]["values"] = []
    pool_unbounded = _variant(NODEPOOL, "planted-unbounded")
    del pool_unbounded["spec"]["limits"]
    unknown = {"apiVersion": "mlops.platform/v1", "kind": "ModelServer", "metadata": {"name": "planted"}}
    insecure = _variant(DEPLOYMENT, "planted-insecure")
    del _pod(insecure)["securityContext"], _pod(insecure)["containers"][0]["securityContext"]
    exempt = _variant(insecure, "planted-exempt")
    exempt["spec"]["template"]["metadata"]["annotations"] = {
        f"policy.mlops.platform/exempt-{policy}": "planted: the vendor image needs it"
        for policy in ("MLOPS004", "MLOPS005", "MLOPS006")
    }
    gpu = _variant(DEPLOYMENT, "planted-gpu")
    _pod(gpu)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = 1
    plants = [typo, no_limit, latest, pool_typo, pool_cel, pool_unbounded, unknown, insecure, exempt, gpu]
    _add_resources(repo_copy, PLANT_OVERLAY, "planted.yaml", plants)
    unpinned = _variant(DEPLOYMENT, "planted-unpinned")
    _pod(unpinned)["containers"][0]["image"] = "registry.example/planted:1.2"
    _add_resources(repo_copy, "clusters/prod", "planted.yaml", [PROD_APPLICATION, unpinned])
    ghost = copy.deepcopy(GHOST_APPSET)
    annotations = cluster_params(repo_copy, "dev")["metadata"]["annotations"]
    ghost["spec"]["template"]["spec"]["source"]["repoURL"] = annotations["platform_repo_url"]
    _add_resources(repo_copy, "clusters/dev", "planted.yaml", [ghost])

    # A typo inside the PyTorchJob that the training WorkflowTemplate creates (a YAML string).
    template_file = repo_copy / "base/workflows/generated/train-and-promote.yaml"
    workflow = yaml.safe_load(template_file.read_text())
    index, step = next((i, t) for i, t in enumerate(workflow["spec"]["templates"]) if t["name"] == "train")
    job = parse_manifest(step["resource"]["manifest"])[0]
    job["spec"]["runPolicy"]["backoffLimitt"] = 0
    step["resource"]["manifest"] = yaml.safe_dump(job, sort_keys=False)
    template_file.write_text(yaml.safe_dump(workflow, sort_keys=False))
    embedded = (
        f"PyTorchJob/{job['metadata'].get('name') or job['metadata']['generateName']} "
        f"(in WorkflowTemplate/{workflow['metadata']['name']} spec.templates[{index}].resource.manifest)"
    )

    appset["spec"]["template"]["spec"]["revisionHistoryLimt"] = 10
    appset_file.write_text(yaml.safe_dump(appset, sort_keys=False))

    kustomization = repo_copy / BROKEN_OVERLAY / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("base/mlflow", "base/mlfow"))

    # A leaf below an overlay folder: no ApplicationSet glob reaches two levels down.
    orphan = repo_copy / "overlays/dev/extras/orphan"
    orphan.mkdir(parents=True)
    (orphan / "kustomization.yaml").write_text("resources: [configmap.yaml]\n")
    (orphan / "configmap.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: orphan}\n")
    # Canary plans (MLOPS030-032) and a dev canary routed at a weight that is no step (MLOPS033).
    (repo_copy / "overlays/prod/models/support-chat/canary-plan.yaml").write_text(
        "steps: [50, 25]\nminRequests: 10\nminDuration: 10m\nmaxWait: 1h\n"
        "thresholds: {errorRate: {maxIncrease: 0.01}}\n"
    )
    routes_file = repo_copy / "overlays/dev/gateway/routes.yaml"
    routes = yaml.safe_load(routes_file.read_text())
    backends = routes["models"]["support-chat"]["backends"]
    backends["stable"]["weight"] = 70
    backends["canary"] = {"url": "http://support-chat-canary-vllm.models.svc:8000", "weight": 30}
    routes_file.write_text(yaml.safe_dump(routes))
    return {
        "appset": appset["metadata"]["name"],
        "appset_render": appset_render,
        "appset_file": str(appset_file.relative_to(repo_copy)),
        "crds": crds_dir,
        "embedded": embedded,
    }


@pytest.fixture(scope="module")
def planted_run(planted: dict[str, Any], repo_copy: Path, crds_dir: Path) -> tuple[int, list[str]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo_copy))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["validate"])
    finally:
        mp.undo()
    return code, out.getvalue().splitlines()


def test_repository_passes(
    repo_root: Path, crds_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_REPO", str(repo_root))
    code, lines = _run(capsys, "--crds", str(crds_dir))
    assert code == 0, "\n".join(lines)
    assert lines[-1].startswith("0 problems in ")
    assert " across dev, prod (rendered " in lines[-1]


def test_planted_problems_fail_the_run(planted_run: tuple[int, list[str]]) -> None:
    code, lines = planted_run
    assert code == 1
    assert lines[-1].split(" problems in ")[0].isdigit()
    assert int(lines[-1].split(" ")[0]) >= 18


def _matching(expected: str, lines: list[str], *, start: bool = False) -> list[str]:
    """The lines that are (with `start`: start with) `expected`, a line number where it says @LINE."""
    pattern = re.compile(re.escape(expected).replace(re.escape("@LINE"), r"\d+"))
    return [line for line in lines if (pattern.match if start else pattern.fullmatch)(line)]


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(
            f'{PLANTED}: NodePool/planted-typo: spec.template.spec.expireAftr: unknown field "expireAftr"',
            id="nodepool-typo",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-typo: spec.template.spec.terminationGracePeriodSecond: "
            'unknown field "terminationGracePeriodSecond"',
            id="deployment-typo",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-no-limit: spec.template.spec.containers[0].resources: "
            f"container has no limits.memory [MLOPS001: {HINTS['MLOPS001']}]",
            id="missing-limit",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-latest: spec.template.spec.containers[0].image: "
            f'image "registry.example/planted:latest" uses :latest [MLOPS002: {HINTS["MLOPS002"]}]',
            id="latest-image",
        ),
        pytest.param(
            f"{PLANTED}: NodePool/planted-cel: spec.template.spec.requirements: "
            "requirements with operator 'In' must have a value defined "
            "(CEL rule `self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)`)",
            id="nodepool-cel-rule",
        ),
        pytest.param(
            f"{PLANTED}: NodePool/planted-unbounded: spec.limits: NodePool has no limits "
            f"[MLOPS008: {HINTS['MLOPS008']}]",
            id="nodepool-without-limits",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-insecure: spec.template.spec.containers[0].securityContext"
            f".runAsNonRoot: container may run as root [MLOPS004: {HINTS['MLOPS004']}]",
            id="root",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-insecure: spec.template.spec.containers[0].securityContext"
            f".readOnlyRootFilesystem: root filesystem is writable [MLOPS005: {HINTS['MLOPS005']}]",
            id="writable-root",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-insecure: spec.template.spec.containers[0].securityContext"
            f".capabilities.drop: capabilities are not dropped (ALL) [MLOPS006: {HINTS['MLOPS006']}]",
            id="capabilities",
        ),
        pytest.param(
            f"{PLANTED}: Deployment/planted-gpu: spec.template.spec.tolerations: pod requests "
            "nvidia.com/gpu but does not tolerate the nvidia.com/gpu NoSchedule taint "
            f"[MLOPS007: {HINTS['MLOPS007']}]",
            id="gpu-without-toleration",
        ),
        pytest.param(
            "clusters/prod/planted.yaml:@LINE: Deployment/planted-unpinned: "
            "spec.template.spec.containers[0].image: "
            'prod image "registry.example/planted:1.2" is not pinned (tag "1.2" may move) '
            f"[MLOPS003: {HINTS['MLOPS003']}]",
            id="prod-image-not-pinned",
        ),
        pytest.param(
            "clusters/prod/planted.yaml:@LINE: Application/planted-no-selfheal: "
            "spec.syncPolicy.automated.selfHeal: "
            f"automated sync without selfHeal [MLOPS009: {HINTS['MLOPS009']}]",
            id="prod-application-without-selfheal",
        ),
    ],
)
def test_planted_problem_is_reported(planted_run: tuple[int, list[str]], expected: str) -> None:
    # Each names the file the object came from (the planted resource file), with the field's line.
    _, lines = planted_run
    assert _matching(expected, lines), "\n".join(lines)


@pytest.mark.parametrize(
    "expected",
    [
        "overlays/prod/models/support-chat/canary-plan.yaml:@LINE: CanaryPlan: maxWait: unknown field; "
        "allowed: confidence, maxDuration, minDuration, minRequests, steps, thresholds [MLOPS030: ",
        "overlays/prod/models/support-chat/canary-plan.yaml:@LINE: CanaryPlan: steps: [50, 25] must increase "
        "strictly, stay within 1..100 and end with 100 [MLOPS031: ",
        "overlays/prod/models/support-chat/canary-plan.yaml:@LINE: CanaryPlan: minRequests: 10 is too few to "
        "judge a step: use at least 20 [MLOPS032: ",
        "overlays/dev/gateway/routes.yaml:@LINE: Routes: models.support-chat.backends.canary.weight: canary "
        "weight 30 is not a step of overlays/dev/models/support-chat/canary-plan.yaml ([10, 25, 50, 100]) "
        "[MLOPS033: ",
    ],
    ids=["unknown-field", "steps", "too-few-requests", "weight-not-a-step"],
)
def test_planted_canary_plan_problem_is_reported(planted_run: tuple[int, list[str]], expected: str) -> None:
    # The plan's (or the routes') file and the line of the field.
    _, lines = planted_run
    assert _matching(expected, lines, start=True), "\n".join(lines)


def test_exemption_annotation_waives_the_policy(planted_run: tuple[int, list[str]]) -> None:
    _, lines = planted_run
    assert [line for line in lines if "Deployment/planted-insecure:" in line]
    assert not [line for line in lines if "Deployment/planted-exempt:" in line]


def test_embedded_pytorchjob_is_validated(
    planted_run: tuple[int, list[str]], planted: dict[str, Any]
) -> None:
    # The manifest is a string inside the generated WorkflowTemplate: its file, on the line of that string.
    _, lines = planted_run
    expected = (
        "base/workflows/generated/train-and-promote.yaml:@LINE (overlays/dev/workflows): "
        f"{planted['embedded']}: spec.runPolicy.backoffLimitt: "
        'unknown field "backoffLimitt"'
    )
    assert _matching(expected, lines), "\n".join(lines)


def test_unknown_kind_is_an_error(planted_run: tuple[int, list[str]], planted: dict[str, Any]) -> None:
    _, lines = planted_run
    expected = (
        f"{PLANTED}: ModelServer/planted: (document): no schema for mlops.platform/v1 ModelServer: "
        f"no CRD in {planted['crds']} defines kind ModelServer in group mlops.platform: "
        "fix the kind or add the upstream CRD to the --crds directory"
    )
    assert _matching(expected, lines), "\n".join(lines)


def test_applicationset_typo(planted_run: tuple[int, list[str]], planted: dict[str, Any]) -> None:
    # The ApplicationSet's own file under apps/, with the cluster root that renders it.
    _, lines = planted_run
    expected = (
        f"{planted['appset_file']}:@LINE ({planted['appset_render']}): ApplicationSet/{planted['appset']}: "
        'spec.template.spec.revisionHistoryLimt: unknown field "revisionHistoryLimt"'
    )
    assert _matching(expected, lines), "\n".join(lines)


def test_broken_overlay_path(planted_run: tuple[int, list[str]]) -> None:
    _, lines = planted_run
    broken = [line for line in lines if line.startswith(f"{BROKEN_OVERLAY}/")]
    assert len(broken) == 1, lines
    text = (Path(__file__).resolve().parents[2] / BROKEN_OVERLAY / "kustomization.yaml").read_text()
    line = next(n for n, line in enumerate(text.splitlines(), 1) if "base/mlflow" in line)
    assert broken[0].startswith(
        f"{BROKEN_OVERLAY}/kustomization.yaml:{line}: Kustomization/mlflow: (build): kustomize build failed: "
    )
    assert "base/mlfow" in broken[0]
    # Said once: no ApplicationSet line that the Application of that overlay "does not build".
    assert not [line for line in lines if BROKEN_OVERLAY in line and "MLOPS010" in line], lines


def test_applicationset_path_that_does_not_exist(planted_run: tuple[int, list[str]]) -> None:
    _, lines = planted_run
    expected = (
        "clusters/dev/planted.yaml:@LINE: ApplicationSet/planted-ghost: spec.template.spec.source.path: "
        f'generated Application "dev-ghost" points at overlays/dev/ghost: no such folder '
        f"[MLOPS010: {HINTS['MLOPS010']}]"
    )
    assert _matching(expected, lines), "\n".join(lines)


def test_overlay_not_reached(planted_run: tuple[int, list[str]]) -> None:
    _, lines = planted_run
    assert (
        "overlays/dev/extras/orphan: Kustomization/extras/orphan: path: overlay is not reached by any "
        f"ApplicationSet of clusters/dev [MLOPS011: {HINTS['MLOPS011']}]"
    ) in lines


def test_missing_crd_directory_is_a_clear_error(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_REPO", str(repo_root))
    code = cli.main(["validate", "dev", "--crds", str(tmp_path / "nope")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: CRD directory {tmp_path / 'nope'} does not exist: pass --crds DIR" in err
