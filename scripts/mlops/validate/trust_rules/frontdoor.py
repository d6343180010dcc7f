"""MLOPS150-153: the front door: host names, TLS, a sign-in on every way in, who may connect.

The environment's domain is set once, `domain` in terraform/envs/<env>/terraform.tfvars
(the zone and the ACM certificate *.<domain> come from it); the identity provider is `sso`
there. What the cluster runs must agree with both:

- MLOPS150: every Ingress host is `<name>.<domain>` for a known front-door name, on the
  backend that name stands for; every known name has its Ingress; the chart values that
  name a host or the issuer (Argo Workflows' redirect URL and issuer, Grafana's root URL
  and OAuth endpoints, external-dns's domain filter) say the same as terraform, and the
  groups claim and scope the UIs read are `sso.groups_claim` / `sso.groups_scope` (Argo
  Workflows' `customGroupClaimName` and scopes, Grafana's groups and role paths and scopes;
  Argo CD takes them from terraform itself). A UI that reads another claim than the one the
  identity provider fills finds no group, and everyone lands in "none of these".
- MLOPS151: every Ingress is of class `alb`, whose IngressClassParams (rendered here, named
  by the load balancer controller's values) fix one IngressGroup, a TLS 1.3 policy and the
  redirect of HTTP to 443; every Ingress listens on HTTPS 443 and lists each host under
  `spec.tls`, where the controller looks up the ACM certificate
  (kubernetes-sigs/aws-load-balancer-controller docs/guide/ingress/ingress_class.md and
  annotations.md, v2.17.1: IngressClassParams fields override the Ingress annotations;
  certificate discovery uses the TLS hosts).
- MLOPS152: no Service is of type LoadBalancer or NodePort (the front door is the only way
  in), and every Ingress either authenticates at the ALB (`auth-type: oidc|cognito`, not
  `auth-on-unauthenticated-request: allow`) or names with `mlops.platform/sign-in` a backend
  that signs people in itself, on that backend's Service, and the backend's configuration
  really does (SIGN_INS).
- MLOPS153: the IngressClassParams' `inboundCIDRs` (the ALB security group's sources; the
  controller's ingress_class.md, v2.17.1) list the environment's `vpc_cidr` from terraform,
  and only private ranges (RFC 1918, RFC 6598): a VPN client outside every entry times out
  in silence, and a public range would open an internal ALB to whatever routes into the VPC.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.rendering import fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import parse, unquote
from mlops.validate.objects.problems import Problem, mapping, resource_name
from mlops.validate.objects.violations import HINTS

SIGN_IN_ANNOTATION = "mlops.platform/sign-in"
AUTH_TYPE = "alb.ingress.kubernetes.io/auth-type"
AUTH_UNAUTHENTICATED = "alb.ingress.kubernetes.io/auth-on-unauthenticated-request"
LISTEN_PORTS = "alb.ingress.kubernetes.io/listen-ports"
INGRESS_CLASS = "alb"
TLS13_POLICY = "ELBSecurityPolicy-TLS13-"
ARGOCD_MODULE = "terraform/modules/argocd-bootstrap/main.tf"


@dataclass(frozen=True)
class Door:
    """A front-door host name and the one Service it may lead to."""

    namespace: str
    service: str


DOORS = {
    "argocd": Door("argocd", "argocd-server"),
    "workflows": Door("argo", "argo-workflows-server"),
    "grafana": Door("monitoring", "kube-prometheus-stack-grafana"),
    "mlflow": Door("mlflow", "mlflow"),
    "api": Door("gateway", "gateway"),
}
"""<name>.<domain> -> the backend; docs/access.md lists the same names."""


def _tfvars(repo: Path, env: str) -> dict[str, Any]:
    path = repo / "terraform" / "envs" / env / "terraform.tfvars"
    return parse(path) if path.is_file() else {}


def _values(repo: Path, chart: str, env: str) -> dict[str, Any]:
    path = repo / "apps" / "upstream" / chart / f"values-{env}.yaml"
    if not path.is_file():
        return {}
    loaded = fast_yaml.load(path.read_bytes())
    return loaded if isinstance(loaded, dict) else {}


def _values_file(chart: str, env: str) -> str:
    return f"apps/upstream/{chart}/values-{env}.yaml"


def _objects(rendered: Sequence[RenderedKustomization], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for result in rendered:
        for doc in result.documents:
            if isinstance(doc, dict) and doc.get("kind") == kind:
                yield result.path, doc


def _problem(policy: str, file: str, resource: str, field: str, message: str) -> Problem:
    return Problem(file, resource, field, message, policy, HINTS[policy])


def _backends(ingress: dict[str, Any]) -> Iterator[tuple[int, str, str]]:
    """(rule index, host, backend Service name) of each path of each rule."""
    for index, rule in enumerate(mapping(ingress, "spec").get("rules") or []):
        if not isinstance(rule, dict):
            continue
        for path in mapping(rule, "http").get("paths") or []:
            service = mapping(mapping(path, "backend"), "service").get("name", "")
            yield index, str(rule.get("host", "")), str(service)


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """All three front-door rules for one environment."""
    tfvars = _tfvars(repo, env)
    domain = str(unquote(tfvars.get("domain", "")))
    sso = mapping(tfvars, "sso")
    issuer = str(unquote(sso.get("issuer", "")))
    yield from check_hosts(repo, env, rendered, domain, issuer)
    claim = str(unquote(sso.get("groups_claim", '"groups"')))
    scope = str(unquote(sso.get("groups_scope", '"groups"')))
    yield from check_groups_claim(repo, env, claim, scope)
    yield from check_inbound(repo, env, rendered, str(unquote(tfvars.get("vpc_cidr", ""))))
    yield from check_tls(repo, env, rendered)
    yield from check_sign_in(repo, env, rendered)


# MLOPS150 ---------------------------------------------------------------------------------


def check_hosts(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization], domain: str, issuer: str
) -> Iterator[Problem]:
    """MLOPS150: hosts and host-derived values follow terraform's domain and issuer."""
    tfvars_file = f"terraform/envs/{env}/terraform.tfvars"
    if not domain:
        yield _problem(
            "MLOPS150", tfvars_file, "domain", "", "sets no domain: the front door has no host names"
        )
        return
    seen: set[str] = set()
    for file, ingress in _objects(rendered, "Ingress"):
        namespace = mapping(ingress, "metadata").get("namespace", "")
        for index, host, service in _backends(ingress):
            name, dot, rest = host.partition(".")
            where = f"spec.rules[{index}].host"
            if not dot or rest != domain or name not in DOORS:
                yield _problem(
                    "MLOPS150",
                    file,
                    resource_name(ingress),
                    where,
                    f"host {host!r} is not <name>.{domain} for a front-door name "
                    f"({', '.join(sorted(DOORS))}; domain from {tfvars_file})",
                )
                continue
            door = DOORS[name]
            if (namespace, service) != (door.namespace, door.service):
                yield _problem(
                    "MLOPS150",
                    file,
                    resource_name(ingress),
                    where,
                    f"host {host} leads to Service {namespace}/{service}, but {name}.<domain> is "
                    f"{door.namespace}/{door.service}",
                )
                continue
            seen.add(name)
    yield from _check_mlflow_hosts(rendered, domain)
    yield from _check_mlflow_links(rendered, domain)
    overlay = f"overlays/{env}/frontdoor"
    for name in sorted(set(DOORS) - seen):
        yield _problem(
            "MLOPS150",
            overlay,
            f"Ingress/{name}",
            "spec.rules[].host",
            f"no Ingress serves {name}.{domain} in {env}: {DOORS[name].namespace}/{DOORS[name].service} "
            "is reachable only by port-forward",
        )
    yield from _check_values(env, _expected_values(repo, env, domain, issuer))


