"""References, ownership, model folders, serving (MLOPS060-075): each bites on a defect planted in a copy.

One copy gets every defect at once and `mlops validate` runs once over it; each test then
asserts the exact problem line a user would read. The defects are the everyday edits the
issue names: a model folder copied without editing, a route to a Service that is gone, dev
serving from prod's bucket, a tensor-parallel size the GPUs do not match.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest
from mlops import cli
from mlops.validate.env_rules import ownership, references
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant

DEV_MODEL = "overlays/dev/models/support-chat"
PROD_MODEL = "overlays/prod/models/support-chat"
PROD_CANARY = "overlays/prod/models/support-chat-canary"
FAQ = "overlays/dev/models/faq-bot"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant one defect per rule, run `mlops validate` over both environments, return its lines."""
    repo = repo_copy
    # MLOPS060: a key the ExternalSecret does not write; a ConfigMap nobody renders.
    plant(
        repo,
        "base/mlflow/deployment.yaml",
        "name: mlflow-db\n                  key: uri",
        "name: mlflow-db\n                  key: url",
    )
    plant(repo, "base/mlflow/deployment.yaml", "name: mlflow-config", "name: mlflow-settings")
    # MLOPS061: the gateway mounts its API keys from a Secret with a typo.
    plant(repo, "base/gateway/deployment.yaml", "secretName: gateway-api-keys", "secretName: gateway-api-key")
    # MLOPS062: a ServiceAccount that is not rendered.
    plant(
        repo, "base/mlflow/deployment.yaml", "serviceAccountName: mlflow", "serviceAccountName: mlflow-server"
    )
    # MLOPS063: a store name with a typo.
    plant(repo, "base/mlflow/externalsecret.yaml", "name: aws-secrets-manager", "name: aws-secret-manager")
    # MLOPS064: the HPA scales a Deployment that is not there.
    plant(repo, "base/gateway/horizontalpodautoscaler.yaml", "    name: gateway\n", "    name: gateway-api\n")
    # MLOPS065: the GPU NodePool names an EC2NodeClass that is not rendered.
    plant(
        repo,
        "base/karpenter/nodepool-gpu.yaml",
        "kind: EC2NodeClass\n        name: gpu",
        "kind: EC2NodeClass\n        name: gpu-nodes",
    )
    # MLOPS066, MLOPS067: selectors that select nothing.
    plant(
        repo,
        "base/mlflow/service.yaml",
        "  selector:\n    app.kubernetes.io/name: mlflow",
        "  selector:\n    app.kubernetes.io/name: ml-flow",
    )
    plant(
        repo,
        "base/mlflow/poddisruptionbudget.yaml",
        "app.kubernetes.io/name: mlflow",
        "app.kubernetes.io/name: mlfow",
    )
    plant(
        repo,
        "base/monitoring/podmonitor-vllm.yaml",
        "app.kubernetes.io/name: vllm",
        "app.kubernetes.io/name: vlm",
    )
    # MLOPS068: prod routes to a model whose Service is gone, a wrong port, a canary at the stable Service.
    (repo / "overlays/prod/gateway/routes.yaml").write_text(
        "models:\n"
        "  support-chat:\n"
        "    backends:\n"
        "      stable: {url: 'http://support-chat-vllm.models.svc.cluster.local:8080', weight: 90}\n"
        "      canary: {url: 'http://support-chat-vllm.models.svc.cluster.local:8000', weight: 10}\n"
        "  old-bot:\n"
        "    backends:\n"
        "      stable: {url: 'http://old-bot-vllm.models.svc.cluster.local:8000', weight: 100}\n"
    )
    # MLOPS069: a declared object without a reason.
    declared = repo / "clusters/external-objects.yaml"
    declared.write_text(
        declared.read_text()
        + "  - kind: Secret\n    namespace: argo\n    name: argo-postgres\n    madeBy: terraform\n"
    )
    # MLOPS132: dev's headless Service lists pods that are not ready (starting or terminating);
    # before the copy below, which renders the same Service name (MLOPS070).
    plant(
        repo,
        f"{DEV_MODEL}/kustomization.yaml",
        "patches:\n",
        "patches:\n  - target: {kind: Service, name: vllm-headless}\n"
        '    patch: \'[{"op": "replace", "path": "/spec/publishNotReadyAddresses", "value": true}]\'\n',
    )
    # MLOPS070, MLOPS071: the issue's example, support-chat copied to faq-bot without editing.
    shutil.copytree(repo / DEV_MODEL, repo / FAQ)
    # MLOPS072: the serving project no longer lists KEDA's ScaledObject.
    plant(repo, "apps/projects/ml-serving.yaml", "    - group: keda.sh\n      kind: ScaledObject\n", "")
    # MLOPS073: dev serves from prod's bucket, with a run id that is not one; prod's version is not a number.
    plant(
        repo,
        f"{DEV_MODEL}/model-version.yaml",
        "s3://mlops-dev-mlflow-artifacts/",
        "s3://mlops-prod-mlflow-artifacts/",
    )
    plant(repo, f"{DEV_MODEL}/model-version.yaml", '  version: "1"', '  version: "1"\n  mlflowRun: run-7')
    # MLOPS073: the copied faq-bot folder keeps the example's placeholders from docs/adding-a-model.md.
    plant(
        repo,
        f"{FAQ}/model-version.yaml",
        "s3://mlops-dev-mlflow-artifacts/1/0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f/artifacts/model",
        "s3://mlops-dev-mlflow-artifacts/<experiment>/<run>/artifacts/model",
    )
    plant(repo, f"{FAQ}/model-version.yaml", '  version: "1"', '  version: "1"\n  mlflowRun: "<run>"')
    # MLOPS074: two tensor-parallel ranks on one GPU.
    plant(
        repo,
        f"{DEV_MODEL}/serving-args.yaml",
        'SERVE_TENSOR_PARALLEL_SIZE\n              value: "1"',
        'SERVE_TENSOR_PARALLEL_SIZE\n              value: "2"',
    )
    # MLOPS075: a prod canary without the canary component, serving a longer context.
    shutil.copytree(repo / PROD_MODEL, repo / PROD_CANARY)
    (repo / PROD_CANARY / "canary-plan.yaml").unlink()
    plant(
        repo,
        f"{PROD_CANARY}/kustomization.yaml",
        "namePrefix: support-chat-",
        "namePrefix: support-chat-canary-",
    )
    plant(
        repo,
        f"{PROD_CANARY}/serving-args.yaml",
        'SERVE_MAX_MODEL_LEN\n              value: "',
        'SERVE_MAX_MODEL_LEN\n              value: "1',
    )
    plant(repo, f"{PROD_MODEL}/model-version.yaml", 'version: "1"', 'version: "abc"')
    # MLOPS131: a routing policy the gateway does not know.
    plant(repo, "overlays/dev/gateway/routes.yaml", "policy: prefix-affinity", "policy: round-robin")

    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["validate"])
    finally:
        mp.undo()
    assert code == 1
    return out.getvalue().splitlines()


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


