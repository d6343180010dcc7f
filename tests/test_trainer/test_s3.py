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
from mlops.conventions.registry_names import ATTEMPT_FOLDER, MODEL_ARTIFACT_PATH
from support.servers import free_port, start_mlflow_server, start_postgres
from support.trainer_runs import TINY_RUN, run, trainer_env
from support.weights_fetch import fetch_script, run_fetch

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
    # The registered attempt's files stay as they are: the restart uploads no second attempt.
    assert (again["artifact_uri"], again["weights_digest"]) == (
        result["artifact_uri"],
        result["weights_digest"],
    )
    attempt = Path(result["artifact_uri"])
    assert sorted(p.name for p in attempt.parent.iterdir()) == [attempt.name, f"{attempt.name}.sha256sums"]


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


class _Killed(BaseException):
    """The pod's end: what a kill -9 after the upload leaves is what this leaves."""


def test_a_restarted_attempt_registers_exactly_its_own_weights(
    tmp_path: Path,
    s3: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    repo_root: Path,
) -> None:
    """Attempt 1 uploads, with a file the next save does not write, and dies before registering;
    attempt 2 resumes the same run and uploads again. The version names attempt 2's files only,
    and the model server's fetch accepts them.

    MLflow is a server on PostgreSQL that stores served artifacts in dev's bucket (moto), as in
    the cluster; promote's registry code maps the version's source onto the bucket.
    """
    from mlops.release.registry import ARTIFACTS_DESTINATION_ENV, Registry
    from trainer import tracking, train, weights_manifest

    endpoint, client = s3
    bucket = "mlops-dev-mlflow-artifacts"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # the server, the trainer and the fetch reach moto
    monkeypatch.setenv(ARTIFACTS_DESTINATION_ENV, f"s3://{bucket}")
    monkeypatch.chdir(tmp_path)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with (
        start_postgres(tmp_path) as dsn,
        start_mlflow_server(dsn, tmp_path / "server", artifacts_destination=f"s3://{bucket}") as url,
    ):
        argv = [
            *TINY_RUN,
            "--tracking-uri",
            url,
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
            "--checkpoint-every",
            "2",
            "--max-steps",
            "2",
            "--result-file",
            str(tmp_path / "result.json"),
            "--work-dir",
            str(tmp_path / "work"),
        ]
        leftover = "model-00002-of-00002.safetensors"  # a shard of another layout: attempt 1's save only
        with monkeypatch.context() as first:
            manifest = weights_manifest.manifest

            def manifest_with_leftover(folder: Path) -> str:
                (folder / leftover).write_bytes(b"attempt 1 only")
                return manifest(folder)

            def killed(*_args: Any, **_kwargs: Any) -> str:
                raise _Killed("killed after the upload, before registering")

            first.setattr(weights_manifest, "manifest", manifest_with_leftover)
            first.setattr(tracking, "register", killed)
            with pytest.raises(_Killed):
                train.main(argv)
        assert not (tmp_path / "result.json").exists()
        run_id = json.loads((tmp_path / "checkpoints" / "step-00000002" / "state.json").read_text())["run_id"]
        capsys.readouterr()

        assert train.main(argv) == 0
        assert "resumed from checkpoint" in capsys.readouterr().out
        result = json.loads((tmp_path / "result.json").read_text())
        assert result["run_id"] == run_id

        registry = Registry(url)
        assert registry.versions("support-chat") == [result["model_version"]]
        version = registry.model_version("support-chat", result["model_version"])

    assert version.run_id == run_id
    assert version.source == result["artifact_uri"]
    assert version.source.startswith("mlflow-artifacts:/")
    run_folder = f"{result['experiment_id']}/{run_id}/artifacts/{MODEL_ARTIFACT_PATH}/"
    attempt = version.weights_uri.removeprefix(f"s3://{bucket}/{run_folder}")
    assert ATTEMPT_FOLDER.fullmatch(attempt), version.weights_uri
    # Both attempts' folders are in the bucket, each beside its manifest; the version names the second.
    stored = _keys(client, bucket, run_folder)
    earlier = {key.split("/", 1)[0] for key in stored if "/" in key} - {attempt}
    assert len(earlier) == 1 and f"{earlier.pop()}/{leftover}" in stored
    files = {key.removeprefix(f"{attempt}/") for key in stored if key.startswith(f"{attempt}/")}
    listed = client.get_object(Bucket=bucket, Key=f"{run_folder}{attempt}.sha256sums")["Body"].read().decode()
    assert files == {line.split("  ", 1)[1] for line in listed.splitlines()}
    assert leftover not in files and {"config.json", "model.safetensors"} <= files
    assert version.tags["weights_digest"] == result["weights_digest"] == weights_manifest.digest(listed)

    fetched = run_fetch(
        fetch_script(repo_root), endpoint, tmp_path, version.weights_uri, version.tags["weights_digest"]
    )
    assert fetched.returncode == 0, fetched.stderr
    assert f"{len(files)} files from {version.weights_uri}/ match weightsDigest" in fetched.stdout
    served = tmp_path / "models" / "weights"
    assert {p.relative_to(served).as_posix() for p in served.rglob("*") if p.is_file()} == files
