"""Gateway latency benchmark: direct backend vs the gateway vs LiteLLM's proxy, on loopback.

    python benchmarks/gateway_latency.py [--duration 5] [--no-litellm]

What it runs, in one go:
- backend: ``gateway.fixed_backend`` (a bare asyncio/httptools server answering every
  completion with the same text in microseconds), so the numbers measure the proxies;
- the gateway (``python -m gateway``, one uvicorn process, as one pod runs it) in front of it;
- LiteLLM's proxy (``litellm[proxy]`` from PyPI, installed on first use into its own venv
  ``.mlops/bench/litellm-venv``, never into the project's venv), one worker, in front of the
  same backend;
- load: ``wrk`` (C, epoll; ``apt-get install -y wrk``) with a Lua script that POSTs a chat
  completion, at 1, 64 and 256 open connections. Latency percentiles are wrk's
  (``--latency``; p50 and p99 over all requests of the run).

Cores: by default the kernel places the processes. With ``--pin`` (and ``taskset``) the proxy
under test gets CPU 0 and wrk plus the backend share CPU 1, so a proxy competes with neither
the load generator nor the backend; on a machine that others are loading too, pinning makes
every wake-up wait for CPU 0, so leave it off there.
"Added latency" is a proxy's percentile minus the direct backend's at the same concurrency;
at 64 and 256 connections it is mostly queueing in front of a saturated single process, so
the per-request overhead is the concurrency-1 row.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
GATEWAY_SRC = REPO / "images" / "gateway"
LITELLM_VENV = REPO / ".mlops" / "bench" / "litellm-venv"
KEY = "sk-bench-key"
BODY = '{"model":"support-chat","messages":[{"role":"user","content":"Where is my order?"}],"max_tokens":16}'
CONCURRENCY = (1, 64, 256)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PIN = False  # set by --pin


def _pin(cpu: int) -> list[str]:
    if PIN and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def _wait(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def _start(
    cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)


def _ensure_litellm() -> Path:
    """The litellm executable of the separate venv, installed from PyPI on first use."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        print(f"installing litellm[proxy] into {LITELLM_VENV} (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return exe


def _litellm_version() -> str:
    out = subprocess.run(
        [
            str(LITELLM_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


def _wrk(url: str, connections: int, duration: float, lua: Path) -> dict[str, float]:
    cmd = [
        *_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s",
        "-s", str(lua), url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in errors.groups()) if errors else 0)
    pct = {}
    for label in ("50", "99"):
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        pct[label] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"rps": rps, "p50_ms": pct["50"], "p99_ms": pct["99"], "requests": total, "failed": failed}


def _cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and all its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, frontier = 0.0, {root}
    while frontier:
        total += sum(stats[pid][1] for pid in frontier if pid in stats)
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier}
    return total


def _measure(name: str, url: str, duration: float, lua: Path, pid: int | None) -> dict[int, dict[str, float]]:
    _wrk(url, 16, 1, lua)  # warm-up: connections, caches, lazy imports
    results = {}
    for connections in CONCURRENCY:
        cpu_before = _cpu_seconds(pid) if pid else 0.0
        results[connections] = r = _wrk(url, connections, duration, lua)
        # CPU time the proxy spent per request: unlike latency, other load on the machine
        # barely moves it, and 1e6 / it is what one free core could serve.
        r["cpu_us_per_request"] = (_cpu_seconds(pid) - cpu_before) * 1e6 / r["requests"] if pid else 0.0
        cpu = f"  cpu {r['cpu_us_per_request']:6.0f} us/req" if pid else ""
        print(
            f"  {name:<8} c={connections:<4} {r['rps']:>9.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms  failed {r['failed']:.0f}/{r['requests']:.0f}{cpu}",
            flush=True,
        )
    return results


def main() -> int:
    """Run every measurement and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (no PyPI access)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="proxy on CPU 0, wrk + backend on CPU 1 (best on an otherwise idle machine)",
    )
    parser.add_argument("--json", type=Path, default=REPO / ".mlops" / "bench" / "gateway_latency.json")
    args = parser.parse_args()
    global PIN
    PIN = args.pin
    if not shutil.which("wrk"):
        print("error: wrk not found; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    lua = work / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    env = {"PYTHONPATH": str(GATEWAY_SRC)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        backend_port, gateway_port, litellm_port = _free_port(), _free_port(), _free_port()
        backend = f"http://127.0.0.1:{backend_port}"
        processes.append(
            _start(
                [*_pin(1), sys.executable, "-m", "gateway.fixed_backend",
                 "--served-model-name", "support-chat", "--model-version", "1", "--port", str(backend_port)],
                env,
            )
        )  # fmt: skip
        _wait(backend + "/health")

        (work / "routes.yaml").write_text(
            f"models:\n  support-chat:\n    backends:\n      stable: {{url: '{backend}', weight: 100}}\n"
        )
        (work / "keys").write_text(KEY + "\n")
        gw_env = {
            **env,
            "GATEWAY_ROUTES_FILE": str(work / "routes.yaml"),
            "GATEWAY_API_KEYS_FILE": str(work / "keys"),
        }
        processes.append(
            _start(
                [*_pin(0), sys.executable, "-m", "gateway",
                 "--host", "127.0.0.1", "--port", str(gateway_port), "--log-level", "warning"],
                gw_env, work / "gateway.log",
            )
        )  # fmt: skip
        _wait(f"http://127.0.0.1:{gateway_port}/ready")

        results: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
        print(
            f"backend {backend}; wrk -t1, {args.duration:g} s per run; load average {os.getloadavg()[0]:.2f}"
        )
        results["direct"] = _measure(
            "direct", backend + "/v1/chat/completions", args.duration, lua, processes[0].pid
        )
        results["gateway"] = _measure(
            "gateway",
            f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
            args.duration,
            lua,
            processes[1].pid,
        )
        processes.pop().send_signal(signal.SIGTERM)  # free CPU 0 for LiteLLM

        if not args.no_litellm:
            exe = _ensure_litellm()
            (work / "litellm.yaml").write_text(
                "model_list:\n"
                "  - model_name: support-chat\n"
                "    litellm_params:\n"
                "      model: openai/support-chat\n"
                f"      api_base: {backend}/v1\n"
                "      api_key: unused\n"
                "general_settings:\n"
                f"  master_key: {KEY}\n"
                "litellm_settings:\n"
                "  set_verbose: false\n"
                "  telemetry: false\n"
            )
            processes.append(
                _start(
                    [*_pin(0), str(exe), "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
                     "--port", str(litellm_port), "--num_workers", "1"],
                    # Its fastest set-up: no debug logs, no telemetry, the bundled cost map (no fetch).
                    {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "NO_DOCS": "True",
                     "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                    work / "litellm.log",
                )
            )  # fmt: skip
            _wait(f"http://127.0.0.1:{litellm_port}/health/liveliness", timeout=180)
            results["litellm_version"] = _litellm_version()
            results["litellm"] = _measure(
                "litellm",
                f"http://127.0.0.1:{litellm_port}/v1/chat/completions",
                args.duration,
                lua,
                processes[-1].pid,
            )

        print("\nadded latency vs direct backend (ms), throughput (req/s):")
        direct = results["direct"]
        for name in ("gateway", "litellm"):
            if name not in results:
                continue
            for c in CONCURRENCY:
                r, d = results[name][c], direct[c]  # type: ignore[index]
                print(
                    f"  {name:<8} c={c:<4} p50 +{r['p50_ms'] - d['p50_ms']:6.2f}"
                    f"  p99 +{r['p99_ms'] - d['p99_ms']:7.2f}  {r['rps']:>8.0f} req/s"
                    f"  (cpu {r['cpu_us_per_request']:.0f} us/req"
                    f" = {1e6 / r['cpu_us_per_request']:.0f} req/s per free core)"
                )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nraw numbers: {args.json}")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