def test_env_from_a_missing_key_and_a_missing_configmap(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: Deployment/mlflow: "
        "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef: Secret 'mlflow-db' "
        "(overlays/dev/mlflow: ExternalSecret/mlflow-db) has no key 'url' (keys: uri)",
        "MLOPS060",
    ) in by_folder(lines)
    assert _hinted(
        "overlays/dev/mlflow: Deployment/mlflow: "
        "spec.template.spec.containers[0].envFrom[0].configMapRef: ConfigMap 'mlflow-settings' "
        "is not rendered in namespace 'mlflow' of this environment "
        "(nor declared in external-objects.yaml)",
        "MLOPS060",
    ) in by_folder(lines)


def test_volume_from_a_missing_secret(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/gateway: Deployment/gateway: spec.template.spec.volumes[1].secret: Secret "
        "'gateway-api-key' is not rendered in namespace 'gateway' of this environment "
        "(nor declared in external-objects.yaml)",
        "MLOPS061",
    ) in by_folder(lines)


def test_missing_service_account(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: Deployment/mlflow: spec.template.spec.serviceAccountName: ServiceAccount "
        "'mlflow-server' is not rendered in namespace 'mlflow' of this environment "
        "(nor declared in external-objects.yaml)",
        "MLOPS062",
    ) in by_folder(lines)


def test_missing_secret_store(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: ExternalSecret/mlflow-db: spec.secretStoreRef: ClusterSecretStore "
        "'aws-secret-manager-mlflow' is not rendered in this environment",
        "MLOPS063",
    ) in by_folder(lines)


def test_scale_target_that_is_not_rendered(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/gateway: HorizontalPodAutoscaler/gateway: spec.scaleTargetRef: Deployment "
        "'gateway-api' is not rendered in namespace 'gateway' of this environment",
        "MLOPS064",
    ) in by_folder(lines)


