"""MLOPS084: every rendered pod meets the Pod Security level its namespace enforces (baseline controls).

The API server's Pod Security admission rejects a pod that breaks a control of the level its
namespace enforces (`pod-security.kubernetes.io/enforce`); a workload controller then retries
for ever and a workflow step never starts. This rule finds that before merge: a pod (a
workload's template, a PyTorchJob replica, an Argo container template) whose namespace
enforces `baseline` or `restricted` must meet every Baseline control of the Pod Security
Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/, "Baseline"):

- HostProcess: `windowsOptions.hostProcess` undefined or false;
- Host Namespaces: `hostNetwork`, `hostPID`, `hostIPC` undefined or false;
- Privileged Containers: `securityContext.privileged` undefined or false;
- Capabilities: `capabilities.add` only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
  MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT;
- HostPath Volumes: none; Host Ports: `hostPort` undefined or 0;
- AppArmor: `appArmorProfile.type` undefined, RuntimeDefault or Localhost (and the
  `container.apparmor.security.beta.kubernetes.io/*` annotation `runtime/default` or `localhost/*`);
- SELinux: `seLinuxOptions.type` undefined, "", container_t, container_init_t, container_kvm_t or
  container_engine_t, and `user`/`role` undefined;
- /proc Mount Type: `procMount` undefined or Default;
- Seccomp: `seccompProfile.type` undefined, RuntimeDefault or Localhost (never Unconfined);
- Sysctls: only the safe set the standard lists.

Manifests a workflow's resource steps create count too, in the namespace they name (else
the workflow's). A pod in a namespace the rendered environment does not declare, or one that enforces
`privileged`, is not checked. The Restricted level's extra controls (non-root, seccomp
required, volume types, no privilege escalation, capabilities dropped) are MLOPS004-006's
concern for the platform's own pods and are not re-checked here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.pod_specs import ARGO_WORKFLOW_KINDS, Pod, pods
from mlops.validate.objects.problems import Problem, field_path, mapping, resource_name
from mlops.validate.objects.violations import HINTS

POLICY_ID = "MLOPS084"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
CHECKED_LEVELS = ("baseline", "restricted")
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
BASELINE_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS084: a pod in a namespace enforcing baseline (or restricted) meets every Baseline control."""
    del repo, env  # the rule reads only the rendered objects
    levels = _enforced_levels(rendered)
    for result in rendered:
        for resource, namespace, doc in _objects(result.documents):
            level = levels.get(namespace)
            if level not in CHECKED_LEVELS:
                continue
            for pod in pods(doc):
                for path, what in _baseline_breaches(doc, pod):
                    yield Problem(
                        result.path,
                        resource,
                        field_path(path),
                        f"{what}: namespace {namespace} enforces Pod Security {level}, whose admission "
                        "rejects this pod (Baseline controls)",
                        POLICY_ID,
                        HINTS[POLICY_ID],
                    )


