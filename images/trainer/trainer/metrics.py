"""Prometheus metrics of a training job, served by rank 0 on `--metrics-port`."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class TrainerMetrics:
    """The job's gauges and counter, in their own registry.

    Gauges ``trainer_global_step``, ``trainer_loss``, ``trainer_tokens_per_second``; counter
    ``trainer_checkpoints_saved_total``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.global_step = Gauge("trainer_global_step", "Optimizer steps completed", registry=self.registry)
        self.loss = Gauge(
            "trainer_loss", "Training loss of the last step (mean over ranks)", registry=self.registry
        )
        self.tokens_per_second = Gauge(
            "trainer_tokens_per_second", "Training tokens per second over all ranks", registry=self.registry
        )
        self.checkpoints_saved = Counter(
            "trainer_checkpoints_saved", "Complete checkpoints written", registry=self.registry
        )
        self._server: Any = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve /metrics on ``port``; returns the port bound."""
        self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def step(self, step: int, loss: float, tokens_per_second: float) -> None:
        """Record one optimizer step."""
        self.global_step.set(step)
        self.loss.set(loss)
        self.tokens_per_second.set(tokens_per_second)