def _check_mlflow_hosts(rendered: Sequence[RenderedKustomization], domain: str) -> Iterator[Problem]:
    """MLOPS150: mlflow.<domain> is among MLflow's allowed Host headers.

    MLflow's server security middleware (mlflow 3.x, `--allowed-hosts`, MLFLOW_ALLOWED_HOSTS) answers
    403 to any other Host, so the front door's host must be listed.
    """
    host = f"mlflow.{domain}"
    for file, doc in _objects(rendered, "ConfigMap"):
        meta = mapping(doc, "metadata")
        if (meta.get("namespace"), meta.get("name")) != ("mlflow", "mlflow-config"):
            continue
        allowed = str(mapping(doc, "data").get("MLFLOW_ALLOWED_HOSTS", "")).split(",")
        if host not in allowed:
            yield _problem(
                "MLOPS150",
                file,
                resource_name(doc),
                "data.MLFLOW_ALLOWED_HOSTS",
                f"does not allow {host}: MLflow refuses every request that reaches it through the front door",
            )


def _check_mlflow_links(rendered: Sequence[RenderedKustomization], domain: str) -> Iterator[Problem]:
    """MLOPS150: the MLflow links a workflow writes (MLFLOW_UI_URL) lead through the front door."""
    want = f"https://mlflow.{domain}"
    for file, doc in _objects(rendered, "WorkflowTemplate"):
        for t_index, template in enumerate(mapping(doc, "spec").get("templates") or []):
            for part in ("script", "container"):
                for e_index, variable in enumerate(mapping(template, part).get("env") or []):
                    if variable.get("name") == "MLFLOW_UI_URL" and variable.get("value") != want:
                        yield _problem(
                            "MLOPS150",
                            file,
                            resource_name(doc),
                            f"spec.templates[{t_index}].{part}.env[{e_index}].value",
                            f"is {variable.get('value')!r}, not {want!r}: the run's MLflow links lead "
                            "nowhere (workflows/environments.py mlflow_ui_url, then mlops workflows compile)",
                        )


