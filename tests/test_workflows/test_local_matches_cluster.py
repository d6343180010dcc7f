"""run-local and the cluster run the same command lines and report the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlops.cli import main
from mlops.validate.objects.embedded import embedded_manifests
from mlops.workflow_bridge.workflow_local import LocalRun, local_values, train_argv

from workflows import steps


def _flags(argv: list[str]) -> list[str]:
    return [a.split("=")[0] for a in argv if a.startswith("--")]


def test_local_training_passes_the_pytorchjobs_flags_with_the_templates_defaults(repo_root, tmp_path):
    text = (repo_root / "base/workflows/generated/train-and-promote.yaml").read_text()
    workflow = yaml.safe_load(text)
    (job,) = [
        e.document for e in embedded_manifests(workflow) if e.document and e.document["kind"] == "PyTorchJob"
    ]
    cluster = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    run = LocalRun(
        repo_root, "unused", tmp_path, "sqlite:///unused.db", local_values(repo_root, {}), nproc="2"
    )
    local = train_argv(run, Path("/tmp/result.json"))

    assert cluster[:4] == ["torchrun", "--nproc_per_node={{inputs.parameters.gpus}}", "-m", "trainer.train"]
    assert local[local.index("--nproc_per_node=2") + 1 :][:2] == ["-m", "trainer.train"]
    assert _flags(local) == ["--standalone", "--nproc_per_node", *_flags(cluster)[1:]]
    # the same values where the cluster reads a workflow parameter
    pairs = dict(zip(cluster[4::2], cluster[5::2], strict=True))
    local_pairs = dict(
        zip(
            local[local.index("trainer.train") + 1 :: 2],
            local[local.index("trainer.train") + 2 :: 2],
            strict=True,
        )
    )
    values = local_values(repo_root, {})
    for flag, value in pairs.items():
        if value.startswith("{{workflow.parameters."):
            assert local_pairs[flag] == values[value[len("{{workflow.parameters.") : -2]], flag
    assert values["base-model"] == "tiny" and values["dataset"] == "synthetic"


def test_report_lists_status_failed_steps_and_the_run_link(repo_root, capsys):
    failures = json.dumps(
        [{"displayName": "evaluate", "message": "perplexity 512.2 above 30", "phase": "Failed"}]
    )
    text = steps.report_outcome(
        "train-and-promote-x7k2p", "Failed", failures, "https://mlflow/#/experiments/1/runs/abc"
    )
    assert text.splitlines() == [
        "workflow train-and-promote-x7k2p: Failed",
        "failed step evaluate: perplexity 512.2 above 30",
        "MLflow run: https://mlflow/#/experiments/1/runs/abc",
    ]
    assert capsys.readouterr().out.strip() == text
    # what Argo passes when nothing failed and training never reported a run
    quiet = steps.report_outcome("w", "Error", "", "")
    assert quiet.splitlines() == ["workflow w: Error", "MLflow run: none (training did not finish)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "max-step=3"], "error: --set max-step: not a parameter of train-and-promote"),
        (["--set", "num-workers=5"], "error: --set num-workers=5: must be one of 0, 1, 2, 3, 7"),
        (["--set", "max-steps"], "error: --set 'max-steps': write NAME=VALUE"),
        ([], "error: --remote {remote}: no branch main there"),
    ],
)
def test_run_local_refuses_bad_input_before_training(repo_root, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.delenv("MLOPS_REPO", raising=False)
    remote = tmp_path / "missing.git"
    code = main(["--repo", str(repo_root), "workflows", "run-local", "--remote", str(remote), *args])
    assert code == 2
    assert message.format(remote=remote) in capsys.readouterr().err
