"""Telling the caller of a send the moment its request leaves.

``notify-devino serve`` keeps a delivery ``claimed`` while its request waits (for the
account's rate-limit slot, a login, a connection) and commits it ``sending`` only when the
request is about to leave. A crash in between then finds it ``claimed`` and queues it again,
instead of marking it *unknown* (never resent under ``at_most_once``) though nothing went out.

Only the channel knows when that moment is. A channel type that declares
``ChannelType(..., announces_departure=True)`` awaits :func:`departing` once it may send (its
rate-limit slot granted) and before the first byte of each request that carries the
notification's recipients; a retry of a request that already left need not. With no caller
listening it returns at once, so the library's own sends pay nothing::

    async with self.limiter.slot():
        await departing()  # the caller records the send here
        reply = await self.post(request)

If the caller could not record it, :func:`departing` raises
:class:`~notify_devino.errors.DepartureRefused`: the request must not leave, and the plugin
lets the error through unchanged (it is not an outcome of the recipients). The caller treats
the first announcement as the departure of every recipient of the notification: a channel
that splits one notification into several requests announces before each, and the later ones
return at once.

For a channel type without the declaration, the service commits ``sending`` just before it
calls the channel's send, as it must when it cannot know better.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

from .errors import DepartureRefused

Listener = Callable[[], Awaitable[None]]
"""Awaited at each announcement; raises :class:`DepartureRefused` to keep the request back."""

_listener: ContextVar[Listener | None] = ContextVar("notify_devino_departure", default=None)


async def departing() -> None:
    """Announce that a request carrying the current send's recipients is about to leave.

    :raises DepartureRefused: the caller could not record it; do not send.
    """
    listener = _listener.get()
    if listener is not None:
        await listener()


@contextlib.contextmanager
def on_departure(listener: Listener) -> Iterator[None]:
    """Have ``listener`` awaited at every :func:`departing` of the sends made in this block
    (in this task, and in the tasks it starts)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


__all__ = ["DepartureRefused", "Listener", "departing", "on_departure"]
