"""How `mlops validate` and `mlops diff` scale with the number of models, beside bare kustomize.

    make bench-scale
    python benchmarks/validate_scale.py [--models 1,10,100] [--repeat 3]

For each N it makes a git repository copy of this one with N models in both environments
(`support-chat` plus N-1 copies of its folders, `overlays/<env>/models/model-NNN/`), commits
it, and times, each as a fresh `mlops` process:

- full: `mlops validate` of the whole tree with an empty build cache (what a first run, or CI
  without a cache, pays), and `mlops diff` against an empty first commit (every folder is new,
  so every folder is rendered); both should grow at most linearly;
- one-model change: one model's `model-version.yaml` in dev edited (a promote), then
  `mlops validate` and `mlops diff --base HEAD` with the cache the full run left; this should
  cost about the same at 100 models as at 1;
- bare kustomize: `kustomize build` of every folder one after another, no Python at all.

Times are medians of --repeat runs; the machine's load average is printed beside them
because on a shared machine it moves every number.

`--baseline REF` (`make bench-scale BASELINE=REF`) instead compares the one-model change with
the tree at git REF: each side gets its own copy made from its own tree (REF is exported with
`git archive`, and its `mlops` runs from that export through PYTHONPATH), caches filled by a
full run, then rounds alternate the side that goes first; each round edits the version file
again, so the changed folder is rebuilt every time. It prints every round, the medians, their
ratio, and the CPU time (user + system, kustomize included), which others' load moves less.
"""

from __future__ import annotations

import argparse
import os
import resource
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

TEMPLATE = "support-chat"


def make_repo(source: Path, dest: Path, models: int) -> None:
    """A committed copy of the tracked files of `source` with `models` models per environment."""
    files = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = source / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    for env in ENVS:
        folder = dest / "overlays" / env / "models" / TEMPLATE
        for i in range(1, models):
            copy = folder.with_name(f"model-{i:03d}")
            shutil.copytree(folder, copy)
            for file in copy.iterdir():
                file.write_text(file.read_text().replace(TEMPLATE, copy.name))
    # The training workflow's model parameter lists the model folders: regenerate it, as a
    # person adding a model must, so that the copy validates clean (MLOPS050).
    subprocess.run(
        [sys.executable, "-m", "mlops", "workflows", "compile"],
        cwd=dest,
        env={**os.environ, "MLOPS_REPO": str(dest)},
        check=True,
        capture_output=True,
    )
    git = ["git", "-C", str(dest), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "empty"], check=True
    )  # diff's "whole tree" base
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"{models} models"], check=True)


def one_model_change(repo: Path, mark: str = "") -> None:
    """Edit one model's version file in dev, as `mlops promote` would."""
    file = repo / "overlays" / "dev" / "models" / TEMPLATE / "model-version.yaml"
    file.write_text(file.read_text() + f"# promoted {mark}\n")


