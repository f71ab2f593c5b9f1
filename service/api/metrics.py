"""Prometheus metrics: requests, latencies, errors, index size and ingestion jobs.

One registry per app (never the process-wide default), so that two apps in one
process do not share counters. Index size and job counts are read when
``/metrics`` is scraped, from ``app.state``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_STATES = ("queued", "running", "done", "failed")


class Metrics:
    def __init__(self, state) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "policyqa_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "policyqa_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "policyqa_http_errors",
            "Responses with a 4xx or 5xx status, by route template and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "policyqa_http_requests_in_flight", "Requests being answered now.", registry=self.registry
        )
        self.registry.register(_StateCollector(state))

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Index size and ingestion jobs, read from the app's state at scrape time."""

    def __init__(self, state) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # read at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        engine = getattr(self.state, "engine", None)
        if engine is not None:
            index = engine.index
            documents = GaugeMetricFamily("policyqa_index_documents", "Documents in the index being served.")
            documents.add_metric([], index.catalogue.document_count())
            chunks = GaugeMetricFamily("policyqa_index_chunks", "Chunks (passages) in the index being served.")
            chunks.add_metric([], index.catalogue.count())
            yield documents
            yield chunks
        writer = getattr(self.state, "writer", None)
        if writer is not None:
            jobs = GaugeMetricFamily(
                "policyqa_ingestion_jobs",
                "Ingestion jobs (uploads, replacements, deletes) by state: queued and running now, "
                "done and failed since the start.",
                labels=["state"],
            )
            counts = writer.job_counts()
            for state in JOB_STATES:
                jobs.add_metric([state], counts.get(state, 0))
            yield jobs
