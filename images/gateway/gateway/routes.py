"""The routing table: which named backends serve each model, with what share of the traffic.

The file (rendered by the overlay into the ConfigMap ``gateway-routes``) looks like::

    models:
      support-chat:
        backends:
          stable:
            url: http://support-chat-vllm.models.svc.cluster.local:8000
            weight: 90
          canary:
            url: http://support-chat-canary-vllm.models.svc.cluster.local:8000
            weight: 10

Weights are relative non-negative integers; a backend at weight 0 gets no traffic except as
the retry target when its siblings refuse connections. An optional ``routing`` block per model
picks the replica inside a backend (``gateway.balancer``, ``gateway.replicas``)::

    routing:
      replicas: dns              # resolve the url's Service's headless twin: each A record a pod
      policy: prefix-affinity    # or least-outstanding (the default)
      loadFactor: 1.25           # a replica keeps its prefixes while in-flight <= 1.25 x mean

Weights choose the backend first; the policy then chooses a replica of that backend.

Versions are deliberately absent: each backend's version is learnt from the backend itself
(see ``gateway.versions``), so ``mlops promote`` edits only the model's ``model-version.yaml``
and nothing here goes stale.
"""

from __future__ import annotations

import bisect
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from gateway.replica import EJECT_SECONDS

if TYPE_CHECKING:
    from gateway.replica import ReplicaPods

_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
# A Service's DNS name: <name>.<namespace>[.svc[.cluster.local]], a letter first (not an IP).
_SERVICE_HOST = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9.-]+)?$")
# routing.replicas: "service" sends to the url as one replica (the Service's ClusterIP picks the
# pod, once per connection); "dns" resolves the Service's headless twin (`headless_host`) to its
# ready pods and sends to them directly.
DISCOVERY_MODES = ("service", "dns")
HEADLESS_SUFFIX = "-headless"
# routing.policy: the base choice among a backend's replicas, and affinity on top of it.
POLICIES = ("least-outstanding", "prefix-affinity")
_ROUTING_FIELDS = {"replicas", "policy", "loadFactor"}
# loadFactor bounds: at 1 affinity gives way as soon as a replica has more than the mean (no
# affinity left under load); beyond 4 one replica may take most of a busy model's requests.
_LOAD_FACTOR_RANGE = (1.05, 4.0)


def headless_host(host: str) -> str:
    """The headless Service beside a Service: ``<name>-headless.<namespace>...``.

    Every model folder renders both from base/models/vllm (``service.yaml`` and
    ``service-headless.yaml``), canaries too, so a route keeps naming the plain Service (what
    ``mlops canary`` writes and MLOPS068 checks) and ``replicas: dns`` finds the pods beside it.
    The gateway asks DNS for the name as written, with no search path, so a short
    ``<name>.<namespace>[.svc]`` (which the Service mode resolves through the pod's search
    path) is completed to ``.svc.cluster.local`` here: asked bare, it would be NXDOMAIN, i.e. no pods.
    """
    name, dot, rest = host.partition(".")
    if rest and "." not in rest:
        rest += ".svc.cluster.local"
    elif rest.endswith(".svc") and rest.count(".") == 1:
        rest += ".cluster.local"
    return f"{name}{HEADLESS_SUFFIX}{dot}{rest}"


class RoutesError(ValueError):
    """The routes file is unusable; the message names the file and field."""


@dataclass
class Backend:
    """One named backend of a model (a Kubernetes Service in front of vLLM pods)."""

    model: str
    name: str
    url: str
    weight: int
    version: str = "unknown"
    reachable: bool = False
    ejected_until: float = 0.0
    # The pods behind the url (set by the gateway when it installs the table).
    replicas: ReplicaPods | None = field(default=None, repr=False, compare=False)

    def eject(self) -> None:
        """Take the backend out of rotation for a moment after a refused connection."""
        self.ejected_until = time.monotonic() + EJECT_SECONDS


@dataclass(frozen=True)
class Routing:
    """How a model's requests choose a replica inside the backend its weights chose."""

    replicas: str = "service"
    policy: str = "least-outstanding"
    load_factor: float = 1.25


@dataclass
class ModelRoute:
    """All backends of one model and the cumulative weights to pick among them."""

    model: str
    backends: list[Backend]
    routing: Routing = field(default_factory=Routing)
    _cumulative: list[int] = field(default_factory=list)
    _total: int = 0

    def __post_init__(self) -> None:
        running = 0
        for backend in self.backends:
            running += backend.weight
            self._cumulative.append(running)
        self._total = running

    def pick(self, point: float | None = None) -> Backend:
        """A backend chosen by weight, skipping ejected ones while others remain.

        ``point`` in [0, 1) picks the place in the cumulative weights (a conversation's own, so
        its turns stay on one backend: ``gateway.balancer.backend_point``); None draws at random.
        """
        backends = self.backends
        if len(backends) == 1:
            return backends[0]
        where = (random.random() if point is None else point) * self._total
        choice = backends[min(len(backends) - 1, bisect.bisect_right(self._cumulative, where))]
        if choice.ejected_until and choice.ejected_until > time.monotonic():
            alternative = self.alternative(choice)
            if alternative is not None:
                return alternative
        return choice

    def alternative(self, failed: Backend) -> Backend | None:
        """Another backend to retry on: the heaviest one not ejected, else any other one."""
        now = time.monotonic()
        others = [b for b in self.backends if b is not failed]
        if not others:
            return None
        healthy = [b for b in others if b.ejected_until <= now]
        return max(healthy or others, key=lambda b: b.weight)


