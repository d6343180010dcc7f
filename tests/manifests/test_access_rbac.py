"""Who may do what once signed in: Argo CD's policy.csv, Argo Workflows' rbac-rules, Grafana's roles.

Each is evaluated with a small evaluator of its documented semantics against what the
repository renders or ships, for the identity provider's groups of docs/access.md:

- Argo CD (argo-cd docs/operator-manual/rbac.md and assets/model.conf): `p, subject, resource,
  action, object, effect` and `g, subject, role` lines; a request is allowed when some policy of
  the subject or a role it inherits (transitively) matches resource, action and object as globs
  (`*` crosses `/`) with effect allow, and none with effect deny; the built-in roles
  role:readonly (get on everything) and role:admin (everything) come with Argo CD;
  `policy.default` applies to everyone and is empty here.
- Argo Workflows (docs/argo-server-sso.md, "SSO RBAC"): argo-server tries the ServiceAccounts of
  its namespace that carry `workflows.argoproj.io/rbac-rule`, highest
  `rbac-rule-precedence` first, evaluates each rule as an expr expression over the token's
  claims, and uses the first that is true; the person then has that ServiceAccount's RBAC.
- Grafana (auth.generic_oauth): `role_attribute_path` is a JMESPath expression over the
  userinfo/ID token; with `role_attribute_strict` a result that is not a role refuses sign-in.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml

ADMINS, ENGINEERS, VIEWERS = "mlops-platform-admins", "mlops-ml-engineers", "mlops-viewers"
STRANGER = "some-other-team"
POLICY_CSV = "terraform/modules/argocd-bootstrap/rbac-policy.csv"

# argo-cd assets/builtin-policy.csv: what role:readonly and role:admin grant, by resource.
_ARGOCD_RESOURCES = (
    "applications", "applicationsets", "certificates", "clusters", "repositories",
    "write-repositories", "projects", "accounts", "gpgkeys", "logs", "exec", "extensions",
)  # fmt: skip
BUILTIN = [
    ("role:readonly", r, "get", "*", "allow") for r in _ARGOCD_RESOURCES if r not in ("exec", "extensions")
]
BUILTIN += [("role:admin", r, "*", "*", "allow") for r in _ARGOCD_RESOURCES]


@dataclass
class ArgoCdPolicy:
    """policy.csv read the way Argo CD's casbin model reads it."""

    policies: list[tuple[str, str, str, str, str]]
    grants: dict[str, set[str]]
    default: str = ""

    @classmethod
    def load(cls, text: str) -> ArgoCdPolicy:
        policies = list(BUILTIN)
        grants: dict[str, set[str]] = {"role:admin": {"role:readonly"}}
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [f.strip() for f in line.split(",")]
            if fields[0] == "p":
                assert len(fields) == 6, f"{POLICY_CSV}: a p line has 5 fields: {raw!r}"
                policies.append((fields[1], fields[2], fields[3], fields[4], fields[5]))
            elif fields[0] == "g":
                assert len(fields) == 3, f"{POLICY_CSV}: a g line has 2 fields: {raw!r}"
                grants.setdefault(fields[1], set()).add(fields[2])
            else:
                raise AssertionError(f"{POLICY_CSV}: unknown line {raw!r}")
        return cls(policies, grants)

    def _subjects(self, groups: list[str]) -> set[str]:
        found = set(groups) | ({self.default} if self.default else set())
        todo = list(found)
        while todo:
            for role in self.grants.get(todo.pop(), ()):
                if role not in found:
                    found.add(role)
                    todo.append(role)
        return found

    def allows(self, groups: list[str], resource: str, action: str, obj: str) -> bool:
        subjects = self._subjects(groups)
        effects = {
            effect
            for subject, res, act, pattern, effect in self.policies
            if subject in subjects
            and fnmatch.fnmatchcase(resource, res)
            and fnmatch.fnmatchcase(action, act)
            and fnmatch.fnmatchcase(obj, pattern)
        }
        return "allow" in effects and "deny" not in effects


@pytest.fixture(scope="module")
def argocd(repo_root: Path) -> ArgoCdPolicy:
    return ArgoCdPolicy.load((repo_root / POLICY_CSV).read_text())


def _template(repo_root: Path, appset: str) -> dict[str, Any]:
    return yaml.safe_load((repo_root / "apps" / f"{appset}.yaml").read_text())["spec"]["template"]


def _app_object(repo_root: Path, appset: str, env: str, basename: str) -> str:
    """<project>/<name> of the Application `appset` generates for `env` and directory `basename`."""
    template = _template(repo_root, appset)
    name = template["metadata"]["name"]
    name = name.replace("{{.metadata.labels.env}}", env).replace("{{.path.basename}}", basename)
    assert "{{" not in name, f"apps/{appset}.yaml: the test does not know how to fill {name!r}"
    return f"{template['spec']['project']}/{name}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_argocd_ml_engineers_sync_model_apps_only(repo_root: Path, argocd: ArgoCdPolicy, env: str) -> None:
    models = sorted(p.name for p in (repo_root / "overlays" / env / "models").iterdir() if p.is_dir())
    assert models, f"overlays/{env}/models has no model"
    for model in models:
        app = _app_object(repo_root, "models", env, model)
        assert argocd.allows([ENGINEERS], "applications", "sync", app), app
        assert argocd.allows([ADMINS], "applications", "sync", app), app
        assert not argocd.allows([VIEWERS], "applications", "sync", app), app
        assert argocd.allows([VIEWERS], "applications", "get", app), app
        assert not argocd.allows([STRANGER], "applications", "get", app), app
    for appset, basename in (("workflows", "workflows"), ("platform", "platform"), ("gateway", "gateway")):
        app = _app_object(repo_root, appset, env, basename)
        assert not argocd.allows([ENGINEERS], "applications", "sync", app), app
        assert argocd.allows([ENGINEERS], "applications", "get", app), app
        assert argocd.allows([ADMINS], "applications", "sync", app), app


