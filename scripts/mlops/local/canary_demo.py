"""`mlops demo --canary`: one bad canary, caught by the analysis and rolled back by a commit, on this machine.

seed a local bare remote from the committed HEAD -> the pull request that starts a canary of
version 2 at the first step (merged) -> a gateway in front of a healthy stable backend and a
canary backend that fails a quarter of its answers, scraped by a real Prometheus -> traffic
-> `mlops canary analyze` aborts: the commit on the remote sets the canary weight to 0 and
holds version 2 back. Everything lives under `.mlops/demo-canary/`; the processes it starts
are stopped before it returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

from mlops.canary import canary_metrics, canary_plan
from mlops.conventions.deployment import VERSION_FILE_NAME, Deployment
from mlops.local import local_servers
from mlops.local.demo import DemoError, _clone, _git, _seed_remote, _serve_local
from mlops.release import canary_analysis
from mlops.repository import model_version_file

FIXED_BACKEND = "tests/support/fixed_backend.py"
MODEL = "support-chat"
ENV = "dev"
CANARY_VERSION = "2"
CANARY_ERROR_RATE = 0.25
# The repository's dev plan waits minutes per step; the demo's waits seconds. Same statistics.
DEMO_PLAN = """\
steps: [20, 100]
minRequests: 100
minDuration: 5s
maxDuration: 5m
thresholds:
  errorRate: {maxIncrease: 0.02}
  ttftP95: {maxRatio: 1.5, maxIncrease: 20ms}
