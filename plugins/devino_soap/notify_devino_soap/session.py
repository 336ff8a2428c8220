"""The Devino session ID's lifecycle: fetched lazily, shared, renewed before it expires.

Every Devino operation but ``GetSessionID`` takes a session ID that lives 120 minutes. A
:class:`SessionKeeper` fetches one on first need and reuses it until ``lifetime - margin`` after
the login started; when many tasks need one at the same moment, one login is made and the others
wait for it (an ``asyncio.Lock`` single-flight; if that login fails, the tasks that waited for it
get its error instead of each trying again). When the service answers a call with a session fault,
:meth:`SessionKeeper.call` renews the ID and repeats the call: the fault proves the call was not
processed, so this is safe for a send too. One call logs in at most ``renewals`` times (2); when
a session shared by many tasks is expired, one of them logs in and the others take up its new
session, which does not count against theirs (a flaky provider expiring sessions early would
otherwise fail every task that was in flight). A service that refuses every session still
costs a call at most two logins and six runs.

The session ID is a credential: it is never logged and never put in an error message. Log
events say ``session="new"`` or ``session="renewed"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from notify_devino.errors import ChannelError, SessionExpiredError
from notify_devino.logconfig import get_logger, register_secret
from notify_devino.types import utc_now

log = get_logger(__name__)

T = TypeVar("T")

DEFAULT_LIFETIME = timedelta(minutes=120)
DEFAULT_MARGIN = timedelta(minutes=5)


class SessionKeeper:
    """Holds one session ID for one client.

    :param login: makes a fresh login and returns the new session ID (``GetSessionID``).
    :param lifetime: how long the service keeps a session.
    :param margin: how long before the end of its lifetime a session is replaced.
    :param clock: returns the current time as an aware UTC datetime.
    :param channel: the channel name, for log events.
    :param renewals: how many times one call may renew the session after a session fault.
    """

    def __init__(
        self,
        login: Callable[[], Awaitable[str]],
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
        margin: timedelta = DEFAULT_MARGIN,
        clock: Callable[[], datetime] = utc_now,
        channel: str | None = None,
        renewals: int = 2,
    ) -> None:
        if lifetime <= margin:
            raise ValueError("the session lifetime must be longer than the renewal margin")
        if renewals < 0:
            raise ValueError("renewals must not be negative")
        self.renewals = renewals
        self._login = login
        self._lifetime = lifetime
        self._margin = margin
        self._clock = clock
        self._channel = channel
        self._lock = asyncio.Lock()
        self._session_id: str | None = None
        self._valid_until: datetime | None = None
        self._finished = 0
        """How many logins ended (well or not): a waiter compares it to see whether one ran
        while it waited for the lock."""
        self._last_error: ChannelError | None = None
        self.logins = 0
        """How many logins succeeded (for tests and diagnostics)."""

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise TypeError("the session clock must return timezone-aware datetimes")
        return now

    def _current(self) -> str | None:
        if self._session_id is None or self._valid_until is None:
            return None
        if self._now() >= self._valid_until:
            return None
        return self._session_id

    @property
    def valid_until(self) -> datetime | None:
        """When the held session will be replaced; None when none is held."""
        return self._valid_until if self._session_id is not None else None

    def invalidate(self) -> None:
        """Forget the held session; the next call logs in again."""
        self._session_id = None
        self._valid_until = None

    async def get(self) -> str:
        """The session ID to use now, logging in if none is held or it is about to expire."""
        current = self._current()
        if current is not None:
            return current
        session_id, _ = await self._fetch(stale=None)
        return session_id

    async def _fetch(self, *, stale: str | None) -> tuple[str, bool]:
        """A session other than ``stale``, and whether this task logged in for it."""
        seen = self._finished
        async with self._lock:
            current = self._current()
            if current is not None and current != stale:
                return current, False  # another task logged in while this one waited
            if self._finished != seen and self._last_error is not None:
                raise self._last_error  # the login this task waited for failed: share its error
            reason = "renewed" if stale is not None else "expired" if self._session_id else "new"
            self._last_error = None
            self.invalidate()
            started = self._now()
            try:
                session_id = await self._login()
            except ChannelError as exc:
                self._last_error = exc
                log.warning(
                    "session_login_failed",
                    channel=self._channel,
                    session=reason,
                    error=type(exc).__name__,
                )
                raise
            finally:
                self._finished += 1
            register_secret(session_id)  # masked in any log line, should one ever carry it
            self._session_id = session_id
            self._valid_until = started + self._lifetime - self._margin
            self.logins += 1
            log.info(
                "session_started",
                channel=self._channel,
                session=reason,
                valid_until=self._valid_until.isoformat(),
            )
            return session_id, True

    async def call(self, operation: Callable[[str], Awaitable[T]]) -> T:
        """Run ``operation(session_id)``; on a session fault renew the session and run it
        again. A call logs in itself at most :attr:`renewals` times; taking up a session
        another task has just fetched does not count, though a call never runs more than
        ``2 * (renewals + 1)`` times. The last session fault propagates."""
        session_id = await self.get()
        renewals = 0
        runs = 0
        while True:
            runs += 1
            try:
                return await operation(session_id)
            except SessionExpiredError:
                if renewals >= self.renewals or runs >= 2 * (self.renewals + 1):
                    raise
                log.info("session_rejected", channel=self._channel, session="renewing")
                session_id, logged_in = await self._fetch(stale=session_id)
                renewals += logged_in


__all__ = ["DEFAULT_LIFETIME", "DEFAULT_MARGIN", "SessionKeeper"]
