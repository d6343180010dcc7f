"""``/metrics`` of a multi-worker gateway: every worker's series, added up, whoever is scraped.

The port is shared (``gateway.workers``), so a scrape reaches one worker at random. Each worker
keeps its own registry (the hot path stays a plain in-process ``inc``) and also serves its
exposition on a Unix socket in the workers' private folder; the scraped worker reads its
siblings' and adds the series up. Every family the gateway exports adds up across processes
(counters, histograms, the in-flight gauge); a ``*_created`` timestamp takes the earliest.

A sibling that does not answer fails the scrape (503) rather than returning a partial sum:
counters that drop by one worker's share would read as a reset and a burst to ``rate()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

PEER_TIMEOUT_S = 2.0


class PeerUnavailable(Exception):
    """A sibling worker did not hand over its metrics."""


@dataclass(frozen=True)
class Peers:
    """Where the workers of one gateway meet, and which of them this process is."""

    folder: Path
    index: int
    count: int

    def socket_of(self, index: int) -> Path:
        """The Unix socket on which worker ``index`` serves its exposition."""
        return self.folder / f"{index}.sock"


class _Exposition(asyncio.Protocol):
    """Answers every connection with this worker's exposition, then closes it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(generate_latest(self.registry))  # type: ignore[attr-defined]
        transport.close()


class SharedMetrics:
    """One worker's side: serve its own exposition, gather and add up everyone's."""

    def __init__(self, peers: Peers, registry: CollectorRegistry) -> None:
        self.peers = peers
        self.registry = registry
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen on this worker's socket (before the gateway reports ready)."""
        loop = asyncio.get_running_loop()
        path = self.peers.socket_of(self.peers.index)
        self._server = await loop.create_unix_server(lambda: _Exposition(self.registry), path=str(path))

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()

    async def exposition(self) -> bytes:
        """Every worker's series added up, in the Prometheus text format.

        Raises:
            PeerUnavailable: a sibling did not answer within ``PEER_TIMEOUT_S``.
        """
        others = [i for i in range(self.peers.count) if i != self.peers.index]
        texts = await asyncio.gather(*(self._fetch(i) for i in others))
        return merge_expositions([generate_latest(self.registry), *texts])

    async def _fetch(self, index: int) -> bytes:
        try:
            async with asyncio.timeout(PEER_TIMEOUT_S):
                reader, writer = await asyncio.open_unix_connection(str(self.peers.socket_of(index)))
                try:
                    return await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            raise PeerUnavailable(
                f"worker {index} did not hand over its metrics: {exc or 'timed out'}"
            ) from exc


def merge_expositions(texts: Iterable[bytes]) -> bytes:
    """Add up the samples of several expositions of the same families (``*_created``: the earliest)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            merged = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                if key not in merged:
                    merged[key] = sample.value
                elif sample.name.endswith("_created"):  # its own gauge family in format 0.0.4
                    merged[key] = min(merged[key], sample.value)
                else:
                    merged[key] += sample.value
    for name, metric in families.items():
        for (sample_name, labels), value in values[name].items():
            metric.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))  # type: ignore[arg-type]
    return generate_latest(registry)


class _Fixed:
    """A collector that returns the metric families it was given."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)
