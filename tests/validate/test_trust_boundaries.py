"""Trust boundaries (MLOPS080-083): each bites on its defect planted in a copy of the repository.

One copy gets every defect at once and `mlops validate dev` runs once over it; each test then
asserts the exact problem line a user would read. The NetworkPolicy semantics the matrix check
relies on are tested directly below, one Kubernetes rule per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.violations import HINTS
from mlops.validate.trust_rules.reachability import (
    Cluster,
    MatrixError,
    Peer,
    Policy,
    Port,
    api_service_address,
    load_matrix,
)
from mlops.validate.trust_rules.reachability import (
    check as reachability_check,
)
from support.validate_cli import by_folder, plant, validate_lines

PLATFORM = "overlays/dev/platform"


def _row(repo: Path, row: str) -> int:
    lines = (repo / "docs/security.md").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(row))


@pytest.fixture(scope="module")
def planted(repo_copy: Path) -> dict[str, int]:
    """Plant one defect per boundary; return the matrix lines the expected problems name."""
    # MLOPS080: vLLM's ingress rule loses its `from` (any pod reaches :8000) ...
    plant(
        repo_copy,
        "base/platform/networkpolicy-models.yaml",
        "  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n"
        "          kubernetes.io/metadata.name: gateway\n      podSelector:\n        matchLabels:\n"
        "          app.kubernetes.io/name: gateway\n    - namespaceSelector:\n        matchLabels:\n"
        "          kubernetes.io/metadata.name: monitoring\n      podSelector:\n        matchLabels:\n"
        "          app.kubernetes.io/name: prometheus\n    ports:",
        "  ingress:\n  - ports:",
    )
    # ... Alertmanager's policy is gone (Prometheus can no longer deliver alerts) ...
    policies = repo_copy / "base/platform/networkpolicy-monitoring.yaml"
    docs = policies.read_text().split("\n---\n")
    kept = [d for d in docs if "name: alertmanager\n  namespace: monitoring" not in d]
    assert len(kept) == len(docs) - 1
    policies.write_text("\n---\n".join(kept))
    # ... namespace kubeflow has no policy at all ...
    plant(repo_copy, "base/platform/kustomization.yaml", "  - networkpolicy-kubeflow.yaml\n", "")
    # ... and the matrix forgets that Prometheus scrapes the DCGM exporter.
    plant(repo_copy, "docs/security.md", "| prometheus | dcgm-exporter | 9400 | GPU metrics |\n", "")
    # ... and a policy that lets MLflow out anywhere by a label only the rendered pods carry
    # (opening it inward would not do: the front door's ALB row admits every peer on 5000).
    (repo_copy / "base/platform/networkpolicy-debug.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: debug\n"
        "  namespace: mlflow\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app.kubernetes.io/component: tracking-server\n  policyTypes: [Egress]\n  egress:\n  - {}\n"
    )
    plant(
        repo_copy,
        "base/platform/kustomization.yaml",
        "  - networkpolicy-mlflow.yaml\n",
        "  - networkpolicy-mlflow.yaml\n  - networkpolicy-debug.yaml\n",
    )
    # MLOPS081: a second store without conditions; the first one no longer serves gateway.
    (repo_copy / "base/platform/clustersecretstore-open.yaml").write_text(
        "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata:\n  name: open\n"
        "  annotations:\n    argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true\n"
        "spec:\n  provider:\n    aws:\n      service: SecretsManager\n      region: us-west-2\n"
    )
    plant(
        repo_copy,
        "base/platform/kustomization.yaml",
        "  - clustersecretstore.yaml\n",
        "  - clustersecretstore.yaml\n  - clustersecretstore-open.yaml\n",
    )
    (repo_copy / "base/platform/clustersecretstore-shared.yaml").write_text(
        "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata:\n  name: shared\n"
        "  annotations:\n    argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true\n"
        "spec:\n  conditions:\n    - namespaces: [gateway, models]\n"
        "  provider:\n    aws:\n      service: SecretsManager\n      region: us-west-2\n"
    )
    plant(
        repo_copy,
        "base/platform/kustomization.yaml",
        "  - clustersecretstore-open.yaml\n",
        "  - clustersecretstore-open.yaml\n  - clustersecretstore-shared.yaml\n",
    )
    plant(
        repo_copy,
        "base/gateway/externalsecret.yaml",
        "name: aws-secrets-manager-gateway",
        "name: aws-secrets-manager-mlflow",
    )
    # ... and the models' key is pointed at the git-bot token.
    plant(
        repo_copy,
        "overlays/dev/platform/vllm-api-key.yaml",
        "key: mlops/dev/vllm-api-key",
        "key: mlops/dev/git-bot-token",
    )
    # MLOPS082: the models' project allows ExternalSecret, observability Roles.
    plant(
        repo_copy,
        "apps/projects/ml-serving.yaml",
        "  namespaceResourceWhitelist:\n",
        "  namespaceResourceWhitelist:\n    - group: external-secrets.io\n      kind: ExternalSecret\n",
    )
    plant(
        repo_copy,
        "apps/projects/observability.yaml",
        "  namespaceResourceWhitelist:\n",
        "  namespaceResourceWhitelist:\n    - group: rbac.authorization.k8s.io\n      kind: Role\n",
    )
    # MLOPS083: observability may deploy DaemonSets into node-exporters again.
    plant(
        repo_copy,
        "apps/projects/observability.yaml",
        "      namespace: monitoring\n",
        "      namespace: monitoring\n"
        "    - server: https://kubernetes.default.svc\n      namespace: node-exporters\n",
    )
    # MLOPS080: KEDA's API egress is the VPC range only, as before the Service address was pinned.
    plant(
        repo_copy,
        "base/platform/networkpolicy-keda.yaml",
        "    - ipBlock:\n        cidr: 172.20.0.1/32\n",
        "",
    )
    # ... the chart's admission webhook hook Jobs lose their policy (default-deny holds them) ...
    docs = policies.read_text().split("\n---\n")
    kept = [d for d in docs if "name: admission-webhook-jobs\n" not in d]
    assert len(kept) == len(docs) - 1
    policies.write_text("\n---\n".join(kept))
    # ... and Prometheus replicas no longer admit each other's scrape of the config-reloader.
    plant(
        repo_copy,
        "base/platform/networkpolicy-monitoring.yaml",
        "    - protocol: TCP\n      port: 9090\n    - protocol: TCP\n      port: 8080\n  egress:\n",
        "    - protocol: TCP\n      port: 9090\n  egress:\n",
    )
    return {
        "admission-create": _row(repo_copy, "| admission-create | api-server | 443 |"),
        "prometheus-self": _row(repo_copy, "| prometheus | prometheus | 9090, 8080 |"),
        "alertmanager": _row(repo_copy, "| prometheus | alertmanager | 9093 |"),
        "keda-api": _row(repo_copy, "| keda/* | api-server | 443 |"),
    }


@pytest.fixture(scope="module")
def lines(planted: dict[str, int], repo_copy: Path, crds_dir: Path) -> list[str]:
    return validate_lines(repo_copy, crds_dir, "dev")


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


def test_the_repository_matches_its_matrix(repo_root: Path) -> None:
    matrix = load_matrix(repo_root)
    assert matrix.intended("gateway", "vllm", Port(8000))
    assert not matrix.intended("workflow-pod", "vllm", Port(8000))


def test_any_pod_reaches_vllm_when_its_ingress_names_no_source(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: NetworkPolicy/vllm: spec.ingress[0]: lets default/* reach vllm on 8000/TCP, "
        "which the reachability matrix (docs/security.md) does not list",
        "MLOPS080",
    ) in by_folder(lines)
    # a pod of a guarded namespace is still held back by its own egress policy
    assert not any("lets workflow-pod reach vllm" in line for line in lines)


def test_a_rendered_pod_reached_contrary_to_the_matrix(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: NetworkPolicy/debug: spec.egress[0]: lets Deployment/mlflow (overlays/dev/mlflow) "
        "(as mlflow) reach kube-dns on 9153/TCP, which the reachability matrix "
        "(docs/security.md) does not list",
        "MLOPS080",
    ) in by_folder(lines)


def test_an_intended_edge_the_policies_block(lines: list[str], planted: dict[str, int]) -> None:
    assert _hinted(
        f"docs/security.md:{planted['alertmanager']}: edge prometheus -> alertmanager: ports: "
        "prometheus cannot reach alertmanager on 9093/TCP: "
        "no ingress rule of namespace monitoring admits it",
        "MLOPS080",
    ) in by_folder(lines)


def test_api_egress_to_the_vpc_range_only_is_blocked(lines: list[str], planted: dict[str, int]) -> None:
    # the VPC CNI agent matches the `kubernetes` Service address (172.20.0.1), not the VPC range
    assert _hinted(
        f"docs/security.md:{planted['keda-api']}: edge keda/* -> api-server: ports: "
        "keda/* cannot reach api-server on 443/TCP: no egress rule of namespace keda admits it",
        "MLOPS080",
    ) in by_folder(lines)


def _repo_with_service_cidr(repo_root: Path, repo: Path, default: str) -> Path:
    variables = repo / "terraform/modules/eks/variables.tf"
    variables.parent.mkdir(parents=True)
    text = (repo_root / "terraform/modules/eks/variables.tf").read_text()
    assert 'default     = "172.20.0.0/16"' in text
    variables.write_text(text.replace('default     = "172.20.0.0/16"', f'default     = "{default}"'))
    (repo / "docs").mkdir()
    (repo / "docs/security.md").write_text((repo_root / "docs/security.md").read_text())
    return repo


def test_the_chart_hook_jobs_need_api_egress(lines: list[str], planted: dict[str, int]) -> None:
    assert _hinted(
        f"docs/security.md:{planted['admission-create']}: edge admission-create -> api-server: ports: "
        "admission-create cannot reach api-server on 443/TCP: "
        "no egress rule of namespace monitoring admits it",
        "MLOPS080",
    ) in by_folder(lines)


def test_prometheus_replicas_scrape_each_others_reloader(lines: list[str], planted: dict[str, int]) -> None:
    assert _hinted(
        f"docs/security.md:{planted['prometheus-self']}: edge prometheus -> prometheus: ports: "
        "prometheus cannot reach prometheus on 8080/TCP: "
        "no ingress rule of namespace monitoring admits it",
        "MLOPS080",
    ) in by_folder(lines)


def test_the_api_server_address_comes_from_terraform(repo_root: Path, tmp_path: Path) -> None:
    assert api_service_address(repo_root) == "172.20.0.1"
    assert load_matrix(repo_root).peers["api-server"].address == "172.20.0.1"
    moved = _repo_with_service_cidr(repo_root, tmp_path / "moved", "10.100.0.0/16")
    assert load_matrix(moved).peers["api-server"].address == "10.100.0.1"
    broken = _repo_with_service_cidr(repo_root, tmp_path / "broken", "no-cidr")
    with pytest.raises(MatrixError, match="variable service_ipv4_cidr has no CIDR default"):
        load_matrix(broken)


def test_a_namespace_without_default_deny(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: Namespace/kubeflow: (NetworkPolicy): no default-deny NetworkPolicy in namespace "
        "kubeflow (podSelector {}, policyTypes [Ingress, Egress]): every pod there accepts and opens "
        "any connection",
        "MLOPS080",
    ) in by_folder(lines)


def test_an_edge_the_matrix_does_not_list(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: NetworkPolicy/dcgm-exporter: spec.ingress[0]: lets prometheus reach dcgm-exporter "
        "on 9400/TCP, which the reachability matrix (docs/security.md) does not list",
        "MLOPS080",
    ) in by_folder(lines)


def test_a_cluster_secret_store_without_conditions(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: ClusterSecretStore/open: spec.conditions: no conditions: the store serves "
        "ExternalSecrets in every namespace, so any namespace can read every secret its role may read",
        "MLOPS081",
    ) in by_folder(lines)


def test_a_cluster_secret_store_serving_two_namespaces(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: ClusterSecretStore/shared: spec.conditions: serves gateway, models: they share "
        "every secret its role may read; give each namespace a store of its own",
        "MLOPS081",
    ) in by_folder(lines)


def test_an_external_secret_its_store_does_not_serve(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/gateway: ExternalSecret/gateway-api-keys: spec.secretStoreRef: ClusterSecretStore "
        "aws-secrets-manager-mlflow does not serve namespace gateway (its conditions name mlflow): "
        "the Secret is never made",
        "MLOPS081",
    ) in by_folder(lines)


def test_the_models_namespace_cannot_read_the_git_bot_token(lines: list[str]) -> None:
    assert _hinted(
        f"{PLATFORM}: ExternalSecret/vllm-api-key: spec.data[0].remoteRef.key: reads "
        "mlops/dev/git-bot-token, which the secret reader role of namespace models may not read "
        "(terraform/modules/workload-roles/main.tf secret_readers: mlflow-git-bot, vllm-api-key): "
        "the Secret is never made",
        "MLOPS081",
    ) in by_folder(lines)


def test_the_models_project_allows_external_secrets(lines: list[str]) -> None:
    assert _hinted(
        "clusters/dev: AppProject/ml-serving: spec.namespaceResourceWhitelist[0]: allows ExternalSecret "
        "in the project model folders (overlays/*/models/*) deploy through: a model-folder pull request "
        "could materialise any secret a store serves",
        "MLOPS082",
    ) in by_folder(lines)


def test_an_ml_project_allows_rbac(lines: list[str]) -> None:
    assert _hinted(
        "clusters/dev: AppProject/observability: spec.namespaceResourceWhitelist[0]: allows Role "
        "(rbac.authorization.k8s.io): only platform projects (platform, platform-*) may create RBAC, "
        "NetworkPolicies or secret stores",
        "MLOPS082",
    ) in by_folder(lines)


def test_a_privileged_namespace_reached_by_a_non_platform_project(lines: list[str]) -> None:
    assert _hinted(
        "clusters/dev: AppProject/observability: spec.destinations[1].namespace: reaches namespace "
        "node-exporters, which enforces Pod Security privileged: only platform projects "
        "(platform, platform-*) may deploy there",
        "MLOPS083",
    ) in by_folder(lines)


# --- Kubernetes NetworkPolicy semantics (pkg/apis/networking/types.go) -------------------------

WEB = Peer("web", "shop", (("app", "web"),), "10.10.64.20", (Port(80), Port(8443, name="https")))
CLIENT = Peer("client", "shop", (("app", "client"),), "10.10.64.21", ())
OUTSIDER = Peer("outsider", "other", (("app", "client"),), "10.10.64.22", ())


def _cluster(*specs: dict[str, object], namespace: str = "shop") -> Cluster:
    policies = [
        Policy("f", namespace, {"metadata": {"name": f"p{i}"}, "spec": spec}) for i, spec in enumerate(specs)
    ]
    return Cluster(policies, {"shop": {"team": "a"}, "other": {"team": "b"}})


HTTP = Port(80)


def _ingress_allowed(cluster: Cluster, source: Peer, port: Port = HTTP) -> bool:
    return cluster.admitting(WEB, source, port, "Ingress")[0]


def test_no_policy_means_no_isolation() -> None:
    assert _ingress_allowed(_cluster(), OUTSIDER)


def test_policy_types_default_to_ingress_only() -> None:
    # no policyTypes, no egress section: Ingress isolation only, egress stays open
    cluster = _cluster({"podSelector": {}})
    assert not _ingress_allowed(cluster, CLIENT)
    assert cluster.admitting(WEB, OUTSIDER, Port(80), "Egress")[0]


def test_pod_selector_alone_selects_the_policys_namespace() -> None:
    cluster = _cluster(
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}
    )
    assert _ingress_allowed(cluster, CLIENT)
    assert not _ingress_allowed(cluster, OUTSIDER)  # same labels, other namespace


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    both = {
        "namespaceSelector": {"matchLabels": {"team": "b"}},
        "podSelector": {"matchLabels": {"app": "web"}},
    }
    cluster = _cluster({"podSelector": {}, "ingress": [{"from": [both]}]})
    assert not _ingress_allowed(cluster, OUTSIDER)  # right namespace, wrong pod
    apart = [
        {"namespaceSelector": {"matchLabels": {"team": "b"}}},
        {"podSelector": {"matchLabels": {"app": "web"}}},
    ]
    assert _ingress_allowed(_cluster({"podSelector": {}, "ingress": [{"from": apart}]}), OUTSIDER)


def test_match_expressions() -> None:
    selector = {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["client"]}]}
    cluster = _cluster(
        {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": selector}]}]}
    )
    assert not _ingress_allowed(cluster, OUTSIDER)
    exists = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    cluster = _cluster(
        {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": exists}]}]}
    )
    assert _ingress_allowed(cluster, OUTSIDER)


def test_ports_named_ranged_and_protocol() -> None:
    named = _cluster({"podSelector": {}, "ingress": [{"ports": [{"port": "https"}]}]})
    assert named.admitting(WEB, CLIENT, Port(8443, name="https"), "Ingress")[0]
    assert not _ingress_allowed(named, CLIENT)
    ranged = _cluster({"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 9000}]}]})
    assert ranged.admitting(WEB, CLIENT, Port(8443), "Ingress")[0]
    assert not ranged.admitting(WEB, CLIENT, Port(8443, "UDP"), "Ingress")[0]


def test_ip_block_except_and_pod_addresses() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.10.64.21/32"]}}
    cluster = _cluster({"podSelector": {}, "ingress": [{"from": [block]}]})
    assert _ingress_allowed(cluster, OUTSIDER)  # a pod's VPC address is inside the block
    assert not _ingress_allowed(cluster, CLIENT)  # excepted


def test_rules_of_several_policies_add_up() -> None:
    cluster = _cluster(
        {"podSelector": {}, "policyTypes": ["Ingress"]},
        {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}]}]},
    )
    assert _ingress_allowed(cluster, CLIENT)


def _model_deployment(name: str, track: str) -> dict[str, object]:
    labels = {"app.kubernetes.io/name": "vllm", "track": track}
    container = {"name": "vllm", "ports": [{"name": "http", "containerPort": 8000}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "models"},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }


def test_a_policy_selecting_one_of_many_alike_model_pods_is_judged_on_that_pod(repo_root: Path) -> None:
    # Model pods that every policy treats alike are checked once per class (the hundred-model
    # speed-up); a policy whose selector only one model's pods match must still bite on it.
    policies = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "models"},
            "spec": spec,
        }
        for name, spec in [
            ("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            (
                "canary-out",
                {
                    "podSelector": {"matchLabels": {"track": "canary"}},
                    "policyTypes": ["Egress"],
                    "egress": [{}],
                },
            ),
        ]
    ]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "models"}}
    rendered = [
        RenderedKustomization(PLATFORM, "dev", "platform", [namespace, *policies]),
        *(
            RenderedKustomization(
                f"overlays/dev/models/{name}", "dev", f"models/{name}", [_model_deployment(name, track)]
            )
            for name, track in [("model-a", "stable"), ("model-b", "stable"), ("model-c", "canary")]
        ),
    ]
    lines = [str(problem) for problem in reachability_check(repo_root, "dev", rendered)]
    assert (
        _hinted(
            f"{PLATFORM}: NetworkPolicy/canary-out: spec.egress[0]: lets Deployment/model-c "
            "(overlays/dev/models/model-c) (as vllm) reach kube-dns on 9153/TCP, which the reachability "
            "matrix (docs/security.md) does not list",
            "MLOPS080",
        )
        in lines
    )
    assert not any("canary-out" in line and ("model-a" in line or "model-b" in line) for line in lines)
