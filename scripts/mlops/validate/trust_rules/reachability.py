"""MLOPS080: who reaches whom under the rendered NetworkPolicies equals docs/security.md's matrix.

The intended matrix is written once, as two tables in docs/security.md ("Reachability
matrix"): the peers (a namespace and pod labels, or an address outside the cluster, and the
ports each listens on) and the edges (from, to, ports). This module reads those tables,
evaluates every rendered NetworkPolicy of an environment the way Kubernetes defines them, and
reports each edge that is allowed but not listed (naming the policy and rule that admit it)
and each listed edge that is blocked (naming the matrix row). It also requires a default-deny
policy (every pod, Ingress and Egress) in each namespace the repository renders.

Semantics, from kubernetes/kubernetes `pkg/apis/networking/types.go` (NetworkPolicySpec,
NetworkPolicyPeer, NetworkPolicyPort) and `pkg/apis/networking/v1/defaults.go`
(SetDefaults_NetworkPolicy), and https://kubernetes.io/docs/concepts/services-networking/network-policies/:
- a pod is isolated for a direction when a policy in its namespace selects it and has that
  direction in `policyTypes`; without `policyTypes`, Ingress always, Egress when `egress` is
  non-empty;
- traffic is allowed when the source's egress and the destination's ingress both allow it;
  a non-isolated side allows everything; rules of several policies add up;
- a rule without `from`/`to` matches every peer, without `ports` every port;
- a peer with only `podSelector` selects pods of the policy's namespace; with only
  `namespaceSelector`, every pod of the selected namespaces; with both, those pods of those
  namespaces; `ipBlock` matches an address in `cidr` and in none of `except`;
- a port's protocol defaults to TCP, a missing `port` means every port, `endPort` makes a range,
  a named port is looked up among the destination's named ports;
- every namespace carries `kubernetes.io/metadata.name: <name>`.
On EKS (VPC CNI) pods get addresses of the VPC, so an `ipBlock` that holds the VPC's range
matches pods too: each pod peer carries such an address and `ipBlock` rules apply to it.
A pod reaches the API server through the `kubernetes` Service, and the VPC CNI's network
policy agent matches egress against the Service address before DNAT
(aws/amazon-network-policy-controller-k8s `pkg/resolvers/endpoints.go`,
getMatchingServiceClusterIPs), so the matrix's api-server peer has that address: an address
cell `service_ipv4_cidr.1` is the first address of terraform/modules/eks's
`service_ipv4_cidr` (read from terraform, the one place that sets it).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import parse, unquote
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.pod_specs import ARGO_WORKFLOW_KINDS
from mlops.validate.objects.problems import Problem, mapping
from mlops.validate.objects.selectors import selector_matches
from mlops.validate.objects.violations import HINTS

POLICY_ID = "MLOPS080"
MATRIX_FILE = "docs/security.md"
NAME_LABEL = "kubernetes.io/metadata.name"
POD_ADDRESS = "10.10.64.20"
"""The address every pod peer is given: inside both environments' VPC ranges (VPC CNI pod IPs)."""
ELSEWHERE = "default"
"""A namespace the repository does not render: where a pod nobody planned for runs."""
UNGUARDED = ("kube-system",)
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
"""The label Argo Workflows puts on every pod of a workflow."""
_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
"""Namespaces the repository renders objects into but leaves without default deny (EKS system pods)."""

SERVICE_CIDR_FILE = "terraform/modules/eks/variables.tf"
SERVICE_ADDRESS = "service_ipv4_cidr.1"
"""A matrix address cell meaning the `kubernetes` Service address: first address of the Service range."""

_PEERS_BLOCK = re.compile(r"<!-- reachability:peers -->\n(.*?)<!-- /reachability:peers -->", re.S)
_EDGES_BLOCK = re.compile(r"<!-- reachability:edges -->\n(.*?)<!-- /reachability:edges -->", re.S)


class MatrixError(ValueError):
    """docs/security.md's reachability tables are missing or malformed."""


@dataclass(frozen=True)
class Port:
    """A port a peer listens on."""

    number: int
    protocol: str = "TCP"
    name: str = ""

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


