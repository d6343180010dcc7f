"""Gateway vs vllm-router vs LiteLLM vs the bare backend, measured interleaved on loopback.

    make bench-gateway                      # installs .venv-bench on first use, then runs this
    python benchmarks/gateway_latency.py [--rounds 3] [--duration 4] [--only gateway,vllm-router]

What runs, all at once, in front of one backend:
- the backend: ``tests/support/fixed_backend.py`` (a bare asyncio/httptools server that answers
  every completion with the same text in microseconds). It is the baseline ("direct"): every
  proxy's number is reported as what it adds to the backend's own;
- the gateway (``python -m gateway --workers N``, N = this machine's CPU count unless
  ``--gateway-workers`` says otherwise: one uvloop process per core, as a pod with an N-CPU limit
  runs it, and as vllm-router runs one tokio worker thread per core);
- ``gateway-1-process``: the same gateway as one process (``--workers 1``), a pod with a 1-CPU limit;
- ``vllm-router`` (PyPI; the vLLM project's Rust router), round robin over the one backend;
- LiteLLM's proxy (``litellm[proxy]``), one worker, a master key, no debug logging.
vllm-router and LiteLLM come from ``.venv-bench`` (``make bench-venv``), never the project's venv.

Load: ``wrk`` (C, epoll; ``apt-get install -y wrk``), one thread, POSTing a chat completion at
1, 64 and 256 open connections; wrk's p50/p90/p99 over every request of a run. Streams: a
blocking Python client sends ``"stream": true`` requests one after another on a keep-alive
connection and times the first ``data:`` chunk, as a client sees it.

Interleaving: on a shared 2-core machine the load others put on it changes from second to
second, so every round runs every target once per row, in an order that rotates from round to
round; the figure reported is the median over rounds of (target - direct in the same round).
CPU per request is each process's own user+system time (``/proc/<pid>/stat``, children
included) over a run divided by the requests it served: load from others barely moves it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
GATEWAY_SRC = REPO / "images" / "gateway"
FIXED_BACKEND = REPO / "tests" / "support" / "fixed_backend.py"
KEY = "sk-bench-key"
MODEL = "support-chat"
BODY = '{"model":"support-chat","messages":[{"role":"user","content":"Where is my order?"}],"max_tokens":16}'
STREAM_BODY = BODY[:-1] + ',"stream":true}'
CONCURRENCY = (1, 64, 256)
GATEWAYS = {"gateway", "gateway-1-process"}  # from this repository; the others from .venv-bench
PROXIES = ("gateway", "gateway-1-process", "vllm-router", "litellm")


@dataclass
class Target:
    """One thing under load: its completion URL and the process whose CPU time is its cost."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    runs: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    ttfc: list[list[float]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s: {log.read_text()[-2000:]}")


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)


