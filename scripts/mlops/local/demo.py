"""`mlops demo`: the platform's whole loop on this machine, step by step, with timings.

validate every environment -> seed a local bare git remote and a local MLflow registry (the
cluster's basic-auth app and roles, mlops.local.local_mlflow) -> train with 2 ranks, evaluate,
register as the trainer identity, promote to dev as the promotion identity (`mlops workflows run-local`, the
same steps as the Argo WorkflowTemplate) -> the rendered dev diff of the promotion commit ->
serve the promoted version with vLLM (its CPU build, started with the flags rendered from the
dev overlay's model Deployment) behind the gateway -> one streamed chat through the gateway.

Everything it makes lives under `.mlops/demo/` (emptied at the start of each run, kept at
the end so the MLflow UI and the remote can be looked at); the servers it starts are
stopped before it returns, whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops.conventions.deployment import Deployment
from mlops.conventions.environments import ENVS
from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import default_crds_dir
from mlops.conventions.registry_names import GATE_PASSED_TAG
from mlops.local import local_mlflow, local_servers
from mlops.local.local_vllm import vllm_python
from mlops.repository import gitops

MODEL = "support-chat"
ENV = "dev"
# The chat the tiny model was trained on: the synthetic set's system prompt (trainer.data's
# SYSTEM_PROMPT, which a test keeps equal) and a question phrased the way its customers ask.
SYSTEM_PROMPT = "You are a helpful customer support assistant for an online shop."
QUESTION = "Hi, my order of wireless headphones has not arrived yet. The order number is #12345."
# Small enough for 2 CPU cores in a minute or two, long enough that the model answers the
# question: the loss covers only the assistant's tokens, where the tiny random-initialised
# model starts near perplexity 500 and ends below 1.5 (the gate, at most 3, separates a
# trained version from an untrained one). --seq-len holds the longest synthetic conversation
# (about 160 tokens): each conversation is one row, cut at --seq-len, never packed.
TRAINING = {
    "max-steps": "120",
    "batch-size": "8",
    "seq-len": "192",
    "learning-rate": "3e-3",
    "eval-threshold": "3",
}


class DemoError(MlopsError):
    """A demo step failed; the message names the step and where its log is."""


@dataclass
class DemoResult:
    """What the demo produced, also written to `.mlops/demo/summary.json`."""

    model: str
    env: str
    model_version: str
    previous_version: str
    commit: str
    remote: str
    version_file: str
    tracking_uri: str
    backend_store_uri: str
    answer: str
    seconds: float


class _Progress:
    """Numbered steps with their timings, printed as they go."""

    def __init__(self, total: int) -> None:
        self.total, self.number, self.started = total, 0, time.monotonic()

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.number += 1
        print(f"\n==> [{self.number}/{self.total}] {title}", flush=True)
        began = time.monotonic()
        yield
        print(f"    done in {time.monotonic() - began:.1f}s", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def run_demo(repo: Path, crds_dir: Path | None = None) -> DemoResult:
    """Run the loop on `repo`'s committed HEAD and return what it produced."""
    work = repo / ".mlops" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    progress = _Progress(total=8)

    with progress.step("validate every environment (render + strict schemas, CEL, policies)"):
        _validate(repo, crds_dir or default_crds_dir(repo))
    with ExitStack() as servers:
        with progress.step("seed a local bare git remote and the local MLflow registry (auth on)"):
            registry = local_mlflow.start(repo, work, servers, env=ENV)
            os.environ["MLFLOW_TRACKING_URI"] = registry.url
            print(f"    MLflow {registry.url}: {local_mlflow.AUTH_FILE_KEY} and logins in {registry.folder}")
            remote = _seed_remote(repo, work)
            previous = _seed_registry(remote, work, registry)
        with progress.step(f"train (torchrun, 2 ranks), evaluate and register, promote to {ENV}"):
            version = _train_evaluate_promote(repo, remote, work, registry)
        with progress.step(f"the rendered {ENV} diff of the promotion commit"):
            clone = _clone(remote, work / "checkout")
            _show_diff(clone)
        with progress.step("vLLM's CPU build in .venv-vllm (`make vllm`: installed once, minutes)"):
            vllm_python(repo)
        with progress.step(f"serve {MODEL} version {version} with vLLM, behind the gateway"):
            gateway_url, api_key = _serve(repo, clone, work, version, servers)
        with progress.step("one chat through the gateway, streamed (OpenAI client)"):
            answer = _chat(gateway_url, api_key)
    with progress.step("where everything is"):
        result = DemoResult(
            model=MODEL,
            env=ENV,
            model_version=version,
            previous_version=previous,
            commit=_git(clone, "rev-parse", "HEAD"),
            remote=str(remote),
            version_file=Deployment(ENV, MODEL).version_file,
            tracking_uri=registry.url,
            backend_store_uri=f"sqlite:///{work / 'mlflow.db'}",
            answer=answer,
            seconds=round(progress.elapsed(), 1),
        )
        (work / "summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
        _print_summary(result, work, clone)
    print(f"\nDemo finished in {progress.elapsed():.0f}s.")
    return result


def _validate(repo: Path, crds_dir: Path) -> None:
    from mlops.validate.runner.engine import validate

    report = validate(repo, ENVS, crds_dir)
    for problem in report.problems:
        print(f"    {problem}")
    print(f"    {report.summary()}")
    if not report.ok:
        raise DemoError(f"validate: {len(report.problems)} problems; fix them first (`mlops validate`)")


def _git(cwd: Path, *args: str) -> str:
    """Return what `git -C cwd args...` prints, stripped (through gitops.git, like every git call)."""
    return gitops.git(cwd, *args).stdout.strip()


def _seed_remote(repo: Path, work: Path) -> Path:
    """Make a bare remote holding this repository's committed HEAD as `main` (what Argo CD would watch)."""
    if not (repo / ".git").exists():
        raise DemoError(f"{repo} is not a git checkout: the demo pushes the promotion to a git remote")
    if _git(repo, "status", "--porcelain", "--untracked-files=no"):
        print("    note: uncommitted changes are not part of the demo: it runs on the committed HEAD")
    remote = work / "remote.git"
    _git(work, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git(repo, "push", "--quiet", str(remote), "HEAD:refs/heads/main")
    print(f"    remote {remote} at {_git(remote, 'rev-parse', '--short', 'main')}")
    return remote


def _seed_registry(remote: Path, work: Path, registry: local_mlflow.LocalRegistry) -> str:
    """Make the fresh local registry agree with git: the versions the overlays deploy exist.

    The overlays name registry versions (trained on the cluster) that this machine's empty
    registry lacks; they are recorded here from the version files, with their weights URI as
    source, so that the new version is promoted over them and `mlops rollback` has a target.
    Each write is made by the identity that makes it in the cluster: the trainer records the
    versions, the promotion identity points the environments' aliases at them.
    """
    from mlflow import MlflowClient

    from mlops.repository import model_version_file

    clone = _clone(remote, work / "seed")
    deployed = {env: model_version_file.load(clone, env, MODEL) for env in ENVS}
    client = MlflowClient()
    with local_mlflow.logged_in(registry.trainer):
        client.create_registered_model(MODEL, description="Customer-support chat model (demo registry)")
        for number in range(1, max(int(f.version) for f in deployed.values()) + 1):
            source = next((f.weights_uri for f in deployed.values() if int(f.version) == number), "")
            client.create_model_version(
                MODEL,
                source=source or f"models:/{MODEL}/{number}",
                tags={"seeded_from": "git", GATE_PASSED_TAG: "true"},
                description="Recorded from the overlays' model-version.yaml: trained on the cluster",
            )
    with local_mlflow.logged_in(registry.promoter):
        for env, file in deployed.items():
            client.set_registered_model_alias(MODEL, env, file.version)
            print(f"    {env}: {MODEL} version {file.version} (from {file.path})")
    shutil.rmtree(clone)
    return deployed[ENV].version


def _train_evaluate_promote(
    repo: Path, remote: Path, work: Path, registry: local_mlflow.LocalRegistry
) -> str:
    from mlops.release.registry import ARTIFACTS_DESTINATION_ENV
    from mlops.workflow_bridge.workflow_local import run_local

    # The logins the template's steps get from their Secrets (workflows/train_and_promote.py);
    # promote maps the server's `mlflow-artifacts:/` sources onto its artifacts destination.
    promoter = {**registry.promoter.env, ARTIFACTS_DESTINATION_ENV: registry.artifacts}
    outcome = run_local(
        repo,
        remote=str(remote),
        work_dir=work / "run",
        tracking_uri=registry.url,
        nproc="2",
        overrides=TRAINING,
        step_env={"train": registry.trainer.env, "evaluate": registry.trainer.env, "promote": promoter},
    )
    if outcome.status != "Succeeded":
        failed = next((s for s in outcome.steps if s.status == "Failed"), None)
        where = f"{failed.name}: {failed.message}" if failed else outcome.status
        raise DemoError(f"train-and-promote {where} (logs in {work / 'run' / 'logs'})")
    return outcome.model_version


def _clone(remote: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    return gitops.clone(remote, dest)


def _show_diff(clone: Path) -> None:
    from mlops.rendering.manifest_diff import diff_markdown

    print("    " + _git(clone, "log", "-1", "--format=%h %s%n%n%b").replace("\n", "\n    "))
    # The same markdown `mlops diff` posts on a pull request, for the dev environment only.
    text = diff_markdown(clone, "HEAD~1", "HEAD", envs=(ENV,))
    lines = text.splitlines()
    shown = lines[:60]
    print("    " + "\n    ".join(shown))
    if len(lines) > len(shown):
        print(f"    ... {len(lines) - len(shown)} more lines: `mlops diff --base HEAD~1` in {clone}")


def _serve_local(
    name: str,
    argv: list[str],
    port: int,
    log: Path,
    stack: ExitStack,
    *,
    ready: str,
    env: dict[str, str] | None = None,
) -> str:
    """Start a server on 127.0.0.1:`port` (stopped when `stack` closes), wait for `ready`; return its URL."""
    server = local_servers.start(argv, url=f"http://127.0.0.1:{port}", name=name, log=log, env=env)
    stack.callback(server.stop)
    local_servers.wait_ready(server, ready, timeout=120, interval=0.3, error=DemoError)
    return server.url


def _serve(repo: Path, clone: Path, work: Path, version: str, stack: ExitStack) -> tuple[str, str]:
    """Start vLLM over the promoted weights with the dev Deployment's flags, and the gateway before it."""
    import mlflow.artifacts

    from mlops.local import local_vllm
    from mlops.rendering.render import render_kustomization
    from mlops.rendering.vllm_args import deployment_args, local_args
    from mlops.repository import model_version_file

    promoted = model_version_file.load(clone, ENV, MODEL)
    if promoted.version != version:
        raise DemoError(f"{promoted.path}: version {promoted.version}, expected {version}")
    # The same URI vLLM's init container syncs from in the cluster (here a local artifact path).
    model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=promoted.weights_uri))
    print(f"    weights {promoted.weights_uri}")
    # The vLLM flags of the promotion commit's dev Deployment, as the kubelet expands them.
    overlay = Deployment(ENV, MODEL).overlay
    (deployment,) = [d for d in render_kustomization(clone, overlay) if d["kind"] == "Deployment"]
    rendered = deployment_args(deployment)
    print(f"    {overlay} Deployment args: {' '.join(rendered)}")
    vllm_port, gateway_port = local_servers.free_port(), local_servers.free_port()
    args = local_args(rendered, model_dir, port=vllm_port)
    vllm_log = work / "vllm.log"
    # The backend key only the gateway holds (docs/security.md): vLLM reads it from its
    # environment, the gateway from a file, as the cluster's Secrets give it to them.
    backend_key = secrets.token_hex(16)
    backend_key_file = work / "backend-key"
    backend_key_file.write_text(backend_key + "\n")
    backend_key_file.chmod(0o600)
    vllm = local_vllm.start(repo, args, vllm_log, env={"VLLM_API_KEY": backend_key})
    stack.callback(vllm.stop)
    print(f"    vllm serve {' '.join(args)} {' '.join(local_vllm.CPU_FLAGS)}")
    routes = work / "routes.yaml"
    routes.write_text(
        f"models:\n  {MODEL}:\n    backends:\n      stable:\n        url: {vllm.url}\n        weight: 100\n"
    )
    api_key = f"demo-{secrets.token_hex(8)}"
    keys = work / "api-keys"
    keys.write_text(api_key + "\n")
    gateway_log = work / "gateway.log"
    gateway = local_servers.start(
        [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(gateway_port),
         "--log-level", "warning"],
        url=f"http://127.0.0.1:{gateway_port}", name="gateway", log=gateway_log,
        env={"GATEWAY_ROUTES_FILE": str(routes), "GATEWAY_API_KEYS_FILE": str(keys),
             "GATEWAY_BACKEND_API_KEY_FILE": str(backend_key_file), "GATEWAY_VERSION_REFRESH_S": "1"},
    )  # fmt: skip
    stack.callback(gateway.stop)
    local_vllm.wait_ready(vllm, timeout=600)
    # Ready once the gateway has learnt the version from vLLM's /v1/models.
    local_servers.wait_ready(gateway, "/ready", timeout=120, interval=0.3, error=DemoError)
    print(f"    vLLM     {vllm.url} (log {vllm_log})")
    print(f"    gateway  http://127.0.0.1:{gateway_port}/v1 (routes {routes}, log {gateway_log})")
    return f"http://127.0.0.1:{gateway_port}", api_key


def _chat(gateway_url: str, api_key: str) -> str:
    import httpx
    from openai import OpenAI

    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=60)
    print(f"    system:    {SYSTEM_PROMPT}")
    print(f"    user:      {QUESTION}")
    print("    assistant: ", end="", flush=True)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}],
        max_tokens=64,
        temperature=0.0,
        stream=True,
    )
    pieces = []
    for chunk in stream:
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            pieces.append(piece)
            print(piece.replace("\n", " "), end="", flush=True)
    print()
    answer = "".join(pieces)
    metrics = httpx.get(f"{gateway_url}/metrics", timeout=5).text
    counted = [m for m in metrics.splitlines() if m.startswith("gateway_requests_total{")]
    print("    gateway metric: " + (counted[0] if counted else "gateway_requests_total missing"))
    if not answer.strip():
        raise DemoError("vLLM streamed an empty completion through the gateway")
    return answer


def _print_summary(result: DemoResult, work: Path, clone: Path) -> None:
    print(f"    MLflow         {result.backend_store_uri} (stopped; logins in {work / 'mlflow-auth'})")
    print(f"    model          {result.model} version {result.model_version} (alias {result.env}; "
          f"was {result.previous_version})")  # fmt: skip
    print(f"    commit         {result.commit[:12]} on main of {result.remote}")
    print(f"    overlay file   {result.version_file} (checkout: {clone})")
    print(f"    summary        {work / 'summary.json'}")
