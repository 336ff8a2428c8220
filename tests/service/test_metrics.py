"""The service's metric helpers."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from notify_devino.service.metrics import observe_many


@pytest.mark.parametrize("amount", [0.0, 0.3, 2.5, 1e9])
def test_observe_many_counts_as_that_many_observations(amount: float) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    a = Histogram("wait_seconds", "w", ["channel"], buckets=(0.1, 1, 10), registry=one)
    b = Histogram("wait_seconds", "w", ["channel"], buckets=(0.1, 1, 10), registry=many)
    for _ in range(7):
        a.labels("sms").observe(amount)
    a.labels("sms").observe(0.05)
    a.labels("sms").observe(1)  # on a bound: that bucket
    observe_many(b.labels("sms"), [(amount, 7), (0.05, 1), (0.05, 0)])
    observe_many(b.labels("sms"), [(1, 1)])
    observe_many(b.labels("sms"), [])
    assert _samples(many) == _samples(one)


def _samples(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines but the creation times (the two histograms differ in those)."""
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]
