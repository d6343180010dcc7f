"""The vLLM pod's weights fetch run for real: the rendered init container script, against S3 (moto).

The script is taken from the rendered dev Deployment and run by /bin/sh as the container runs it;
only FETCH_DIR (the emptyDir, /models in the pod) points into the test's folder. The `aws` on the
PATH is awscli v1 from PyPI, whose `s3 cp [--recursive]` takes the same arguments as the image's
aws-cli v2; it reaches moto through AWS_ENDPOINT_URL, as the AWS SDKs and CLIs read it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlops.rendering.render import render_kustomization

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-west-2"}
"""Dummy credentials moto accepts."""


def fetch_script(repo_root: Path) -> tuple[list[str], str]:
    """Return the command and script of dev's `fetch-weights` init container, as rendered."""
    docs = render_kustomization(repo_root, "overlays/dev/models/support-chat")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == "fetch-weights"
    (script,) = init["args"]
    return init["command"], script


def run_fetch(
    script: tuple[list[str], str], endpoint: str, tmp_path: Path, uri: str, digest: str
) -> subprocess.CompletedProcess[str]:
    """Fetch `uri` checked against `digest` into `tmp_path/models` as the init container does."""
    command, text = script
    fetch_dir = tmp_path / "models"
    fetch_dir.mkdir(exist_ok=True)
    env = {
        **AWS,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": endpoint,
        "WEIGHTS_URI": uri,
        "WEIGHTS_DIGEST": digest,
        "FETCH_DIR": str(fetch_dir),
    }
    return subprocess.run([*command, text], capture_output=True, text=True, env=env, check=False, timeout=120)
