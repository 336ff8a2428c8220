"""The request rate limit of one Devino account, shared by every client in the process.

Devino allows 10 requests per second per client and says nothing of how it counts. The strict
reading is a sliding window: no one-second window, wherever it starts, may hold more than N
requests *as the service sees them arrive*. A limiter that counts requests when it lets them
go (as pyrate-limiter's sliding log, ``limits``' moving window and aiolimiter's leaky bucket
all do) keeps that only if every request arrives within a fixed guard of its grant: a burst
whose first requests open new connections (a TLS handshake takes a few hundred milliseconds)
and whose next burst reuses warm ones breaks it. Measured against the sandbox's own arrival
times, pyrate-limiter with a 1.000 s window let 11 to 14 requests into one second, and with a
1.05 s window still let the sandbox refuse 3 of 26 requests when the machine was busy.

So this limiter counts a request for as long as the service may be counting it: from the moment
it is let go until one window after it *ended* (its reply began, or it failed). The service sees
it arrive somewhere in between, so however long the way there, no window at the service can hold
more than N: if N + 1 arrivals fell in one window, then at the latest of their grants all N + 1
would still be counted here, which the limiter never allows. The price is a little throughput
at high latency: a slot serves one request per ``window + latency`` (about 8 per second at
200 ms per request, 10 on loopback). A burst of up to N still leaves at once.

A request may give the slot a ``before`` to run just ahead of it (a send's announcement that
it leaves, which the service commits to its outbox): it runs once the slot is at most
``ANNOUNCE_LEAD_SECONDS`` away, while the request still waits, so the commit does not hold the
slot and lengthen every window by its time.

Waiters are served in arrival order; a cancelled waiter takes no slot. One limiter may be shared
by event loops in several threads (a :class:`~notify_devino.dispatcher.SyncDispatcher` beside an
async dispatcher): its bookkeeping is under a thread lock and each waiter is woken in its own
loop. :func:`account_limiter` gives every client of the same account (endpoint URL and login)
in the process the same limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

from notify_devino.limits import ANNOUNCE_LEAD_SECONDS


class _Waiter:
    """One task waiting for a slot, woken from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.announcing = False
        """Waiting to run its ``before`` (woken whenever a request ends, not only when first)."""

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.event.set)


def _shape(requests_per_second: float) -> tuple[int, float]:
    """(requests, window): ``floor(rate)`` per second for a rate of 1 or more (a one-second
    window never holds more than ``rate``), else one per ``1/rate`` seconds."""
    if not requests_per_second > 0 or math.isinf(requests_per_second):
        raise ValueError(f"rate must be a positive number, not {requests_per_second!r}")
    if requests_per_second >= 1:
        return math.floor(requests_per_second), 1.0
    return 1, 1.0 / requests_per_second


