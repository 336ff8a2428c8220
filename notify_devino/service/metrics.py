"""The service's Prometheus metrics, on a registry of its own per application.

Every series a channel or route can have is created at zero when the service starts, so a
rate() over a counter that has never moved is 0, not absent. Label values come from the
configuration (channel and route names) and from fixed sets (outcomes, states): never from a
request.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .states import State
from .store import Store

NO_ROUTE = "none"
"""The route label of notifications sent to addresses (no route)."""

DELIVERY_OUTCOMES = (
    State.ACCEPTED,
    State.FAILED,
    State.UNKNOWN,
    State.DELIVERED,
    State.UNDELIVERED,
    State.EXPIRED,
    State.LATE,
)
REQUEST_OUTCOMES = ("accepted", "partial", "failed", "unknown", "refused")
RETRY_REASONS = ("recovered", "resent")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def observe_many(histogram: Histogram, observations: Iterable[tuple[float, int]]) -> None:
    """``histogram.observe(amount)`` ``count`` times for each ``(amount, count)``, as one update
    of its sum and one of each bucket touched (a chunk of 1,000 recipients is otherwise 1,000
    observations under the metric's lock; those of one notification waited the same time). A
    labelled child only; falls back to observing one at a time where the client library's
    layout is not the one known here."""
    buckets = getattr(histogram, "_buckets", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    total = getattr(histogram, "_sum", None)
    if buckets is None or bounds is None or total is None or len(buckets) != len(bounds):
        for amount, count in observations:
            for _ in range(count):
                histogram.observe(amount)
        return
    added = 0.0
    counts: dict[int, int] = {}
    for amount, count in observations:
        if count <= 0:
            continue
        added += amount * count
        index = bisect.bisect_left(bounds, amount)  # the first bucket with amount <= its bound
        counts[index] = counts.get(index, 0) + count
    if not counts:
        return
    total.inc(added)
    for index, count in counts.items():
        buckets[index].inc(count)


class ServiceMetrics:
    """The metrics of one service: see docs/service.md for the list."""

    def __init__(self, channels: Iterable[str], routes: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.channels = tuple(channels)
        self.routes = (*routes, NO_ROUTE)
        self.submitted = Counter(
            "notify_devino_notifications_submitted",
            "Notifications committed to the outbox, by route.",
            ["route"],
            registry=r,
        )
        self.deliveries = Counter(
            "notify_devino_deliveries",
            "Recipients on a channel reaching an outcome (accepted, then a final state).",
            ["channel", "route", "outcome"],
            registry=r,
        )
        self.requests = Counter(
            "notify_devino_provider_requests",
            "Sends to a channel (one provider request each), by outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.request_recipients = Counter(
            "notify_devino_provider_request_recipients",
            "Recipients carried by the sends.",
            ["channel"],
            registry=r,
        )
        self.retries = Counter(
            "notify_devino_retries",
            "Deliveries queued again: recovered after a crash (never sent), or resent "
            "(at_least_once).",
            ["channel", "reason"],
            registry=r,
        )
        self.status_polls = Counter(
            "notify_devino_status_polls",
            "Status reads of accepted messages.",
            ["channel", "outcome"],
            registry=r,
        )
        self.inbound = Counter(
            "notify_devino_inbound_messages",
            "Inbound messages read and stored (each once).",
            ["channel"],
            registry=r,
        )
        self.depth = Gauge(
            "notify_devino_outbox_deliveries",
            "Deliveries in the store, by state and channel.",
            ["state", "channel"],
            registry=r,
        )
        self.oldest = Gauge(
            "notify_devino_outbox_oldest_age_seconds",
            "Age of the oldest delivery in each state, by channel (0 when none).",
            ["state", "channel"],
            registry=r,
        )
        self.to_accepted = Histogram(
            "notify_devino_time_to_accepted_seconds",
            "From commit to the provider taking the message.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.to_delivered = Histogram(
            "notify_devino_time_to_delivered_seconds",
            "From commit to the provider reporting delivery.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.send_duration = Histogram(
            "notify_devino_send_duration_seconds",
            "How long a send took, the channel's rate-limit wait and retries included.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.balance = Gauge(
            "notify_devino_balance",
            "The account balance of channels that report one, in the account's currency.",
            ["channel"],
            registry=r,
        )
        self.last_success = Gauge(
            "notify_devino_last_success_timestamp_seconds",
            "When a send on the channel last had a recipient accepted (Unix time).",
            ["channel"],
            registry=r,
        )
        self.http_requests = Counter(
            "notify_devino_http_requests",
            "HTTP requests answered, by route template and status code class.",
            ["handler", "code"],
            registry=r,
        )
        for channel in self.channels:
            for route in self.routes:
                for outcome in DELIVERY_OUTCOMES:
                    self.deliveries.labels(channel, route, outcome.value)
            for req in REQUEST_OUTCOMES:
                self.requests.labels(channel, req)
            for reason in RETRY_REASONS:
                self.retries.labels(channel, reason)
            for poll in ("ok", "error"):
                self.status_polls.labels(channel, poll)
            for state in State:
                self.depth.labels(state.value, channel)
                self.oldest.labels(state.value, channel)
            self.request_recipients.labels(channel)
            self.inbound.labels(channel)
            self.to_accepted.labels(channel)
            self.to_delivered.labels(channel)
            self.send_duration.labels(channel)
            self.last_success.labels(channel)
        self._submitted_children = {route: self.submitted.labels(route) for route in self.routes}
        self._http_children: dict[tuple[str, str], Any] = {}  # route templates: a fixed set

    def count_http_request(self, handler: str, code: str) -> None:
        """``http_requests.labels(handler, code).inc()``, the child kept (a lookup under the
        metric's lock per request is otherwise a tenth of what a POST costs above aiohttp's)."""
        child = self._http_children.get((handler, code))
        if child is None:
            child = self._http_children[(handler, code)] = self.http_requests.labels(handler, code)
        child.inc()

    def count_submitted(self, route: str | None) -> None:
        """One notification committed to the outbox, by its route (none: ``NO_ROUTE``)."""
        self._submitted_children[self.route_label(route)].inc()

    def route_label(self, route: str | None) -> str:
        return route if route in self.routes else NO_ROUTE

    def channel_known(self, channel: str) -> bool:
        return channel in self.channels

    async def refresh(self, store: Store, now: datetime) -> None:
        """Read the outbox's depth into the gauges (called at every scrape)."""
        rows = await store.depth(now)
        seen = set()
        for row in rows:
            if row.channel not in self.channels:
                continue
            seen.add((row.state, row.channel))
            self.depth.labels(row.state.value, row.channel).set(row.count)
            age = 0.0 if row.oldest is None else max(0.0, (now - row.oldest).total_seconds())
            self.oldest.labels(row.state.value, row.channel).set(age)
        for channel in self.channels:
            for state in State:
                if (state, channel) not in seen:
                    self.depth.labels(state.value, channel).set(0)
                    self.oldest.labels(state.value, channel).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "NO_ROUTE", "ServiceMetrics", "observe_many"]
