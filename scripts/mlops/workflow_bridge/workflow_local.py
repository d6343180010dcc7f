"""`mlops workflows run-local`: train-and-promote's steps on this machine, in the same order.

    from mlops.workflow_bridge.workflow_local import LocalRun, run_local
    outcome = run_local(repo, remote="/tmp/remote.git", work_dir=Path("/tmp/run"),
                        overrides={"max-steps": "4"})
    outcome.status, outcome.model_version, [s.name for s in outcome.steps]

The steps are the WorkflowTemplate's (`workflows/train_and_promote.STEPS`), with the same
defaults (`workflows/parameters.py`, dev's values) and the same command lines
(`workflows/trainer_command.py`); what differs is where they run:
  - build: skipped (no image builder here); the trainer runs as installed beside this CLI
    (`pip install -e '.[train]'`, the `trainer` package of images/trainer);
  - train: `torchrun --standalone --nproc_per_node N -m trainer.train` instead of the
    PyTorchJob, with the tiny base model and the synthetic dataset unless overridden;
  - evaluate: `python -m trainer.evaluate`, the same gate;
  - promote: `mlops promote --automated` in a fresh clone of `--remote`, as the git-bot does;
and the exit handler's report is printed at the end, whatever happened. MLflow is a local
SQLite store with local artifacts unless `MLFLOW_TRACKING_URI` (or `tracking_uri`) is set.
`step_env` gives a step variables of its own, as the template gives each step its Secrets:
an authenticated registry's trainer login to train and evaluate, the promotion login to promote.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.errors import MlopsError
from workflows import environments, parameters, steps, train_and_promote, trainer_command

LOCAL_VALUES = {"base-model": "tiny", "dataset": "synthetic", "target-env": "dev"}
"""What a laptop trains on instead of the S3 defaults: the trainer's own tiny model and data."""
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"
"""Where `mlflow ui --backend-store-uri <the local store>` serves the links the report prints."""


class RunLocalError(MlopsError):
    """The local run cannot start: a bad override, no remote, no trainer code."""


@dataclass
class StepResult:
    """What one step did: `Succeeded`, `Skipped` or `Failed`, and why."""

    name: str
    status: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class Outcome:
    """The run's result, as the exit handler sees it."""

    workflow: str
    status: str = "Running"
    commit: str = ""
    steps: list[StepResult] = field(default_factory=list)
    run_id: str = ""
    model_version: str = ""
    mlflow_run_url: str = ""
    promote_output: str = ""
    report: str = ""


@dataclass
class LocalRun:
    """Everything the steps share: the repository, the values, where files and MLflow live."""

    repo: Path
    remote: str
    work_dir: Path
    tracking_uri: str
    values: dict[str, str]
    nproc: str = "2"
    workflow: str = ""
    step_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workflow = self.workflow or f"run-local-{time.strftime('%Y%m%d-%H%M%S')}"

    def env(self, step: str, **extra: str) -> dict[str, str]:
        """Environment of a step's subprocess: MLflow set, the step's own variables, no enclosing rank."""
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
        env.update(
            MLFLOW_TRACKING_URI=self.tracking_uri,
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            HF_HUB_OFFLINE="1",
        )
        env.update(self.step_env.get(step, {}))
        env.update(extra)
        return env

    def in_process(self, step: str) -> AbstractContextManager[None]:
        """Give this process a step's variables while it does that step's work itself (its MLflow login)."""
        return environ(self.step_env.get(step, {}))


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in this process's environment for the block, then put back what was there."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Parse `NAME=VALUE` items of `--set`."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RunLocalError(f"--set {item!r}: write NAME=VALUE, e.g. --set max-steps=4")
        overrides[name.strip()] = value.strip()
    return overrides


