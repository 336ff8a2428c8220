"""aiohttp's exceptions as notify-devino's transport errors, for every channel that speaks HTTP.

A channel wraps one HTTP exchange in :class:`transport_errors`; what aiohttp raises inside
becomes a :class:`~notify_devino.errors.TransportError` that says whether the request may have
reached the peer, which is what decides between *failed* and *unknown* for a send:

==========================================  ===============================================
what aiohttp raised                         error
==========================================  ===============================================
connect timed out (aiohttp >= 3.10)         RequestTimeoutError(request_sent=False)
any other timeout                           RequestTimeoutError(request_sent=True)
cannot connect (refused, DNS, TLS)          ConnectionFailedError(request_sent=False)
anything else (disconnect, reset, payload)  ConnectionFailedError(request_sent=True)
==========================================  ===============================================

Errors of notify-devino raised inside (a parse error, a refusal) pass through unchanged, and so
does ``asyncio.CancelledError``.

:func:`parse_retry_after` reads the ``Retry-After`` header of a refusal, for every channel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import aiohttp

from .errors import ConnectionFailedError, RequestTimeoutError, TransportError

# aiohttp >= 3.10 tells a connect timeout (nothing sent) from a read timeout.
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    getattr(aiohttp, name) for name in ("ConnectionTimeoutError",) if hasattr(aiohttp, name)
)


MAX_RETRY_AFTER_CHARS = 64
"""A ``Retry-After`` longer than this is garbage (an HTTP date has 29 characters)."""
MAX_RETRY_AFTER_SECONDS = 366 * 24 * 3600.0
"""The longest wait a ``Retry-After`` is read as; a longer one is read as this."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (RFC 9110, section 10.2.3).

    It is a whole number of seconds (ASCII digits) or an HTTP date, in any of the three forms
    the RFC accepts; a date without a zone (the ``asctime`` form) is GMT, a date already past
    means 0. Anything else (empty, negative, a fraction, other digits than ASCII, a date out of
    range, more than :data:`MAX_RETRY_AFTER_CHARS` characters) is None: the header is
    garbage, so the refusal says nothing of when to come back. Never raises, and never reads
    more than a bounded value: the result is at most :data:`MAX_RETRY_AFTER_SECONDS`.

    :param now: the moment to count a date from (default: the current time).
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_RETRY_AFTER_CHARS:
        return None
    if value.isascii() and value.isdigit():
        return min(float(int(value)), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def as_transport_error(
    exc: BaseException,
    *,
    what: str,
    host: str | None,
    timeout: float,
    channel: str | None = None,
) -> TransportError | None:
    """The transport error ``exc`` means, or None when it is not aiohttp's (or a timeout).

    :param what: the operation, as the error's ``operation`` and its message's start.
    :param channel: the channel, for the error's ``channel``.
    """
    about = {"channel": channel, "operation": what}
    if isinstance(exc, _CONNECT_TIMEOUT):
        return RequestTimeoutError(
            f"{what}: timed out connecting to {host}", request_sent=False, **about
        )
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and aiohttp.ServerTimeoutError
        return RequestTimeoutError(
            f"{what}: no reply within {timeout:g} s", request_sent=True, **about
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectionFailedError(
            f"{what}: cannot connect to {host}: {exc.os_error}", request_sent=False, **about
        )
    if isinstance(exc, aiohttp.ClientError):  # the request may have gone out
        return ConnectionFailedError(
            f"{what}: connection to {host} failed after sending: {type(exc).__name__}: {exc}",
            request_sent=True,
            **about,
        )
    return None


class transport_errors:
    """``with transport_errors(what="GetBalance", host=..., timeout=..., channel=...):`` around
    one HTTP exchange. A plain class: it wraps every request."""

    __slots__ = ("_channel", "_host", "_timeout", "_what")

    def __init__(
        self, *, what: str, host: str | None, timeout: float, channel: str | None = None
    ) -> None:
        self._what, self._host, self._timeout, self._channel = what, host, timeout, channel

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        error = as_transport_error(
            exc, what=self._what, host=self._host, timeout=self._timeout, channel=self._channel
        )
        if error is not None:
            raise error from exc
