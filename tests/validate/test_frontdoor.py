"""MLOPS150-152: the front door's host names, TLS and sign-in, each defect planted in a copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import plant, validate_lines

FRONTDOOR = "overlays/dev/frontdoor"
DOMAIN = "dev.mlops.example.com"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """`mlops validate dev` over a copy with one defect per rule and part of a rule."""
    # MLOPS150: Grafana under a name the front door does not know; a redirect to another host.
    for _where in ("spec.tls", "spec.rules"):
        plant(repo_copy, "base/frontdoor/ingress-grafana.yaml", "grafana.DOMAIN", "dashboards.DOMAIN")
    plant(
        repo_copy,
        "apps/upstream/argo-workflows/values-dev.yaml",
        f"https://workflows.{DOMAIN}/oauth2/callback",
        "https://argo.example.net/oauth2/callback",
    )
    # MLOPS150: MLflow no longer accepts its front-door host name.
    plant(repo_copy, "overlays/dev/mlflow/server-settings.yaml", f",mlflow.{DOMAIN}", "")
    # MLOPS150: the workflow's MLflow links point at the port-forward address again.
    plant(
        repo_copy,
        "overlays/dev/workflows/generated/train-and-promote.patch.yaml",
        f"  value: https://mlflow.{DOMAIN}\n",
        "  value: http://localhost:5000\n",
    )
    # MLOPS151: the model API without its HTTPS listener; MLflow's host left out of spec.tls;
    # the ALB no longer redirects HTTP.
    plant(
        repo_copy,
        "base/frontdoor/ingress-api.yaml",
        """listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'""",
        """listen-ports: '[{"HTTP": 80}]'""",
    )
    plant(
        repo_copy, "base/frontdoor/ingress-mlflow.yaml", "hosts: [mlflow.DOMAIN]", "hosts: [mlflow-ui.DOMAIN]"
    )
    plant(repo_copy, "base/frontdoor/ingressclassparams.yaml", '  sslRedirectPort: "443"\n', "")
    # MLOPS152: the gateway's Service opened on every node; the Argo Workflows UI also
    # taking Kubernetes tokens; MLflow's Ingress claiming Grafana's sign-in.
    plant(repo_copy, "base/gateway/service.yaml", "  type: ClusterIP\n", "  type: NodePort\n")
    plant(
        repo_copy,
        "apps/upstream/argo-workflows/values-dev.yaml",
        "  authModes:\n    - sso\n",
        "  authModes:\n    - sso\n    - client\n",
    )
    plant(
        repo_copy,
        "base/frontdoor/ingress-mlflow.yaml",
        "mlops.platform/sign-in: mlflow-basic-auth",
        "mlops.platform/sign-in: grafana-oauth",
    )
    return validate_lines(repo_copy, crds_dir, "dev")


def _line(policy: str, where: str, message: str) -> str:
    return f"{where}: {message} [{policy}: {HINTS[policy]}]"


def test_unknown_host_name(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS150",
            f"base/frontdoor/ingress-grafana.yaml:18 ({FRONTDOOR}): Ingress/grafana: spec.rules[0].host",
            f"host 'dashboards.{DOMAIN}' is not <name>.{DOMAIN} for a front-door name "
            "(api, argocd, grafana, mlflow, workflows; domain from terraform/envs/dev/terraform.tfvars)",
        )
        in lines
    )


def test_missing_host_name(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS150",
            f"base/frontdoor/ingress-grafana.yaml:17 ({FRONTDOOR}): Ingress/grafana: spec.rules[].host",
            f"no Ingress serves grafana.{DOMAIN} in dev: monitoring/kube-prometheus-stack-grafana is "
            "reachable only by port-forward",
        )
        in lines
    )


def test_redirect_url_off_the_domain(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS150",
            "apps/upstream/argo-workflows/values-dev.yaml:59: argo-workflows: server.sso.redirectUrl",
            "is 'https://argo.example.net/oauth2/callback', "
            f"not 'https://workflows.{DOMAIN}/oauth2/callback' "
            "(terraform/envs/dev/terraform.tfvars: domain, sso.issuer)",
        )
        in lines
    )


def test_mlflow_refuses_its_host(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS150",
            "overlays/dev/mlflow/server-settings.yaml:11: ConfigMap/mlflow-config: data.MLFLOW_ALLOWED_HOSTS",
            f"does not allow mlflow.{DOMAIN}: MLflow refuses every request that reaches it "
            "through the front door",
        )
        in lines
    )


def test_workflow_links_off_the_front_door(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS150",
            "overlays/dev/workflows/generated/train-and-promote.patch.yaml:191: "
            "WorkflowTemplate/train-and-promote: "
            "spec.templates[4].script.env[3].value",
            f"is 'http://localhost:5000', not 'https://mlflow.{DOMAIN}': the run's MLflow links lead "
            "nowhere (workflows/environments.py mlflow_ui_url, then mlops workflows compile)",
        )
        in lines
    )


def test_no_https_listener(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS151",
            f"base/frontdoor/ingress-api.yaml:7 ({FRONTDOOR}): Ingress/api: "
            "metadata.annotations.alb.ingress.kubernetes.io/listen-ports",
            """is '[{"HTTP": 80}]': no HTTPS 443 listener, so no TLS and nowhere to redirect to""",
        )
        in lines
    )


def test_host_without_certificate(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS151",
            f"base/frontdoor/ingress-mlflow.yaml:18 ({FRONTDOOR}): Ingress/mlflow: spec.rules[0].host",
            f"mlflow.{DOMAIN} is not under spec.tls: the controller attaches no certificate for it",
        )
        in lines
    )


def test_no_redirect_to_https(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS151",
            f"base/frontdoor/ingressclassparams.yaml:16 ({FRONTDOOR}): "
            "IngressClassParams/frontdoor: spec.sslRedirectPort",
            'is not "443": plain HTTP would be answered instead of redirected',
        )
        in lines
    )


def test_node_port_service(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS152",
            "base/gateway/service.yaml:9 (overlays/dev/gateway): Service/gateway: spec.type",
            "is NodePort: it is reached around the front door, with no sign-in in front of it",
        )
        in lines
    )


def test_workflows_ui_takes_kubernetes_tokens(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS152",
            f"base/frontdoor/ingress-workflows.yaml:7 ({FRONTDOOR}): Ingress/workflows: "
            "metadata.annotations.mlops.platform/sign-in",
            "is argo-workflows-sso, but apps/upstream/argo-workflows/values-dev.yaml server.authModes is "
            "['sso', 'client'], not ['sso']: the UI is open to anyone who reaches it",
        )
        in lines
    )


def test_sign_in_claimed_for_another_backend(lines: list[str]) -> None:
    assert (
        _line(
            "MLOPS152",
            f"base/frontdoor/ingress-mlflow.yaml:18 ({FRONTDOOR}): Ingress/mlflow: spec.rules[0]",
            "leads to mlflow/mlflow, but grafana-oauth signs people in at "
            "monitoring/kube-prometheus-stack-grafana only",
        )
        in lines
    )


def test_the_repository_passes(lines: list[str]) -> None:
    """Nothing else in the copy is reported under these ids (the checked-in repository has 0 problems)."""
    ids = [line for line in lines if any(f"[{p}:" in line for p in ("MLOPS150", "MLOPS151", "MLOPS152"))]
    assert len(ids) == 11, "\n".join(ids)
