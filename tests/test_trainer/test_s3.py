"""Base model, dataset and checkpoints on S3.

S3 is moto in server mode on 127.0.0.1 (a free port), reached by the trainer subprocess through
AWS_ENDPOINT_URL with dummy credentials; nothing leaves the machine.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.servers import free_port
from support.trainer_runs import TINY_RUN, run, trainer_env

pytestmark = pytest.mark.slow

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
}


@pytest.fixture(scope="module")
def s3(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """moto's S3 on 127.0.0.1 with the platform's dev buckets; yields (endpoint URL, boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets per process, not per server: start from none, whatever ran before.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for key, value in AWS.items():
        monkeypatch_module.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    for purpose in ("datasets", "model-weights", "mlflow-artifacts"):
        client.create_bucket(
            Bucket=f"mlops-dev-{purpose}", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
    try:
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _keys(client: Any, bucket: str, prefix: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"][len(prefix) :] for page in pages for item in page.get("Contents", [])}


def test_train_from_s3_and_resume_from_s3_checkpoint(
    tmp_path: Path, s3: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trainer import data, tiny, train

    endpoint, client = s3
    dataset = data.write_jsonl(data.synthetic_conversations(240, seed=7), tmp_path / "chats.jsonl")
    client.upload_file(str(dataset), "mlops-dev-datasets", "support-chat/v1/chats.jsonl")
    model, tokenizer = tiny.build(data.synthetic_conversations(240, seed=7), max_positions=256, seed=7)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    for path in (tmp_path / "base").iterdir():
        client.upload_file(str(path), "mlops-dev-model-weights", f"base/tiny/{path.name}")

    uri = f"sqlite:///{tmp_path}/.mlops/mlflow.db"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.chdir(tmp_path)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    checkpoints = "s3://mlops-dev-mlflow-artifacts/checkpoints/job-1"
    argv = [
        *TINY_RUN,
        "--tracking-uri",
        uri,
        "--base-model",
        "s3://mlops-dev-model-weights/base/tiny",
        "--dataset",
        "s3://mlops-dev-datasets/support-chat/v1/chats.jsonl",
        "--checkpoint-dir",
        checkpoints,
        "--checkpoint-every",
        "2",
        "--max-steps",
        "4",
        "--result-file",
        str(tmp_path / "result.json"),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    # In-process (one rank) to spare a second interpreter start; the subprocess path is
    # covered by test_missing_s3_dataset and the torchrun tests.
    assert train.main(argv) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["final_step"] == 4
    assert result["dataset_hash"] == data.content_hash(dataset)[:32]

    keys = _keys(client, "mlops-dev-mlflow-artifacts", "checkpoints/job-1/")
    for step in ("step-00000002", "step-00000004"):
        for part in (
            "COMPLETE",
            "state.json",
            "optimizer.pt",
            "scheduler.pt",
            "rng/rank-0.pt",
            "model/config.json",
        ):
            assert f"{step}/{part}" in keys, sorted(keys)

    import mlflow

    mlflow_client = mlflow.MlflowClient(tracking_uri=uri)
    run_ = mlflow_client.get_run(result["run_id"])
    assert run_.data.params["base_model"] == "s3://mlops-dev-model-weights/base/tiny"
    source = json.loads(run_.inputs.dataset_inputs[0].dataset.source)
    assert source["uri"] == "s3://mlops-dev-datasets/support-chat/v1/chats.jsonl"
    capsys.readouterr()

    # A restart after the job finished (the pod was killed while exiting) resumes at the last
    # step from the S3 checkpoint, trains nothing, and keeps the one registered version.
    assert train.main(argv) == 0
    assert f"resumed from checkpoint {checkpoints} at step 4" in capsys.readouterr().out
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["model_version"] == result["model_version"] and again["resumed_from_step"] == 4
    assert len(mlflow_client.search_model_versions("name = 'support-chat'")) == 1


def test_missing_s3_dataset(tmp_path: Path, s3: tuple[str, Any]) -> None:
    endpoint, _client = s3
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    missing = "s3://mlops-dev-datasets/support-chat/v9/chats.jsonl"
    done = run(
        [sys.executable, "-m", "trainer.train", "--dataset", missing],
        trainer_env(uri, AWS_ENDPOINT_URL=endpoint, **AWS),
        tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"--dataset {missing}: no such dataset in S3" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()