def _expected_values(repo: Path, env: str, domain: str, issuer: str) -> list[tuple[str, str, Any, Any]]:
    """(chart, dotted key, value found, value expected) for each value that names a host or the issuer."""
    workflows = mapping(mapping(_values(repo, "argo-workflows", env), "server"), "sso")
    grafana_ini = mapping(mapping(_values(repo, "kube-prometheus-stack", env), "grafana"), "grafana.ini")
    oauth = mapping(grafana_ini, "auth.generic_oauth")
    dns = _values(repo, "external-dns", env)
    expected: list[tuple[str, str, Any, Any]] = [
        (
            "argo-workflows",
            "server.sso.redirectUrl",
            workflows.get("redirectUrl"),
            f"https://workflows.{domain}/oauth2/callback",
        ),
        ("argo-workflows", "server.sso.issuer", workflows.get("issuer"), issuer),
        (
            "kube-prometheus-stack",
            "grafana.grafana.ini.server.root_url",
            mapping(grafana_ini, "server").get("root_url"),
            f"https://grafana.{domain}",
        ),
        ("external-dns", "domainFilters", dns.get("domainFilters"), [domain]),
    ]
    for key in ("auth_url", "token_url", "api_url"):
        found = oauth.get(key)
        # An endpoint of the identity provider: under the issuer, whatever path it publishes.
        ok = isinstance(found, str) and bool(issuer) and found.startswith(issuer.rstrip("/") + "/")
        expected.append(
            (
                "kube-prometheus-stack",
                f"grafana.grafana.ini.auth.generic_oauth.{key}",
                found,
                found if ok else f"{issuer}/...",
            ),
        )
    return expected


def _check_values(env: str, expected: list[tuple[str, str, Any, Any]]) -> Iterator[Problem]:
    for chart, key, found, want in expected:
        if found != want:
            yield _problem(
                "MLOPS150",
                _values_file(chart, env),
                chart,
                key,
                f"is {found!r}, not {want!r} (terraform/envs/{env}/terraform.tfvars: domain, sso.issuer)",
            )


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTAINS = re.compile(r"contains\(\s*([^\[,()]+?)\[\*\]")


def _jmespath(claim: str) -> str:
    """The JMESPath of a top-level claim: quoted where the name is not an identifier (cognito:groups)."""
    return claim if _IDENTIFIER.match(claim) else json.dumps(claim)


