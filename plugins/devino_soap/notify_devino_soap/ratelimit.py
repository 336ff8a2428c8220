"""The request rate limit of one Devino account, shared by every client in the process.

Devino allows 10 requests per second per client and says nothing of how it counts. The strict
reading is a sliding window: no one-second window, wherever it starts, may hold more than N
requests. pyrate-limiter's in-memory bucket is exactly that (a sliding log of grant times), and
its ``try_acquire_async`` waits with ``asyncio.sleep`` under a per-loop lock, so waiters are
served in arrival order, a cancelled waiter takes no slot, and one bucket can be shared by
event loops in several threads (a :class:`~notify_devino.dispatcher.SyncDispatcher` beside an
async one).

The window is counted when a request is *granted*; the service counts when it *arrives*. A burst
whose first requests open new connections arrives spread out, and the next burst, on warm
connections, arrives closer together: measured against the sandbox's own arrival times, a 1.000 s
window let 11 to 14 requests into one second. The window is therefore ``1 s + guard`` (50 ms by
default), which measured 10 at most in every run, idle or with both cores busy. Should the
service still refuse one, the refusal is retried (it proves nothing was processed).

:func:`account_limiter` gives every client of the same account (endpoint URL and login) in the
process the same limiter, so two channels or two dispatchers on one account share its 10 per
second. The limiter's log is pruned as it is used, so no background thread or task is needed.
"""

from __future__ import annotations

import math
import threading

from pyrate_limiter import InMemoryBucket, Limiter, MonotonicClock, Rate, SingleBucketFactory

DEFAULT_GUARD = 0.05
"""Seconds added to the one-second window against jitter on the way to the service."""

_NAME = "devino"


def _rate(requests_per_second: float, guard: float) -> Rate:
    """``floor(rate)`` requests per ``1 s + guard`` for a rate of 1 or more (a one-second window
    never holds more than ``rate``), else one per ``1/rate s + guard``."""
    if not requests_per_second > 0 or math.isinf(requests_per_second):
        raise ValueError(f"rate must be a positive number, not {requests_per_second!r}")
    if guard < 0:
        raise ValueError("guard must not be negative")
    if requests_per_second >= 1:
        limit, window = math.floor(requests_per_second), 1.0
    else:
        limit, window = 1, 1.0 / requests_per_second
    return Rate(limit, math.ceil((window + guard) * 1000))


class AccountLimiter:
    """At most ``rate.limit`` grants in any ``rate.interval`` milliseconds.

    :param requests_per_second: the allowed rate.
    :param guard: seconds added to the window (see the module's docstring).
    """

    def __init__(self, requests_per_second: float, *, guard: float = DEFAULT_GUARD) -> None:
        self.rate = _rate(requests_per_second, guard)
        self._bucket = InMemoryBucket([self.rate])
        # No leak scheduling: that would start a thread per limiter. ``acquire`` prunes instead.
        self._limiter = Limiter(SingleBucketFactory(self._bucket, schedule_leak=False), buffer_ms=0)

    @property
    def max_requests(self) -> int:
        return self.rate.limit

    @property
    def window(self) -> float:
        """The counted window in seconds, guard included."""
        return self.rate.interval / 1000

    async def acquire(self) -> None:
        """Wait until a request may go, and count it."""
        if self._bucket.count() > 2 * self.rate.limit:
            self._bucket.leak(MonotonicClock().now())  # the bucket's own clock
        granted = await self._limiter.try_acquire_async(_NAME)
        if not granted:  # pragma: no cover - only for a weight above the limit, never 1
            raise RuntimeError("the rate limiter refused a request it can never admit")

    def tighten(self, rate: Rate) -> None:
        """Hold every later grant to ``rate`` (stricter than the current one)."""
        self._bucket.rates = [rate]
        self.rate = rate

    def __repr__(self) -> str:
        return f"<AccountLimiter {self.rate.limit} per {self.rate.interval} ms>"


_shared: dict[tuple[str, str], AccountLimiter] = {}
_shared_lock = threading.Lock()


def account_limiter(
    url: str, login: str, requests_per_second: float, *, guard: float = DEFAULT_GUARD
) -> AccountLimiter:
    """The one limiter of ``login`` at ``url`` in this process, shared by all its clients.

    When clients of one account ask for different rates, the account is held to the strictest
    asked so far (the shared limiter is tightened in place, for every client). Limiters are kept
    for the life of the process, so a client made later still sees the requests of the last
    second made by one that is gone.
    """
    wanted = _rate(requests_per_second, guard)
    with _shared_lock:
        limiter = _shared.get((url, login))
        if limiter is None:
            limiter = _shared[(url, login)] = AccountLimiter(requests_per_second, guard=guard)
        elif _stricter(wanted, limiter.rate):
            limiter.tighten(wanted)
        return limiter


def forget_account_limiters() -> None:
    """Drop every shared limiter, so the next client of an account starts a fresh one. For test
    suites, where one sandbox's port may be another's a moment later."""
    with _shared_lock:
        _shared.clear()


def _stricter(a: Rate, b: Rate) -> bool:
    """Whether ``a`` allows fewer requests per millisecond than ``b``, or as many per longer
    window (both guard a burst of the same size; the longer window spaces them more)."""
    return a.limit * b.interval < b.limit * a.interval or (
        a.limit == b.limit and a.interval > b.interval
    )


__all__ = ["DEFAULT_GUARD", "AccountLimiter", "account_limiter", "forget_account_limiters"]
