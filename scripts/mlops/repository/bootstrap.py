"""Bootstrap mode of a model deployment: declared in git, not served, until its first promote.

A model folder that lists the kustomize Component `base/models/components/bootstrap` renders
its vLLM Deployment at 0 replicas with KEDA paused at 0 and no alias Sync hook: a fresh
account, whose MLflow holds no version yet, runs no GPU for it and no hook that fails. The
first `mlops promote` of the deployment removes the component from the folder's
`kustomization.yaml` in the same commit that writes the version (docs/first-apply.md).
"""

from __future__ import annotations

from mlops.conventions.deployment import Deployment

COMPONENT = "base/models/components/bootstrap"
"""The bootstrap Component's folder, relative to the repository root."""

_COMMENT_PREFIX = "# bootstrap"


def kustomization_file(deployment: Deployment) -> str:
    """The deployment folder's kustomization.yaml, relative to the repository root."""
    return f"{deployment.overlay}/kustomization.yaml"


def _is_entry(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("- ") and stripped[2:].strip().rstrip("/").endswith(COMPONENT)


def is_bootstrapping(kustomization_text: str) -> bool:
    """Whether a model folder's kustomization.yaml lists the bootstrap Component."""
    return any(_is_entry(line) for line in kustomization_text.splitlines())


def without_bootstrap(kustomization_text: str) -> str:
    """Return the kustomization text without the bootstrap entry and the comment lines just above it.

    Line-based, so every other line (comments, order, quoting) stays byte for byte as it was.
    """
    lines = kustomization_text.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        if _is_entry(line):
            while out and out[-1].strip().lower().startswith(_COMMENT_PREFIX):
                out.pop()
            continue
        out.append(line)
    return "".join(out)