def parse_routes(data: Any, source: str) -> dict[str, ModelRoute]:
    """Validate a loaded routes document and build the table.

    Raises:
        RoutesError: naming ``source`` and the offending field.
    """
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
        raise RoutesError(f"{source}: field 'models' must be a non-empty mapping of model name -> backends")
    unknown = set(data) - {"models"}
    if unknown:
        raise RoutesError(f"{source}: unknown top-level field(s) {sorted(unknown)}; only 'models' is allowed")
    table: dict[str, ModelRoute] = {}
    for model, spec in data["models"].items():
        where = f"{source}: models.{model}"
        if not isinstance(model, str) or not _NAME.match(model):
            raise RoutesError(f"{where}: model name must be lower-case letters, digits, '.', '_' or '-'")
        if not isinstance(spec, dict) or not isinstance(spec.get("backends"), dict) or not spec["backends"]:
            raise RoutesError(f"{where}.backends: must be a non-empty mapping of backend name -> url, weight")
        extra = set(spec) - {"backends", "routing"}
        if extra:
            raise RoutesError(f"{where}: unknown field(s) {sorted(extra)}; allowed: backends, routing")
        routing = parse_routing(spec.get("routing"), f"{where}.routing")
        backends = []
        for name, backend in spec["backends"].items():
            at = f"{where}.backends.{name}"
            if not isinstance(backend, dict):
                raise RoutesError(f"{at}: must be a mapping with 'url' and 'weight'")
            extra = set(backend) - {"url", "weight"}
            if extra:
                raise RoutesError(f"{at}: unknown field(s) {sorted(extra)}; allowed: url, weight")
            url, weight = backend.get("url"), backend.get("weight")
            if not isinstance(url, str) or not url.startswith("http://"):
                raise RoutesError(f"{at}.url: must be an http:// URL (the backend Service), got {url!r}")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                raise RoutesError(f"{at}.weight: must be an integer >= 0, got {weight!r}")
            if routing.replicas == "dns" and not _SERVICE_HOST.match(urlsplit(url).hostname or ""):
                raise RoutesError(
                    f"{at}.url: routing.replicas dns needs a Service name <name>.<namespace>[.svc...] "
                    f"as the host (its pods are found at <name>{HEADLESS_SUFFIX}), got {url!r}"
                )
            backends.append(Backend(model=model, name=str(name), url=url.rstrip("/"), weight=weight))
        if sum(b.weight for b in backends) == 0:
            raise RoutesError(f"{where}.backends: at least one weight must be > 0")
        table[model] = ModelRoute(model=model, backends=backends, routing=routing)
    return table


def parse_routing(spec: Any, where: str) -> Routing:
    """Validate one model's ``routing`` block (absent: one replica per backend, least outstanding).

    Raises:
        RoutesError: naming ``where`` and the offending field, with the allowed values.
    """
    if spec is None:
        return Routing()
    if not isinstance(spec, dict):
        raise RoutesError(f"{where}: must be a mapping with {sorted(_ROUTING_FIELDS)}")
    extra = set(spec) - _ROUTING_FIELDS
    if extra:
        raise RoutesError(f"{where}: unknown field(s) {sorted(extra)}; allowed: {sorted(_ROUTING_FIELDS)}")
    replicas = spec.get("replicas", Routing.replicas)
    if replicas not in DISCOVERY_MODES:
        raise RoutesError(f"{where}.replicas: must be one of {list(DISCOVERY_MODES)}, got {replicas!r}")
    policy = spec.get("policy", Routing.policy)
    if policy not in POLICIES:
        raise RoutesError(f"{where}.policy: must be one of {list(POLICIES)}, got {policy!r}")
    factor = spec.get("loadFactor", Routing.load_factor)
    low, high = _LOAD_FACTOR_RANGE
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not low <= factor <= high:
        raise RoutesError(f"{where}.loadFactor: must be a number from {low} to {high}, got {factor!r}")
    if "loadFactor" in spec and policy != "prefix-affinity":
        raise RoutesError(
            f"{where}.loadFactor: only applies to policy prefix-affinity (policy is {policy!r})"
        )
    return Routing(replicas=replicas, policy=policy, load_factor=float(factor))


def load_routes(path: Path) -> dict[str, ModelRoute]:
    """Read and validate the routes file.

    Raises:
        RoutesError: the file is missing, not YAML, or has a bad field.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise RoutesError(f"{path}: cannot read the routes file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesError(f"{path}: not valid YAML: {exc}") from exc
    return parse_routes(data, str(path))


def check_documents(texts: list[str], source: str) -> list[str | None]:
    """What the gateway would say of each routes document: its RoutesError's message, or None.

    A document that is not YAML is None here: whoever reads the file reports that.
    """
    verdicts: list[str | None] = []
    for text in texts:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            verdicts.append(None)
            continue
        try:
            parse_routes(data, source)
        except RoutesError as exc:
            verdicts.append(str(exc))
        else:
            verdicts.append(None)
    return verdicts


def main() -> int:
    """`python -m gateway.routes SOURCE`: a JSON list of routes documents on stdin, verdicts out.

    The mlops CLI judges the rendered routes with this very parser (MLOPS131), as a process:
    the gateway is an image, and nothing imports it as a library (docs/architecture.md).
    """
    source = sys.argv[1] if len(sys.argv) > 1 else "routes.yaml"
    json.dump(check_documents(json.load(sys.stdin), source), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
