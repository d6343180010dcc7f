"""`mlops canary analyze` with real parts: Prometheus scraping a gateway before two backends, a bare remote.

The test plays Argo CD: after each commit the analysis pushes, it copies the weights of the
committed routes file into the running gateway's routes file (the backends' URLs stay local).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from mlops.conventions.deployment import Deployment
from mlops.local.local_servers import LocalServer
from mlops.repository import model_version_file
from promote_support import MODEL, GitOpsRepo, git
from support.canary import FIXED_BACKEND, GATEWAY, add_canary, start_process, start_prometheus
from test_promote import run_cli, trailers

pytestmark = pytest.mark.slow

API_KEY = "canary-test-key"
ROUTES = "overlays/dev/gateway/routes.yaml"
PLAN = "overlays/dev/models/support-chat/canary-plan.yaml"
DEV_STABLE = Deployment("dev", MODEL).version_file
DEV_CANARY = Deployment("dev", MODEL, canary=True).version_file
CANARY_WEIGHTS = "s3://mlops-dev-mlflow-artifacts/1/canary-run/artifacts/model"
# Small numbers so that a step takes seconds; the statistics are the same as in the cluster.
# The fixed backends answer in a few milliseconds and a busy test machine adds tens of percent:
# the plan allows 1.5x or 20 ms more, whichever is more. The slow canary adds 40 ms per token.
TEST_PLAN = """\
steps: [20, 50, 100]
minRequests: 100
minDuration: 3s
maxDuration: 10m
confidence: 0.95
thresholds:
  errorRate: {maxIncrease: 0.05}
  ttftP95: {maxRatio: 1.5, maxIncrease: 20ms}
  itlP95: {maxRatio: 1.5, maxIncrease: 20ms}
"""


@dataclass
class Stand:
    """A gateway routing support-chat to a local stable and canary backend, scraped by Prometheus."""

    gateway: str
    prometheus: str
    routes_file: Path
    backends: dict[str, str]

    def sync(self, clone: Path) -> dict[str, int]:
        """What Argo CD does after a push: the committed weights reach the gateway."""
        git(clone, "pull", "-q", "--ff-only", "origin", "main")
        committed = yaml.safe_load((clone / ROUTES).read_text())["models"][MODEL]["backends"]
        weights = {name: spec["weight"] for name, spec in committed.items()}
        routes = {name: {"url": self.backends[name], "weight": w} for name, w in weights.items()}
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"models": {MODEL: {"backends": routes}}}))
        tmp.replace(self.routes_file)
        deadline = time.monotonic() + 10
        while True:  # the gateway re-reads the file every 0.2 s
            served = httpx.get(f"{self.gateway}/v1/models", headers=_auth(), timeout=5).json()
            live = {b["name"]: b["weight"] for b in served["data"][0]["backends"]}
            if live == weights:
                return weights
            assert time.monotonic() < deadline, f"gateway kept {live}, not {weights}"
            time.sleep(0.1)

    def traffic(self, requests: int) -> None:
        """`requests` chat completions, every other one streamed, then one scrape's wait."""
        asyncio.run(_traffic(self.gateway, requests))
        time.sleep(2.5)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


async def _traffic(url: str, requests: int) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "where is my order"}]}
    queue = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, headers=_auth(), timeout=30) as client:

        async def worker() -> None:
            for i in queue:
                await client.post("/v1/chat/completions", json={**body, "stream": i % 2 == 1})

        await asyncio.gather(*(worker() for _ in range(16)))


