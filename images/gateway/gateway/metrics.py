"""The gateway's Prometheus metrics (names are a platform contract: dashboards and alerts use them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from gateway.routes import Backend

# LLM latencies span milliseconds (cached prefix, short answer) to minutes (long generation).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A decoding step takes ~5-100 ms on a GPU; finer buckets there let canary analysis tell apart
# versions whose p95 differs by tens of percent (docs/promotion.md, Canary analysis).
_ITL_BUCKETS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1)


class InflightCount:
    """Requests in progress of one model: a plain integer on the hot path, read at scrape time.

    A Gauge child's ``inc()``/``dec()`` take a lock and three calls each, twice per request.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class _Series:
    """The labelled children of one (model, backend, version), bound once: ``labels()`` is slow."""

    __slots__ = (
        "_metrics",
        "_key",
        "requests",
        "duration",
        "ttft",
        "itl",
        "prompt_tokens",
        "completion_tokens",
    )

    def __init__(self, metrics: GatewayMetrics, key: tuple[str, str, str]) -> None:
        self._metrics = metrics
        self._key = key
        model, _backend, version = key
        self.requests: dict[int, Counter] = {}
        self.duration = metrics.duration.labels(*key)
        self.ttft = metrics.ttft.labels(*key)
        self.itl = metrics.itl.labels(*key)
        self.prompt_tokens = metrics.tokens.labels(model, version, "prompt")
        self.completion_tokens = metrics.tokens.labels(model, version, "completion")

    def requests_with(self, code: int) -> Counter:
        """The request counter of one status code."""
        counter = self.requests.get(code)
        if counter is None:
            counter = self.requests[code] = self._metrics.requests.labels(*self._key, str(code))
        return counter


class GatewayMetrics:
    """The metric families, plus caches of labelled children (``labels()`` is slow on the hot path)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by model, backend (route name), its version and HTTP status code.",
            ["model", "backend", "version", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the last byte of the answer.",
            ["model", "backend", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the first body byte from the backend.",
            ["model", "backend", "version"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "gateway_inter_token_latency_seconds",
            "Mean time between the output tokens of one streamed answer: (last - first byte) / (tokens - 1).",
            ["model", "backend", "version"],
            buckets=_ITL_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens processed, type=prompt|completion (from the backend's usage).",
            ["model", "version", "type"],
            registry=r,
        )
        self.retries = Counter(
            "gateway_backend_retries",
            "Requests retried on another backend because this one (model, version) refused or dropped them.",
            ["model", "version"],
            registry=r,
        )
        self.inflight = Gauge("gateway_inflight_requests", "Requests in progress.", ["model"], registry=r)
        self._children: dict[tuple[str, ...], object] = {}
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._inflight: dict[str, InflightCount] = {}

    def _child(self, family: object, key: tuple[str, ...]) -> object:
        cache_key = (id(family), *key)
        child = self._children.get(cache_key)  # type: ignore[arg-type]
        if child is None:
            child = family.labels(*key)  # type: ignore[attr-defined]
            self._children[cache_key] = child  # type: ignore[index]
        return child

    def observe(
        self,
        backend: Backend,
        code: int,
        duration: float,
        ttft: float | None,
        prompt_tokens: int,
        completion_tokens: int,
        streamed: bool = False,
    ) -> None:
        """Record one finished request answered (or failed) by ``backend``.

        A streamed answer of two or more tokens also gives its mean inter-token latency; a
        whole answer does not (its first byte comes with its last).
        """
        key = (backend.model, backend.name, backend.version)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, key)
        series.requests_with(code).inc()
        series.duration.observe(duration)
        if ttft is not None:
            series.ttft.observe(ttft)
            if streamed and completion_tokens > 1 and code == 200:
                series.itl.observe((duration - ttft) / (completion_tokens - 1))
        if prompt_tokens:
            series.prompt_tokens.inc(prompt_tokens)
        if completion_tokens:
            series.completion_tokens.inc(completion_tokens)

    def retried(self, model: str, version: str) -> None:
        """Count a retry away from the backend that serves ``version``."""
        self._child(self.retries, (model, version)).inc()  # type: ignore[attr-defined]

    def inflight_count(self, model: str) -> InflightCount:
        """The in-flight count of a model (``gateway_inflight_requests`` reads it when scraped)."""
        count = self._inflight.get(model)
        if count is None:
            count = self._inflight[model] = InflightCount()
            self.inflight.labels(model).set_function(lambda: count.value)
        return count
