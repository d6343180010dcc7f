"""vLLM in tests: a model the trainer really trained, served by vLLM with the dev Deployment's flags.

Each vLLM start costs about 40 s of two CPU cores (two minutes when they are busy), so the
tests share one server per session (the `vllm` fixture in tests/conftest.py) and start a
second replica only where a test needs two. The vLLM venv is made by `make vllm` when missing
(:func:`mlops.local.local_vllm.vllm_python`)::

    model_dir = train_tiny_model(tmp)
    with serve_like_dev(model_dir, tmp / "vllm.log") as server:
        server.url, server.version
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from mlops.local.local_servers import LocalServer, free_port
from mlops.local.local_vllm import serve
from mlops.rendering.render import render_kustomization
from mlops.rendering.vllm_args import deployment_args, local_args
from mlops.repository import model_version_file
from prometheus_client.parser import text_string_to_metric_families

from support.trainer_runs import REPO_ROOT, TINY_RUN, run, torchrun, trainer_env

MODEL = "support-chat"
DEV_OVERLAY = f"overlays/dev/models/{MODEL}"


@dataclass
class VllmReplica:
    """A running vLLM, with the model version it serves (the dev overlay's)."""

    server: LocalServer
    version: str

    @property
    def url(self) -> str:
        return self.server.url

    def metric(self, name: str) -> float:
        """The sum of a `/metrics` sample over its label sets (0 when it has none)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )


def train_tiny_model(tmp: Path) -> Path:
    """Train the tiny model for two steps on one CPU rank (MLflow on SQLite); its saved model folder."""
    result_file = tmp / "result.json"
    done = run(
        torchrun(1, "trainer.train", *TINY_RUN, "--max-steps", "2", "--result-file", str(result_file)),
        trainer_env(f"sqlite:///{tmp}/mlflow.db"),
        tmp,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return Path(json.loads(result_file.read_text())["artifact_uri"])


def dev_args() -> tuple[list[str], str]:
    """The dev model Deployment's vLLM args (as the kubelet expands them) and the version it serves."""
    (deployment,) = [d for d in render_kustomization(REPO_ROOT, DEV_OVERLAY) if d["kind"] == "Deployment"]
    return deployment_args(deployment), model_version_file.load(REPO_ROOT, "dev", MODEL).version


@contextmanager
def serve_like_dev(model_dir: Path, log: Path) -> Iterator[VllmReplica]:
    """vLLM over `model_dir` with the dev Deployment's flags (GPU sizing dropped), on a free port."""
    args, version = dev_args()
    with serve(REPO_ROOT, local_args(args, model_dir, port=free_port()), log, timeout=600) as server:
        yield VllmReplica(server, version)


def parse_with_vllm(args_by_name: dict[str, list[str]]) -> dict[str, str]:
    """Run each command line through `vllm serve`'s own parser (in the vLLM venv).

    Returns:
        name -> vLLM's complaint, for each command line it rejects (argparse's error line,
        or a deprecation warning it logs while parsing).
    """
    from mlops.local.local_vllm import vllm_python

    done = subprocess.run(
        [str(vllm_python(REPO_ROOT)), str(Path(__file__).with_name("vllm_parse_args.py"))],
        input=json.dumps(args_by_name),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return dict(json.loads(found.group(1)))
