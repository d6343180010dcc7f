"""Running the trainer in tests: its environment, torchrun command lines and a tiny, fast config.

Other test areas (promote, demo) can train a real model version with these::

    from support.trainer_runs import TINY_RUN, run, torchrun, trainer_env
    run(torchrun(2, "trainer.train", *TINY_RUN, "--max-steps", "4"), trainer_env(uri), cwd=tmp_path)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINER_DIR = REPO_ROOT / "images" / "trainer"

#: Small enough for a few CPU steps per test on a shared 2-core machine; --seq-len holds a whole
#: synthetic conversation (up to about 160 tokens), so every one keeps its assistant's tokens.
TINY_RUN = [
    "--seq-len",
    "192",
    "--batch-size",
    "4",
    "--synthetic-conversations",
    "240",
    "--learning-rate",
    "0.003",
    "--warmup-steps",
    "2",
]
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE_DIGEST = "sha256:" + "ab" * 32


def trainer_env(tracking_uri: str, **extra: str) -> dict[str, str]:
    """Environment of a trainer subprocess: its package importable, one thread per rank."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(TRAINER_DIR), env.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
        MLFLOW_TRACKING_URI=tracking_uri,
        GIT_COMMIT=GIT_COMMIT,
        IMAGE_DIGEST=IMAGE_DIGEST,
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


def torchrun(nproc: int, module: str, *args: str) -> list[str]:
    """``torchrun --standalone --nproc_per_node N -m MODULE ARGS`` with this interpreter."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        *args,
    ]


def run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text."""
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
