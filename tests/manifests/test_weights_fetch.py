"""The vLLM pod's weights fetch, run for real: the rendered init container script against S3.

moto in server mode stands in for S3 (127.0.0.1, a free port); support.weights_fetch runs the
script as the container does. The weights and their manifest are published with the trainer's own
code (trainer.weights_manifest), so the test also proves that the shell and the trainer compute
the same digest.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.servers import free_port
from support.weights_fetch import AWS
from support.weights_fetch import fetch_script as rendered_fetch_script
from support.weights_fetch import run_fetch as _fetch
from trainer import weights_manifest

BUCKET = "mlops-dev-mlflow-artifacts"
WEIGHTS = {
    "config.json": b'{"model_type": "llama"}\n',
    "model.safetensors": os.urandom(3 << 20),
    "tokenizer.json": b'{"version": "1.0"}\n',
    "nested/generation_config.json": b"{}\n",
    "special_tokens_map.json": b"{}\n",  # a fifth file: the script hashes four at a time
}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """moto's S3 with dev's artifact bucket; yields (endpoint URL, boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets per process, not per server: start from none, whatever ran before.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    try:
        yield endpoint, client
    finally:
        server.stop()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def fetch_script(repo_root: Path) -> tuple[list[str], str]:
    return rendered_fetch_script(repo_root)


def _publish(client: Any, tmp_path: Path, run: str, files: dict[str, bytes]) -> tuple[str, str]:
    """Store weights as the trainer does (files + manifest); return (weightsUri, weightsDigest)."""
    folder = tmp_path / f"trained-{run}"
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    manifest = weights_manifest.manifest(folder)
    prefix = f"1/{run}/artifacts/model"
    for name in files:
        client.upload_file(str(folder / name), BUCKET, f"{prefix}/{name}")
    client.put_object(Bucket=BUCKET, Key=prefix + weights_manifest.MANIFEST_SUFFIX, Body=manifest.encode())
    return f"s3://{BUCKET}/{prefix}", weights_manifest.digest(manifest)


def test_the_weights_the_trainer_registered_arrive_and_pass(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    uri, digest = _publish(client, tmp_path, "good", WEIGHTS)
    result = _fetch(fetch_script, endpoint, tmp_path, uri, digest)
    assert result.returncode == 0, result.stderr
    assert f"5 files from {uri}/ match weightsDigest {digest}" in result.stdout
    weights = tmp_path / "models" / "weights"
    assert {
        p.relative_to(weights).as_posix(): p.read_bytes() for p in weights.rglob("*") if p.is_file()
    } == WEIGHTS
    assert not (tmp_path / "models" / ".fetch").exists()


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        ("tamper", "fetch-weights: model.safetensors: changed (its sha256 is not the manifest's"),
        ("delete", "fetch-weights: tokenizer.json: missing (the manifest lists it)"),
        ("add", "fetch-weights: nested/extra.py: extra (not in the manifest)"),
    ],
)
def test_weights_changed_in_the_bucket_stop_the_pod(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path, attack: str, expected: str
) -> None:
    endpoint, client = s3
    uri, digest = _publish(client, tmp_path, f"attacked-{attack}", WEIGHTS)
    key = uri.removeprefix(f"s3://{BUCKET}/")
    if attack == "tamper":  # a bucket writer swaps the weights for others of the same name
        client.put_object(Bucket=BUCKET, Key=f"{key}/model.safetensors", Body=os.urandom(1 << 20))
    elif attack == "delete":
        client.delete_object(Bucket=BUCKET, Key=f"{key}/tokenizer.json")
    else:  # a file a loader might pick up (trust_remote_code, an extra shard)
        client.put_object(Bucket=BUCKET, Key=f"{key}/nested/extra.py", Body=b"import os\n")
    result = _fetch(fetch_script, endpoint, tmp_path, uri, digest)
    assert result.returncode == 1
    assert expected in result.stderr
    assert f"the files under {uri}/ do not match weightsDigest {digest}" in result.stderr


def test_an_empty_prefix_fails_naming_the_uri(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    uri, digest = _publish(client, tmp_path, "emptied", WEIGHTS)
    key = uri.removeprefix(f"s3://{BUCKET}/")
    for name in WEIGHTS:
        client.delete_object(Bucket=BUCKET, Key=f"{key}/{name}")
    result = _fetch(fetch_script, endpoint, tmp_path, uri, digest)
    assert result.returncode == 1
    assert f"fetch-weights: nothing under {uri}/ (wrong weightsUri in model-version.yaml?)" in result.stderr
    assert "fetch-weights: config.json: missing (the manifest lists it)" in result.stderr


def test_a_forged_manifest_is_refused_before_any_weight_is_copied(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path
) -> None:
    # A bucket writer who swaps a file and rewrites the manifest to match still cannot
    # change the digest in git.
    endpoint, client = s3
    uri, digest = _publish(client, tmp_path, "forged", WEIGHTS)
    key = uri.removeprefix(f"s3://{BUCKET}/")
    forged = {**WEIGHTS, "model.safetensors": b"other weights"}
    folder = tmp_path / "forged"
    for name, body in forged.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    client.put_object(Bucket=BUCKET, Key=f"{key}/model.safetensors", Body=b"other weights")
    manifest = weights_manifest.manifest(folder).encode()
    client.put_object(Bucket=BUCKET, Key=key + weights_manifest.MANIFEST_SUFFIX, Body=manifest)
    result = _fetch(fetch_script, endpoint, tmp_path, uri, digest)
    assert result.returncode == 1
    assert f"{uri}.sha256sums does not hash to weightsDigest {digest}" in result.stderr
    assert not any((tmp_path / "models" / "weights").iterdir())


def test_no_manifest_fails_naming_it(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, client = s3
    uri, digest = _publish(client, tmp_path, "unregistered", WEIGHTS)
    client.delete_object(
        Bucket=BUCKET, Key=uri.removeprefix(f"s3://{BUCKET}/") + weights_manifest.MANIFEST_SUFFIX
    )
    result = _fetch(fetch_script, endpoint, tmp_path, uri, digest)
    assert result.returncode == 1
    assert (
        f"fetch-weights: {uri}.sha256sums: the trainer's weights manifest could not be read" in result.stderr
    )


@pytest.mark.parametrize("digest", ["none", "", "sha256:abc", "sha256:" + "G" * 64, "md5:" + "0" * 64])
def test_a_malformed_digest_is_refused_before_s3_is_asked(
    fetch_script: tuple[list[str], str], tmp_path: Path, digest: str
) -> None:
    # No endpoint at all: the script must stop before its first S3 call.
    result = _fetch(
        fetch_script, "http://127.0.0.1:9", tmp_path, f"s3://{BUCKET}/1/x/artifacts/model", digest
    )
    assert result.returncode == 1
    assert f"fetch-weights: weightsDigest is '{digest}', not sha256:<64 hex>" in result.stderr


def test_the_empty_manifest_digest_of_an_empty_prefix_is_not_accepted_by_accident(
    fetch_script: tuple[list[str], str], s3: tuple[str, Any], tmp_path: Path
) -> None:
    # sha256 of nothing: what an empty download hashes to. No trainer registers it (a model
    # folder with no file raises), and the fetch still fails when the manifest is missing.
    endpoint, _client = s3
    empty = "sha256:" + hashlib.sha256(b"").hexdigest()
    result = _fetch(fetch_script, endpoint, tmp_path, f"s3://{BUCKET}/1/nothing/artifacts/model", empty)
    assert result.returncode == 1
    assert "sha256sums: the trainer's weights manifest could not be read" in result.stderr
