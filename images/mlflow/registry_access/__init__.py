"""Who may write what in the platform's MLflow: the basic-auth app's login plus the platform's roles.

MLflow's basic-auth app (`mlflow server --app-name basic-auth`) authenticates every request and
grants per-resource permissions (READ, EDIT, MANAGE). Those cannot say what the platform needs:
creating a model version and moving an alias both need EDIT on the registered model
(mlflow/server/auth/__init__.py: `validate_can_create_model_version` and
`validate_can_set_model_or_prompt_version_alias` both require `update` on it), so the trainer
that registers versions could also move `prod`. This module is the basic-auth app's
`authorization_function` (basic_auth.ini, `[mlflow] authorization_function =
registry_access:authenticate`): it runs MLflow's own basic-auth check, then refuses writes by
role. The roles come from the same file's `[registry_access]` section::

    [registry_access]
    trainers = trainer        # every write (runs, artifacts, versions, gate tags), alias `candidate`
    promoters = git-bot       # set and delete every other alias (`dev`, `prod`, `<env>-canary`)

Any authenticated user reads; anonymous requests get MLflow's 401. MLflow admins (the
bootstrap user, kept for break-glass and user management) pass through to MLflow's checks.
"""

from __future__ import annotations

import configparser
import functools
import os
from typing import Any

CANDIDATE_ALIAS = "candidate"
"""The alias the trainer moves to each version it registers.

mlops.conventions.registry_names spells it too.
"""

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ALIAS_PATH_SUFFIX = "/mlflow/registered-models/alias"
# MLflow answers some reads to POST: searches and the bulk metric history (protos/service.proto).
_READ_POST_SUFFIXES = ("/search", "/get-history-bulk-interval")


@functools.lru_cache(maxsize=1)
def roles() -> dict[str, frozenset[str]]:
    """Return `trainers` and `promoters` from `[registry_access]` of `$MLFLOW_AUTH_CONFIG_PATH`.

    Raises:
        RuntimeError: the file has no `[registry_access]` section: without roles nobody could
            write, and an empty role would fail open on a typo, so the server refuses to start.
    """
    path = os.environ.get("MLFLOW_AUTH_CONFIG_PATH", "")
    config = configparser.ConfigParser(inline_comment_prefixes=("#",))
    config.read(path)
    if not config.has_section("registry_access"):
        raise RuntimeError(
            f"{path or 'MLFLOW_AUTH_CONFIG_PATH (unset)'}: no [registry_access] section: "
            "name the trainers and promoters (images/mlflow/registry_access)"
        )
    section = config["registry_access"]
    return {
        role: frozenset(n.strip() for n in section.get(role, "").split(",") if n.strip())
        for role in ("trainers", "promoters")
    }


def _is_read(method: str, path: str) -> bool:
    return method in _READ_METHODS or (method == "POST" and path.endswith(_READ_POST_SUFFIXES))


def _alias_of(request: Any) -> str:
    body = request.get_json(silent=True) if request.method != "DELETE" else None
    return str((body or {}).get("alias") or request.args.get("alias") or "")


def refusal(username: str, method: str, path: str, alias: str | None) -> str | None:
    """Return why `username` may not make this request, or None when its role allows it.

    Args:
        username: the authenticated (non-admin) user.
        method: the HTTP method.
        path: the request path.
        alias: the alias named, for the alias endpoint; None for any other path.
    """
    if _is_read(method, path):
        return None
    table = roles()
    if alias is not None:
        if username in table["promoters"]:
            return None
        if alias == CANDIDATE_ALIAS and username in table["trainers"]:
            return None
        return (
            f"user {username!r} may not move alias {alias!r}: only the promotion identity "
            f"({', '.join(sorted(table['promoters'])) or 'none configured'}) moves environment aliases "
            "(mlops promote / rollback / registry sync-alias)"
        )
    if username in table["trainers"]:
        return None
    return (
        f"user {username!r} may not write to the registry ({method} {path}): only the trainer identity "
        f"({', '.join(sorted(table['trainers'])) or 'none configured'}) records runs, versions, gate results"
    )


def authenticate() -> Any:
    """MLflow's basic-auth check, then the platform's write roles; a refusal is a 403 naming the rule."""
    from flask import make_response, request
    from mlflow.server import auth

    result = auth.authenticate_request_basic_auth()
    if not hasattr(result, "username"):
        return result  # MLflow's 401 response
    if auth.store.get_user(result.username).is_admin:
        return result
    path = request.path
    alias = _alias_of(request) if path.endswith(_ALIAS_PATH_SUFFIX) else None
    reason = refusal(result.username, request.method, path, alias)
    if reason is None:
        return result
    response = make_response(reason + "\n")
    response.status_code = 403
    response.mimetype = "text/plain"
    return response
