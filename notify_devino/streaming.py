"""Streaming bulk sends: any number of recipients, cut into batches, sent with a bounded number
of batches in flight, each batch's result handed back as soon as it is known.

:meth:`notify_devino.dispatcher.Dispatcher.send_stream` is the public face; this module holds
the mechanics, which know nothing of channels: ``send`` is any coroutine function that sends
one batch and returns its :class:`~notify_devino.types.SendResult`.

Memory stays flat whatever the number of recipients: at most ``max_in_flight`` batches exist
at any moment, counting those whose result waits for the consumer (a slow consumer slows the
reading of recipients, it does not pile results up).

Nothing sent is lost and nothing is sent twice: a batch, once started, is never cancelled (its
outcome would become unknown to everyone). When the consumer stops early, when reading the
recipients fails, or when a batch raises, no new batch starts, the batches in flight run to
their end (the dispatcher logs each and tells the ``notify_after_send`` observers), their
results are still yielded where the consumer is listening, and the first error is raised last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
)
from typing import Any

from .types import SendResult

DEFAULT_BATCH_SIZE = 100
"""Recipients per batch for a channel type that declares no ``batch_size``."""

DEFAULT_MAX_IN_FLIGHT = 16
"""Batches started and not yet consumed, at most (enough to keep a 10-requests-per-second
limit busy with replies that take up to about a second)."""

Recipients = Iterable[str] | AsyncIterable[str]


async def batches(recipients: Recipients, size: int) -> AsyncIterator[list[str]]:
    """Cut ``recipients`` (sync or async) into lists of at most ``size``, in order."""
    if isinstance(recipients, str):
        raise TypeError("recipients must be an iterable of addresses, not one string")
    batch: list[str] = []
    if isinstance(recipients, AsyncIterable):
        async for recipient in recipients:
            batch.append(recipient)
            if len(batch) == size:
                yield batch
                batch = []
    else:
        for recipient in recipients:
            batch.append(recipient)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


async def stream_batches(
    send: Callable[[tuple[str, ...]], Coroutine[Any, Any, SendResult]],
    recipients: Recipients,
    *,
    batch_size: int,
    max_in_flight: int,
) -> AsyncGenerator[SendResult, None]:
    """Send ``recipients`` in batches with ``send``; yield each batch's result as it completes
    (completion order, not input order). See the module docstring for what happens on errors.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    if isinstance(recipients, str):
        raise TypeError("recipients must be an iterable of addresses, not one string")
    slots = asyncio.Semaphore(max_in_flight)
    done: asyncio.Queue[asyncio.Task[SendResult] | None] = asyncio.Queue()
    in_flight: set[asyncio.Task[SendResult]] = set()
    stopping = False

    def finished(task: asyncio.Task[SendResult]) -> None:
        in_flight.discard(task)
        done.put_nowait(task)

    async def feed() -> None:
        try:
            async for batch in batches(recipients, batch_size):
                await slots.acquire()
                if stopping:
                    return
                task = asyncio.create_task(send(tuple(batch)))
                in_flight.add(task)
                task.add_done_callback(finished)
        finally:
            done.put_nowait(None)  # the feeder is over, however it ended

    feeder = asyncio.create_task(feed())
    error: BaseException | None = None
    feeding = True
    try:
        while feeding or in_flight or not done.empty():
            task = await done.get()
            if task is None:
                feeding = False
                if not feeder.cancelled() and feeder.exception() is not None:
                    error = error or feeder.exception()
                continue
            slots.release()
            if task.cancelled():  # cancelled from outside: nobody here cancels a send
                error = error or asyncio.CancelledError()
            elif task.exception() is not None:
                error = error or task.exception()
            else:
                yield task.result()
                continue
            stopping = True
            feeder.cancel()
    finally:
        stopping = True
        feeder.cancel()
        if in_flight:
            # Never cancel a send that started: wait for it, whatever stops the stream.
            await asyncio.wait(set(in_flight))
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        while not done.empty():  # nobody listens any more: the dispatcher logged each result
            unread = done.get_nowait()
            if unread is not None and not unread.cancelled():
                unread.exception()
    if error is not None:
        raise error


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_IN_FLIGHT", "batches", "stream_batches"]
