"""Hostile workflow parameters: refused by the first step, and unable to change the PyTorchJob's structure."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from mlops.cli import main
from mlops.conventions.argo_json import substitute

from workflows import environments, parameters, steps

# Values a person could type into the Argo UI's submit form to add fields to the pod spec.
HOSTILE = [
    "x'\n      securityContext: {privileged: true}\n#",
    'x"\n  hostNetwork: true\n#',
    "x\n                    - --evil-flag",
    "x'}, {'name': 'evil', 'image': 'busybox'",
    "{{workflow.name}}",
    "a\u2028b: c",
    "x\\\n  hostPID: true",
    "s3://bucket/key' \n  serviceAccountName: argo-server",
]


def _train_template(repo_root) -> dict[str, Any]:
    text = (repo_root / "base/workflows/generated/train-and-promote.yaml").read_text()
    doc = yaml.safe_load(text)
    (train,) = [t for t in doc["spec"]["templates"] if t["name"] == "train"]
    return train


def _values(repo_root, **overrides: str) -> dict[str, str]:
    """Every variable the manifest reads, as Argo would have them for a run."""
    values = {
        f"workflow.parameters.{p.name}": p.default
        for p in parameters.parameters(environments.ENVIRONMENTS["dev"], repo_root)
    }
    values.update({"workflow.name": "train-and-promote-abc12", "inputs.parameters.workers": "1"})
    values.update(
        {
            f"inputs.parameters.{name}": value
            for name, value in {
                "gpus": "1",
                "commit": "0" * 40,
                "image-digest": "sha256:" + "a" * 64,
                "registry": "111122223333.dkr.ecr.us-west-2.amazonaws.com",
                "checkpoint-root": "s3://mlops-dev-mlflow-artifacts/checkpoints",
                "mlflow-tracking-uri": "http://mlflow.mlflow.svc.cluster.local:5000",
            }.items()
        }
    )
    values.update(overrides)
    return values


def _shape(node: object, path: str = "") -> set[str]:
    """Every key path and list length: what `structure unchanged` compares (scalar values may differ)."""
    if isinstance(node, dict):
        out = {path + "{}"}
        for key, value in node.items():
            out |= _shape(value, f"{path}.{key}")
        return out
    if isinstance(node, list):
        out = {f"{path}[{len(node)}]"}
        for i, value in enumerate(node):
            out |= _shape(value, f"{path}[{i}]")
        return out
    return {f"{path}={type(node).__name__}"}


def _manifest(train: dict[str, Any], values: dict[str, str]) -> Any:
    # asInt(...) of the integer fields: Argo fails the step on a non-number, so model it the same way
    text = re.sub(
        r"\{\{=asInt\(inputs\.parameters\.(\w+)\)( \* (\d+))?\}\}",
        lambda m: str(int(values[f"inputs.parameters.{m[1]}"]) * int(m[3] or 1)),
        train["resource"]["manifest"],
    )
    return yaml.safe_load(substitute(text, values))


def test_the_manifest_reads_every_value_through_an_expression_never_as_plain_text(repo_root):
    train = _train_template(repo_root)
    manifest = train["resource"]["manifest"]
    simple = re.findall(r"\{\{(?!=)[^}]*\}\}", manifest)
    assert simple == []  # a plain `{{...}}` would be substituted as text, quotes and line breaks too
    assert "toJson(workflow.parameters['dataset'])" in manifest


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_value_in_any_free_text_parameter_leaves_the_pytorchjob_structure_unchanged(
    repo_root, hostile: str
) -> None:
    train = _train_template(repo_root)
    free_text = [p.name for p in parameters.parameters(environments.ENVIRONMENTS["dev"], repo_root)]
    reference = _shape(_manifest(train, _values(repo_root)))
    for name in free_text:
        job = _manifest(train, _values(repo_root, **{f"workflow.parameters.{name}": hostile}))
        assert _shape(job) == reference, name
        # and the value arrived whole, as one argument
        command = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
        if name in ("base-model", "dataset", "learning-rate", "max-steps", "batch-size", "seq-len"):
            assert command[command.index(f"--{name}") + 1] == hostile


def test_plain_text_substitution_of_the_old_form_would_have_added_a_field() -> None:
    """The attack the expressions prevent: the pre-fix manifest text, substituted as Argo does."""
    old = "command:\n- --dataset\n- '{{workflow.parameters.dataset}}'\n"
    injected = substitute(old, {"workflow.parameters.dataset": "x'\nprivileged: true\n#"})
    assert yaml.safe_load(injected) == {"command": ["--dataset", "x"], "privileged": True}


def test_every_parameter_has_a_pattern_and_the_first_step_checks_them_all(repo_root, monkeypatch, capsys):
    text = (repo_root / "base/workflows/generated/train-and-promote.yaml").read_text()
    doc = yaml.safe_load(text)
    declared = {p["name"]: p for p in doc["spec"]["arguments"]["parameters"]}
    for spec in parameters.parameters(environments.BASE, repo_root):
        assert spec.enum is None or declared[spec.name]["enum"] == list(spec.enum)
    (check,) = [t for t in doc["spec"]["templates"] if t["name"] == "check-parameters"]
    env = {e["name"]: e["value"] for e in check["script"]["env"]}
    patterns = env["PATTERNS"]
    assert set(yaml.safe_load(patterns)) == set(declared)
    for name in declared:
        assert env[steps.parameter_variable(name)] == f"{{{{workflow.parameters.{name}}}}}"

    # the defaults pass ...
    for name, p in declared.items():
        monkeypatch.setenv(steps.parameter_variable(name), p["value"])
    steps.check_parameters(patterns)
    assert f"{len(declared)} workflow parameters checked" in capsys.readouterr().out
    # ... and each hostile value in each parameter fails the run, naming the parameter
    for name in declared:
        for hostile in HOSTILE:
            monkeypatch.setenv(steps.parameter_variable(name), hostile)
            with pytest.raises(SystemExit, match="nothing was built or created"):
                steps.check_parameters(patterns)
            assert f"parameter {name}=" in capsys.readouterr().err
        monkeypatch.setenv(steps.parameter_variable(name), declared[name]["value"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dataset=s3://b/k'\n  privileged: true", "parameter dataset="),
        ("learning-rate=2e-5; rm -rf /", "parameter learning-rate="),
        ("git-revision=--upload-pack=evil", "parameter git-revision="),
        ("eval-threshold=30\nx", "parameter eval-threshold="),
    ],
)
def test_run_local_refuses_a_value_that_does_not_match_its_pattern(
    repo_root, tmp_path, capsys, monkeypatch, setting, message
):
    monkeypatch.delenv("MLOPS_REPO", raising=False)
    args = ["workflows", "run-local", "--remote", str(tmp_path), "--set", setting]
    code = main(["--repo", str(repo_root), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