def test_node_class_that_is_not_rendered(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/karpenter: NodePool/gpu: spec.template.spec.nodeClassRef: EC2NodeClass 'gpu-nodes' "
        "is not rendered in this environment",
        "MLOPS065",
    ) in by_folder(lines)


def test_service_selecting_no_pods(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: Service/mlflow: spec.selector: selects no pod template in namespace "
        "'mlflow' (app.kubernetes.io/name=ml-flow): the Service has no endpoints",
        "MLOPS066",
    ) in by_folder(lines)


def test_budget_and_monitor_selecting_nothing(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: PodDisruptionBudget/mlflow: spec.selector: selects no pod template in "
        "namespace 'mlflow' (app.kubernetes.io/name=mlfow): the budget protects nothing",
        "MLOPS067",
    ) in by_folder(lines)
    assert _hinted(
        "overlays/dev/monitoring: PodMonitor/vllm: spec.selector: selects no pod template in namespace "
        "models (app.kubernetes.io/name=vlm): nothing is scraped",
        "MLOPS067",
    ) in by_folder(lines)


def test_routes_to_a_missing_service_a_wrong_port_and_a_stable_canary(lines: list[str]) -> None:
    prefix = "overlays/prod/gateway: ConfigMap/gateway-routes: data[routes.yaml].models"
    assert _hinted(
        f"{prefix}.old-bot.backends.stable.url: http://old-bot-vllm.models.svc.cluster.local:8000: "
        "Service 'old-bot-vllm' is not rendered in namespace 'models' of this environment",
        "MLOPS068",
    ) in by_folder(lines)
    assert _hinted(
        f"{prefix}.support-chat.backends.stable.url: "
        "http://support-chat-vllm.models.svc.cluster.local:8080: Service 'support-chat-vllm' "
        "(overlays/prod/models/support-chat) has no port 8080 (ports: [8000])",
        "MLOPS068",
    ) in by_folder(lines)
    assert _hinted(
        f"{prefix}.support-chat.backends.canary.url: "
        "http://support-chat-vllm.models.svc.cluster.local:8000: the canary backend routes to Service "
        "'support-chat-vllm', which is the stable deployment (overlays/prod/models/support-chat); "
        "point it at <model>-canary-vllm, the canary folder's Service",
        "MLOPS068",
    ) in by_folder(lines)


def test_routing_the_gateway_refuses_and_a_headless_service_listing_unready_pods(lines: list[str]) -> None:
    prefix = "overlays/dev/gateway: ConfigMap/gateway-routes: data[routes.yaml].models.support-chat"
    assert _hinted(
        f"{prefix}.routing.policy: must be one of ['least-outstanding', 'prefix-affinity'], "
        "got 'round-robin'",
        "MLOPS131",
    ) in by_folder(lines)
    assert _hinted(
        f"{prefix}.backends.stable.url: http://support-chat-vllm.models.svc.cluster.local:8000: "
        # (the faq-bot copy renders the same Service, planted with it, and is found first)
        "Service 'support-chat-vllm-headless' (overlays/dev/models/faq-bot) publishes not-ready "
        "addresses: pods that start or terminate would get requests",
        "MLOPS132",
    ) in by_folder(lines)


def test_declared_object_without_a_reason(lines: list[str]) -> None:
    assert _hinted(
        "clusters/external-objects.yaml: ExternalObjects: objects[3].reason: "
        "missing: say why it is relied on",
        "MLOPS069",
    ) in by_folder(lines)


def test_folder_copied_without_editing(lines: list[str]) -> None:
    assert _hinted(
        f"{FAQ}: Deployment/support-chat-vllm: metadata.name: "
        "Deployment models/support-chat-vllm is also rendered by"
        ' Application "dev-model-support-chat" (overlays/dev/models/support-chat); '
        'Application "dev-model-faq-bot" would fight it over the object (each sync and prune undoes '
        "the other's)",
        "MLOPS070",
    ) in by_folder(lines)
    assert _hinted(
        f"{DEV_MODEL}: Deployment/support-chat-vllm: metadata.name: "
        "Deployment models/support-chat-vllm is also rendered by"
        ' Application "dev-model-faq-bot" (overlays/dev/models/faq-bot); '
        'Application "dev-model-support-chat" would fight it over the object (each sync and prune undoes '
        "the other's)",
        "MLOPS070",
    ) in by_folder(lines)
    assert _hinted(
        f"{FAQ}/kustomization.yaml: Kustomization/models/faq-bot: namePrefix: namePrefix is "
        "'support-chat-', not 'faq-bot-': the folder name names the deployment's objects (faq-bot-vllm); "
        "with another prefix it renders another folder's objects",
        "MLOPS071",
    ) in by_folder(lines)
    assert _hinted(
        f"{FAQ}/model-version.yaml: ConfigMap/model-version: data.model: "
        "data.model is 'support-chat' but folder 'faq-bot' is a deployment of model 'faq-bot': "
        "set data.model to 'faq-bot' "
        "(a folder is <model>/ or <model>-canary/)",
        "MLOPS071",
    ) in by_folder(lines)