def _objects(documents: Sequence[Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource, namespace, object) of each rendered object and each manifest a workflow embeds.

    A resource step creates its object in the manifest's namespace, else the workflow's
    (Argo runs `kubectl create -f` on it: argoproj/argo-workflows workflow/executor/resource.go).
    """
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        namespace = str(mapping(doc, "metadata").get("namespace") or "default")
        yield resource_name(doc), namespace, doc
        for embedded in embedded_manifests(doc):
            if embedded.document is not None:
                child = embedded.document
                where = f"{resource_name(child)} (in {resource_name(doc)} {embedded.field})"
                yield where, str(mapping(child, "metadata").get("namespace") or namespace), child


def _enforced_levels(rendered: Sequence[RenderedKustomization]) -> dict[str, str]:
    """Namespace -> the Pod Security level its rendered Namespace object enforces."""
    levels: dict[str, str] = {}
    for result in rendered:
        for doc in result.documents:
            if isinstance(doc, dict) and doc.get("kind") == "Namespace":
                meta = mapping(doc, "metadata")
                label = mapping(meta, "labels").get(PSA_ENFORCE)
                if label is not None:
                    levels[str(meta.get("name"))] = str(label)
    return levels


def _pod_spec(doc: dict[str, Any], pod: Pod) -> dict[str, Any]:
    """The object at `pod.path` that holds pod-level fields (a PodSpec or an Argo template)."""
    node: Any = doc
    for part in pod.path:
        node = node[part] if isinstance(node, (dict, list)) else None
    return node if isinstance(node, dict) else {}


def _baseline_breaches(doc: dict[str, Any], pod: Pod) -> Iterator[tuple[list[Any], str]]:
    spec = _pod_spec(doc, pod)
    argo = doc.get("kind") in ARGO_WORKFLOW_KINDS
    # Argo takes hostNetwork from the template or, failing that, the workflow spec.
    workflow_spec = mapping(doc, "spec") if argo else {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield [*pod.path, key], f"{key}: true shares the node's namespace"
        elif argo and key == "hostNetwork" and workflow_spec.get(key) is True and key not in spec:
            yield ["spec", key], f"{key}: true shares the node's namespace"
    pod_sc_path = [*pod.path, "securityContext"]
    yield from _security_context_breaches(pod_sc_path, pod.security_context, pod_level=True)
    for index, sysctl in enumerate(pod.security_context.get("sysctls") or []):
        name = str(sysctl.get("name", "")) if isinstance(sysctl, dict) else str(sysctl)
        if name not in SAFE_SYSCTLS:
            yield [*pod_sc_path, "sysctls", index, "name"], f"sysctl {name} is not in the safe set"
    for index, volume in enumerate(pod.volumes):
        if "hostPath" in volume:
            yield [*pod.path, "volumes", index, "hostPath"], f"volume {volume.get('name')} is a hostPath"
    for container in pod.containers:
        sc = mapping(container.spec, "securityContext")
        yield from _security_context_breaches([*container.path, "securityContext"], sc, pod_level=False)
        for index, port in enumerate(container.spec.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                what = f"hostPort {port['hostPort']} binds the node"
                yield [*container.path, "ports", index, "hostPort"], what
    for key, value in pod.annotations.items():
        if str(key).startswith(_APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or str(value).startswith("localhost/")
        ):
            what = f"AppArmor profile {value} is not runtime/default or localhost/*"
            yield ["metadata", "annotations", key], what


def _security_context_breaches(
    path: list[Any], sc: dict[str, Any], *, pod_level: bool
) -> Iterator[tuple[list[Any], str]]:
    if mapping(sc, "windowsOptions").get("hostProcess") is True:
        yield [*path, "windowsOptions", "hostProcess"], "a HostProcess container has the node's privileges"
    if not pod_level and sc.get("privileged") is True:
        yield [*path, "privileged"], "a privileged container disables most isolation"
    if not pod_level:
        added = mapping(sc, "capabilities").get("add") or []
        for index, capability in enumerate(added):
            if str(capability) not in BASELINE_CAPABILITIES:
                yield [*path, "capabilities", "add", index], f"adds capability {capability}"
        if sc.get("procMount") not in (None, "Default"):
            yield [*path, "procMount"], f"procMount {sc['procMount']} unmasks /proc"
    seccomp = mapping(sc, "seccompProfile").get("type")
    if seccomp is not None and seccomp not in ("RuntimeDefault", "Localhost"):
        yield [*path, "seccompProfile", "type"], f"seccomp profile {seccomp} lifts the syscall filter"
    apparmor = mapping(sc, "appArmorProfile").get("type")
    if apparmor is not None and apparmor not in ("RuntimeDefault", "Localhost"):
        yield [*path, "appArmorProfile", "type"], f"AppArmor profile {apparmor} lifts the confinement"
    selinux = mapping(sc, "seLinuxOptions")
    if "type" in selinux and str(selinux["type"]) not in BASELINE_SELINUX_TYPES:
        yield [*path, "seLinuxOptions", "type"], f"SELinux type {selinux['type']} is not a container type"
    for key in ("user", "role"):
        if selinux.get(key):
            yield [*path, "seLinuxOptions", key], f"SELinux {key} {selinux[key]} is set"
