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
"""

from __future__ import annotations

from types import TracebackType

import aiohttp

from .errors import ConnectionFailedError, RequestTimeoutError, TransportError

# aiohttp >= 3.10 tells a connect timeout (nothing sent) from a read timeout.
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    getattr(aiohttp, name) for name in ("ConnectionTimeoutError",) if hasattr(aiohttp, name)
)


def as_transport_error(
    exc: BaseException, *, what: str, host: str | None, timeout: float
) -> TransportError | None:
    """The transport error ``exc`` means, or None when it is not aiohttp's (or a timeout)."""
    if isinstance(exc, _CONNECT_TIMEOUT):
        return RequestTimeoutError(f"{what}: timed out connecting to {host}", request_sent=False)
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and aiohttp.ServerTimeoutError
        return RequestTimeoutError(f"{what}: no reply within {timeout:g} s", request_sent=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectionFailedError(
            f"{what}: cannot connect to {host}: {exc.os_error}", request_sent=False
        )
    if isinstance(exc, aiohttp.ClientError):  # the request may have gone out
        return ConnectionFailedError(
            f"{what}: connection to {host} failed after sending: {type(exc).__name__}: {exc}",
            request_sent=True,
        )
    return None


class transport_errors:
    """``with transport_errors(what="GetBalance", host=..., timeout=...):`` around one HTTP
    exchange. A plain class: it wraps every request."""

    __slots__ = ("_host", "_timeout", "_what")

    def __init__(self, *, what: str, host: str | None, timeout: float) -> None:
        self._what, self._host, self._timeout = what, host, timeout

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
        error = as_transport_error(exc, what=self._what, host=self._host, timeout=self._timeout)
        if error is not None:
            raise error from exc