@pytest.fixture
def stand(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stand]:
    """Backends per the test's `backends` marker: {"stable": (delay_ms, error_rate), "canary": (...)}."""
    spec = request.node.get_closest_marker("backends").args[0]
    servers: list[LocalServer] = []
    try:
        backends = {}
        for name, version in (("stable", "1"), ("canary", "2")):
            delay_ms, error_rate = spec[name]
            server = start_process(
                FIXED_BACKEND,
                ["--served-model-name", MODEL, "--model-version", version, "--delay-ms", str(delay_ms),
                 "--error-rate", str(error_rate)],
            )  # fmt: skip
            servers.append(server)
            backends[name] = server.url
        routes_file, keys = tmp_path / "routes.yaml", tmp_path / "api-keys"
        routes_file.write_text(yaml.safe_dump({"models": {MODEL: {"backends": {
            "stable": {"url": backends["stable"], "weight": 100}}}}}))  # fmt: skip
        keys.write_text(API_KEY + "\n")
        gateway_server = start_process(
            GATEWAY,
            ["--log-level", "warning"],
            {"GATEWAY_ROUTES_FILE": str(routes_file), "GATEWAY_API_KEYS_FILE": str(keys),
             "GATEWAY_RELOAD_INTERVAL_S": "0.2", "GATEWAY_VERSION_REFRESH_S": "0.5"},
        )  # fmt: skip
        servers.append(gateway_server)
        gateway = gateway_server.url
        (tmp_path / "prometheus").mkdir()
        with start_prometheus(tmp_path / "prometheus", [gateway.removeprefix("http://")]) as prometheus:
            yield Stand(gateway, prometheus, routes_file, backends)
    finally:
        for server in servers:
            server.stop()


def _start_canary(gitops: GitOpsRepo, clone: Path) -> None:
    """The pull request that adds the plan and a canary of version 2 at 20%, merged."""
    (clone / PLAN).write_text(TEST_PLAN)
    paths = add_canary(clone, "dev", "2", CANARY_WEIGHTS, weight=20)
    git(clone, "add", PLAN, *paths)
    git(clone, "commit", "-q", "-m", "Canary support-chat version 2 at 20%")
    git(clone, "push", "-q", "origin", "main")


def _analyze(stand: Stand, clone: Path, capsys: pytest.CaptureFixture[str]) -> str:
    rc, out, err = run_cli(clone, "canary", "analyze", "--env", "dev", "--model", MODEL,
                           "--prometheus", stand.prometheus, "--workflow", "canary-analysis-x1",
                           capsys=capsys)  # fmt: skip
    assert rc == 0, err
    return out


def _judged(stand: Stand, clone: Path, capsys: pytest.CaptureFixture[str], requests: int) -> str:
    """Traffic, then the analysis, repeated (as the CronWorkflow does) while it is inconclusive.

    On a busy test machine latencies jitter by tens of percent: a healthy canary may be
    inconclusive for a round, but it must never be aborted.
    """
    for _ in range(4):
        stand.traffic(requests)
        out = _analyze(stand, clone, capsys)
        assert ": abort:" not in out, out
        if ": wait: inconclusive" not in out:
            return out
    raise AssertionError(f"still inconclusive after 4 rounds: {out}")


def _weights(gitops: GitOpsRepo) -> dict[str, int]:
    routes = yaml.safe_load(git(gitops.remote, "show", f"main:{ROUTES}"))
    return {name: spec["weight"] for name, spec in routes["models"][MODEL]["backends"].items()}


