"""The weights fetch init container fails when nothing arrived (s5cmd `sync` exits 0 on an empty prefix)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlops.rendering.render import render_kustomization


def _fetch_script(repo: Path) -> tuple[list[str], str]:
    docs = render_kustomization(repo, "overlays/dev/models/support-chat")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == "fetch-weights"
    (script,) = init["args"]
    return init["command"], script


def _run(repo: Path, tmp_path: Path, s5cmd_body: str) -> subprocess.CompletedProcess[str]:
    """Run the rendered script as the container would, with a stand-in s5cmd and a local folder."""
    command, script = _fetch_script(repo)
    weights = tmp_path / "weights"
    weights.mkdir()
    fake = tmp_path / "s5cmd"
    fake.write_text(f"#!/bin/sh\n{s5cmd_body}\n")
    fake.chmod(0o755)
    local = script.replace("/s5cmd ", f"{fake} ").replace("/models/weights/", f"{weights}/")
    assert local != script
    env = {
        "WEIGHTS_URI": "s3://mlops-dev-mlflow-artifacts/1/feedc0de/artifacts/model",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run([*command, local], capture_output=True, text=True, env=env, check=False)


def test_an_empty_prefix_fails_the_fetch_with_the_uri(repo_root: Path, tmp_path: Path) -> None:
    # What s5cmd v2.3.0 does for a prefix with no object: prints nothing (--log=error) and exits 0.
    result = _run(repo_root, tmp_path, "exit 0")
    assert result.returncode == 1
    assert "no config.json under s3://mlops-dev-mlflow-artifacts/1/feedc0de/artifacts/model" in result.stderr


def test_a_failing_copy_fails_the_fetch(repo_root: Path, tmp_path: Path) -> None:
    result = _run(repo_root, tmp_path, 'echo "ERROR AccessDenied" >&2; exit 1')
    assert result.returncode == 1 and "AccessDenied" in result.stderr


@pytest.mark.parametrize("files", [["config.json", "model.safetensors", "tokenizer.json"]])
def test_a_model_that_arrived_passes(repo_root: Path, tmp_path: Path, files: list[str]) -> None:
    body = f'dest="$4"; for f in {" ".join(files)}; do echo x > "$dest$f"; done'
    result = _run(repo_root, tmp_path, body)
    assert result.returncode == 0, result.stderr
