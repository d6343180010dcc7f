"""A rank killed mid-run (as a spot interruption would) and the job restarted: it resumes and finishes."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from support.servers import free_port
from support.trainer_runs import TINY_RUN, run, torchrun, trainer_env

pytestmark = pytest.mark.slow

STEPS = 24
EVERY = 4


def _complete_steps(checkpoints: Path) -> list[int]:
    return sorted(int(d.name.split("-")[1]) for d in checkpoints.glob("step-*") if (d / "COMPLETE").is_file())


def _rank_pid(torchrun_pid: int, rank: int) -> int | None:
    """The worker of ``rank`` among torchrun's children (by its RANK environment variable)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != torchrun_pid:
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines() if line.startswith("trainer_"))
    }


def test_killed_rank_resumes_from_newest_checkpoint(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/.mlops/mlflow.db"
    checkpoints = tmp_path / "checkpoints"
    metrics_port = free_port()
    args = [
        "--metrics-port",
        str(metrics_port),
        "--metrics-host",
        "127.0.0.1",
        *TINY_RUN,
        "--max-steps",
        str(STEPS),
        "--checkpoint-dir",
        str(checkpoints),
        "--checkpoint-every",
        str(EVERY),
        "--keep-checkpoints",
        "2",
        "--result-file",
        str(tmp_path / "result.json"),
    ]
    env = trainer_env(uri)

    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            torchrun(2, "trainer.train", *args), env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 180
            while not _complete_steps(checkpoints):
                assert first.poll() is None, log.read_text()[-5000:]
                assert time.monotonic() < deadline, "no checkpoint within 180 s"
                time.sleep(0.02)
            # Rank 0's Prometheus endpoint reports the progress while the job runs. The marker
            # is written inside the save and the counter moves when it returns: wait for it.
            metrics = _scrape(metrics_port)
            while metrics["trainer_checkpoints_saved_total"] < 1 and first.poll() is None:
                assert time.monotonic() < deadline, f"checkpoint counter never moved: {metrics}"
                time.sleep(0.05)
                metrics = _scrape(metrics_port)
            assert metrics["trainer_global_step"] >= EVERY
            assert metrics["trainer_checkpoints_saved_total"] >= 1
            assert metrics["trainer_tokens_per_second"] > 0
            assert 0 < metrics["trainer_loss"] < 20
            victim = _rank_pid(first.pid, 1)
            assert victim is not None, "rank 1 not found among torchrun's workers"
            subprocess.run(["kill", "-9", str(victim)], check=True)
            first.wait(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert first.returncode != 0, "the job finished before the kill; nothing was interrupted"
    assert not (tmp_path / "result.json").exists()
    saved = _complete_steps(checkpoints)
    assert saved and saved[-1] < STEPS, saved
    newest = saved[-1]
    run_id = json.loads((checkpoints / f"step-{newest:08d}" / "state.json").read_text())["run_id"]

    second = run(torchrun(2, "trainer.train", *args), env, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-5000:]
    assert f"resumed from checkpoint {checkpoints} at step {newest}" in second.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["final_step"] == STEPS
    assert result["resumed_from_step"] == newest
    assert result["run_id"] == run_id

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    run_ = client.get_run(run_id)
    assert run_.info.status == "FINISHED"
    assert run_.data.tags["resumed_from_step"] == str(newest)
    assert {m.step for m in client.get_metric_history(run_id, "loss")} == set(range(1, STEPS + 1))
    versions = client.search_model_versions("name = 'support-chat'")
    assert [v.run_id for v in versions] == [run_id]
    # Two kept, the last one at the final step, each with the marker written last.
    assert _complete_steps(checkpoints) == [STEPS - EVERY, STEPS]
