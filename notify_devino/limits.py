"""The seam for request rate limits a channel may be given instead of its own.

A provider channel keeps its account's rate limit with a limiter of its own, in the process
(the Devino channel's counts a request until one second after its answer began). When several
processes share one account (``notify-devino serve`` instances on one PostgreSQL store), the
limit must be counted where they all see it: the service then hands the dispatcher a
:data:`LimiterFactory`, the dispatcher hands it to each channel in its
:class:`~notify_devino.hookspecs.ChannelContext`, and a channel that supports it asks the
factory for its account's limiter instead of making its own. A channel that does not keep
its own limit ignores it; the core never names a channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable


@runtime_checkable
class RequestSlot(Protocol):
    """A request's hold on a limiter, while the request runs."""

    def answered(self) -> None:
        """The provider's answer began (its status line arrived): the request was seen."""


ANNOUNCE_LEAD_SECONDS = 0.3
"""How long before its slot is granted a request's ``before`` may run (see
:meth:`RateLimiter.slot`): long enough for the outbox to commit that a send is leaving while
the request still waits, short enough that a crash in between leaves little marked ``sending``
that never left."""


@runtime_checkable
class RateLimiter(Protocol):
    """Lets requests go at the account's rate: ``async with limiter.slot() as slot:`` waits
    for a slot and holds it while the request runs (and for as long after as the limiter's
    rule says).

    ``slot(before=f)`` also awaits ``f()`` once before the block runs: when the slot is at most
    :data:`ANNOUNCE_LEAD_SECONDS` away (or, for a limiter that cannot tell, just after it is
    granted). A request announces its departure there (:mod:`notify_devino.departure`), so the
    caller's record of it overlaps the wait. If ``f`` raises, the error propagates and the
    block does not run.
    """

    def slot(
        self, *, before: Callable[[], Awaitable[None]] | None = None
    ) -> AbstractAsyncContextManager[RequestSlot]: ...


LimiterFactory = Callable[[str, float], RateLimiter]
"""``factory(account, requests_per_second)``: the limiter of one provider account (a key the
channel makes from its endpoint and login, so every channel of one account gets the same
limiter). The first rate asked for an account is kept unless a later one is stricter."""


__all__ = ["ANNOUNCE_LEAD_SECONDS", "LimiterFactory", "RateLimiter", "RequestSlot"]
