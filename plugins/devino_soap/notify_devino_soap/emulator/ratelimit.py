"""The sandbox's own rate limiter: what the provider's side measures (arrivals per account in a
sliding window), apart from the client's limiter in ``notify_devino_soap.ratelimit``."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """At most ``limit`` admitted requests per key in any one window (read from the config at
    every request, so a running sandbox can be retuned)."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._hits: dict[str | None, deque[float]] = {}

    def admit(self, key: str | None, now: float, limit: int) -> bool:
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True