def test_kind_the_project_does_not_permit(lines: list[str]) -> None:
    assert _hinted(
        f"{DEV_MODEL}: ScaledObject/support-chat-vllm: kind: AppProject ml-serving does not permit "
        "ScaledObject (group 'keda.sh') for Application \"dev-model-support-chat\": its "
        "namespaceResourceWhitelist/Blacklist leave it out, and Argo CD refuses to sync it",
        "MLOPS072",
    ) in by_folder(lines)


def test_version_file_fields(lines: list[str]) -> None:
    assert _hinted(
        f"{DEV_MODEL}/model-version.yaml: ConfigMap/model-version: data.weightsUri: "
        "'s3://mlops-prod-mlflow-artifacts/1/0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f/artifacts/model' "
        "is in bucket 'mlops-prod-mlflow-artifacts', not this environment's artifact bucket "
        "'mlops-dev-mlflow-artifacts' "
        "(terraform modules/data): the environment's vLLM role reads its own bucket only",
        "MLOPS073",
    ) in by_folder(lines)
    assert _hinted(
        f"{DEV_MODEL}/model-version.yaml: ConfigMap/model-version: data.mlflowRun: 'run-7' is not an "
        "MLflow run id (32 lowercase hex characters)",
        "MLOPS073",
    ) in by_folder(lines)
    assert _hinted(
        f"{PROD_MODEL}/model-version.yaml: ConfigMap/model-version: data.version: "
        "data.version 'abc' is not a registered model version: MLflow numbers versions 1, 2, 3, ...",
        "MLOPS073",
    ) in by_folder(lines)


def test_version_file_placeholders(lines: list[str]) -> None:
    assert _hinted(
        f"{FAQ}/model-version.yaml: ConfigMap/model-version: data.weightsUri: "
        "'s3://mlops-dev-mlflow-artifacts/<experiment>/<run>/artifacts/model' still holds the "
        "placeholder '<experiment>' (copied from an example): `mlops promote` writes the real "
        "weightsUri; until the first promote, keep the folder in bootstrap mode",
        "MLOPS073",
    ) in by_folder(lines)
    assert _hinted(
        f"{FAQ}/model-version.yaml: ConfigMap/model-version: data.mlflowRun: '<run>' still holds the "
        "placeholder '<run>' (copied from an example): `mlops promote` writes the real mlflowRun; until "
        "the first promote, keep the folder in bootstrap mode",
        "MLOPS073",
    ) in by_folder(lines)


def test_tensor_parallel_size_beyond_the_gpus(lines: list[str]) -> None:
    assert _hinted(
        f"{DEV_MODEL}: Deployment/support-chat-vllm: "
        'spec.template.spec.containers[vllm].resources.requests["nvidia.com/gpu"]: vLLM runs 2 GPU '
        "worker(s) (--tensor-parallel-size x --pipeline-parallel-size = 2) but the container requests "
        "nvidia.com/gpu: 1",
        "MLOPS074",
    ) in by_folder(lines)


def test_canary_out_of_step_with_its_stable_deployment(lines: list[str]) -> None:
    resource = "Deployment/support-chat-canary-vllm"
    assert _hinted(
        f"{PROD_CANARY}: {resource}: spec.template.metadata.labels[mlops.platform/track]: the canary "
        "folder's pods are labelled mlops.platform/track: 'stable', so the stable Service and PDB select "
        "them too: add the component ../../../../base/models/components/canary",
        "MLOPS075",
    ) in by_folder(lines)
    assert _hinted(
        f"{PROD_CANARY}: {resource}: spec.template.spec.containers[vllm]: "
        "serves with other flags or GPUs than its stable deployment support-chat "
        "(canary has ['--max-model-len=116384'], stable has "
        "['--max-model-len=16384']): copy serving-args.yaml, resources.yaml and the components from the "
        "stable folder",
        "MLOPS075",
    ) in by_folder(lines)


