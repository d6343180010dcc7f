"""The gateway: completions routed by model to weighted backends, FastAPI for the rest.

``POST /v1/chat/completions`` and ``POST /v1/completions`` come from ``gateway.server`` as an
``Exchange`` with the body already read: it is parsed once (orjson) for ``model`` and the
original bytes go to the backend unchanged; the backend's answer (JSON or an SSE stream) goes
back to the client byte for byte. Everything else (``/v1/models``, ``/health``, ``/ready``,
``/metrics``) is a small FastAPI app, where a few hundred microseconds do not matter.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.balancer import Conversation, backend_point, choose, conversation
from gateway.dns_client import nameserver, parse_server
from gateway.exchange import Exchange, error_body
from gateway.keys import KeysError, load_keys
from gateway.metrics import GatewayMetrics
from gateway.replica import Replica
from gateway.replicas import ReplicaCollector, ReplicaSet, discover_all
from gateway.routes import Backend, ModelRoute, RoutesError, load_routes
from gateway.settings import Settings
from gateway.shared_metrics import Peers, PeerUnavailable, SharedMetrics
from gateway.upstream import BackendBroken, BackendPool, BackendTimeout, BackendUnavailable, UpstreamResponse
from gateway.versions import refresh_backend
from gateway.watched_file import WatchedFile

log = logging.getLogger("gateway")

_USAGE = re.compile(rb'"usage":\s*(\{[^{}]*\})')
_JSON = b"application/json"


_UNAUTHORIZED = error_body(
    "Incorrect API key provided. Send 'Authorization: Bearer <key>'.",
    "invalid_request_error",
    "invalid_api_key",
)
_BAD_BODY = error_body(
    "The body must be a JSON object with a string field 'model'.", "invalid_request_error", None, "model"
)


class Gateway:
    """Routes OpenAI requests by model to weighted backends, with metrics (served by ``gateway.server``)."""

    # Request path -> the backend's path, for the requests served by ``complete``.
    completion_paths = {
        b"/v1/chat/completions": b"/v1/chat/completions",
        b"/v1/completions": b"/v1/completions",
    }

    def __init__(self, settings: Settings, peers: Peers | None = None) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        # With several workers (gateway.workers) a scrape adds up every worker's series.
        self.shared_metrics = SharedMetrics(peers, self.metrics.registry) if peers else None
        self.routes: dict[str, ModelRoute] = {}
        self.routes_error: str | None = "routes not loaded yet"
        # Accepted Authorization header values, so checking a key is one set lookup.
        self.auth_headers: frozenset[bytes] | None = None
        self.keys_error: str | None = None
        self.pools: dict[str, BackendPool] = {}
        # (url, routing.replicas) -> the replicas behind that url (gateway.replicas).
        self.replica_sets: dict[tuple[str, str], ReplicaSet] = {}
        self.dns_server = parse_server(settings.dns_server) if settings.dns_server else nameserver()
        self.metrics.registry.register(
            ReplicaCollector(lambda: [b for r in self.routes.values() for b in r.backends])
        )
        self._routes_file = WatchedFile(settings.routes_file)
        self._keys_file = WatchedFile(settings.api_keys_file) if settings.api_keys_file else None
        self._backend_key_file = (
            WatchedFile(settings.backend_api_key_file) if settings.backend_api_key_file else None
        )
        # "Authorization: Bearer <key>\r\n" for every backend request (b"" without a key file).
        self.backend_auth = b""
        self.backend_key_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.cold_app = self._build_cold_app()
        self.too_large = error_body(
            f"Request body larger than the gateway's limit of {settings.max_body_bytes} bytes.",
            "invalid_request_error",
            "request_too_large",
        )
        self.headers_too_large = error_body(
            f"Request line and headers larger than the gateway's limit of {settings.max_header_bytes} bytes.",
            "invalid_request_error",
            "request_header_fields_too_large",
        )

    # ---- lifecycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        """Load routes and keys, learn backend versions, start the reload loops."""
        if self.shared_metrics is not None:
            await self.shared_metrics.start()
        self.reload_files()
        await self.discover_replicas()
        await self.refresh_versions()
        _quiet_garbage_collector()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.reload_interval_s, self._reload_and_refresh)),
            asyncio.create_task(self._every(self.settings.version_refresh_s, self.refresh_versions)),
            asyncio.create_task(self._every(self.settings.discovery_interval_s, self.discover_replicas)),
        ]

    async def shutdown(self) -> None:
        """Stop the loops and close backend connections."""
        for task in self._tasks:
            task.cancel()
        if self.shared_metrics is not None:
            self.shared_metrics.close()
        for pool in self.pools.values():
            pool.close()
        for replica_set in self.replica_sets.values():
            replica_set.close()

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a reload must never kill its loop
                log.exception("background job failed")

    async def _reload_and_refresh(self) -> None:
        if self.reload_files():
            await self.discover_replicas()
            await self.refresh_versions()

    async def discover_replicas(self) -> None:
        """Ask DNS for the pods of every ``routing.replicas: dns`` backend (gateway.replicas)."""
        timeout = min(1.0, self.settings.discovery_interval_s)
        await discover_all(self.replica_sets.values(), self.dns_server, timeout)

    def reload_files(self) -> bool:
        """Re-read the routes and keys files if they changed; True when the routes changed.

        A broken routes file keeps the last good table (and is logged), so a bad edit cannot
        take a running gateway down; at start-up it leaves the gateway not ready. A keys file
        that is empty, unreadable or gone denies every client and fails ``/ready``: emptying the
        Secret is how every key is revoked at once, so the old keys must not live on.
        """
        routes_changed = False
        if self._routes_file.changed():
            try:
                table = load_routes(self.settings.routes_file)
            except RoutesError as exc:
                self.routes_error = str(exc)
                log.error("%s", exc)
            else:
                self._install_routes(table)
                self.routes_error = None
                routes_changed = True
                log.info("routes loaded: %s", {m: [b.name for b in r.backends] for m, r in table.items()})
        if self._keys_file is not None and self._keys_file.changed():
            try:
                keys = load_keys(self._keys_file.path)
            except KeysError as exc:
                self.keys_error = str(exc)
                self.auth_headers = frozenset()  # fail closed: no usable key file, no access
                log.error("%s; every request is refused until it holds a key", exc)
            else:
                self.auth_headers = frozenset(b"Bearer " + k.encode() for k in keys)
                self.keys_error = None
                log.info("API keys loaded: %d", len(keys))
        if self._backend_key_file is not None and self._backend_key_file.changed():
            self._load_backend_key(self._backend_key_file.path)
        return routes_changed

    def _load_backend_key(self, path: Path) -> None:
        """Read the key the backends require (vLLM ``--api-key``); a bad file sends none and fails /ready."""
        try:
            key = path.read_text().strip()
        except OSError as exc:
            self.backend_key_error = f"{path}: cannot read the backend API key file: {exc.strerror}"
            key = ""
        else:
            self.backend_key_error = None if key else f"{path}: the backend API key file is empty"
        if key and (len(key.split()) != 1 or not key.isprintable()):
            self.backend_key_error = f"{path}: the backend API key must be one line without spaces"
            key = ""
        if self.backend_key_error:
            log.error("%s", self.backend_key_error)
        self.backend_auth = b"Authorization: Bearer %s\r\n" % key.encode() if key else b""
        for pool in self.pools.values():
            pool.auth_header = self.backend_auth
        for replica_set in self.replica_sets.values():
            for replica in replica_set.replicas:
                replica.pool.auth_header = self.backend_auth
        log.info("backend API key %s", "loaded" if key else "absent")

    def _install_routes(self, table: dict[str, ModelRoute]) -> None:
        old = {(b.model, b.name, b.url): b for r in self.routes.values() for b in r.backends}
        for route in table.values():
            for backend in route.backends:
                previous = old.get((backend.model, backend.name, backend.url))
                if previous is not None:
                    backend.version, backend.reachable = previous.version, previous.reachable
        # A `service` backend's one replica is the url itself; a `dns` backend's are its pods.
        urls = {b.url for r in table.values() for b in r.backends if r.routing.replicas == "service"}
        for url in urls - self.pools.keys():
            self.pools[url] = self._new_pool(url)
        sets: dict[tuple[str, str], ReplicaSet] = {}
        for route in table.values():
            for backend in route.backends:
                key = (backend.url, route.routing.replicas)
                replica_set = sets.get(key) or self.replica_sets.get(key)
                if replica_set is None:
                    replica_set = ReplicaSet(backend.url, route.routing.replicas, self._pool_for)
                backend.replicas = sets[key] = replica_set
        self.routes = table
        for key in self.replica_sets.keys() - sets.keys():
            self.replica_sets[key].close()
        self.replica_sets = sets
        for url in self.pools.keys() - urls:
            self.pools.pop(url).close()

    def _new_pool(self, url: str) -> BackendPool:
        return BackendPool(
            url,
            connect_timeout=self.settings.connect_timeout_s,
            read_timeout=self.settings.read_timeout_s,
            loop=asyncio.get_running_loop(),
            auth_header=self.backend_auth,
        )

    def _pool_for(self, url: str) -> BackendPool:
        """The pool of a replica: a `service` backend shares the url's pool, a pod has its own."""
        return self.pools.get(url) or self._new_pool(url)

    async def refresh_versions(self) -> None:
        """Ask every backend which version it serves (see ``gateway.versions`` for why)."""
        timeout = min(5.0, self.settings.read_timeout_s)
        probes = []
        for route in self.routes.values():
            for backend in route.backends:
                replicas = backend.replicas.replicas if backend.replicas is not None else []
                if replicas:  # a `dns` backend is asked through one of its pods
                    probes.append(refresh_backend(backend, replicas[0].pool, timeout))
                else:
                    backend.reachable = False
        await asyncio.gather(*probes)

    # ---- completions ---------------------------------------------------------------------------
    def refusal(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes] | None:
        """The 401 for a completion request without an accepted key (checked before its body)."""
        if self.authorized(headers):
            return None
        return 401, _UNAUTHORIZED

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the request carries an accepted ``Authorization: Bearer`` key."""
        if self.auth_headers is None:
            return True
        for name, value in headers:
            if name == b"authorization":
                return value in self.auth_headers
        return False

    async def complete(self, exchange: Exchange, upstream_path: bytes) -> None:
        """Route one completion request (authorized, body read within the limit) to a backend."""
        try:
            request = orjson.loads(exchange.body)
            model = request["model"]
            if not isinstance(model, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            exchange.respond_json(400, _BAD_BODY)
            return
        route = self.routes.get(model)
        if route is None:
            exchange.respond_json(
                404,
                error_body(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                    "model",
                ),
            )
            return
        inflight = self.metrics.inflight_count(model)
        inflight.value += 1
        try:
            await self._forward(route, upstream_path, exchange, request)
        finally:
            inflight.value -= 1

    def _replica(
        self, route: ModelRoute, backend: Backend, talk: Conversation | None, avoid: Replica | None = None
    ) -> Replica:
        """The replica of ``backend`` for this request (gateway.balancer), counted as chosen.

        Raises:
            BackendUnavailable: the backend has no replica (DNS lists no ready pod).
        """
        replicas = backend.replicas.replicas if backend.replicas is not None else []
        if avoid is not None:
            replicas = [r for r in replicas if r is not avoid]
        if not replicas:
            raise BackendUnavailable(f"backend {backend.name} of model {route.model} has no ready replica")
        routing = route.routing
        if talk is not None and routing.policy == "prefix-affinity":
            placements = backend.replicas.placements if backend.replicas is not None else None
            replica, how = choose(replicas, talk, routing.load_factor, placements)
        else:
            replica, how = choose(replicas, None, None)
        replica.chosen[how] += 1
        return replica

    async def _forward(
        self, route: ModelRoute, upstream_path: bytes, exchange: Exchange, request: dict[str, Any]
    ) -> None:
        model = route.model
        body = exchange.body
        started = exchange.received_at
        # A conversation (prefix-affinity only) keeps its backend and, inside it, its replica.
        talk = conversation(request) if route.routing.policy == "prefix-affinity" else None
        backend = route.pick(backend_point(talk))
        replica: Replica | None = None
        try:
            try:
                replica = self._replica(route, backend, talk)
                replica.inflight += 1
                # Cancelled when the client leaves (gateway.server): the pool then drops the
                # backend connection, and the backend stops working for nobody.
                response = await replica.pool.request(b"POST", upstream_path, body)
            except BackendUnavailable as first:
                # Refused or dropped before it answered: the replica never saw the request
                # through, so sending it to a sibling cannot duplicate an answer. A sibling
                # replica of the same backend first (a pod that just left, before DNS said so).
                self.metrics.retried(model, backend.version)
                failed = replica
                if failed is not None:
                    failed.inflight -= 1
                    failed.eject(time.monotonic())
                    replica = None
                try:
                    replica = self._replica(route, backend, talk, avoid=failed)
                except BackendUnavailable:
                    backend.eject()
                    backend.reachable = False
                    alternative = route.alternative(backend)
                    if alternative is None:
                        raise first from None
                    backend = alternative
                    replica = self._replica(route, backend, talk)
                log.warning("%s; retrying on backend %s replica %s", first, backend.name, replica.address)
                replica.inflight += 1
                response = await replica.pool.request(b"POST", upstream_path, body)
        except BackendUnavailable as exc:
            log.error("%s", exc)
            exchange.respond_json(
                503, error_body(f"No backend of model `{model}` is reachable.", "server_error", None)
            )
            self.metrics.observe(backend, 503, time.perf_counter() - started, None, 0, 0)
            return
        except BackendTimeout as exc:
            log.error("%s", exc)
            exchange.respond_json(
                504, error_body(f"The backend of model `{model}` timed out.", "server_error", None)
            )
            self.metrics.observe(backend, 504, time.perf_counter() - started, None, 0, 0)
            return
        except asyncio.CancelledError:
            self.metrics.observe(backend, 499, time.perf_counter() - started, None, 0, 0)
            raise
        else:
            backend.reachable = True
            content_type = response.header(b"content-type") or _JSON
            if content_type.startswith(b"text/event-stream"):
                await self._relay_stream(backend, response, content_type, exchange)
            else:
                await self._relay_whole(backend, response, content_type, exchange)
        finally:
            if replica is not None:
                replica.inflight -= 1

    async def _relay_whole(
        self, backend: Backend, response: UpstreamResponse, content_type: bytes, exchange: Exchange
    ) -> None:
        started = exchange.received_at
        # The first byte of a non-streamed answer: its headers (vLLM sends them with the body).
        ttft = time.perf_counter() - started
        try:
            payload = await response.read()
        except asyncio.CancelledError:  # the client left before the whole answer came
            response.abort()
            self.metrics.observe(backend, 499, time.perf_counter() - started, ttft, 0, 0)
            raise
        except (BackendBroken, BackendTimeout) as exc:
            log.error("%s", exc)
            exchange.respond_json(
                502, error_body(f"The backend of model `{backend.model}` failed.", "server_error", None)
            )
            self.metrics.observe(backend, 502, time.perf_counter() - started, None, 0, 0)
            return
        exchange.respond(
            response.status,
            [
                (b"content-type", content_type),
                (b"x-gateway-backend", backend.name.encode()),
                (b"x-model-version", backend.version.encode()),
            ],
            payload,
        )
        prompt = completion = 0
        if response.status == 200:
            # vLLM puts usage last: look for it from the end instead of scanning the whole body.
            at = payload.rfind(b'"usage":')
            match = _USAGE.match(payload, at) if at >= 0 else None
            if match:
                prompt, completion = _token_counts(match.group(1))
        self.metrics.observe(
            backend,
            response.status,
            time.perf_counter() - started,
            ttft,
            prompt,
            completion,
        )

    async def _relay_stream(
        self, backend: Backend, response: UpstreamResponse, content_type: bytes, exchange: Exchange
    ) -> None:
        started = exchange.received_at
        # A client that leaves mid-stream makes the gateway drop the backend connection, so
        # the model server stops generating tokens nobody will read.
        client_gone = False
        done_sent = False  # a client that leaves after `data: [DONE]` left a finished answer

        def _on_disconnect() -> None:
            nonlocal client_gone
            if not response.complete and not done_sent:
                client_gone = True
                response.abort()

        exchange.on_disconnect = _on_disconnect
        exchange.start(
            response.status,
            [
                (b"content-type", content_type),
                (b"cache-control", b"no-cache"),
                (b"x-gateway-backend", backend.name.encode()),
                (b"x-model-version", backend.version.encode()),
            ],
        )
        ttft: float | None = None
        usage: bytes | None = None
        # Without stream_options.include_usage vLLM sends no usage in a stream; then each
        # event with non-empty text is one generated token (vLLM emits one token per event).
        events = 0
        try:
            async for chunk in response.chunks():
                if ttft is None:
                    ttft = time.perf_counter() - started
                if b'"usage":{' in chunk or b'"usage": {' in chunk:
                    match = _USAGE.search(chunk)
                    if match:
                        usage = match.group(1)
                events += (
                    chunk.count(b'"content":"')
                    + chunk.count(b'"text":"')
                    - chunk.count(b'"content":""')
                    - chunk.count(b'"text":""')
                )
                if b"data: [DONE]" in chunk:
                    done_sent = True
                await exchange.send_chunk(chunk)
        except (BackendBroken, BackendTimeout) as exc:
            if not client_gone:
                log.error("stream of model %s cut: %s", backend.model, exc)
        exchange.finish()
        prompt, completion = _token_counts(usage) if usage else (0, max(events, 0))
        # 499 (nginx's "client closed request"): the answer was cut short by the client.
        code = 499 if client_gone else response.status
        self.metrics.observe(
            backend, code, time.perf_counter() - started, ttft, prompt, completion, streamed=True
        )

    # ---- everything that is not a completion ------------------------------------------------
    def _build_cold_app(self) -> FastAPI:
        """The FastAPI app behind every path that is not a completion (served over ASGI)."""
        app = FastAPI(title="mlops gateway", docs_url=None, redoc_url=None, openapi_url=None)
        gateway = self

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/ready")
        async def ready() -> Response:
            problems = []
            if gateway.routes_error and not gateway.routes:
                problems.append(gateway.routes_error)
            if gateway.keys_error and not gateway.auth_headers:
                problems.append(gateway.keys_error)
            if gateway.backend_key_error:
                problems.append(gateway.backend_key_error)
            if gateway.routes and not any(b.reachable for r in gateway.routes.values() for b in r.backends):
                problems.append("no backend is reachable")
            status = 503 if problems else 200
            return Response(
                orjson.dumps({"ready": not problems, "problems": problems}),
                status,
                media_type="application/json",
            )

        @app.get("/v1/models")
        async def models(request: Request) -> Response:
            if not gateway.authorized(request.scope["headers"]):
                return Response(
                    error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
                    401,
                    media_type="application/json",
                )
            data = [
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "mlops-platform",
                    "backends": [
                        {"name": b.name, "version": b.version, "weight": b.weight, "reachable": b.reachable}
                        for b in route.backends
                    ],
                }
                for name, route in sorted(gateway.routes.items())
            ]
            return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

        @app.get("/metrics")
        async def metrics() -> Response:
            if gateway.shared_metrics is None:
                return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
            try:
                body = await gateway.shared_metrics.exposition()
            except PeerUnavailable as exc:
                return Response(f"{exc}\n", 503, media_type="text/plain")
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return app


def _quiet_garbage_collector() -> None:
    """Keep the collector off the tail (its pauses are the suspect for the p99 at 64 connections).

    After start-up the heap holds FastAPI's and pydantic's objects (hundreds of
    thousands), none of which ever become garbage; each full collection walked them all and
    stalled the event loop for tens of milliseconds. ``gc.freeze()`` moves them out of the
    collector's sight. A request allocates a few dozen short-lived containers, so the default
    gen-0 threshold (700) collected every few requests; a larger one collects rarely, and the
    survivors are few because a request's objects die with it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _token_counts(usage: bytes) -> tuple[int, int]:
    try:
        data = orjson.loads(usage)
        return int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0)
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return 0, 0


def create_app(settings: Settings | None = None, peers: Peers | None = None) -> Gateway:
    """The gateway configured from ``settings`` (default: from the environment).

    ``peers``: this worker's place among several (``gateway.workers``); None for one process.
    """
    return Gateway(settings or Settings.from_env(), peers)
