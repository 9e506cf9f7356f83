"""Prometheus metrics of the scoring service, served at ``/metrics`` by our middleware.

BentoML's own HTTP metrics middleware is off (it and OpenTelemetry's span per request cost
about 1.5 ms of CPU per request, more than scoring); ``wattwise_http_requests`` counts
responses by route and status instead. Created inside the worker (BentoML sets
``PROMETHEUS_MULTIPROC_DIR`` after importing the service module), once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
PROB_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
VALUE_BUCKETS = (-1.0, -0.5, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


@dataclass(frozen=True)
class ServingMetrics:
    latency: Any
    items: Any
    probability: Any
    value: Any
    model_version: Any
    reloads: Any
    http: Any

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, kept: prometheus_client validates and locks on every
        ``labels`` call (~10 µs), several times per request; the child is the same object."""
        key = (id(metric), values)
        c = _CHILDREN.get(key)
        if c is None:
            c = _CHILDREN[key] = metric.labels(*values)
        return c

    def observe_probabilities(self, model: str, output: str, values: np.ndarray) -> None:
        h = self.child(self.probability, model, output)
        for v in np.asarray(values, dtype=float).tolist():
            if v - v == 0.0:  # finite
                h.observe(v)

    def observe_values(self, model: str, output: str, values: np.ndarray) -> None:
        h = self.child(self.value, model, output)
        for v in np.asarray(values, dtype=float):
            if np.isfinite(v):
                h.observe(float(v))


@lru_cache(maxsize=1)
def serving_metrics() -> ServingMetrics:
    """The process's metrics (created on first use, after the worker set up Prometheus)."""
    from prometheus_client import Counter, Gauge, Histogram

    return ServingMetrics(
        latency=Histogram(
            "wattwise_request_seconds",
            "Time spent in a scoring endpoint (features, model, prediction log)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        items=Counter(
            "wattwise_items",
            "Items (customers) per endpoint by outcome",
            ["endpoint", "outcome"],
        ),
        probability=Histogram(
            "wattwise_prediction_probability",
            "Distribution of predicted probabilities",
            ["model", "output"],
            buckets=PROB_BUCKETS,
        ),
        value=Histogram(
            "wattwise_prediction_value",
            "Distribution of predicted values (uplift, kW reduction)",
            ["model", "output"],
            buckets=VALUE_BUCKETS,
        ),
        model_version=Gauge(
            "wattwise_model_version",
            "Registered version loaded per model kind (0: not loaded)",
            ["kind", "registered_name"],
            multiprocess_mode="livemax",
        ),
        reloads=Counter(
            "wattwise_model_reloads",
            "Model loads after start, by outcome",
            ["kind", "outcome"],
        ),
        http=Counter(
            "wattwise_http_requests",
            "HTTP responses by route and status code",
            ["path", "status"],
        ),
    )


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every worker (multiprocess directory when BentoML set one)."""
    import os

    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