def check_groups_claim(repo: Path, env: str, claim: str, scope: str) -> Iterator[Problem]:
    """MLOPS150: Argo Workflows and Grafana read the groups from terraform's sso.groups_claim."""
    workflows = mapping(mapping(_values(repo, "argo-workflows", env), "server"), "sso")
    oauth = mapping(
        mapping(mapping(_values(repo, "kube-prometheus-stack", env), "grafana"), "grafana.ini"),
        "auth.generic_oauth",
    )
    path = _jmespath(claim)
    found_paths = sorted(set(_CONTAINS.findall(str(oauth.get("role_attribute_path", "")))))
    grafana_scopes = str(oauth.get("scopes", "")).replace(",", " ").split()
    expected: list[tuple[str, str, Any, Any]] = [
        ("argo-workflows", "server.sso.customGroupClaimName", workflows.get("customGroupClaimName"), claim),
        ("argo-workflows", "server.sso.scopes", list(workflows.get("scopes") or []), [scope] * bool(scope)),
        ("kube-prometheus-stack", "grafana.grafana.ini.auth.generic_oauth.groups_attribute_path",
         oauth.get("groups_attribute_path"), path),
        ("kube-prometheus-stack", "grafana.grafana.ini.auth.generic_oauth.role_attribute_path",
         f"contains({', '.join(found_paths)}[*], ...)", f"contains({path}[*], ...)"),
        ("kube-prometheus-stack", "grafana.grafana.ini.auth.generic_oauth.scopes",
         sorted(set(grafana_scopes) & {scope, "groups"} - {""}), [scope] * bool(scope)),
    ]  # fmt: skip
    for chart, key, found, want in expected:
        if found != want:
            yield _problem(
                "MLOPS150",
                _values_file(chart, env),
                chart,
                key,
                f"is {found!r}, not {want!r}: the identity provider puts the groups in claim {claim!r}"
                f"{f' (scope {scope!r})' if scope else ' (no groups scope)'} "
                f"(terraform/envs/{env}/terraform.tfvars: sso.groups_claim, sso.groups_scope)",
            )


# MLOPS153 ---------------------------------------------------------------------------------

_PRIVATE = [
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
]


def check_inbound(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization], vpc_cidr: str
) -> Iterator[Problem]:
    """MLOPS153: the ALB admits the environment's VPC range and private ranges only."""
    controller = _values(repo, "aws-load-balancer-controller", env)
    params_name = mapping(controller, "ingressClassParams").get("name")
    source = f"terraform/envs/{env}/terraform.tfvars: vpc_cidr {vpc_cidr}"
    for file, doc in _objects(rendered, "IngressClassParams"):
        if mapping(doc, "metadata").get("name") != params_name:
            continue
        name = f"IngressClassParams/{params_name}"
        cidrs = mapping(doc, "spec").get("inboundCIDRs") or []
        if vpc_cidr not in cidrs:
            yield _problem(
                "MLOPS153",
                file,
                name,
                "spec.inboundCIDRs",
                f"is {cidrs!r}, without the VPC's range ({source}): people on the VPN and callers "
                "in the VPC would time out at the ALB",
            )
        for index, cidr in enumerate(cidrs):
            try:
                network = ipaddress.IPv4Network(str(cidr), strict=False)
            except ValueError:
                network = None
            if network is None or not any(network.subnet_of(private) for private in _PRIVATE):
                yield _problem(
                    "MLOPS153",
                    file,
                    name,
                    f"spec.inboundCIDRs[{index}]",
                    f"{cidr!r} is not a private IPv4 range (RFC 1918, RFC 6598): the internal ALB admits "
                    "only the VPC and the networks routed into it",
                )


# MLOPS151 ---------------------------------------------------------------------------------


