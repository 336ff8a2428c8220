"""A strict sliding-window rate limiter for one client's requests.

Devino allows 10 requests per second per client, and says nothing of how it counts. The strict
reading is a sliding window: no one-second window, wherever it starts, may hold more than N
requests. ``aiolimiter.AsyncLimiter(N, 1)`` does not give that (it is a leaky bucket: a burst of
N, then N more within the same second as the bucket drains); ``AsyncLimiter(1, 1/N)`` does, but
spaces every request 1/N apart, so a burst of 5 alerts takes half a second to leave.

This limiter keeps the times of the last N grants and lets a request through when fewer than N
were granted in the last ``window + guard`` seconds: a burst of up to N leaves at once, and no
window of ``window`` seconds ever holds more than N grants. The guard (default 50 ms) absorbs
the jitter between a grant here and the request's arrival at the server. Waiters are served in
arrival order (``asyncio.Lock`` is FIFO); a cancelled waiter takes no slot.

A grant can be moved to the moment its request really left (:meth:`Grant.sent`): between the
grant and the write the event loop may run other work (a reply parsed, a batch checked), and
a request written 30 ms after its grant would otherwise count as 30 ms older than it is, which
the guard alone would have to absorb.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType


class Grant:
    """One request let through; ``at`` is when it counts from (its grant, or its write)."""

    __slots__ = ("_clock", "at")

    def __init__(self, at: float, clock: Callable[[], float]) -> None:
        self.at = at
        self._clock = clock

    def sent(self) -> None:
        """The request is being written now: count it from now (never earlier than its grant).

        The oldest grant may wait a little longer to expire than one granted after it; that only
        errs on the safe side."""
        self.at = max(self.at, self._clock())


class SlidingWindowLimiter:
    """At most ``max_requests`` grants in any ``window`` seconds.

    :param max_requests: grants allowed per window (at least 1).
    :param window: the window in seconds.
    :param guard: extra seconds added to the window, for jitter on the way to the server.
    :param clock: a monotonic clock in seconds (for tests); ``time.monotonic`` by default.
    """

    def __init__(
        self,
        max_requests: int,
        window: float = 1.0,
        *,
        guard: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if window <= 0 or guard < 0:
            raise ValueError("window must be positive and guard not negative")
        self.max_requests = max_requests
        self.window = window
        self.guard = guard
        self._span = window + guard
        self._clock = clock
        self._grants: deque[Grant] = deque()
        self._lock = asyncio.Lock()

    @classmethod
    def per_second(cls, rate: float, *, guard: float = 0.05) -> SlidingWindowLimiter:
        """A limiter for ``rate`` requests per second: ``floor(rate)`` per second for a rate of
        1 or more (a one-second window never holds more than ``rate``), else one per
        ``1/rate`` seconds."""
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        if rate >= 1:
            return cls(math.floor(rate), 1.0, guard=guard)
        return cls(1, 1.0 / rate, guard=guard)

    def _expire(self, now: float) -> None:
        while self._grants and now - self._grants[0].at >= self._span:
            self._grants.popleft()

    async def acquire(self) -> Grant:
        """Wait until a request may go, and count it.

        :return: the grant; call its :meth:`~Grant.sent` when the request is written.
        """
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if len(self._grants) < self.max_requests:
                    grant = Grant(now, self._clock)
                    self._grants.append(grant)
                    return grant
                await asyncio.sleep(self._grants[0].at + self._span - now)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


__all__ = ["Grant", "SlidingWindowLimiter"]
