"""N promotes racing from N clones to one bare remote: wall time, push attempts, commits landed.

Usage: python benchmarks/promote_race.py [--racers 10]

The registry is MLflow on a local SQLite file (no server), so the numbers are git's and the
retry loop's: every racer fetches, re-applies its edit and pushes until it lands.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "support-chat"
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racers", type=int, default=10)
    args = parser.parse_args()
    os.environ.update(IDENTITY)
    from mlflow import MlflowClient
    from mlops.release.promotion import promote

    with tempfile.TemporaryDirectory(prefix="promote-race-") as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "seed"
        for rel in filter(None, git(REPO, "ls-files", "-z").split("\0")):
            if (REPO / rel).is_file():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, work / rel)
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "seed")
        remote = tmp / "remote.git"
        git(tmp, "clone", "-q", "--bare", str(work), str(remote))

        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model(MODEL)
        experiment = client.create_experiment("bench")
        versions = []
        for _ in range(args.racers + 1):
            run_id = client.create_run(experiment).info.run_id
            mv = client.create_model_version(MODEL, f"s3://mlops-dev-mlflow-artifacts/1/{run_id}/artifacts/model",
                                             run_id=run_id, tags={"gate_passed": "true"})  # fmt: skip
            versions.append(str(mv.version))
        clones = []
        for i in range(args.racers):
            git(tmp, "clone", "-q", str(remote), str(tmp / f"clone-{i}"))
            clones.append(tmp / f"clone-{i}")

        barrier = threading.Barrier(args.racers)
        attempts: list[int] = []
        seconds: list[float] = []

        def racer(clone: Path, version: str) -> None:
            barrier.wait()
            start = time.perf_counter()
            outcome = promote(clone, env="dev", model=MODEL, version=version, log=lambda _: None)
            seconds.append(time.perf_counter() - start)
            attempts.append(outcome.attempts)

        start = time.perf_counter()
        threads = [
            threading.Thread(target=racer, args=(c, v)) for c, v in zip(clones, versions[1:], strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        landed = len(git(remote, "rev-list", "main").split()) - 1
        merges = len(git(remote, "rev-list", "--merges", "main").split())

    print(f"racers: {args.racers}  commits landed: {landed}  merge commits: {merges}")
    print(
        f"wall: {wall:.2f} s  per promote: median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s"
    )
    print(f"push attempts: min {min(attempts)}  median {statistics.median(attempts)}  max {max(attempts)}  "
          f"total {sum(attempts)}")  # fmt: skip


if __name__ == "__main__":
    main()