@dataclass(frozen=True)
class Peer:
    """One row of the peers table: a kind of pod (namespace + labels) or an address outside."""

    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...]
    address: str
    ports: tuple[Port, ...]
    shown: str = ""
    """How problem lines name a rendered workload standing in for this peer (`Deployment/x as vllm`)."""

    @property
    def title(self) -> str:
        """The peer as problem lines name it."""
        return f"{self.shown} (as {self.name})" if self.shown else self.name

    @property
    def is_pod(self) -> bool:
        """Whether the peer is a pod (NetworkPolicies select it) rather than an address outside."""
        return self.namespace is not None


@dataclass(frozen=True)
class Edge:
    """One intended edge of the matrix: `source` may open connections to `target` on `ports`."""

    source: str
    target: str
    ports: tuple[Port, ...] | None
    """None: every port the target listens on."""
    line: int


@dataclass
class Matrix:
    """The intended reachability: peers and edges, as docs/security.md lists them."""

    peers: dict[str, Peer]
    edges: list[Edge] = field(default_factory=list)
    _by_target: dict[str, list[Edge]] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=0, repr=False)

    def edges_to(self, target: str) -> list[Edge]:
        """The rows whose target is `target` (indexed: the check asks for every pair of peers)."""
        if self._indexed != len(self.edges):  # rows added since the index was built
            self._by_target = {}
            for edge in self.edges:
                self._by_target.setdefault(edge.target, []).append(edge)
            self._indexed = len(self.edges)
        return self._by_target.get(target, [])

    def required(self, source: str, target: str, port: Port) -> bool:
        """Whether a row names `source` itself (a requirement; a `*` row only permits)."""
        return any(
            edge.source == source and (edge.ports is None or _same_port(port, edge.ports))
            for edge in self.edges_to(target)
        )

    def intended(self, source: str, target: str, port: Port) -> bool:
        """Whether the matrix lists `source` reaching `target` on `port`."""
        return any(
            edge.source in ("*", source) and (edge.ports is None or _same_port(port, edge.ports))
            for edge in self.edges_to(target)
        )


def _same_port(port: Port, ports: Sequence[Port]) -> bool:
    return any(p.number == port.number and p.protocol == port.protocol for p in ports)


def _table_rows(block: str, columns: int, first_line: int) -> Iterator[tuple[int, list[str]]]:
    for offset, line in enumerate(block.splitlines()):
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        if cells[0] in ("peer", "from"):
            continue
        if len(cells) < columns:
            where = f"{MATRIX_FILE}:{first_line + offset}"
            raise MatrixError(f"{where}: expected {columns} columns, got {line!r}")
        yield first_line + offset, cells


def _parse_ports(text: str, where: str) -> tuple[Port, ...]:
    ports: list[Port] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(?:(?P<name>[a-z0-9-]+)=)?(?P<number>\d+)(?:/(?P<proto>TCP|UDP|SCTP))?", item)
        if not match:
            raise MatrixError(f"{where}: port {item!r} is not NUMBER[/PROTOCOL] or NAME=NUMBER[/PROTOCOL]")
        ports.append(Port(int(match["number"]), match["proto"] or "TCP", match["name"] or ""))
    return tuple(ports)


def api_service_address(repo: Path) -> str:
    """The API server's `kubernetes` Service address: the first address of terraform's service_ipv4_cidr.

    Raises:
        MatrixError: the variable or its default is missing, or is not a CIDR.
    """
    path = repo / SERVICE_CIDR_FILE
    blocks = parse(path).get("variable", []) if path.is_file() else []
    variable = next(
        (v for block in blocks for k, v in block.items() if unquote(k) == "service_ipv4_cidr"), None
    )
    default = unquote((variable or {}).get("default"))
    try:
        return str(next(ipaddress.ip_network(str(default)).hosts()))
    except (ValueError, StopIteration):
        raise MatrixError(
            f"{SERVICE_CIDR_FILE}: variable service_ipv4_cidr has no CIDR default ({default!r}); the "
            f"matrix's {SERVICE_ADDRESS} address (the API server's Service) is read from it"
        ) from None


