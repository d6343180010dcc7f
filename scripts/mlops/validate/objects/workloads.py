"""Every pod an environment renders, with where it was found: the input of the environment-wide checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.pod_specs import Pod, pods
from mlops.validate.objects.problems import field_path, resource_name


@dataclass(frozen=True)
class RenderedPod:
    """A pod of a rendered object: the kustomization it came from and the object that makes it."""

    file: str
    resource: str
    document: dict[str, Any]
    pod: Pod
    embedded: bool
    """Whether the object is a manifest inside an Argo workflow (the training PyTorchJob)."""

    def field(self, *parts: Any) -> str:
        """Return a field path below the pod (`containers[0].resources`), as problem lines print it."""
        return field_path([*self.pod.path, *parts])


def rendered_pods(rendered: Sequence[RenderedKustomization]) -> Iterator[RenderedPod]:
    """Every pod of every rendered document, embedded workflow manifests included."""
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            for pod in pods(doc):
                yield RenderedPod(result.path, resource_name(doc), doc, pod, embedded=False)
            for embedded in embedded_manifests(doc):
                if embedded.document is None:
                    continue
                name = f"{resource_name(embedded.document)} (in {resource_name(doc)} {embedded.field})"
                for pod in pods(embedded.document):
                    yield RenderedPod(result.path, name, embedded.document, pod, embedded=True)