def timed(cmd: list[str], repo: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def bare_kustomize(repo: Path) -> float:
    folders = [t.path for env in ENVS for t in targets(repo, env)]
    start = time.perf_counter()
    for folder in folders:
        subprocess.run([*kustomize_command(), str(repo / folder)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(source: Path, models: int, repeat: int, crds: Path) -> dict[str, float]:
    """Median seconds of each measurement for a copy with `models` models."""
    samples: dict[str, list[float]] = {}
    mlops = [sys.executable, "-m", "mlops"]
    with tempfile.TemporaryDirectory(prefix=f"scale-{models}-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(source, repo, models)
        samples["kustomizations"] = [float(len([t for env in ENVS for t in targets(repo, env)]))]
        cache = Path(tmp) / "cache"
        env = {
            **os.environ,
            "MLOPS_REPO": str(repo),
            "MLOPS_CRDS_DIR": str(crds),
            "MLOPS_CACHE_DIR": str(cache),
        }
        no_cache = {**env, "MLOPS_BUILD_CACHE": "0"}
        timed([*mlops, "validate"], repo, no_cache)  # fills the CRD schema cache: not what is measured
        for _ in range(repeat):
            subprocess.run(["git", "-C", str(repo), "checkout", "-q", "--", "."], check=True)
            shutil.rmtree(cache / "builds", ignore_errors=True)
            samples.setdefault("bare kustomize", []).append(bare_kustomize(repo))
            samples.setdefault("validate, full", []).append(timed([*mlops, "validate"], repo, env))
            shutil.rmtree(cache / "builds", ignore_errors=True)
            samples.setdefault("diff, full", []).append(
                timed([*mlops, "diff", "--base", "HEAD~1"], repo, env)
            )
            one_model_change(repo)
            samples.setdefault("validate, 1 model changed", []).append(timed([*mlops, "validate"], repo, env))
            samples.setdefault("diff, 1 model changed", []).append(
                timed([*mlops, "diff", "--base", "HEAD"], repo, env)
            )
            samples.setdefault("validate, no cache", []).append(timed([*mlops, "validate"], repo, no_cache))
    return {name: statistics.median(values) for name, values in samples.items()}


def checkout_ref(source: Path, ref: str, dest: Path) -> Path:
    """The tree at git `ref` as a detached worktree in `dest` (`make_repo` lists its files with git)."""
    git = ["git", "-C", str(source), "worktree"]
    subprocess.run([*git, "add", "-q", "--detach", str(dest), ref], check=True)
    return dest


def _side_env(tree: Path, repo: Path, cache: Path) -> dict[str, str]:
    """The environment that runs `tree`'s own `mlops` against `repo`."""
    paths = [tree / "scripts", tree, *(tree / "images" / name for name in ("gateway", "trainer", "mlflow"))]
    env = {**os.environ, "MLOPS_REPO": str(repo), "MLOPS_CACHE_DIR": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("MLOPS_CRDS_DIR", None)  # each side's own packaged CRDs
    return env


def timed_cpu(cmd: list[str], repo: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(cmd, repo, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def compare(source: Path, ref: str, models: int, rounds: int) -> None:
    """Warm one-model-change validation of this tree against the tree at `ref`, interleaved."""
    with tempfile.TemporaryDirectory(prefix=f"scale-vs-{ref[:12]}-") as tmp:
        baseline = checkout_ref(source, ref, Path(tmp) / "tree")
        try:
            sides = {
                name: _prepared_side(tree, Path(tmp) / name, models)
                for name, tree in (("baseline", baseline), ("now", source))
            }
            samples = _interleaved(sides, rounds)
        finally:
            git = ["git", "-C", str(source), "worktree"]
            subprocess.run([*git, "remove", "--force", str(baseline)], check=False)
    wall = {n: statistics.median(w for w, _ in v) for n, v in samples.items()}
    cpu = {n: statistics.median(c for _, c in v) for n, v in samples.items()}
    pairs = zip(samples["baseline"], samples["now"], strict=True)
    per_round = ", ".join(f"{now[0] / base[0]:.2f}" for base, now in pairs)
    print(f"\nvalidate, 1 model changed, {models} models, median of {rounds} interleaved rounds:")
    print(f"  baseline {ref}: {wall['baseline']:.2f} s (CPU {cpu['baseline']:.2f} s)")
    print(f"  now: {wall['now']:.2f} s (CPU {cpu['now']:.2f} s)")
    ratio, cpu_ratio = wall["now"] / wall["baseline"], cpu["now"] / cpu["baseline"]
    print(f"  ratio: {ratio:.2f}x (CPU {cpu_ratio:.2f}x); per round {per_round}")


def _prepared_side(tree: Path, work: Path, models: int) -> tuple[Path, dict[str, str]]:
    """A copy with `models` models made by `tree`'s own make_repo, its caches filled by full runs."""
    repo = work / "repo"
    env = _side_env(tree, repo, work / "cache")
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from validate_scale import make_repo; "
        "make_repo(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tree / "benchmarks"), str(tree), str(repo), str(models)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    print(f"{work.name}: filling the caches at {models} models (minutes) ...", flush=True)
    for _ in range(2):
        timed([sys.executable, "-m", "mlops", "validate"], repo, env)
    return repo, env


def _interleaved(
    sides: dict[str, tuple[Path, dict[str, str]]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Per side, (wall, CPU) of each round's one-model-change validation; the first side alternates."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(sides)[::-1]
        for name in order:
            repo, env = sides[name]
            one_model_change(repo, f"round {number}")
            samples[name].append(timed_cpu([sys.executable, "-m", "mlops", "validate"], repo, env))
        shown = "  ".join(f"{n} {samples[n][-1][0]:.2f} s (CPU {samples[n][-1][1]:.2f} s)" for n in sides)
        print(f"round {number + 1}: {shown}  load {os.getloadavg()[0]:.1f}", flush=True)
    return samples


def main() -> None:
    """Measure every N and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="1,10,100", help="comma-separated model counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline", metavar="REF", help="compare the one-model change with the tree at git REF"
    )
    args = parser.parse_args()
    source = find_repo_root()
    if args.baseline:
        for n in (int(n) for n in args.models.split(",")):
            compare(source, args.baseline, n, args.repeat)
        return
    crds = default_crds_dir(source)
    counts = [int(n) for n in args.models.split(",")]
    rows = {}
    for n in counts:
        print(f"{n} models ... (load {os.getloadavg()[0]:.1f})", flush=True)
        rows[n] = measure(source, n, args.repeat, crds)
    names = [k for k in rows[counts[0]] if k != "kustomizations"]
    print(f"\nseconds, median of {args.repeat}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'models':>8}{'folders':>9}" + "".join(f"{name:>27}" for name in names))
    for n in counts:
        row = rows[n]
        print(f"{n:>8}{row['kustomizations']:>9.0f}" + "".join(f"{row[name]:>27.2f}" for name in names))


if __name__ == "__main__":
    main()
