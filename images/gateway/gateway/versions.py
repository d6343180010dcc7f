"""Learn which model version each backend serves, from the backend's own ``/v1/models``.

Why ask the backend: the version lives in exactly one file per model and environment
(``overlays/<env>/models/<model>/model-version.yaml``), which ``mlops promote`` edits and
kustomize copies into the vLLM Deployment. A version written into the routes file too would
be a second copy that promote would have to keep in step. Response headers cannot carry it
(vLLM adds none of its own) and reading pod labels would need Kubernetes API rights for the
gateway. vLLM lists every ``--served-model-name`` on ``/v1/models``, so the model Deployment
serves its model under two names, ``<model>`` (what clients ask for) and ``<model>:<version>``
(filled in from ``model-version.yaml``); the gateway reads the version from the second.
It refreshes every few seconds, so a promoted backend's metrics change label once its new
pods answer.
"""

from __future__ import annotations

import asyncio

import orjson

from gateway.routes import Backend
from gateway.upstream import BackendPool

UNKNOWN = "unknown"


def version_from_models(model: str, payload: bytes) -> str | None:
    """The version in a ``/v1/models`` answer (an id ``<model>:<version>``), or None."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    prefix = model + ":"
    for card in data.get("data", []) if isinstance(data, dict) else []:
        ident = card.get("id") if isinstance(card, dict) else None
        if isinstance(ident, str) and ident.startswith(prefix) and len(ident) > len(prefix):
            return ident[len(prefix) :]
    return None


async def refresh_backend(backend: Backend, pool: BackendPool, timeout: float) -> None:
    """Ask one backend for its models; update its version and reachability."""
    try:
        response = await asyncio.wait_for(pool.request(b"GET", b"/v1/models"), timeout)
        body = await asyncio.wait_for(response.read(), timeout)
    except Exception:  # noqa: BLE001 - any failure means "not reachable now"
        backend.reachable = False
        return
    backend.reachable = response.status == 200
    if backend.reachable:
        backend.version = version_from_models(backend.model, body) or UNKNOWN