def _wrk(url: str, connections: int, duration: float, lua: Path) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in errors.groups()) if errors else 0)
    result = {"rps": rps, "requests": total, "failed": failed}
    for label in ("50", "90", "99"):
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        result[f"p{label}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return result


def _cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and all its descendants (from /proc/<pid>/stat)."""
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


def _stream_ttfc(url: str, count: int) -> list[float]:
    """Milliseconds to the first ``data:`` chunk of ``count`` sequential streamed completions."""
    parts = httpx.URL(url)
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(STREAM_BODY)}\r\n\r\n{STREAM_BODY}"
    ).encode()
    times: list[float] = []
    sock: socket.socket | None = None
    while len(times) < count:
        if sock is None:
            sock = socket.create_connection((parts.host, parts.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        sock.sendall(request)
        buffer, first = b"", None
        while True:
            data = sock.recv(65536)
            if not data:  # the proxy closed the connection: the answer ended with it
                sock.close()
                sock = None
                break
            buffer += data
            if first is None and b"data:" in buffer:
                first = time.perf_counter() - started
            if buffer.endswith(b"0\r\n\r\n") and b"[DONE]" in buffer:
                break
        if first is None:
            raise RuntimeError(f"{url}: a stream without a data: chunk: {buffer[:300]!r}")
        times.append(first * 1000)
    if sock is not None:
        sock.close()
    return times


def _ms(value: float, digits: int, sign: str = "") -> str:
    """Milliseconds for the table; "no requests" where every run finished none (NaN)."""
    if math.isnan(value):
        return "no requests"
    return f"{value:+.{digits}f} ms" if sign == "+" else f"{value:.{digits}f} ms"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start_gateway(
    name: str, source: Path, backend: str, work: Path, found: dict[str, Target], workers: int | None
) -> None:
    """Start a gateway from ``source``; ``workers`` None passes no flag (a ref from before it existed)."""
    port, log = _free_port(), work / f"{name}.log"
    (work / "routes.yaml").write_text(
        f"models:\n  {MODEL}:\n    backends:\n      stable: {{url: '{backend}', weight: 100}}\n"
    )
    (work / "keys").write_text(KEY + "\n")
    env = {
        "PYTHONPATH": str(source),
        "GATEWAY_ROUTES_FILE": str(work / "routes.yaml"),
        "GATEWAY_API_KEYS_FILE": str(work / "keys"),
    }
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *([] if workers is None else ["--workers", str(workers)]),
    ]
    proc = _start(cmd, log, env)
    found[name] = Target(name, f"http://127.0.0.1:{port}/v1/chat/completions", proc)
    _wait(f"http://127.0.0.1:{port}/ready", proc, log)


def _gateway_at(ref: str, work: Path) -> Path:
    """The gateway's source at git ``ref``, exported into ``work`` (to measure a change against it)."""
    folder = work / "baseline"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "images/gateway"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "images" / "gateway"


def _start_all(
    work: Path,
    bench_venv: Path,
    only: set[str],
    found: dict[str, Target],
    baseline: str | None,
    gateway_workers: int,
) -> None:
    """Start the backend and the proxies in ``only``, adding each to ``found`` once it answers."""
    backend_port = _free_port()
    backend = f"http://127.0.0.1:{backend_port}"
    log = work / "backend.log"
    args = ["--served-model-name", MODEL, "--model-version", "1", "--port", str(backend_port)]
    proc = _start([sys.executable, str(FIXED_BACKEND), *args], log)
    found["direct"] = Target("direct", backend + "/v1/chat/completions", proc)
    _wait(backend + "/health", proc, log)

    if "gateway" in only:
        _start_gateway("gateway", GATEWAY_SRC, backend, work, found, gateway_workers)
    if "gateway-1-process" in only and gateway_workers != 1:
        _start_gateway("gateway-1-process", GATEWAY_SRC, backend, work, found, 1)
    if baseline:
        _start_gateway(f"gateway@{baseline}", _gateway_at(baseline, work), backend, work, found, None)

    if "vllm-router" in only:
        port, log = _free_port(), work / "vllm-router.log"
        exe = bench_venv / "bin" / "vllm-router"
        cmd = [
            str(exe),
            "--worker-urls",
            backend,
            "--policy",
            "round_robin",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        proc = _start(cmd, log, {"RUST_LOG": "error"})
        found["vllm-router"] = Target("vllm-router", f"http://127.0.0.1:{port}/v1/chat/completions", proc)
        _wait(f"http://127.0.0.1:{port}/health", proc, log)

    if "litellm" in only:
        port, log = _free_port(), work / "litellm.log"
        (work / "litellm.yaml").write_text(
            f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n"
            f"      api_base: {backend}/v1\n      api_key: unused\n"
            f"general_settings:\n  master_key: {KEY}\n"
            "litellm_settings:\n  set_verbose: false\n  telemetry: false\n"
        )
        cmd = [str(bench_venv / "bin" / "litellm"), "--config", str(work / "litellm.yaml"),
               "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]  # fmt: skip
        # Its fastest set-up: no debug logs, no telemetry, the bundled cost map (no fetch).
        env = {
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "NO_DOCS": "True",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        proc = _start(cmd, log, env)
        found["litellm"] = Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", proc)
        _wait(f"http://127.0.0.1:{port}/health/liveliness", proc, log)


def _versions(bench_venv: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m\n"
        "for p in ('vllm-router', 'litellm'):\n"
        "  try: print(p, m.version(p))\n"
        "  except Exception: pass"
    )
    out = subprocess.run(
        [str(bench_venv / "bin" / "python"), "-c", code], capture_output=True, text=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def _run_rounds(targets: list[Target], lua: Path, rounds: int, duration: float, streams: int) -> None:
    for target in targets:  # warm-up: connections, caches, lazy imports
        _wrk(target.url, 16, 1, lua)
        _stream_ttfc(target.url, 20)
    for round_no in range(rounds):
        order = targets[round_no % len(targets) :] + targets[: round_no % len(targets)]
        print(
            f"round {round_no + 1}/{rounds}: {', '.join(t.name for t in order)};"
            f" load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for connections in CONCURRENCY:
            for target in order:
                before = _cpu_seconds(target.process.pid)
                result = _wrk(target.url, connections, duration, lua)
                spent = _cpu_seconds(target.process.pid) - before
                # A run that finished no request has no cost per request (dividing by one
                # request instead made a stalled LiteLLM look like 250 ms of CPU a request).
                result["cpu_ms"] = spent * 1000 / result["requests"] if result["requests"] else math.nan
                target.runs.setdefault(connections, []).append(result)
                print(
                    f"  {target.name:<14} c={connections:<4}{result['rps']:>9.0f} req/s"
                    f"  p50 {result['p50']:7.2f}  p90 {result['p90']:7.2f}  p99 {result['p99']:7.2f} ms"
                    f"  cpu {_ms(result['cpu_ms'], 3)}/req"
                    f"  failed {result['failed']:.0f}/{result['requests']:.0f}",
                    flush=True,
                )
        for target in order:
            target.ttfc.append(_stream_ttfc(target.url, streams))


def _report(targets: dict[str, Target]) -> dict[str, object]:
    """Print the comparison table; return it as data."""
    direct = targets["direct"]
    proxies = [t for name, t in targets.items() if name != "direct"]
    table: dict[str, dict[str, float]] = {}

    def added(target: Target, c: int, key: str) -> float:
        # A run that finished no request has no latency (wrk prints zeros): left out.
        pairs = zip(target.runs[c], direct.runs[c], strict=True)
        differences = [r[key] - d[key] for r, d in pairs if r["requests"]]
        return statistics.median(differences) if differences else math.nan

    for target in [direct, *proxies]:
        row: dict[str, float] = {}
        for c in CONCURRENCY:
            runs = target.runs[c]
            row[f"c{c}_rps"] = statistics.median(r["rps"] for r in runs)
            costs = [r["cpu_ms"] for r in runs if not math.isnan(r["cpu_ms"])]
            row[f"c{c}_cpu_ms"] = statistics.median(costs) if costs else math.nan
            for p in ("p50", "p90", "p99"):
                row[f"c{c}_{p}"] = statistics.median(r[p] for r in runs)
                if target is not direct:
                    row[f"c{c}_{p}_added"] = added(target, c, p)
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            per_round = [_percentile(t, q) for t in target.ttfc]
            row[f"ttfc_{label}"] = statistics.median(per_round)
            if target is not direct:
                baseline = [_percentile(t, q) for t in direct.ttfc]
                row[f"ttfc_{label}_added"] = statistics.median(
                    a - b for a, b in zip(per_round, baseline, strict=True)
                )
        table[target.name] = row

    names = [t.name for t in proxies]
    width = 20
    print(f"\nadded vs direct (median over rounds of the per-round difference); {len(direct.ttfc)} rounds")
    print(f"{'':<34}" + "".join(f"{n:>{width}}" for n in ["direct (absolute)", *names]))

    def line(label: str, cells: list[str]) -> None:
        print(f"{label:<34}" + "".join(f"{c:>{width}}" for c in cells))

    for c in CONCURRENCY:
        for p in ("p50", "p90", "p99"):
            cells = [f"{table['direct'][f'c{c}_{p}']:.2f} ms"]
            cells += [_ms(table[n][f"c{c}_{p}_added"], 2, sign="+") for n in names]
            line(f"c={c} {p} latency", cells)
        line(f"c={c} req/s", [f"{table[n][f'c{c}_rps']:.0f}" for n in ["direct", *names]])
        line(f"c={c} CPU per request", [_ms(table[n][f"c{c}_cpu_ms"], 3) for n in ["direct", *names]])
    for p in ("p50", "p99"):
        cells = [f"{table['direct'][f'ttfc_{p}']:.2f} ms"] + [
            _ms(table[n][f"ttfc_{p}_added"], 2, sign="+") for n in names
        ]
        line(f"stream first chunk {p}", cells)
    return table


def main() -> int:
    """Start every server, run the interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--streams", type=int, default=300, help="sequential streamed requests per round")
    parser.add_argument(
        "--only", default=",".join(PROXIES), help=f"comma-separated subset of {','.join(PROXIES)}"
    )
    parser.add_argument(
        "--bench-venv", type=Path, default=REPO / ".venv-bench", help="venv with vllm-router and litellm"
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the gateway as it was at this git ref, to measure a change",
    )
    parser.add_argument(
        "--gateway-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes of the gateway (default: the CPU count, as vllm-router's threads)",
    )
    parser.add_argument("--json", type=Path, default=REPO / ".mlops" / "bench" / "gateway_latency.json")
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := only - set(PROXIES):
        parser.error(f"unknown proxies {sorted(unknown)}: choose from {', '.join(PROXIES)}")
    if not shutil.which("wrk"):
        print("error: wrk not found; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    if only - GATEWAYS and not (args.bench_venv / "bin" / "vllm-router").exists():
        print(f"error: no vllm-router in {args.bench_venv}: run `make bench-venv`", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    lua = work / "post.lua"
    lua.write_text(
        f"wrk.method = \"POST\"\nwrk.body = '{BODY}'\n"
        f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer {KEY}"\n'
    )
    targets: dict[str, Target] = {}
    try:
        _start_all(work, args.bench_venv, only, targets, args.baseline, args.gateway_workers)
        versions = _versions(args.bench_venv) if only - GATEWAYS else {}
        print(
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; gateway workers {args.gateway_workers};"
            f" wrk -t1, {args.duration:g} s per run; "
            f"{args.rounds} rounds; {versions}",
            flush=True,
        )
        _run_rounds(list(targets.values()), lua, args.rounds, args.duration, args.streams)
        table = _report(targets)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        raw = {name: {"runs": t.runs, "ttfc": t.ttfc} for name, t in targets.items()}
        args.json.write_text(json.dumps({"versions": versions, "table": table, "raw": raw}, indent=1))
        print(f"\nraw numbers: {args.json}")
    finally:
        for target in targets.values():
            target.process.send_signal(signal.SIGTERM)
        for target in targets.values():
            try:
                target.process.wait(15)
            except subprocess.TimeoutExpired:
                target.process.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
