"""Prometheus metrics of the web process, and the exposition that adds the shared counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "deskline_http_requests",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "deskline_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
WEBHOOK_ITEMS = Counter(
    "deskline_webhook_items",
    "Webhook messages and statuses by outcome (new, duplicate, unknown_number).",
    ["outcome"],
    registry=REGISTRY,
)


def exposition(job_counts: dict[tuple[str, str], int], intake_counts: dict[str, int]) -> bytes:
    """This process' metrics plus the counters every process shares through Redis."""
    shared = CollectorRegistry(auto_describe=False)
    jobs = CounterMetricFamily(
        "deskline_jobs",
        "Jobs run by every worker, by function and outcome.",
        labels=["function", "outcome"],
    )
    for (function, outcome), value in sorted(job_counts.items()):
        jobs.add_metric([function, outcome], value)
    intake = CounterMetricFamily(
        "deskline_intake_events", "Webhook intake events across processes.", labels=["event"]
    )
    for event, value in sorted(intake_counts.items()):
        intake.add_metric([event], value)

    class _Shared:
        def collect(self) -> list[CounterMetricFamily]:
            return [jobs, intake]

    shared.register(_Shared())
    return generate_latest(REGISTRY) + generate_latest(shared)
