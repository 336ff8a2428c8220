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

When a request that was announced fails with an error that proves it was not processed (it
never left, or the provider refused it), the channel awaits :func:`returned`: its recipients
may wait again as if never sent (``claimed``), until the retry announces again. Each
announcement is counted until its request is given back, so a retry after an attempt that
*may* have been processed, or another request of the same send still out, keeps them
``sending``.

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

_listeners: ContextVar[tuple[Listener, Listener | None] | None] = ContextVar(
    "notify_devino_departure", default=None
)


async def departing() -> None:
    """Announce that a request carrying the current send's recipients is about to leave.

    :raises DepartureRefused: the caller could not record it; do not send.
    """
    listeners = _listeners.get()
    if listeners is not None:
        await listeners[0]()


async def returned() -> None:
    """Give back an announced request that was not processed (see the module's docstring).
    Never raises: at worst the recipients stay recorded as ``sending``."""
    listeners = _listeners.get()
    if listeners is not None and listeners[1] is not None:
        await listeners[1]()


@contextlib.contextmanager
def on_departure(listener: Listener, returned: Listener | None = None) -> Iterator[None]:
    """Have ``listener`` awaited at every :func:`departing`, and ``returned`` at every
    :func:`returned`, of the sends made in this block (in this task, and in the tasks it
    starts)."""
    token = _listeners.set((listener, returned))
    try:
        yield
    finally:
        _listeners.reset(token)


__all__ = ["DepartureRefused", "Listener", "departing", "on_departure", "returned"]
