"""Render + validate of every environment vs. bare sequential `kustomize build` of the same folders.

Issue 2's target: `mlops validate` (render in parallel, then every check) takes at most 1.3x
the time of building the same kustomizations one after another with kustomize alone.

Usage: python benchmarks/render_validate.py [--repeat N]
Prints the median of N runs of each (after one warm-up run that fills the CRD schema cache),
the ratio, and the cold-cache time of `mlops validate` for reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops.conventions.paths import ENVS, default_crds_dir, find_repo_root
from mlops.rendering.kustomize import kustomize_command
from mlops.rendering.render import targets


def bare_kustomize(repo: Path, folders: list[str]) -> float:
    start = time.perf_counter()
    for folder in folders:
        subprocess.run([*kustomize_command(), str(repo / folder)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def mlops_validate(repo: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "validate", *ENVS], cwd=repo, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"mlops validate failed: {proc.stderr}")
    print(f"  {proc.stdout.strip().splitlines()[-1]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repo = find_repo_root()
    folders = [t.path for env in ENVS for t in targets(repo, env)]
    env = {**os.environ, "MLOPS_REPO": str(repo), "MLOPS_CRDS_DIR": str(default_crds_dir(repo))}
    print(f"{len(folders)} kustomizations across {', '.join(ENVS)}; {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as cold_cache:
        print("mlops validate, cold schema cache (parses every CRD file):")
        cold = mlops_validate(repo, {**env, "MLOPS_CACHE_DIR": cold_cache})
        shutil.rmtree(cold_cache, ignore_errors=True)
    print("mlops validate, warm-up:")
    mlops_validate(repo, env)

    bare, full = [], []
    for _ in range(args.repeat):  # interleaved, so a busy machine slows both alike
        bare.append(bare_kustomize(repo, folders))
        full.append(mlops_validate(repo, env))
    bare_s, full_s = statistics.median(bare), statistics.median(full)
    print(f"bare sequential kustomize build: {bare_s:.2f}s (median of {args.repeat})")
    print(f"mlops validate (render + validate): {full_s:.2f}s (median of {args.repeat})")
    print(f"ratio: {full_s / bare_s:.2f} (target <= 1.30)")
    print(f"mlops validate with a cold schema cache: {cold:.2f}s")


if __name__ == "__main__":
    main()
