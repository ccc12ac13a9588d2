"""The server's Prometheus metrics (prometheus_client, one registry per app: no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from posekit.utils.extras import require


def _client() -> Any:
    return require("prometheus_client", "serve", "posekit serve's metrics")


@dataclass
class ServerMetrics:
    """Requests and errors by route and status, batch sizes, queue and inference time."""

    registry: Any = field(default_factory=lambda: _client().CollectorRegistry())

    def __post_init__(self) -> None:
        p, r = _client(), self.registry
        self.requests = p.Counter(
            "posekit_requests",
            "HTTP requests and WebSocket frames",
            ["route", "status"],
            registry=r,
        )
        self.errors = p.Counter(
            "posekit_errors", "Refused or failed requests, by reason", ["reason"], registry=r
        )
        self.batch_size = p.Histogram(
            "posekit_batch_size",
            "Images per network pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.queue_seconds = p.Histogram(
            "posekit_queue_seconds", "Time an image waited for its network pass", registry=r
        )
        self.inference_seconds = p.Histogram(
            "posekit_inference_seconds", "Time of one network pass (with decoding)", registry=r
        )
        self.queue_depth = p.Gauge(
            "posekit_queue_depth", "Images waiting for the network", registry=r
        )
        self.streams = p.Gauge("posekit_streams", "Open WebSocket streams", registry=r)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        p = _client()
        return p.generate_latest(self.registry), p.CONTENT_TYPE_LATEST