@pytest.mark.backends({"stable": (1, 0.0), "canary": (1, 0.0)})
def test_healthy_canary_waits_for_traffic_then_advances_to_100_and_finishes(
    gitops: GitOpsRepo, clone: Path, stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    _start_canary(gitops, clone)
    assert stand.sync(clone) == {"stable": 80, "canary": 20}
    head = git(gitops.remote, "rev-parse", "main")

    out = _analyze(stand, clone, capsys)  # seconds after the canary started, with no traffic
    assert "at 20%: wait: not enough data yet" in out
    assert "0 of the 100 canary requests needed" in out
    assert git(gitops.remote, "rev-parse", "main") == head  # waiting commits nothing

    for weight, following in ((20, 50), (50, 100)):
        time.sleep(3)  # minDuration
        out = _judged(stand, clone, capsys, 1500)
        assert f"at {weight}%: advance: every threshold passed" in out, out
        assert _weights(gitops) == {"stable": 100 - following, "canary": following}
        found = trailers(gitops.remote, "main")
        assert (found["Canary-Decision"], found["Canary-Step"], found["Version"]) == (
            "advance",
            f"{weight}%",
            "2",
        )
        assert found["Canary-Error-Rate"].endswith("-> pass") and found["Canary-TTFT-P95"].endswith("-> pass")
        assert found["Workflow"] == "canary-analysis-x1" and found["Deployment"] == f"{MODEL}-canary"
        assert stand.sync(clone) == {"stable": 100 - following, "canary": following}

    time.sleep(3)
    out = _judged(stand, clone, capsys, 500)  # all to the canary; stable's baseline is the step before
    assert "at 100%: finish" in out, out
    assert "stable in the" in out and "of the step before" in out
    stable = model_version_file.parse(git(gitops.remote, "show", f"main:{DEV_STABLE}"), DEV_STABLE)
    assert (stable.version, stable.weights_uri) == ("2", CANARY_WEIGHTS)
    assert git(gitops.remote, "ls-tree", "main", f"overlays/dev/models/{MODEL}-canary") == ""
    assert _weights(gitops) == {"stable": 100}
    assert git(gitops.remote, "log", "-1", "--format=%s", "main").strip() == (
        f"Finish canary of {MODEL}: version 2 is stable in dev (was 1)"
    )
    assert trailers(gitops.remote, "main")["Canary-Decision"] == "finish"


def _assert_aborted(gitops: GitOpsRepo, out: str, *failed: str) -> None:
    """Aborted at 20% on a failed threshold among `failed`, and rolled back on the remote."""
    assert "at 20%: abort: the canary is worse than stable" in out, out
    lines = out.splitlines()
    assert any(name in line and line.endswith("-> fail") for name in failed for line in lines), out
    assert _weights(gitops) == {"stable": 100, "canary": 0}
    canary = model_version_file.parse(git(gitops.remote, "show", f"main:{DEV_CANARY}"), DEV_CANARY)
    assert (canary.version, canary.held_back) == ("1", ["2"])  # back to stable's version, 2 held back
    found = trailers(gitops.remote, "main")
    assert (found["Canary-Decision"], found["Rolled-Back-From"], found["Held-Back"]) == ("abort", "2", "2")
    assert git(gitops.remote, "log", "-1", "--format=%s", "main").strip() == (
        f"Abort canary of {MODEL} version 2 in dev: weight 20% -> 0%"
    )


@pytest.mark.backends({"stable": (1, 0.0), "canary": (1, 0.3)})
def test_canary_returning_errors_is_aborted_and_rolled_back(
    gitops: GitOpsRepo, clone: Path, stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    _start_canary(gitops, clone)
    stand.sync(clone)
    time.sleep(3)
    stand.traffic(1500)
    _assert_aborted(gitops, _analyze(stand, clone, capsys), "error rate")
    # Weight 0 with the held-back version: nothing more to do until a new version is promoted.
    assert stand.sync(clone) == {"stable": 100, "canary": 0}
    assert "at 0%: none" in _analyze(stand, clone, capsys)


@pytest.mark.backends({"stable": (1, 0.0), "canary": (40, 0.0)})
def test_slow_canary_is_aborted(
    gitops: GitOpsRepo, clone: Path, stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    _start_canary(gitops, clone)
    stand.sync(clone)
    time.sleep(3)
    # 40 ms before each token against ~2 ms: either latency gives it away (the inter-token one
    # counts streamed answers only, so it may still lack samples when the first-token one fails).
    # On a busy machine a round may be inconclusive (the cron analyzes again); it never advances.
    for _ in range(4):
        stand.traffic(1500)
        out = _analyze(stand, clone, capsys)
        assert ": advance:" not in out, out
        if ": wait: inconclusive" not in out:
            break
    _assert_aborted(gitops, out, "time to first token", "inter-token latency")


def test_git_bot_entrypoint_runs_the_analysis_and_a_model_without_canary_is_a_no_op(
    gitops: GitOpsRepo, tmp_path: Path
) -> None:
    # What the canary-analysis CronWorkflow runs: a plan, but no canary route yet.
    entrypoint = Path(__file__).resolve().parents[2] / "images" / "git-bot" / "entrypoint.sh"
    token = tmp_path / "token"
    token.write_text("not-used-for-a-file-remote\n")
    (tmp_path / "home").mkdir()
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GIT_REPO_URL": f"file://{gitops.remote}",
        "GIT_TOKEN_FILE": str(token),
        "WORKDIR": str(tmp_path / "bot-clone"),
        "PROMETHEUS_URL": "http://127.0.0.1:9",  # never asked: there is nothing to measure
    }
    head = git(gitops.remote, "rev-parse", "main")
    proc = subprocess.run(
        [str(entrypoint), "canary", "analyze", "--env=dev", f"--model={MODEL}", "--workflow=analysis-1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{MODEL} in dev: none: {ROUTES} (on origin/main) has no 'canary' backend" in proc.stdout
    assert git(gitops.remote, "rev-parse", "main") == head