def test_project_rules_as_argo_cd_evaluates_them() -> None:
    """IsGroupKindNamePermitted and isDestinationMatched, on the cases argo-cd's own tests use."""
    assert ownership.is_group_kind_permitted({}, "apps", "Deployment", "", namespaced=True)
    assert not ownership.is_group_kind_permitted(
        {"namespaceResourceWhitelist": []}, "apps", "Deployment", "", namespaced=True
    )
    assert not ownership.is_group_kind_permitted({}, "", "Namespace", "models", namespaced=False)
    assert ownership.is_group_kind_permitted(
        {"clusterResourceWhitelist": [{"group": "*", "kind": "Namespace"}]},
        "",
        "Namespace",
        "x",
        namespaced=False,
    )
    assert not ownership.is_group_kind_permitted(
        {"namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}, "", "Secret", "", namespaced=True
    )
    spec = {"destinations": [{"server": "*", "namespace": "!kube-system"}, {"server": "*", "namespace": "*"}]}
    assert not ownership.is_destination_permitted(spec, "https://kubernetes.default.svc", "", "kube-system")
    assert ownership.is_destination_permitted(spec, "https://kubernetes.default.svc", "", "models")


def _at(repo: Path, path: str, text: str, after: str = "") -> str:
    """`path:LINE` of the first line holding `text` (below the first holding `after`) in the copy."""
    lines = (repo / path).read_text().splitlines()
    start = next((n for n, line in enumerate(lines) if after in line), 0) if after else 0
    return f"{path}:{next(n for n, line in enumerate(lines[start:], start + 1) if text in line)}"


def test_the_issue_examples_name_the_file_and_line_to_edit(lines: list[str], repo_copy: Path) -> None:
    # Issue 22's everyday edits: each problem starts with the file (and line) a person opens to fix it.
    expected = [
        # A route to a Service that is gone: the line of routes.yaml, not the generated ConfigMap's folder.
        (f"{_at(repo_copy, 'overlays/prod/gateway/routes.yaml', 'old-bot-vllm')}: ConfigMap/gateway-routes: "
         "data[routes.yaml].models.old-bot.backends.stable.url: ", "MLOPS068"),
        # A model folder copied without editing: its namePrefix line, and the base file both folders render.
        (f"{_at(repo_copy, f'{FAQ}/kustomization.yaml', 'namePrefix: support-chat-')}: "
         "Kustomization/models/faq-bot: namePrefix: ", "MLOPS071"),
        (f"{_at(repo_copy, 'base/models/vllm/deployment.yaml', '  name: vllm')} ({FAQ}): "
         "Deployment/support-chat-vllm: metadata.name: ", "MLOPS070"),
        # dev serving from prod's bucket; a version that is not a number.
        (f"{_at(repo_copy, f'{DEV_MODEL}/model-version.yaml', 'weightsUri')}: ConfigMap/model-version: "
         "data.weightsUri: ", "MLOPS073"),
        (f"{_at(repo_copy, f'{PROD_MODEL}/model-version.yaml', 'version:')}: ConfigMap/model-version: "
         "data.version: ", "MLOPS073"),
        # Two tensor-parallel ranks on one GPU: the overlay's resources patch, where the GPU count is.
        (f"{_at(repo_copy, f'{DEV_MODEL}/resources.yaml', 'nvidia.com/gpu', after='requests:')}: "
         "Deployment/support-chat-vllm: "
         'spec.template.spec.containers[vllm].resources.requests["nvidia.com/gpu"]: ', "MLOPS074"),
    ]  # fmt: skip
    for start, policy in expected:
        assert [line for line in lines if line.startswith(start) and f"[{policy}: " in line], (start, lines)


def test_the_gateways_routes_verdicts_are_kept_by_document_and_only_by_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose routes did not change starts no `python -m gateway.routes`; a changed one does."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path))
    good = "models:\n  chat:\n    backends:\n      stable: {url: 'http://chat-vllm:8000', weight: 100}\n"
    bad = good.replace("weight: 100", "weight: -1")
    first = references.gateway_routes_verdicts([good, bad])
    assert first[0] is None and "weight" in (first[1] or "")

    started: list[list[str]] = []
    real_run = references.subprocess.run

    def counting_run(command: list[str], **kwargs):  # type: ignore[no-untyped-def]
        started.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(references.subprocess, "run", counting_run)
    assert references.gateway_routes_verdicts([good, bad]) == first
    assert started == []
    # Another document (the bad one fixed) is judged by the gateway again, not read from the cache.
    assert references.gateway_routes_verdicts([good, good]) == [None, None]
    assert len(started) == 1