def local_values(repo: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The template's dev defaults, the local model and data, then the overrides (checked).

    Every value must match its parameter's pattern, as in the workflow's check-parameters step.
    """
    declared = {p.name: p for p in parameters.parameters(environments.ENVIRONMENTS["dev"], repo)}
    values = {name: p.default for name, p in declared.items()}
    values.update(LOCAL_VALUES)
    for name, value in overrides.items():
        if name not in declared:
            raise RunLocalError(f"--set {name}: not a parameter of train-and-promote ({', '.join(declared)})")
        enum = declared[name].enum
        if enum and value not in enum:
            raise RunLocalError(f"--set {name}={value}: must be one of {', '.join(enum)}")
        values[name] = value
    for name, value in values.items():
        write_inputs.check_pattern(name, value, declared[name].regex)
    return values


def _run(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """Run a step's command, echo its output and keep it in the step's log file."""
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}", encoding="utf-8")
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    """The step's last line of prose (the trainer ends with a JSON summary, which is not)."""
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    prose = [line for line in lines if not line.lstrip().startswith("{")]
    return (prose or lines or [f"exit code {proc.returncode}"])[-1].strip()


# --- the steps: plain functions, in the template's order ------------------------------------


def build(run: LocalRun, outcome: Outcome) -> StepResult:
    """Step 1: no image builder here; the trainer and mlops run as installed beside this CLI instead."""
    return StepResult(
        "build", "Skipped", "no image builder on this machine: trainer and mlops run as installed"
    )


def commit_of(repo: Path) -> str:
    """The checkout's commit (what the cluster's run would have built and tagged)."""
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def train_argv(run: LocalRun, result_file: Path) -> list[str]:
    """The local training command: the PyTorchJob's torchrun line, standalone, with local paths."""
    args = trainer_command.train_args(
        run.values,
        run_name=run.workflow,
        checkpoint_dir=str(run.work_dir / "checkpoints" / run.workflow),
        result_file=str(result_file),
        metrics_port="0",
    )
    torchrun = trainer_command.torchrun(run.nproc, trainer_command.TRAIN_MODULE, args, standalone=True)
    # this interpreter's torchrun: the venv's console scripts need not be on PATH
    return [sys.executable, "-m", "torch.distributed.run", *torchrun[1:]]


def train(run: LocalRun, outcome: Outcome) -> StepResult:
    """Step 2: torchrun on this machine with the PyTorchJob's arguments, then read back the version."""
    result_file = run.work_dir / "train-result.json"
    argv = train_argv(run, result_file)
    commit = outcome.commit = commit_of(run.repo)
    proc = _run(argv, run.env("train", GIT_COMMIT=commit), run.work_dir, run.work_dir / "logs" / "train.log")
    if proc.returncode != 0:
        return StepResult("train", "Failed", _tail(proc))
    with run.in_process("train"):  # the template's training-result step logs in as the trainer too
        result = steps.training_result(
            model_name=run.values["model-name"],
            commit=commit,
            mlflow_tracking_uri=run.tracking_uri,
            mlflow_ui_url=LOCAL_MLFLOW_UI,
        )
    trained = json.loads(result_file.read_text(encoding="utf-8"))
    if str(trained["model_version"]) != result["model-version"]:
        return StepResult(
            "train",
            "Failed",
            f"the trainer registered version {trained['model_version']} but alias candidate is on "
            f"{result['model-version']}",
        )
    outcome.run_id, outcome.model_version = result["run-id"], result["model-version"]
    outcome.mlflow_run_url = result["mlflow-run-url"]
    return StepResult(
        "train", "Succeeded", f"registered {run.values['model-name']} version {outcome.model_version}"
    )


def evaluate(run: LocalRun, outcome: Outcome) -> StepResult:
    """Step 3: the gate; a non-zero exit stops the chain."""
    argv = [
        sys.executable,
        "-m",
        trainer_command.EVALUATE_MODULE,
        *trainer_command.evaluate_args(run.values, model_version=outcome.model_version),
    ]
    proc = _run(argv, run.env("evaluate"), run.work_dir, run.work_dir / "logs" / "evaluate.log")
    if proc.returncode != 0:
        return StepResult("evaluate", "Failed", _tail(proc))
    return StepResult("evaluate", "Succeeded", f"version {outcome.model_version} passed the gate")


def promote(run: LocalRun, outcome: Outcome) -> StepResult:
    """Step 4: what the git-bot image does: clone the remote, `mlops promote --automated`, push."""
    clone = run.work_dir / "gitops"
    shutil.rmtree(clone, ignore_errors=True)
    cloned = subprocess.run(
        ["git", "clone", "--quiet", "--branch", "main", run.remote, str(clone)],
        capture_output=True,
        text=True,
    )
    if cloned.returncode != 0:
        return StepResult("promote", "Failed", f"git clone {run.remote}: {cloned.stderr.strip()}")
    flags = trainer_command.promote_args(
        run.values, model_version=outcome.model_version, workflow=run.workflow
    )
    argv = [sys.executable, "-m", "mlops", "--repo", str(clone), "promote", "--remote", "origin"]
    argv += ["--branch", "main", *flags, "--automated"]
    identity = {
        "GIT_AUTHOR_NAME": "mlops-git-bot",
        "GIT_AUTHOR_EMAIL": "mlops-git-bot@users.noreply.github.com",
        "GIT_COMMITTER_NAME": "mlops-git-bot",
        "GIT_COMMITTER_EMAIL": "mlops-git-bot@users.noreply.github.com",
    }
    proc = _run(argv, run.env("promote", **identity), clone, run.work_dir / "logs" / "promote.log")
    outcome.promote_output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return StepResult("promote", "Failed", _tail(proc))
    return StepResult("promote", "Succeeded", f"{run.values['target-env']}: version {outcome.model_version}")


STEP_FUNCTIONS: dict[str, Callable[[LocalRun, Outcome], StepResult]] = {
    "build": build,
    "train": train,
    "evaluate": evaluate,
    "promote": promote,
}


def run_steps(run: LocalRun) -> Outcome:
    """Run the template's steps in its order, stop at the first failure, then report (the exit handler)."""
    if tuple(STEP_FUNCTIONS) != tuple(train_and_promote.STEPS):
        raise RunLocalError(
            f"run-local knows steps {list(STEP_FUNCTIONS)}, the template has {list(train_and_promote.STEPS)}"
        )
    run.work_dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(workflow=run.workflow)
    for name in train_and_promote.STEPS:
        print(f"[run-local] step {name}", flush=True)
        started = time.monotonic()
        result = STEP_FUNCTIONS[name](run, outcome)
        result.seconds = time.monotonic() - started
        outcome.steps.append(result)
        print(
            f"[run-local] step {name}: {result.status} in {result.seconds:.1f}s {result.message}".rstrip(),
            flush=True,
        )
        if result.status == "Failed":
            outcome.status = "Failed"
            break
    else:
        outcome.status = "Succeeded"
    failures = [
        {"displayName": s.name, "message": s.message, "phase": "Failed"}
        for s in outcome.steps
        if s.status == "Failed"
    ]
    outcome.report = steps.report_outcome(
        workflow=run.workflow,
        status=outcome.status,
        failures=json.dumps(failures),
        mlflow_run_url=outcome.mlflow_run_url,
    )
    return outcome


TRAINING_PACKAGES = ("torch", "transformers", "trainer")
"""What the train and evaluate steps import, in this interpreter (the `train` extra and images/trainer)."""


def require_training_packages(find: Callable[[str], object | None] | None = None) -> None:
    """Raise naming the install command unless this interpreter can import what training needs.

    Checked before anything runs: without it the train step would end in a
    `ModuleNotFoundError` traceback from torchrun, minutes into the run.
    """
    find = find or importlib.util.find_spec

    def absent(name: str) -> bool:
        try:
            return find(name) is None
        except (ImportError, ValueError):  # a finder that refuses it, a half-removed install
            return True

    missing = [name for name in TRAINING_PACKAGES if absent(name)]
    if missing:
        raise RunLocalError(
            f"run-local trains in this Python ({sys.executable}), which cannot import "
            f"{', '.join(missing)}: install the training extra with `pip install -e '.[train]'` "
            "(or `make venv`, which does), then run it again"
        )


def run_local(
    repo: Path,
    *,
    remote: str,
    work_dir: Path,
    tracking_uri: str | None = None,
    nproc: str = "2",
    overrides: Mapping[str, str] | None = None,
    step_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Outcome:
    """Run train-and-promote locally (see the module docstring) and return its outcome."""
    unknown = sorted(set(step_env or {}) - set(STEP_FUNCTIONS))
    if unknown:
        raise RunLocalError(f"step_env names {', '.join(unknown)}: the steps are {', '.join(STEP_FUNCTIONS)}")
    if not (repo / "images" / "trainer" / "trainer").is_dir():
        raise RunLocalError(
            f"{repo}/images/trainer/trainer is missing: run-local trains with this checkout's trainer"
        )
    require_training_packages()
    values = local_values(repo, overrides or {})
    # fail before training, not after it, when promote will have nowhere to push
    reachable = subprocess.run(
        ["git", "ls-remote", "--heads", remote, "main"], capture_output=True, text=True
    )
    if reachable.returncode != 0 or not reachable.stdout.strip():
        raise RunLocalError(
            f"--remote {remote}: no branch main there (make one with `git clone --bare . {remote}`)"
        )
    work_dir = work_dir.resolve()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{work_dir / 'mlflow.db'}"
    run = LocalRun(
        repo=repo,
        remote=remote,
        work_dir=work_dir,
        tracking_uri=uri,
        values=values,
        nproc=nproc,
        step_env=dict(step_env or {}),
    )
    return run_steps(run)
