"""Per-document policies from issue 24 (MLOPS100-109): what a fresh account's first apply and first week need.

Each rule encodes how an upstream controller treats a field; the source is in the rule's
docstring. Rules that need several objects of an environment live in `fresh_install_env`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops.validate.objects.pod_specs import annotations_of, pods
from mlops.validate.objects.problems import field_path, mapping
from mlops.validate.objects.violations import Violation

ARGO_WORKFLOWS_LABEL_PREFIX = "workflows.argoproj.io/"

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"

DELETE_FALSE = "Delete=false"

KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"

DELETES_WITH_ELEMENT = "mlops.platform/deletes-with-element"
"""Annotation on an ApplicationSet whose Applications' objects should go with their element: the reason."""

# Objects whose deletion destroys what runs on them: every node Karpenter launched (NodePool,
# EC2NodeClass), every custom resource of a kind (CRD), every object in it (Namespace).
PROTECTED_KINDS = {
    ("karpenter.sh", "NodePool"),
    ("karpenter.k8s.aws", "EC2NodeClass"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "Namespace"),
}


def check_created_by_workflow(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS107: a manifest a workflow step creates carries no `workflows.argoproj.io/` label.

    Upstream (argo-workflows v4.1.2): the controller's pod informer selects every pod with the
    label `workflows.argoproj.io/workflow` (workflow/controller/pod/controller.go,
    `workflowReq`), enqueues the workflow that label names (workflow/controller/controller.go,
    `enqueueWfFromPodLabel`) and, when a workflow is deleted, lists the pods carrying its name
    to strip its finalizers. A PyTorchJob's pods with that label are taken for the workflow's
    own pods, although no node of the workflow created them.
    """
    yield from _argo_labels(doc, [])


def _argo_labels(value: Any, path: list[Any]) -> Iterator[Violation]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "labels" and isinstance(child, dict):
                for label in child:
                    if str(label).startswith(ARGO_WORKFLOWS_LABEL_PREFIX):
                        yield Violation(
                            field_path([*path, "labels", label]),
                            f'label "{label}" on an object the workflow creates: the workflow controller '
                            "treats pods carrying it as its own",
                            "MLOPS107",
                        )
            else:
                yield from _argo_labels(child, [*path, key])
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _argo_labels(child, [*path, index])


def check_delete_protection(doc: dict[str, Any], group: str) -> Iterator[Violation]:
    """MLOPS104 (per object): a NodePool, EC2NodeClass, CRD or Namespace carries `Delete=false`.

    Upstream: argo-cd v3.5 docs/user-guide/sync-options.md ("No Resource Deletion"): with
    `argocd.argoproj.io/sync-options: Delete=false` Argo CD leaves the resource in place when
    the Application is deleted or the resource leaves git. Deleting a NodePool makes Karpenter
    terminate every node it launched (karpenter v1.14 docs/concepts/nodepools: "deleting a
    NodePool ... cascade-deletes its NodeClaims"); deleting a CRD deletes every object of its
    kind; deleting a Namespace deletes everything in it. Renaming an ApplicationSet element
    or moving a folder would do all three.
    """
    if group == "argoproj.io" and doc.get("kind") == "ApplicationSet":
        yield from _check_preserve(doc)
        return
    if (group, doc.get("kind")) not in PROTECTED_KINDS:
        return
    options = [o.strip() for o in str(annotations_of(doc).get(SYNC_OPTIONS, "")).split(",")]
    if DELETE_FALSE not in options:
        yield Violation(
            field_path(["metadata", "annotations", SYNC_OPTIONS]),
            f"{doc.get('kind')} has no {DELETE_FALSE}: deleting or renaming its Application deletes it "
            "and everything that runs on it",
            "MLOPS104",
        )


def _check_preserve(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS104 (per ApplicationSet): `spec.syncPolicy.preserveResourcesOnDeletion: true`, or a reason.

    Upstream: argo-cd v3.5 docs/operator-manual/applicationset/Application-Deletion.md: the
    generated Applications carry the resources finalizer unless the ApplicationSet's
    `syncPolicy.preserveResourcesOnDeletion` is true, so deleting the ApplicationSet, or an
    element leaving its generator, deletes every object those Applications deployed.
    """
    template_meta = mapping(mapping(mapping(doc, "spec"), "template"), "metadata")
    finalizers = template_meta.get("finalizers") or []
    for index, finalizer in enumerate(finalizers if isinstance(finalizers, list) else []):
        if str(finalizer).startswith(RESOURCES_FINALIZER):
            yield Violation(
                field_path(["spec", "template", "metadata", "finalizers", index]),
                f"{finalizer} on the generated Applications deletes what they deployed whenever one is "
                "deleted, whatever preserveResourcesOnDeletion says",
                "MLOPS104",
            )
    if mapping(mapping(doc, "spec"), "syncPolicy").get("preserveResourcesOnDeletion") is True:
        return
    if str(annotations_of(doc).get(DELETES_WITH_ELEMENT, "")).strip():
        return
    yield Violation(
        "spec.syncPolicy.preserveResourcesOnDeletion",
        "not true: deleting this ApplicationSet, or renaming an element of its generator, deletes "
        f'everything its Applications deployed (or annotate {DELETES_WITH_ELEMENT}: "<reason>")',
        "MLOPS104",
    )


S5CMD_IMAGE = "s5cmd"

_SHELLS = ("sh", "bash", "ash", "dash")

# After the copy, a test that fails when the destination holds nothing (`test -s`, `[ -s ...`,
# `test -n "$(ls -A ...)"`).
_ARRIVAL_CHECK = re.compile(r"(\btest\s+-[sfen]\b|\[\s+-[sfen]\b)")


def check_weights_fetch(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS101: `s5cmd sync` never runs bare; a shell around it fails when no object arrived.

    Upstream: s5cmd v2.3.0 command/sync.go, `shouldStopSync`: `storage.ErrNoObjectFound`
    ("no object found", a prefix with nothing under it) does not stop the sync and leaves the
    exit status 0. An init container that only syncs therefore "succeeds" with an empty
    folder, and vLLM then crash-loops on a GPU node that KEDA keeps alive.
    """
    for pod in pods(doc):
        for container in pod.containers:
            spec = container.spec
            if S5CMD_IMAGE not in str(spec.get("image", "")):
                continue
            command = [str(c) for c in spec.get("command") or []]
            args = [str(a) for a in spec.get("args") or []]
            shell = bool(command) and command[0].rsplit("/", 1)[-1] in _SHELLS
            script = " ".join([*command, *args])
            if shell and "sync" in script:
                after = script[script.index("sync") :]
                if _ARRIVAL_CHECK.search(after):
                    continue
            elif "sync" not in args and "sync" not in command:
                continue
            yield Violation(
                field_path([*container.path, "args" if not shell else "command"]),
                "s5cmd sync exits 0 when the source holds no object: the container succeeds with "
                "nothing fetched and the server that needs it crash-loops",
                "MLOPS101",
            )


def check_sync_windows(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS105 (per AppProject): every `deny` sync window allows manual syncs (`manualSync: true`).

    Upstream: argo-cd v3.5 docs/user-guide/sync_windows.md: a deny window blocks automated
    syncs of the Applications it matches, and manual syncs too unless `manualSync` is true.
    Applications created during a window (the whole first apply: every Application is new)
    do not sync until it ends, up to its `duration`; everything else waits on the add-ons'
    CRDs. With manualSync a person can push the first apply, or a fix, through the window
    (docs/first-apply.md, "A first apply inside prod's window").
    """
    windows = mapping(doc, "spec").get("syncWindows") or []
    for index, window in enumerate(windows):
        if not isinstance(window, dict) or window.get("kind") != "deny":
            continue
        if window.get("manualSync") is not True:
            yield Violation(
                field_path(["spec", "syncWindows", index, "manualSync"]),
                f"deny window {window.get('schedule')!r} for {window.get('duration')} blocks manual syncs: "
                "a first apply or a fix started in it waits until it ends",
                "MLOPS105",
            )


def scaled_target(doc: dict[str, Any]) -> tuple[str, str] | None:
    """Return (kind, name) of the workload a KEDA ScaledObject scales."""
    ref = mapping(mapping(doc, "spec"), "scaleTargetRef")
    if not ref.get("name"):
        return None
    return str(ref.get("kind") or "Deployment"), str(ref["name"])
