"""What verifying the weights costs the vLLM pod's fetch: the rendered script, with and without the check.

    python benchmarks/weights_fetch.py [--mib 256] [--files 4] [--rounds 3]

The weights (random bytes in `--files` shards plus a config.json) and their manifest are
published with the trainer's code (trainer.weights_manifest) to moto's S3 on 127.0.0.1, which
stands in for S3; the fetch script is the one base/models/vllm/deployment.yaml renders for dev,
run by /bin/sh with awscli v1 (`aws` of this interpreter's venv) as `aws`. Each round runs it
twice: as rendered (copy + manifest check), and cut right after the copy (copy only). The
difference is what the digest check adds; `sha256sum` alone over the same bytes is printed too.
On a node the copy is network-bound and much faster than from moto on loopback, so the
check's share there is larger than here: read the sha256sum MiB/s as its ceiling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops.local.local_servers import free_port
from mlops.rendering.render import render_kustomization
from trainer import weights_manifest

BUCKET = "mlops-dev-mlflow-artifacts"
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-west-2"}
COPY_DONE = (
    'aws s3 cp --only-show-errors --recursive "$uri/" "$weights/" || fail "copy from $uri/ failed (above)"\n'
)


def _script(repo: Path) -> str:
    docs = render_kustomization(repo, "overlays/dev/models/support-chat")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    return str(init["args"][0])


def _run(script: str, env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(["/bin/sh", "-ec", script], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"fetch failed: {proc.stderr}")
    return took


def main() -> None:
    """Publish, fetch `--rounds` times with and without the check, print seconds and MiB/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="total size of the shards")
    parser.add_argument("--files", type=int, default=4, help="number of shards")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    repo = Path(__file__).resolve().parents[1]
    script = _script(repo)
    assert COPY_DONE in script, "the rendered script changed: update COPY_DONE"
    copy_only = script[: script.index(COPY_DONE) + len(COPY_DONE)] + "exit 0\n"
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="weights-bench-") as tmp:
            work = Path(tmp)
            folder = work / "model"
            folder.mkdir()
            (folder / "config.json").write_text("{}\n")
            for i in range(args.files):
                (folder / f"model-{i:05d}.safetensors").write_bytes(
                    os.urandom(args.mib * 2**20 // args.files)
                )
            started = time.perf_counter()
            manifest = weights_manifest.manifest(folder)
            trainer_s = time.perf_counter() - started
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2",
                                  aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
            client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
            prefix = "1/bench/artifacts/model"
            for path in folder.iterdir():
                client.upload_file(str(path), BUCKET, f"{prefix}/{path.name}")
            client.put_object(
                Bucket=BUCKET, Key=prefix + weights_manifest.MANIFEST_SUFFIX, Body=manifest.encode()
            )
            env = {
                **AWS,
                "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "HOME": str(work),
                "AWS_ENDPOINT_URL": endpoint,
                "WEIGHTS_URI": f"s3://{BUCKET}/{prefix}",
                "WEIGHTS_DIGEST": weights_manifest.digest(manifest),
                "FETCH_DIR": str(work / "models"),
            }
            (work / "models").mkdir()
            full, copy = [], []
            for _ in range(args.rounds):
                copy.append(_run(copy_only, env))
                full.append(_run(script, env))
            started = time.perf_counter()
            subprocess.run(["sha256sum", *map(str, folder.iterdir())], capture_output=True, check=True)
            sha_s = time.perf_counter() - started
    finally:
        server.stop()
    mib = args.mib
    print(f"weights: {mib} MiB in {args.files} shards + config.json; {args.rounds} rounds, medians")
    print(f"trainer manifest (hashlib)   {trainer_s:6.2f} s   {mib / trainer_s:7.0f} MiB/s")
    print(f"sha256sum alone              {sha_s:6.2f} s   {mib / sha_s:7.0f} MiB/s")
    print(f"fetch, copy only             {statistics.median(copy):6.2f} s")
    print(f"fetch, copy + digest check   {statistics.median(full):6.2f} s")
    print(f"digest check adds            {statistics.median(full) - statistics.median(copy):6.2f} s")


if __name__ == "__main__":
    main()