def check_tls(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS151: one IngressGroup, HTTPS with TLS 1.3 and a redirect, a certificate per host."""
    controller = _values(repo, "aws-load-balancer-controller", env)
    params_name = mapping(controller, "ingressClassParams").get("name")
    values_file = _values_file("aws-load-balancer-controller", env)
    if controller.get("ingressClass") != INGRESS_CLASS or not params_name:
        yield _problem(
            "MLOPS151",
            values_file,
            "aws-load-balancer-controller",
            "ingressClassParams.name",
            f"the IngressClass {INGRESS_CLASS!r} names no IngressClassParams: each Ingress would choose "
            "its own group, scheme and TLS policy",
        )
    params = [
        (f, d)
        for f, d in _objects(rendered, "IngressClassParams")
        if mapping(d, "metadata").get("name") == params_name
    ]
    if params_name and not params:
        yield _problem(
            "MLOPS151",
            values_file,
            "aws-load-balancer-controller",
            "ingressClassParams.name",
            f"names IngressClassParams {params_name!r}, which no kustomization of {env} renders",
        )
    for file, doc in params:
        spec = mapping(doc, "spec")
        if not mapping(spec, "group").get("name"):
            yield _problem(
                "MLOPS151",
                file,
                resource_name(doc),
                "spec.group.name",
                "sets no group: each Ingress would get an ALB of its own",
            )
        if str(spec.get("sslRedirectPort", "")) != "443":
            yield _problem(
                "MLOPS151",
                file,
                resource_name(doc),
                "spec.sslRedirectPort",
                'is not "443": plain HTTP would be answered instead of redirected',
            )
        if not str(spec.get("sslPolicy", "")).startswith(TLS13_POLICY):
            yield _problem(
                "MLOPS151",
                file,
                resource_name(doc),
                "spec.sslPolicy",
                f"is {spec.get('sslPolicy')!r}, not a {TLS13_POLICY}* policy",
            )
    for file, ingress in _objects(rendered, "Ingress"):
        yield from _check_ingress_tls(file, ingress)


def _check_ingress_tls(file: str, ingress: dict[str, Any]) -> Iterator[Problem]:
    name = resource_name(ingress)
    spec = mapping(ingress, "spec")
    if spec.get("ingressClassName") != INGRESS_CLASS:
        yield _problem(
            "MLOPS151",
            file,
            name,
            "spec.ingressClassName",
            f"is {spec.get('ingressClassName')!r}, not {INGRESS_CLASS!r}: the front door's "
            "TLS settings do not apply to it",
        )
    raw = mapping(mapping(ingress, "metadata"), "annotations").get(LISTEN_PORTS, "[]")
    try:
        ports = json.loads(raw)
    except ValueError:
        ports = []
    if not any(isinstance(p, dict) and p.get("HTTPS") == 443 for p in ports):
        yield _problem(
            "MLOPS151",
            file,
            name,
            f"metadata.annotations.{LISTEN_PORTS}",
            f"is {raw!r}: no HTTPS 443 listener, so no TLS and nowhere to redirect to",
        )
    tls_hosts = {h for t in spec.get("tls") or [] if isinstance(t, dict) for h in t.get("hosts") or []}
    for index, host, _service in _backends(ingress):
        if host not in tls_hosts:
            yield _problem(
                "MLOPS151",
                file,
                name,
                f"spec.rules[{index}].host",
                f"{host} is not under spec.tls: the controller attaches no certificate for it",
            )


# MLOPS152 ---------------------------------------------------------------------------------


def _argocd_signs_in(repo: Path, env: str) -> str:
    text = (repo / ARGOCD_MODULE).read_text() if (repo / ARGOCD_MODULE).is_file() else ""
    if not re.search(r'"oidc\.config"\s*=', text):
        return f"{ARGOCD_MODULE} sets no oidc.config for Argo CD"
    if not re.search(r'"admin\.enabled"\s*=\s*false', text):
        return f"{ARGOCD_MODULE} leaves Argo CD's local admin login on (admin.enabled)"
    return ""


def _workflows_sign_in(repo: Path, env: str) -> str:
    server = mapping(_values(repo, "argo-workflows", env), "server")
    file = _values_file("argo-workflows", env)
    if server.get("authModes") != ["sso"]:
        return f"{file} server.authModes is {server.get('authModes')!r}, not ['sso']"
    if mapping(mapping(server, "sso"), "rbac").get("enabled") is not True:
        return f"{file} server.sso.rbac.enabled is not true"
    return ""


def _grafana_signs_in(repo: Path, env: str) -> str:
    ini = mapping(mapping(_values(repo, "kube-prometheus-stack", env), "grafana"), "grafana.ini")
    file = _values_file("kube-prometheus-stack", env)
    if mapping(ini, "auth.generic_oauth").get("enabled") is not True:
        return f"{file} grafana.ini auth.generic_oauth.enabled is not true"
    if mapping(ini, "auth.anonymous").get("enabled") is not False:
        return f"{file} grafana.ini auth.anonymous.enabled is not false"
    if mapping(ini, "auth").get("disable_login_form") is not True:
        return f"{file} grafana.ini auth.disable_login_form is not true"
    return ""


def _container_says(
    rendered: Sequence[RenderedKustomization], namespace: str, deployment: str, needle: str
) -> bool:
    for _file, doc in _objects(rendered, "Deployment"):
        meta = mapping(doc, "metadata")
        if (meta.get("namespace"), meta.get("name")) != (namespace, deployment):
            continue
        for container in mapping(mapping(mapping(doc, "spec"), "template"), "spec").get("containers") or []:
            words = [*(container.get("command") or []), *(container.get("args") or [])]
            words += [str(e.get("name")) for e in container.get("env") or [] if isinstance(e, dict)]
            if any(needle in str(word) for word in words):
                return True
    return False


def _mlflow_signs_in(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> str:
    if not _container_says(rendered, "mlflow", "mlflow", "--app-name=basic-auth"):
        return "Deployment mlflow/mlflow does not run --app-name=basic-auth"
    return ""


def _gateway_checks_keys(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> str:
    if not _container_says(rendered, "gateway", "gateway", "GATEWAY_API_KEYS_FILE"):
        return "Deployment gateway/gateway reads no client keys (GATEWAY_API_KEYS_FILE)"
    return ""


SignInCheck = Callable[[Path, str, Sequence[RenderedKustomization]], str]

SIGN_INS: dict[str, tuple[Door, SignInCheck]] = {
    "argocd-oidc": (DOORS["argocd"], lambda repo, env, _r: _argocd_signs_in(repo, env)),
    "argo-workflows-sso": (DOORS["workflows"], lambda repo, env, _r: _workflows_sign_in(repo, env)),
    "grafana-oauth": (DOORS["grafana"], lambda repo, env, _r: _grafana_signs_in(repo, env)),
    "mlflow-basic-auth": (DOORS["mlflow"], _mlflow_signs_in),
    "api-keys": (DOORS["api"], _gateway_checks_keys),
}
"""`mlops.platform/sign-in` value -> the backend that signs people in itself, and how to tell it does
(an empty string: it does; else what is missing)."""


def check_sign_in(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS152: no Service bypasses the front door; every Ingress has a sign-in in front or behind."""
    for file, service in _objects(rendered, "Service"):
        kind = mapping(service, "spec").get("type", "ClusterIP")
        if kind in ("LoadBalancer", "NodePort"):
            yield _problem(
                "MLOPS152",
                file,
                resource_name(service),
                "spec.type",
                f"is {kind}: it is reached around the front door, with no sign-in in front of it",
            )
    for file, ingress in _objects(rendered, "Ingress"):
        annotations = mapping(mapping(ingress, "metadata"), "annotations")
        if (
            annotations.get(AUTH_TYPE) in ("oidc", "cognito")
            and annotations.get(AUTH_UNAUTHENTICATED) != "allow"
        ):
            continue
        yield from _check_backend_sign_in(
            repo, env, rendered, file, ingress, annotations.get(SIGN_IN_ANNOTATION)
        )


def _check_backend_sign_in(
    repo: Path,
    env: str,
    rendered: Sequence[RenderedKustomization],
    file: str,
    ingress: dict[str, Any],
    sign_in: str | None,
) -> Iterator[Problem]:
    name = resource_name(ingress)
    field = f"metadata.annotations.{SIGN_IN_ANNOTATION}"
    if sign_in not in SIGN_INS:
        yield _problem(
            "MLOPS152",
            file,
            name,
            field,
            f"is {sign_in!r}: no ALB authentication (auth-type oidc) and no backend known to sign "
            f"people in ({', '.join(sorted(SIGN_INS))})",
        )
        return
    door, signs_in = SIGN_INS[sign_in]
    namespace = mapping(ingress, "metadata").get("namespace", "")
    for index, _host, service in _backends(ingress):
        if (namespace, service) != (door.namespace, door.service):
            yield _problem(
                "MLOPS152",
                file,
                name,
                f"spec.rules[{index}]",
                f"leads to {namespace}/{service}, but {sign_in} signs people in at "
                f"{door.namespace}/{door.service} only",
            )
            return
    missing = signs_in(repo, env, rendered)
    if missing:
        yield _problem(
            "MLOPS152",
            file,
            name,
            field,
            f"is {sign_in}, but {missing}: the UI is open to anyone who reaches it",
        )