def load_matrix(repo: Path) -> Matrix:
    """Read the peers and edges tables of docs/security.md.

    Raises:
        MatrixError: a table is missing, a row is malformed, or an edge names an unknown peer.
    """
    path = repo / MATRIX_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    peers_block, edges_block = _PEERS_BLOCK.search(text), _EDGES_BLOCK.search(text)
    if not peers_block or not edges_block:
        raise MatrixError(
            f"{MATRIX_FILE}: no reachability tables (<!-- reachability:peers --> and "
            "<!-- reachability:edges --> blocks)"
        )
    peers: dict[str, Peer] = {}
    first = text.count("\n", 0, peers_block.start(1)) + 1
    for line, (name, namespace, labels, address, ports, *_rest) in _table_rows(peers_block[1], 5, first):
        where = f"{MATRIX_FILE}:{line}"
        pairs = tuple(
            tuple(pair.strip().split("=", 1)) for pair in labels.split(",") if pair.strip() and pair != "-"
        )
        if any(len(pair) != 2 for pair in pairs):
            raise MatrixError(f"{where}: labels {labels!r} are not key=value, key=value")
        peers[name] = Peer(
            name,
            None if namespace == "-" else namespace,
            pairs,  # type: ignore[arg-type]
            _address(repo, address),
            _parse_ports(ports if ports != "-" else "", where),
        )
    matrix = Matrix(peers)
    first = text.count("\n", 0, edges_block.start(1)) + 1
    for line, (source, target, ports, *_rest) in _table_rows(edges_block[1], 3, first):
        where = f"{MATRIX_FILE}:{line}"
        for name in (source, target):
            if name != "*" and name not in peers and not name.endswith("/*"):
                raise MatrixError(f"{where}: edge names peer {name!r}, which the peers table does not define")
        matrix.edges.append(Edge(source, target, None if ports == "*" else _parse_ports(ports, where), line))
    return matrix


def _address(repo: Path, cell: str) -> str:
    if cell == "-":
        return POD_ADDRESS
    return api_service_address(repo) if cell == SERVICE_ADDRESS else cell


# --- Kubernetes NetworkPolicy semantics ------------------------------------------------------