"""


def _start_canary(clone: Path) -> None:
    """Do what the pull request that starts a canary does (docs/adding-a-model.md, Canary)."""
    stable = clone / "overlays" / ENV / "models" / MODEL
    canary = stable.parent / f"{MODEL}-canary"
    shutil.copytree(stable, canary)
    (canary / canary_plan.FILE_NAME).unlink()
    kustomization = (canary / "kustomization.yaml").read_text()
    kustomization = kustomization.replace(f"namePrefix: {MODEL}-", f"namePrefix: {MODEL}-canary-")
    component = "  - ../../../../base/models/components/canary\n"
    kustomization = kustomization.replace("components:\n", "components:\n" + component)
    (canary / "kustomization.yaml").write_text(kustomization)
    current = model_version_file.load(clone, ENV, MODEL)
    weights = (
        "s3://mlops-dev-mlflow-artifacts/1/demo-canary-run/artifacts/model/attempt-20260101T000000Z-0123abcd"
    )
    # Fixed backends stand in for vLLM here, so nothing is fetched: a digest in the form a
    # promote writes, of no real manifest.
    digest = "sha256:" + hashlib.sha256(b"mlops demo --canary: fixed backends, no weights").hexdigest()
    text = current.with_version(CANARY_VERSION, weights, None, [], weights_digest=digest)
    (canary / VERSION_FILE_NAME).write_text(text)
    (stable / canary_plan.FILE_NAME).write_text(DEMO_PLAN)
    routes_path = clone / Deployment(ENV, MODEL).routes_file
    routes = yaml.safe_load(routes_path.read_text())
    routes["models"][MODEL]["backends"] = {
        "stable": {"url": f"http://{MODEL}-vllm.models.svc.cluster.local:8000", "weight": 80},
        "canary": {"url": f"http://{MODEL}-canary-vllm.models.svc.cluster.local:8000", "weight": 20},
    }
    routes_path.write_text(yaml.safe_dump(routes, sort_keys=False))
    _git(clone, "add", "-A")
    _git(clone, "-c", "user.name=demo", "-c", "user.email=demo@example.invalid", "commit", "-q", "-m",
         f"Canary {MODEL} version {CANARY_VERSION} at 20% in {ENV}")  # fmt: skip
    _git(clone, "push", "-q", "origin", "main")


def _stand(repo: Path, work: Path, stack: ExitStack) -> tuple[str, str]:
    """Two fixed backends, the gateway at 80/20, Prometheus scraping it every second; their URLs."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise DemoError("the demo needs the prometheus binary (Debian/Ubuntu: apt-get install prometheus)")
    urls = {}
    for name, version, error_rate in (("stable", "1", 0.0), ("canary", CANARY_VERSION, CANARY_ERROR_RATE)):
        port = local_servers.free_port()
        urls[name] = _serve_local(
            f"{name} backend",
            # the checkout's fake model server (tests/support): the gateway image ships only the gateway
            [sys.executable, str(repo / FIXED_BACKEND), "--served-model-name", MODEL, "--model-version",
             version, "--port", str(port), "--delay-ms", "2", "--error-rate", str(error_rate)],
            port, work / f"{name}.log", stack, ready="/health",
        )  # fmt: skip
        print(f"    {name} backend {urls[name]}: version {version}, {error_rate:.0%} of answers fail")
    routes, keys = work / "routes.yaml", work / "api-keys"
    backends = {name: {"url": urls[name], "weight": w} for name, w in (("stable", 80), ("canary", 20))}
    routes.write_text(yaml.safe_dump({"models": {MODEL: {"backends": backends}}}))
    keys.write_text("demo-canary-key\n")
    port = local_servers.free_port()
    gateway_url = _serve_local(
        "gateway",
        [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        port, work / "gateway.log", stack, ready="/ready",
        env={"GATEWAY_ROUTES_FILE": str(routes), "GATEWAY_API_KEYS_FILE": str(keys)},
    )  # fmt: skip
    prom_port = local_servers.free_port()
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        # The target labels the cluster's ServiceMonitor gives the gateway: the analysis selects them.
        "scrape_configs": [{"job_name": canary_metrics.GATEWAY_JOB, "static_configs": [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": canary_metrics.GATEWAY_NAMESPACE}}]}],
    }))  # fmt: skip
    prometheus_url = _serve_local(
        "Prometheus",
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        prom_port, work / "prometheus.log", stack, ready="/-/ready",
    )  # fmt: skip
    print(f"    gateway {gateway_url} (80% stable, 20% canary), Prometheus {prometheus_url}")
    return gateway_url, prometheus_url


async def _traffic(gateway: str, seconds: float) -> int:
    import httpx

    body = {"model": MODEL, "messages": [{"role": "user", "content": "where is my order"}]}
    stop, sent = time.monotonic() + seconds, 0
    async with httpx.AsyncClient(base_url=gateway, timeout=30,
                                 headers={"Authorization": "Bearer demo-canary-key"}) as client:  # fmt: skip

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < stop:
                await client.post("/v1/chat/completions", json={**body, "stream": sent % 2 == 1})
                sent += 1

        await asyncio.gather(*(worker() for _ in range(8)))
    return sent


def run_canary_demo(repo: Path) -> canary_analysis.Decision:
    """Run the bad-canary story on `repo`'s committed HEAD; return the analysis' decision."""
    work = repo / ".mlops" / "demo-canary"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"\n==> [1/4] seed a local bare remote; merge the pull request that starts a canary of "
          f"{MODEL} version {CANARY_VERSION} at 20% in {ENV}")  # fmt: skip
    remote = _seed_remote(repo, work)
    clone = _clone(remote, work / "checkout")
    _start_canary(clone)
    with ExitStack() as stack:
        print("\n==> [2/4] the gateway in front of both versions, scraped by Prometheus")
        gateway, prometheus_url = _stand(repo, work, stack)
        print("\n==> [3/4] 8 s of users")
        print(f"    {asyncio.run(_traffic(gateway, 8.0))} chat requests")
        time.sleep(2.5)  # the last scrape
        print("\n==> [4/4] mlops canary analyze --env dev --model support-chat")
        decision = canary_analysis.analyze(
            clone, env=ENV, model=MODEL, prometheus_url=prometheus_url, workflow="demo",
            log=lambda line: print(f"    {line}"),
        )  # fmt: skip
    if decision.action != "abort":
        raise DemoError(f"the bad canary was not aborted: {decision.action}: {decision.reason}")
    print("\n    " + _git(remote, "log", "-1", "--format=%h %s%n%n%b", "main").replace("\n", "\n    "))
    print(f"Canary demo finished: version {CANARY_VERSION} is rolled back on main of {remote}.")
    return decision