class AccountLimiter:
    """At most ``max_requests`` requests counted at any moment, each counted from its start
    until ``window`` seconds after its end.

    :param requests_per_second: the allowed rate.
    :param clock: a monotonic clock in seconds (``time.monotonic``).
    """

    def __init__(
        self, requests_per_second: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_requests, self.window = _shape(requests_per_second)
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._ended: deque[float] = deque()  # end times of requests ended less than a window ago
        self._queue: deque[_Waiter] = deque()

    def __repr__(self) -> str:
        return f"<AccountLimiter {self.max_requests} per {self.window:g} s after each ends>"

    @property
    def counted(self) -> int:
        """Requests counted now: in flight, or ended less than a window ago."""
        with self._lock:
            self._expire(self._clock())
            return self._in_flight + len(self._ended)

    def tighten(self, requests_per_second: float) -> None:
        """Hold every later start to a stricter rate."""
        with self._lock:
            self.max_requests, self.window = _shape(requests_per_second)

    def _expire(self, now: float) -> None:
        while self._ended and now - self._ended[0] >= self.window:
            self._ended.popleft()

    def _take(self, now: float) -> float | None:
        """Take a slot (None), or say how long until one frees (inf: when a request ends)."""
        self._expire(now)
        if self._in_flight + len(self._ended) < self.max_requests:
            self._in_flight += 1
            return None
        return self._ended[0] + self.window - now if self._ended else math.inf

    def _wake_first(self) -> None:
        if self._queue:
            self._queue[0].wake()

    def _eta(self, position: int, now: float) -> float:
        """Seconds until the waiter at ``position`` in the queue gets a slot, if those ahead
        take theirs first (0: there is one now; inf: only when a request under way ends)."""
        self._expire(now)
        free = self.max_requests - self._in_flight - len(self._ended)
        if position < free:
            return 0.0
        k = position - free
        return self._ended[k] + self.window - now if k < len(self._ended) else math.inf

    async def _announce(self, waiter: _Waiter, before: Callable[[], Awaitable[None]]) -> None:
        """Wait in the queue until the slot is at most ``ANNOUNCE_LEAD_SECONDS`` away, then
        run ``before``: its time overlaps the wait instead of holding the slot."""
        waiter.announcing = True
        while True:
            with self._lock:
                eta = self._eta(self._queue.index(waiter), self._clock())
                waiter.event.clear()
            if eta <= ANNOUNCE_LEAD_SECONDS:
                break
            timeout = None if math.isinf(eta) else eta - ANNOUNCE_LEAD_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), timeout)
        waiter.announcing = False
        await before()

    async def _acquire(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        waiter: _Waiter | None = None
        try:
            if before is not None:
                with self._lock:
                    waiter = _Waiter()
                    self._queue.append(waiter)
                await self._announce(waiter, before)
            while True:
                with self._lock:
                    first = not self._queue or self._queue[0] is waiter
                    wait = self._take(self._clock()) if first else math.inf
                    if wait is None:
                        if waiter is not None:
                            self._queue.popleft()
                        self._wake_first()  # there may be a slot for the next one too
                        return
                    if waiter is None:
                        waiter = _Waiter()
                        self._queue.append(waiter)
                    waiter.event.clear()
                timeout = None if math.isinf(wait) else wait
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), timeout)
        except BaseException:
            if waiter is not None:
                with self._lock:
                    was_first = bool(self._queue) and self._queue[0] is waiter
                    with contextlib.suppress(ValueError):
                        self._queue.remove(waiter)
                    if was_first:
                        self._wake_first()
            raise

    def _release(self, ended: float | None) -> None:
        with self._lock:
            self._in_flight -= 1
            self._ended.append(self._clock() if ended is None else ended)
            self._wake_first()  # it can now tell when its slot frees
            for waiter in self._queue:
                if waiter.announcing:  # and so can these
                    waiter.wake()

    def slot(self, *, before: Callable[[], Awaitable[None]] | None = None) -> Slot:
        """``async with limiter.slot() as slot:`` waits for a slot, holds it while the request
        runs, and counts it for one window after it ends (however it ends), or after
        :meth:`Slot.answered` if the request said so.

        :param before: awaited once, before the slot is granted, when it is at most
            ``ANNOUNCE_LEAD_SECONDS`` away (at once if one is free): what must happen just
            before the request leaves. If it raises, no slot is taken.
        """
        return Slot(self, before)


class Slot:
    """A request's hold on its limiter (an async context manager: a plain class, as it wraps
    every request). The service has seen a request by the time it starts to answer, so a
    request that calls :meth:`answered` when the reply's status line arrives is counted until
    one window after that moment, not after the whole reply was read."""

    __slots__ = ("_before", "_limiter", "answered_at")

    def __init__(
        self, limiter: AccountLimiter, before: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._limiter = limiter
        self._before = before
        self.answered_at: float | None = None

    async def __aenter__(self) -> Slot:
        await self._limiter._acquire(self._before)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._limiter._release(self.answered_at)

    def answered(self) -> None:
        if self.answered_at is None:
            self.answered_at = self._limiter._clock()


_shared: dict[tuple[str, str], AccountLimiter] = {}
_shared_lock = threading.Lock()


def account_limiter(url: str, login: str, requests_per_second: float) -> AccountLimiter:
    """The one limiter of ``login`` at ``url`` in this process, shared by all its clients.

    When clients of one account ask for different rates, the account is held to the strictest
    asked so far (the shared limiter is tightened in place, for every client). Limiters are kept
    for the life of the process, so a client made later still sees the requests of the last
    second made by one that is gone.
    """
    requests, window = _shape(requests_per_second)
    with _shared_lock:
        limiter = _shared.get((url, login))
        if limiter is None:
            limiter = _shared[(url, login)] = AccountLimiter(requests_per_second)
        elif requests * limiter.window < limiter.max_requests * window:
            limiter.tighten(requests_per_second)
        return limiter


def forget_account_limiters() -> None:
    """Drop every shared limiter, so the next client of an account starts a fresh one. For test
    suites, where one sandbox's port may be another's a moment later."""
    with _shared_lock:
        _shared.clear()


__all__ = ["AccountLimiter", "account_limiter", "forget_account_limiters"]
