"""The checks one by one, on single documents (no kustomize): CEL notices, metadata, images, templates."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mlops.validate.object_rules.pod_policies import image_problem
from mlops.validate.objects import gotemplate
from mlops.validate.runner.engine import Report, schemas_for
from mlops.validate.schema_checks import cel

RULES_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"size": {"type": "string"}, "name": {"type": "string"}},
            "x-kubernetes-validations": [
                # cel-python has no Kubernetes quantity library: this one cannot be evaluated.
                {"rule": "quantity(self.size).isGreaterThan(quantity('1Gi'))", "message": "too small"},
                {"rule": "self.name == oldSelf.name", "message": "immutable"},
                {"rule": "self.name.startsWith('mlops-')", "message": "name must start with mlops-"},
            ],
        }
    },
}


def test_cel_reports_violations_and_counts_rules_it_cannot_evaluate() -> None:
    outcome = cel.evaluate(RULES_SCHEMA, {"spec": {"size": "2Gi", "name": "gpu"}})
    assert outcome.violations == [
        ("spec", "name must start with mlops- (CEL rule `self.name.startsWith('mlops-')`)")
    ]
    # The transition rule (oldSelf) is skipped, not counted; the quantity rule is counted.
    assert outcome.unevaluated == Counter({"quantity(self.size).isGreaterThan(quantity('1Gi'))": 1})


def test_unevaluated_rules_become_one_notice_line() -> None:
    report = Report(envs=("dev",))
    report.cel_unevaluated["NodePool"]["a"] += 2
    report.cel_unevaluated["EC2NodeClass"].update({"b": 1, "c": 1})
    assert report.notices() == [
        "notice: 3 CEL rules could not be evaluated by cel-python and were not checked "
        "(EC2NodeClass 2, NodePool 1); see docs/validation.md"
    ]


def test_custom_resource_metadata_is_checked_as_object_meta(crds_dir: Path) -> None:
    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu", "label": {"a": "b"}},
        "spec": {
            "limits": {"cpu": "1"},
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                    "requirements": [],
                }
            },
        },
    }
    assert schemas_for(crds_dir).check(pool).errors == [("metadata.label", 'unknown field "label"')]


def test_embedded_argo_expressions_stand_for_valid_values(crds_dir: Path) -> None:
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"generateName": "{{workflow.name}}-"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Worker": {
                    "replicas": "{{inputs.parameters.workers}}",
                    "template": {"spec": {"containers": [{"name": "pytorch", "image": "trainer:v1.0.0"}]}},
                }
            }
        },
    }
    schemas = schemas_for(crds_dir)
    assert schemas.check(job, templated=True).errors == []
    # Outside a workflow the same string is an error.
    assert schemas.check(job).errors == [
        (
            "spec.pytorchReplicaSpecs.Worker.replicas",
            "'{{inputs.parameters.workers}}' is not of type 'integer'",
        )
    ]


@pytest.mark.parametrize(
    ("image", "env", "expected"),
    [
        ("ghcr.io/org/app@sha256:" + "a" * 64, "prod", None),
        ("ghcr.io/org/app:v1.2.3", "prod", None),
        ("ghcr.io/org/app:" + "0123456789abcdef" * 2 + "01234567", "prod", None),
        ("ghcr.io/org/app:1.2", "dev", None),
        ("ghcr.io/org/app:1.2", "prod", "MLOPS003"),
        ("ghcr.io/org/app:main", "prod", "MLOPS003"),
        ("ghcr.io/org/app:latest", "dev", "MLOPS002"),
        ("registry:5000/app", "dev", "MLOPS002"),
    ],
)
def test_image_pinning(image: str, env: str, expected: str | None) -> None:
    problem = image_problem(image, env)
    assert (problem[0] if problem else None) == expected


@pytest.mark.parametrize(
    ("image", "templated", "expected"),
    [
        ("1111.dkr.ecr.us-west-2.amazonaws.com/mlops/git-bot@{{inputs.parameters.image-digest}}", True, None),
        # outside a workflow nothing fills the expression in: no digest, no tag
        (
            "1111.dkr.ecr.us-west-2.amazonaws.com/mlops/git-bot@{{inputs.parameters.image-digest}}",
            False,
            "MLOPS002",
        ),
        # an expression is the whole digest or nothing: half of one leaves no pin
        ("1111.dkr.ecr.us-west-2.amazonaws.com/mlops/git-bot@{{a}}{{b}}", True, "MLOPS002"),
    ],
)
def test_a_digest_set_by_the_workflow_counts_only_in_a_workflow(
    image: str, templated: bool, expected: str | None
) -> None:
    problem = image_problem(image, "prod", templated=templated)
    assert (problem[0] if problem else None) == expected


def test_go_template_subset() -> None:
    params = {"path": {"basename": "support-chat", "segments": ["overlays", "dev", "models", "support-chat"]}}
    assert gotemplate.render('{{ printf "%s-%s" "model" .path.basename }}', params) == "model-support-chat"
    assert gotemplate.render("{{ index .path.segments 1 }}", params) == "dev"
    assert gotemplate.render('{{ if eq .path.basename "x" }}a{{ else }}b{{ end }}', params) == "b"
    with pytest.raises(gotemplate.TemplateError, match="map has no entry for key '.path.nope'"):
        gotemplate.render("{{ .path.nope }}", params)
    with pytest.raises(gotemplate.TemplateError, match="unsupported function 'sha256sum'"):
        gotemplate.render("{{ sha256sum .path.basename }}", params)