def test_argocd_only_admins_change_projects_and_clusters(argocd: ArgoCdPolicy) -> None:
    for resource, action, obj in (("projects", "update", "ml-serving"), ("clusters", "delete", "*"),
                                  ("applications", "delete", "ml-serving/prod-model-support-chat"),
                                  ("exec", "create", "ml-serving/prod-model-support-chat")):  # fmt: skip
        assert argocd.allows([ADMINS], resource, action, obj)
        assert not argocd.allows([ENGINEERS], resource, action, obj), (resource, action, obj)
        assert not argocd.allows([VIEWERS], resource, action, obj), (resource, action, obj)


# Argo Workflows -------------------------------------------------------------------------------

_TERM = re.compile(r"^'([^']+)' in groups$")


def _rule_matches(rule: str, groups: list[str]) -> bool:
    """An rbac-rule of the form `'<group>' in groups` joined by `||` / `&&` (the subset this repo writes)."""
    result = False
    for alternative in rule.split("||"):
        terms = [t.strip() for t in alternative.split("&&")]
        matched = []
        for term in terms:
            found = _TERM.match(term)
            assert found, (
                f"rbac-rule {rule!r}: {term!r} is outside the evaluated subset ('<group>' in groups)"
            )
            matched.append(found.group(1) in groups)
        result = result or all(matched)
    return result


def _sso_account(docs: list[dict[str, Any]], groups: list[str]) -> str | None:
    accounts = [
        d
        for d in docs
        if d["kind"] == "ServiceAccount"
        and "workflows.argoproj.io/rbac-rule" in d["metadata"].get("annotations", {})
    ]
    assert accounts, "no ServiceAccount carries workflows.argoproj.io/rbac-rule"
    accounts.sort(
        key=lambda d: int(
            d["metadata"]["annotations"].get("workflows.argoproj.io/rbac-rule-precedence", "0")
        ),
        reverse=True,
    )
    for account in accounts:
        if _rule_matches(account["metadata"]["annotations"]["workflows.argoproj.io/rbac-rule"], groups):
            return account["metadata"]["name"]
    return None


def _may(docs: list[dict[str, Any]], account: str | None, verb: str, resource: str, group: str) -> bool:
    if account is None:
        return False
    roles = {
        b["roleRef"]["name"]
        for b in docs
        if b["kind"] == "RoleBinding"
        and any(s["kind"] == "ServiceAccount" and s["name"] == account for s in b["subjects"])
    }
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for d in docs
        if d["kind"] == "Role" and d["metadata"]["name"] in roles
        for rule in d["rules"]
    )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_workflows_who_may_submit_train_and_promote(rendered, env: str) -> None:
    docs = rendered.docs(f"overlays/{env}/workflows")
    template = [
        d for d in docs if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"] == "train-and-promote"
    ]
    assert template, "train-and-promote is not rendered"
    # Submitting train-and-promote = reading the template and creating a Workflow that references it.
    for groups, may_submit in (([ADMINS], True), ([ENGINEERS], True), ([VIEWERS, STRANGER], False)):
        account = _sso_account(docs, groups)
        submits = _may(docs, account, "create", "workflows", "argoproj.io") and _may(
            docs, account, "get", "workflowtemplates", "argoproj.io"
        )
        assert submits is may_submit, (groups, account)
    viewer = _sso_account(docs, [VIEWERS])
    assert viewer == "sso-viewer"
    assert _may(docs, viewer, "get", "pods/log", "")
    assert not _may(docs, viewer, "delete", "workflows", "argoproj.io")
    assert _sso_account(docs, [STRANGER]) is None, "a person in none of the groups must get no ServiceAccount"


# Grafana ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_grafana_roles_by_group(repo_root: Path, env: str) -> None:
    values = yaml.safe_load(
        (repo_root / f"apps/upstream/kube-prometheus-stack/values-{env}.yaml").read_text()
    )
    oauth = values["grafana"]["grafana.ini"]["auth.generic_oauth"]
    assert oauth["role_attribute_strict"] is True
    expression = jmespath.compile(oauth["role_attribute_path"])
    for groups, role in (([ADMINS], "Admin"), ([ENGINEERS], "Editor"), ([VIEWERS], "Viewer"),
                         ([VIEWERS, ENGINEERS], "Editor"), ([STRANGER], None)):  # fmt: skip
        found = expression.search({"groups": groups})
        assert (found if found in ("Admin", "Editor", "Viewer") else None) == role, (groups, found)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_grafana_sidecars_never_need_the_basic_auth_it_refuses(repo_root: Path, env: str) -> None:
    # The grafana chart's sidecars reload through /api/admin/provisioning/*/reload with the
    # admin's basic auth (sidecar.*.reloadURL, skipReload: false by default); with
    # [auth.basic] off each call is a 401 and a datasource added later never loads.
    grafana = yaml.safe_load(
        (repo_root / f"apps/upstream/kube-prometheus-stack/values-{env}.yaml").read_text()
    )["grafana"]
    ini = grafana["grafana.ini"]
    assert ini["auth.generic_oauth"]["auto_login"] is True, "the login page would still show an SSO button"
    if ini.get("auth.basic", {}).get("enabled", True):
        return
    sidecar = grafana["sidecar"]
    for kind in ("dashboards", "datasources"):
        assert sidecar.get(kind, {}).get("skipReload") is True, f"sidecar.{kind}.skipReload"
    assert sidecar["datasources"].get("initDatasources") is True, (
        "datasources must load before Grafana starts"
    )