def selects(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches `labels` (null matches nothing, empty matches everything)."""
    return isinstance(selector, dict) and selector_matches(selector, labels)


@dataclass(frozen=True)
class Policy:
    """A rendered NetworkPolicy and where it came from."""

    file: str
    namespace: str
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        """`NetworkPolicy/<name>`, as problem lines print a resource."""
        return f"NetworkPolicy/{mapping(self.doc, 'metadata').get('name', '(no name)')}"

    @property
    def spec(self) -> dict[str, Any]:
        """The policy's spec (empty when missing)."""
        return mapping(self.doc, "spec")

    def types(self) -> set[str]:
        """policyTypes, defaulted as SetDefaults_NetworkPolicy does."""
        given = self.spec.get("policyTypes")
        if given:
            return set(given)
        return {"Ingress", "Egress"} if self.spec.get("egress") else {"Ingress"}

    def applies_to(self, peer: Peer, direction: str) -> bool:
        """Whether this policy isolates `peer` for `direction` ("Ingress" or "Egress")."""
        return (
            peer.namespace == self.namespace
            and direction in self.types()
            and selects(self.spec.get("podSelector"), dict(peer.labels))
        )


@dataclass
class Cluster:
    """The rendered policies and namespace labels of one environment."""

    policies: list[Policy]
    namespace_labels: dict[str, dict[str, str]]
    _isolating: dict[tuple[Peer, str], list[Policy]] = field(default_factory=dict, repr=False)

    def labels_of(self, namespace: str) -> dict[str, str]:
        """A namespace's labels, with the name label the API server sets on every namespace."""
        return {**self.namespace_labels.get(namespace, {}), NAME_LABEL: namespace}

    def _peer_matches(self, rule_peer: dict[str, Any], policy: Policy, other: Peer) -> bool:
        if "ipBlock" in rule_peer:
            block = mapping(rule_peer, "ipBlock")
            excepted = tuple(str(c) for c in block.get("except") or [])
            return _in_block(other.address, str(block.get("cidr")), excepted)
        if not other.is_pod:
            return False
        pod_selector, namespace_selector = rule_peer.get("podSelector"), rule_peer.get("namespaceSelector")
        if namespace_selector is None:
            in_namespace = other.namespace == policy.namespace
        else:
            in_namespace = selects(namespace_selector, self.labels_of(str(other.namespace)))
        return in_namespace and (pod_selector is None or selects(pod_selector, dict(other.labels)))

    @staticmethod
    def _port_matches(rule_ports: Any, port: Port) -> bool:
        if not rule_ports:
            return True
        for item in rule_ports:
            if str(item.get("protocol") or "TCP") != port.protocol:
                continue
            given = item.get("port")
            if given is None:
                return True
            if isinstance(given, str) and not given.isdigit():
                if port.name and given == port.name:
                    return True
                continue
            low = int(given)
            high = int(item.get("endPort") or low)
            if low <= port.number <= high:
                return True
        return False

    def admitting(self, owner: Peer, other: Peer, port: Port, direction: str) -> tuple[bool, str | None]:
        """Whether `owner`'s policies let traffic with `other` on `port` through in `direction`.

        Returns (allowed, where): `where` names the policy rule that admits it, None when
        `owner` is not isolated in that direction (everything is allowed) or nothing admits it.
        """
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        if (owner, direction) not in self._isolating:
            self._isolating[owner, direction] = (
                [p for p in self.policies if p.applies_to(owner, direction)] if owner.is_pod else []
            )
        isolating = self._isolating[owner, direction]
        if not isolating:
            return True, None
        for policy in isolating:
            for index, rule in enumerate(policy.spec.get(key) or []):
                if not isinstance(rule, dict):
                    continue
                rule_peers = rule.get(peers_key)
                matched = not rule_peers or any(
                    self._peer_matches(p, policy, other) for p in rule_peers if isinstance(p, dict)
                )
                if matched and self._port_matches(rule.get("ports"), port):
                    return True, f"{policy.file}\0{policy.name}\0spec.{key}[{index}]"
        return False, None

    def pod_selectors(self) -> list[Any]:
        """Every pod selector of the policies (whom they isolate and the pods their rules name)."""
        found: list[Any] = []
        for policy in self.policies:
            found.append(policy.spec.get("podSelector"))
            for key, peers_key in (("ingress", "from"), ("egress", "to")):
                for rule in policy.spec.get(key) or []:
                    for rule_peer in (rule.get(peers_key) or []) if isinstance(rule, dict) else []:
                        if isinstance(rule_peer, dict) and "podSelector" in rule_peer:
                            found.append(rule_peer["podSelector"])
        unique: dict[str, Any] = {repr(selector): selector for selector in found}
        return list(unique.values())

    def guarded(self, peer: Peer) -> bool:
        """Whether some policy applies to `peer` at all (its namespace is under NetworkPolicy)."""
        return peer.is_pod and any(p.namespace == peer.namespace for p in self.policies)


@functools.lru_cache(maxsize=1024)
def _in_block(address: str, cidr: str, excepted: tuple[str, ...]) -> bool:
    """Whether `address` is in `cidr` and in none of `excepted` (an unparsable CIDR matches nothing)."""
    try:
        ip = ipaddress.ip_address(address)
        inside = ip in ipaddress.ip_network(cidr, strict=False)
        return inside and not any(ip in ipaddress.ip_network(c, strict=False) for c in excepted)
    except ValueError:
        return False


def _cluster(rendered: Sequence[RenderedKustomization]) -> tuple[Cluster, dict[str, str]]:
    policies: list[Policy] = []
    namespaces: dict[str, dict[str, str]] = {}
    namespace_files: dict[str, str] = {}
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            meta = mapping(doc, "metadata")
            if doc.get("kind") == "NetworkPolicy":
                policies.append(Policy(result.path, str(meta.get("namespace") or "default"), doc))
            elif doc.get("kind") == "Namespace" and doc.get("apiVersion") == "v1":
                name = str(meta.get("name"))
                namespaces[name] = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
                namespace_files[name] = result.path
    return Cluster(policies, namespaces), namespace_files


def _all_peers(matrix: Matrix, namespaces: Sequence[str]) -> list[Peer]:
    """The matrix's peers plus, per namespace, an unlabelled pod: any pod nobody planned for."""
    peers = dict(matrix.peers)
    for namespace in [*namespaces, ELSEWHERE]:
        name = f"{namespace}/*"
        if name not in peers:
            peers[name] = Peer(name, namespace, (), POD_ADDRESS, ())
    return list(peers.values())


def _carries(labels: dict[str, str], key: str, value: str) -> bool:
    """Whether `labels` has `key` with `value` (a matrix value `*` accepts any)."""
    return key in labels and value in ("*", labels[key])


def _alias(matrix: Matrix, namespace: str, labels: dict[str, str]) -> str:
    """The matrix peer a rendered pod is: the most specific one whose labels it carries, else `<ns>/*`."""
    fitting = [
        peer
        for peer in matrix.peers.values()
        if peer.namespace == namespace and peer.labels and all(_carries(labels, k, v) for k, v in peer.labels)
    ]
    return max(fitting, key=lambda peer: len(peer.labels)).name if fitting else f"{namespace}/*"


def _pod_templates(doc: dict[str, Any]) -> Iterator[tuple[dict[str, str], list[dict[str, Any]]]]:
    """(labels, containers) of each pod a rendered object makes, as far as its manifest says."""
    kind = doc.get("kind")
    if kind in _TEMPLATE_PATHS:
        template: Any = doc
        for key in _TEMPLATE_PATHS[str(kind)]:
            template = mapping(template, key)
        spec = mapping(template, "spec")
        yield dict(mapping(template, "metadata").get("labels") or {}), list(spec.get("containers") or [])
    elif kind == "PyTorchJob":
        for replica in mapping(doc, "spec").get("pytorchReplicaSpecs", {}).values():
            template = mapping(replica, "template")
            labels = dict(mapping(template, "metadata").get("labels") or {})
            yield labels, list(mapping(template, "spec").get("containers") or [])
    elif kind in ARGO_WORKFLOW_KINDS:
        spec = mapping(doc, "spec")
        if kind == "CronWorkflow":
            spec = mapping(spec, "workflowSpec")
        base = {WORKFLOW_LABEL: f"{mapping(doc, 'metadata').get('name', 'workflow')}-x7k2p"}
        base.update(mapping(spec, "podMetadata").get("labels") or {})
        for template in spec.get("templates") or []:
            containers = [template[k] for k in ("container", "script") if isinstance(template.get(k), dict)]
            if containers:
                yield {**base, **(mapping(template, "metadata").get("labels") or {})}, containers


def _rendered_peers(matrix: Matrix, rendered: Sequence[RenderedKustomization]) -> Iterator[Peer]:
    """Every pod the environment renders, as a peer named for the matrix peer it stands for."""
    seen: set[tuple[str, tuple[tuple[str, str], ...], tuple[Port, ...]]] = set()
    for result in rendered:
        for parent in result.documents:
            if not isinstance(parent, dict):
                continue
            # a workflow's resource steps (the PyTorchJob) create their objects in its namespace
            embedded = [e.document for e in embedded_manifests(parent) if e.document is not None]
            for doc in [parent, *embedded]:
                yield from _workload_peers(matrix, result.path, parent, doc, seen)


def _workload_peers(
    matrix: Matrix,
    file: str,
    parent: dict[str, Any],
    doc: dict[str, Any],
    seen: set[tuple[str, tuple[tuple[str, str], ...], tuple[Port, ...]]],
) -> Iterator[Peer]:
    namespace = str(
        mapping(doc, "metadata").get("namespace") or mapping(parent, "metadata").get("namespace") or "default"
    )
    for labels, containers in _pod_templates(doc):
        ports = tuple(
            Port(int(p["containerPort"]), str(p.get("protocol") or "TCP"), str(p.get("name") or ""))
            for c in containers
            if isinstance(c, dict)
            for p in c.get("ports") or []
            if isinstance(p, dict) and str(p.get("containerPort", "")).isdigit()
        )
        pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        if (namespace, pairs, ports) in seen:
            continue
        seen.add((namespace, pairs, ports))
        meta = mapping(doc, "metadata")
        shown = f"{doc.get('kind')}/{meta.get('name') or meta.get('generateName')} ({file})"
        yield Peer(_alias(matrix, namespace, labels), namespace, pairs, POD_ADDRESS, ports, shown)


def _default_deny(cluster: Cluster, namespace: str) -> bool:
    return any(
        p.namespace == namespace
        and p.types() == {"Ingress", "Egress"}
        and selects(p.spec.get("podSelector"), {})
        for p in cluster.policies
    )


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report every difference between the rendered NetworkPolicies and the matrix of docs/security.md."""
    try:
        matrix = load_matrix(repo)
    except MatrixError as error:
        file, _, message = str(error).partition(": ")
        yield Problem(file, "reachability matrix", "", message, POLICY_ID, HINTS[POLICY_ID])
        return
    cluster, namespace_files = _cluster(rendered)
    for namespace, file in sorted(namespace_files.items()):
        if namespace not in UNGUARDED and not _default_deny(cluster, namespace):
            yield Problem(
                file,
                f"Namespace/{namespace}",
                "(NetworkPolicy)",
                f"no default-deny NetworkPolicy in namespace {namespace} (podSelector {{}}, policyTypes "
                "[Ingress, Egress]): every pod there accepts and opens any connection",
                POLICY_ID,
                HINTS[POLICY_ID],
            )
    peers = _all_peers(matrix, sorted(namespace_files))
    workloads = _one_per_class(cluster, _rendered_peers(matrix, rendered))
    reported: set[tuple[bool, str, str, Port]] = set()
    pairs = [(s, t) for s in peers for t in peers]
    # then every rendered pod, in both roles: it must behave as the matrix peer it stands for
    pairs += [(w, t) for w in workloads for t in [*peers, *workloads]]
    pairs += [(s, w) for w in workloads for s in peers]
    for source, target in pairs:
        if not (cluster.guarded(source) or cluster.guarded(target)):
            continue  # neither end is under NetworkPolicy: no rule of this repository decides
        if not source.is_pod and not target.is_pod:
            continue
        for allowed, problem in _check_edge(matrix, cluster, source, target):
            key = (allowed, source.name, target.name, problem[0])
            if key not in reported:
                reported.add(key)
                yield problem[1]


def _one_per_class(cluster: Cluster, workloads: Iterable[Peer]) -> list[Peer]:
    """The first rendered pod of each class of pods that every policy treats alike.

    Pods with the same namespace, matrix peer, ports and answer from every pod selector of
    the environment's policies get the same verdict on every edge (the rules read a pod's
    labels only through those selectors), so checking the first of each class reports what
    checking all would: a problem's key names the matrix peer, and the first pod of a class
    is the first to reach it. A hundred models' pods are then a handful of classes, and
    the pod-to-pod pairs stop growing with the square of the models.
    """
    selectors = cluster.pod_selectors()
    firsts: dict[tuple[object, ...], Peer] = {}
    for peer in workloads:
        labels = dict(peer.labels)
        verdicts = tuple(selects(selector, labels) for selector in selectors)
        firsts.setdefault((peer.namespace, peer.name, peer.ports, verdicts), peer)
    return list(firsts.values())


def _check_edge(
    matrix: Matrix, cluster: Cluster, source: Peer, target: Peer
) -> Iterator[tuple[bool, tuple[Port, Problem]]]:
    for port in target.ports:
        egress, egress_rule = cluster.admitting(source, target, port, "Egress")
        ingress, ingress_rule = cluster.admitting(target, source, port, "Ingress")
        allowed, intended = egress and ingress, matrix.intended(source.name, target.name, port)
        if allowed and not intended:
            where = ingress_rule or egress_rule or f"{MATRIX_FILE}\0{target.name}\0(no NetworkPolicy)"
            file, resource, rule = where.split("\0")
            yield (
                True,
                (
                    port,
                    Problem(
                        file,
                        resource,
                        rule,
                        f"lets {source.title} reach {target.title} on {port}, which the reachability matrix "
                        f"({MATRIX_FILE}) does not list",
                        POLICY_ID,
                        HINTS[POLICY_ID],
                    ),
                ),
            )
        elif intended and not allowed and matrix.required(source.name, target.name, port):
            edge = next(
                e
                for e in matrix.edges_to(target.name)
                if e.source == source.name and (e.ports is None or _same_port(port, e.ports))
            )
            side = f"no egress rule of namespace {source.namespace}" if not egress else ""
            side = side or f"no ingress rule of namespace {target.namespace}"
            yield (
                False,
                (
                    port,
                    Problem(
                        f"{MATRIX_FILE}:{edge.line}",
                        f"edge {edge.source} -> {edge.target}",
                        "ports",
                        f"{source.title} cannot reach {target.title} on {port}: {side} admits it",
                        POLICY_ID,
                        HINTS[POLICY_ID],
                    ),
                ),
            )
