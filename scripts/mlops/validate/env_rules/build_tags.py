"""MLOPS110: the images the workflows build in the cluster never take a tag CI pushes.

Every `mlops/<image>` repository is tag-IMMUTABLE (terraform/modules/ecr): a push to a tag
that already exists fails with ImageTagAlreadyExistsException ("Image tag mutability",
docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html). CI
(`.github/workflows/images.yaml`) pushes a main build as its 40-hex commit and a release
as `X.Y.Z`, and ECR replication copies both to the other accounts; an in-cluster build of
the same commit under the same tag makes whichever comes second fail: the workflow's build
step, or CI's push, or the replication into prod's registry. So every build a workflow
template pushes (the `destination` argument of its build tasks) must be tagged outside
CI's schemes (`wf-<commit>`, workflows/kubernetes.py `built_tag`).

Registered in `env_checks.CHECKS`; the tag schemes are MLOPS023's (`mlops.validate.env_rules.delivery`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlops.rendering.render import RenderedKustomization
from mlops.validate.env_rules.delivery import _COMMIT_TAG, _RELEASE_TAG, IMAGES_WORKFLOW
from mlops.validate.objects.problems import Problem, field_path, resource_name
from mlops.validate.objects.violations import HINTS

# What an Argo expression in a destination tag stands for: the workflows tag by commit.
_SAMPLE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_EXPRESSION = re.compile(r"\{\{[^{}]+\}\}")
_PLATFORM_REF = re.compile(r"^[^/]+/mlops/(?P<name>[^:@/]+):(?P<tag>[^@]+)$")


def _destinations(rendered: Sequence[RenderedKustomization]) -> Iterator[tuple[str, str, str, str]]:
    """(file, resource, field, image reference) of every `destination` a workflow build task pushes."""
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict) or doc.get("kind") not in (
                "WorkflowTemplate",
                "ClusterWorkflowTemplate",
            ):
                continue
            for index, template in enumerate((doc.get("spec") or {}).get("templates") or []):
                for t_index, task in enumerate(((template or {}).get("dag") or {}).get("tasks") or []):
                    for p_index, param in enumerate((task.get("arguments") or {}).get("parameters") or []):
                        if param.get("name") == "destination":
                            where = ["spec", "templates", index, "dag", "tasks", t_index]
                            field = field_path([*where, "arguments", "parameters", p_index, "value"])
                            yield result.path, resource_name(doc), field, str(param.get("value"))


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS110: a workflow's build destination never carries a tag CI's images workflow pushes."""
    for file, resource, field, ref in _destinations(rendered):
        match = _PLATFORM_REF.match(ref)
        if not match:
            continue  # not one of this repository's images: CI never pushes there
        tag = _EXPRESSION.sub(_SAMPLE_COMMIT, match["tag"])
        scheme = (
            "a 40-hex commit"
            if _COMMIT_TAG.match(tag)
            else "a release X.Y.Z"
            if _RELEASE_TAG.match(tag)
            else ""
        )
        if scheme:
            yield Problem(
                file,
                resource,
                field,
                f'the build pushes "{ref}", whose tag is {scheme} as {IMAGES_WORKFLOW} pushes too: ECR tags '
                f"are immutable, so whichever of the two pushes mlops/{match['name']} second fails",
                "MLOPS110",
                HINTS["MLOPS110"],
            )
