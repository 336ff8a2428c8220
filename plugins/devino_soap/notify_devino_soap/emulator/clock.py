"""Clocks for the sandbox: the real one, and a manual one tests move by hand.

Every time the sandbox reasons about (message states, session expiry, scheduled sends) comes
from one injected clock, so a test can walk a message through its whole life, or past the
120-minute session lifetime, without waiting. The rate limit is the one exception: it is
measured in real time with :func:`time.monotonic`, because it protects the real process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the clock needs an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class ManualClock:
    """A clock that stands still until told to move.

    :param start: the starting moment (aware). None starts at the current wall-clock time,
        cut to whole seconds, so requests built from ``datetime.now()`` still make sense.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        self._now = _as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never backward) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a clock only advances; got {delta}")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to ``moment`` (aware; may be earlier, for tests that need it)."""
        self._now = _as_utc(moment)
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
