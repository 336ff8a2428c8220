"""The dispatcher: the one object a service talks to.

::

    async with Dispatcher.from_file("notify-devino.yaml") as dispatcher:
        result = await dispatcher.send("Disk full on db-1", to=["+79031234567"])
        statuses = await dispatcher.wait(result.message_ids)

It owns one aiohttp session for all its channels, creates and starts the configured channels
through their plugins, routes every operation through the hooks of the channel's own plugin,
and tells observers what happened. :class:`SyncDispatcher` is the same for code that is not
async.

A dispatcher lives once: ``new`` -> ``starting`` -> ``running`` -> ``closing`` -> ``closed``
(:class:`DispatcherState`). It runs in the event loop it was started in and refuses, before
anything is sent, to be used from another loop, before it started, once it began to close, or
to start again. Closing stops the streams whose consumer went away, waits for every operation
in flight (each is bounded by its channel's timeouts) and reports their results as usual, then
closes the channels and the session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import os
import threading
import types
import weakref
from collections.abc import (
    AsyncGenerator,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from . import routing
from .config import Config, load_config
from .errors import ConfigError, DispatcherStateError, UnknownChannelError
from .hookspecs import Channel, ChannelContext, ChannelType
from .limits import LimiterFactory
from .logconfig import get_logger
from .plugins import ChannelHooks, PluginManager
from .recent import RecentDict
from .streaming import DEFAULT_BATCH_SIZE, DEFAULT_MAX_IN_FLIGHT, Recipients, stream_batches
from .types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    NotifyResult,
    SendResult,
    Statistics,
    StatusChange,
    utc_now,
)

log = get_logger(__name__)

T = TypeVar("T")


class DispatcherState(enum.StrEnum):
    """Where a dispatcher is in its one life."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class Dispatcher:
    """Sends notifications and follows them, over the channels a :class:`Config` names.

    :param config: the validated configuration.
    :param plugins: the plugin manager to use; by default a new one that autoloads entry points.
    :param session: an aiohttp session to use instead of creating one; the dispatcher will not
        close a session it did not create.
    :param track_messages: how many message IDs the dispatcher remembers, most recent first:
        which channel sent each (so :meth:`status` finds it without ``channel=``) and the last
        status read for each (so observers hear of changes only). Older IDs are forgotten, so a
        long-running service sending millions keeps flat memory; for a forgotten ID pass
        ``channel=`` (with several channels), and a status read for it counts as a first read.
        0 remembers nothing.
    :param limiters: rate limiters of provider accounts for the channels to use instead of
        their own (see :mod:`notify_devino.limits`); the service passes shared ones.
    """

    def __init__(
        self,
        config: Config,
        *,
        plugins: PluginManager | None = None,
        session: aiohttp.ClientSession | None = None,
        track_messages: int = 10_000,
        limiters: LimiterFactory | None = None,
    ) -> None:
        self.config = config
        self._limiters = limiters
        self.plugins = plugins if plugins is not None else PluginManager()
        self._session = session
        self._owns_session = session is None
        self._channels: dict[str, Channel] = {}
        self._channel_of_message: RecentDict[str, str] = RecentDict(track_messages)
        self._last_status: RecentDict[str, MessageStatus] = RecentDict(track_messages)
        self._state = DispatcherState.NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._streams: weakref.WeakSet[types.AsyncGeneratorType[SendResult, None]] = (
            weakref.WeakSet()
        )
        # Fail at construction, before any I/O, when config names a channel no plugin provides.
        self._types = self._resolve_types()
        self._hooks: dict[str, ChannelHooks] = {
            name: self.plugins.channel_hooks(spec.name) for name, spec in self._types.items()
        }

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Self:
        """A dispatcher for the configuration file at ``path``."""
        return cls(load_config(path, env=env), **kwargs)

    def _resolve_types(self) -> dict[str, ChannelType]:
        known = self.plugins.channel_types()
        resolved = {}
        for name, channel in self.config.channels.items():
            spec = known.get(channel.type)
            if spec is None:
                available = ", ".join(sorted(known)) or "none: no channel plugin is installed"
                raise ConfigError(
                    f"channel {name!r} has type {channel.type!r}, which no installed plugin "
                    f"provides (available types: {available})",
                    path=f"channels.{name}.type",
                    line=self.config.line_of(("channels", name, "type")),
                    source=self.config.source,
                )
            resolved[name] = spec
        return resolved

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def state(self) -> DispatcherState:
        """Where the dispatcher is in its life."""
        return self._state

    async def start(self) -> None:
        """Validate every channel's settings, create the channels and start them.

        :raises DispatcherStateError: the dispatcher was started before (a closed dispatcher
            does not start again: make a new one).
        """
        if self._state is not DispatcherState.NEW:
            raise DispatcherStateError(
                f"this dispatcher is {self._state.value}: a dispatcher starts once; "
                "make a new Dispatcher",
                state=self._state.value,
            )
        self._state = DispatcherState.STARTING
        self._loop = asyncio.get_running_loop()
        try:
            settings = {
                name: self.config.channel_settings(name, spec.settings_model)
                for name, spec in self._types.items()
            }
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    headers={"User-Agent": "notify-devino"}, raise_for_status=False
                )
            for name, spec in self._types.items():
                channel = spec.factory(
                    ChannelContext(name=name, session=self._session, limiters=self._limiters),
                    settings[name],
                )
                self._channels[name] = channel
                await channel.start()
                log.debug("channel_started", channel=name, type=spec.name)
        except BaseException:
            await self._close()
            raise
        self._state = DispatcherState.RUNNING
        self.plugins.dispatcher_started(self)

    async def aclose(self) -> None:
        """Stop, let what is in flight finish, then close every channel and the session (if the
        dispatcher created it). Idempotent; a second caller waits for the first to finish.

        Streams (:meth:`send_stream`) whose consumer is not iterating start no new batch; the
        sends already started run to their end (each bounded by its channel's timeouts), and
        each is logged and told to the ``notify_after_send`` observers like any send. New
        operations are refused from the moment closing begins.
        """
        if self._state is DispatcherState.CLOSED:
            return
        if self._state is DispatcherState.CLOSING:
            await self._closed.wait()
            return
        if self._state is DispatcherState.NEW:
            self._state = DispatcherState.CLOSED
            self._closed.set()
            return
        self._refuse_other_loop()
        await self._close()

    async def _close(self) -> None:
        was_running = self._state is DispatcherState.RUNNING
        self._state = DispatcherState.CLOSING
        try:
            if was_running:
                self.plugins.dispatcher_closing(self)
            for stream in list(self._streams):
                if not stream.ag_running:  # its consumer went away: stop it, let it finish
                    await stream.aclose()
            await self._idle.wait()
        finally:
            for name, channel in reversed(self._channels.items()):
                try:
                    await channel.aclose()
                except Exception as exc:
                    log.error(
                        "channel_close_failed",
                        channel=name,
                        error=f"{type(exc).__name__}: {exc}",
                    )
            self._channels.clear()
            if self._owns_session and self._session is not None:
                await self._session.close()
            self._state = DispatcherState.CLOSED
            self._closed.set()

    def _refuse_other_loop(self) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            raise DispatcherStateError(
                "this dispatcher runs in another event loop (the one it was started in): a "
                "dispatcher, its session and its channels belong to one loop; start one "
                "Dispatcher per loop, or use SyncDispatcher from threads",
                state=self._state.value,
            )

    def _refuse_unless_running(self) -> None:
        if self._state is not DispatcherState.RUNNING:
            raise DispatcherStateError(
                f"the dispatcher is {self._state.value}, not running: use "
                "'async with Dispatcher(...)', and no operation once it is closing",
                state=self._state.value,
            )
        self._refuse_other_loop()

    def _operation(self) -> _InFlight:
        """``with self._operation():`` around an operation's hook call: refused unless the
        dispatcher runs in this loop, and counted in flight so closing waits for it."""
        self._refuse_unless_running()
        return _InFlight(self)

    # -- channels --------------------------------------------------------------------------------

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The running channels by configured name."""
        return dict(self._channels)

    def channel(self, name: str | None = None) -> Channel:
        """The running channel ``name``, or the default channel.

        :raises UnknownChannelError: no channel has that name, or none is given and none is
            the default.
        :raises DispatcherStateError: the dispatcher is not running.
        """
        if self._state is not DispatcherState.RUNNING:
            raise DispatcherStateError(
                f"the dispatcher is {self._state.value}, not running: use "
                "'async with Dispatcher(...)'",
                state=self._state.value,
            )
        name = name or self.config.default_channel
        configured = "one of " + ", ".join(sorted(self._channels))
        if name is None:
            raise UnknownChannelError(
                "several channels are configured and none is the default: pass channel= or set "
                "default_channel in the configuration",
                value=None,
                expected=configured,
            )
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannelError(
                f"no channel named {name!r}", value=name, expected=configured
            ) from None

    # -- operations ------------------------------------------------------------------------------

    async def send(
        self,
        notification: Notification | str,
        *,
        to: Iterable[str] | str | None = None,
        channel: str | None = None,
        **fields: Any,
    ) -> SendResult:
        """Send a notification; returns one result per recipient (accepted, failed or unknown).

        ``dispatcher.send("text", to=[...], sender="ALERTS")`` builds the :class:`Notification`
        for you; the keyword fields are those of :class:`Notification`.
        """
        if isinstance(notification, str):
            recipients = (to,) if isinstance(to, str) else tuple(to or ())
            notification = Notification(
                text=notification, recipients=recipients, channel=channel, **fields
            )
        elif to is not None or fields:
            raise TypeError("pass either a Notification or text with to= and fields, not both")
        target = self.channel(channel or notification.channel)
        started = asyncio.get_running_loop().time()
        with self._operation():
            result = await self._hooks[target.name].send(target, notification)
        for recipient in result.recipients:
            for message_id in recipient.message_ids:
                self._channel_of_message[message_id] = target.name
        log.info(
            "notification_sent",
            channel=target.name,
            recipients=len(result.recipients),
            accepted=len(result.accepted),
            failed=len(result.failed),
            unknown=len(result.unknown),
            message_ids=list(result.message_ids),
            elapsed_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
        )
        self.plugins.after_send(result)
        return result

    def send_stream(
        self,
        text: str,
        recipients: Recipients,
        *,
        channel: str | None = None,
        batch_size: int | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        **fields: Any,
    ) -> AsyncGenerator[SendResult, None]:
        """Send ``text`` to any number of recipients, in batches; yield each batch's result.

        ::

            async for batch in dispatcher.send_stream("Maintenance at 22:00", numbers):
                for r in batch.recipients:
                    ...  # accepted / failed / unknown, as for send()

        :param recipients: any iterable or async iterable of addresses (a list, a generator,
            lines of a file); read as batches are needed, never all at once.
        :param batch_size: recipients per send; default the channel type's ``batch_size``
            (Devino: 1000, one request), else 100.
        :param max_in_flight: batches started and not yet consumed, at most. The channel's
            own rate limit paces the requests; this bounds memory.
        :param fields: the other fields of :class:`Notification` (``sender``, ``send_at``,
            ``recipient_local_time``, ``validity``, ``metadata``).

        Results come in completion order. Memory does not grow with the number of recipients.
        A number given twice in one batch is sent once; in two batches, twice (the stream keeps
        no list of the numbers it has seen). A batch that started is never cancelled: when the
        consumer stops early or an error stops the stream, the batches in flight finish (each
        is logged and told to the ``notify_after_send`` observers as every send is), their
        results are yielded, and the first error is raised after them. When the dispatcher
        closes while the stream's consumer is away (its loop body raised inside
        ``async with Dispatcher``), no batch starts and the batches in flight finish first.
        """
        stream: types.AsyncGeneratorType[SendResult, None] = self._send_stream(  # type: ignore[assignment]
            text,
            recipients,
            channel=channel,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            fields=fields,
        )
        self._streams.add(stream)
        return stream

    async def _send_stream(
        self,
        text: str,
        recipients: Recipients,
        *,
        channel: str | None,
        batch_size: int | None,
        max_in_flight: int,
        fields: Mapping[str, Any],
    ) -> AsyncGenerator[SendResult, None]:
        target = self.channel(channel)
        name = target.name
        size = batch_size or self._types[name].batch_size or DEFAULT_BATCH_SIZE

        async def send_batch(batch: tuple[str, ...]) -> SendResult:
            return await self.send(
                Notification(text=text, recipients=batch, channel=name, **fields)
            )

        stream = stream_batches(
            send_batch, recipients, batch_size=size, max_in_flight=max_in_flight
        )
        async with contextlib.aclosing(stream):  # closed with this generator, not by the GC
            async for result in stream:
                yield result

    def _channel_for(self, message_ids: Sequence[str], channel: str | None) -> Channel:
        if channel is None:
            names = {self._channel_of_message.get(i) for i in message_ids} - {None}
            if len(names) > 1:
                raise UnknownChannelError(
                    "the message IDs belong to several channels "
                    f"({', '.join(sorted(map(str, names)))}): "
                    "ask one channel at a time",
                    value=None,
                    expected="channel= naming one of them",
                )
            channel = names.pop() if names else None
        return self.channel(channel)

    async def status(
        self, message_ids: Sequence[str] | str, *, channel: str | None = None
    ) -> list[MessageStatus]:
        """The current status of each message ID, in order. Observers hear of every change."""
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        if not ids:
            return []
        target = self._channel_for(ids, channel)
        with self._operation():
            statuses = list(await self._hooks[target.name].status(target, ids))
        for status in statuses:
            previous = self._last_status.get(status.message_id)
            if previous is None or (previous.code, previous.state) != (status.code, status.state):
                self._last_status[status.message_id] = status
                log.info(
                    "message_status_changed",
                    channel=target.name,
                    message_id=status.message_id,
                    state=status.state.value,
                    code=status.code,
                    final=status.final,
                )
                self.plugins.status_changed(StatusChange(status=status, previous=previous))
        return statuses

    async def wait(
        self,
        message_ids: Sequence[str] | str,
        *,
        channel: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a polling deadline, not one await's
        interval: float | None = None,
    ) -> list[MessageStatus]:
        """Poll until every message is in a final state, or ``timeout`` seconds pass.

        :return: the last status of each ID; on timeout some are not ``final``. Check them.
        """
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        timeout = self.config.status.wait_timeout_seconds if timeout is None else timeout
        interval = self.config.status.poll_interval_seconds if interval is None else interval
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        latest: dict[str, MessageStatus] = {}
        pending = list(dict.fromkeys(ids))
        while True:
            for status in await self.status(pending, channel=channel):
                latest[status.message_id] = status
            pending = [i for i in pending if not latest[i].final]
            if not pending or loop.time() + interval > deadline:
                break
            await asyncio.sleep(interval)
        if pending:
            log.warning("wait_timed_out", pending=pending, timeout_s=timeout)
        return [latest[i] for i in ids]

    async def inbox(
        self,
        *,
        since: datetime | timedelta = timedelta(days=1),
        until: datetime | None = None,
        channel: str | None = None,
    ) -> list[InboundMessage]:
        """Messages received between ``since`` (a moment, or a span before now) and ``until``."""
        until = until or utc_now()
        start = until - since if isinstance(since, timedelta) else since
        for moment in (start, until):
            if moment.tzinfo is None:
                raise ValueError("inbox times must be timezone-aware")
        target = self.channel(channel)
        with self._operation():
            messages = list(await self._hooks[target.name].inbox(target, start, until))
        for message in messages:
            self.plugins.inbound_message(message)
        return messages

    async def balance(self, *, channel: str | None = None) -> Balance:
        target = self.channel(channel)
        with self._operation():
            return await self._hooks[target.name].balance(target)

    async def estimate(
        self, text: str, *, recipients: int = 1, channel: str | None = None
    ) -> Estimate:
        """What sending ``text`` to ``recipients`` recipients over a channel would take and cost
        (SMS parts, encoding, price where the channel knows its tariff). Nothing is sent."""
        if recipients < 1:
            raise ValueError("recipients must be at least 1")
        target = self.channel(channel)
        with self._operation():
            return await self._hooks[target.name].estimate(target, text, recipients)

    async def statistics(
        self, start: datetime, end: datetime | None = None, *, channel: str | None = None
    ) -> Statistics:
        end = end or utc_now()
        for moment in (start, end):
            if moment.tzinfo is None:
                raise ValueError("statistics times must be timezone-aware")
        target = self.channel(channel)
        with self._operation():
            return await self._hooks[target.name].statistics(target, start, end)

    # -- routed notifications (contacts, groups and routes of the configuration) -----------------

    async def notify(
        self,
        text: str,
        *,
        to: Iterable[str] | str,
        severity: str | None = None,
        tags: Iterable[str] = (),
        route: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> NotifyResult:
        """Send ``text`` to people along a route, falling back from channel to channel.

        ``to`` names contacts and groups of the configuration. The route is ``route`` if given,
        else the first route whose ``match`` fits ``severity`` and ``tags``, else the default
        channel alone. Each contact gets the message on the route's first channel it has an
        address for; when that send fails, or the message is not delivered within the route's
        ``fallback_after_seconds``, the next channel is tried. It returns when every contact's
        chain has ended. See :mod:`notify_devino.routing`.

        :return: per contact, the channel that carried the message and every channel tried.
        :raises InvalidInputError: a name is neither a contact nor a group, or ``route`` names
            no route. Nothing was sent.
        """
        return await routing.deliver(
            self, text, to=to, severity=severity, tags=tags, route=route, metadata=metadata
        )


class _InFlight:
    """Counts one operation in flight on a dispatcher. A plain class: it wraps every call."""

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def __enter__(self) -> None:
        self._dispatcher._in_flight += 1
        self._dispatcher._idle.clear()

    def __exit__(self, *exc: object) -> None:
        self._dispatcher._in_flight -= 1
        if not self._dispatcher._in_flight:
            self._dispatcher._idle.set()


class SyncDispatcher:
    """A :class:`Dispatcher` for code that is not async::

        with SyncDispatcher.from_file("notify-devino.yaml") as d:
            result = d.send("Disk full on db-1", to=["+79031234567"])

    It runs the dispatcher in an event loop of its own, on a thread of its own, and any number
    of threads may call it at once: each call is handed to that loop and runs there
    concurrently with the others (a channel's own limits pace them), and each caller gets its
    own result. It refuses to be called from inside a running event loop (use
    :class:`Dispatcher` there) and once it is closed.
    """

    def __init__(self, config: Config, **kwargs: Any) -> None:
        self._config, self._kwargs = config, kwargs
        self._dispatcher: Dispatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Self:
        return cls(load_config(path, env=env), **kwargs)

    def __enter__(self) -> Self:
        if self._thread is not None:
            raise DispatcherStateError(
                "this SyncDispatcher was entered before: make a new one", state="closed"
            )
        self._refuse_inside_a_loop()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="notify-devino-dispatcher", daemon=True
        )
        self._thread.start()

        async def start() -> Dispatcher:
            dispatcher = Dispatcher(self._config, **self._kwargs)
            await dispatcher.start()
            return dispatcher

        try:
            self._dispatcher = self._run(start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:  # what asyncio.Runner.close does: nothing is left pending
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    @staticmethod
    def _refuse_inside_a_loop() -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise DispatcherStateError(
            "SyncDispatcher blocks its caller, so it cannot be used inside a running event "
            "loop: use Dispatcher there",
            state="running",
        )

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the dispatcher's loop and wait for its result."""
        try:
            loop = self._loop
            if loop is None:
                raise DispatcherStateError(
                    "the SyncDispatcher is not open: use 'with SyncDispatcher(...) as d:'",
                    state="closed" if self._thread is not None else "new",
                )
            if threading.current_thread() is self._thread:
                raise DispatcherStateError(
                    "the SyncDispatcher was called from its own event loop (an observer "
                    "hook?): it would wait for itself",
                    state="running",
                )
            self._refuse_inside_a_loop()
            try:
                future = asyncio.run_coroutine_threadsafe(coroutine, loop)
            except RuntimeError:  # the loop closed meanwhile
                raise DispatcherStateError("the SyncDispatcher is closed", state="closed") from None
        except BaseException:
            coroutine.close()
            raise
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise DispatcherStateError(
                "the SyncDispatcher closed before this call finished", state="closed"
            ) from None

    def close(self) -> None:
        """Close the dispatcher (waiting for what other threads have in flight), then stop
        its loop. Idempotent."""
        if self._loop is None:
            return
        try:
            if self._dispatcher is not None:
                self._run(self._dispatcher.aclose())
        finally:
            self._stop_loop()

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise DispatcherStateError("use 'with SyncDispatcher(...) as d:'", state="new")
        return self._dispatcher

    def send(self, notification: Notification | str, **kwargs: Any) -> SendResult:
        return self._run(self.dispatcher.send(notification, **kwargs))

    def send_stream(
        self, text: str, recipients: Iterable[str], **kwargs: Any
    ) -> Iterator[SendResult]:
        """:meth:`Dispatcher.send_stream` for code that is not async (a plain iterable)."""
        dispatcher = self.dispatcher

        async def open_stream() -> AsyncGenerator[SendResult, None]:
            return dispatcher.send_stream(text, recipients, **kwargs)

        stream = self._run(open_stream())

        async def step() -> SendResult:
            return await anext(stream)

        try:
            while True:
                try:
                    yield self._run(step())
                except StopAsyncIteration:
                    return
        finally:
            if self._loop is not None:
                self._run(stream.aclose())

    def status(self, message_ids: Sequence[str] | str, **kwargs: Any) -> list[MessageStatus]:
        return self._run(self.dispatcher.status(message_ids, **kwargs))

    def wait(self, message_ids: Sequence[str] | str, **kwargs: Any) -> list[MessageStatus]:
        return self._run(self.dispatcher.wait(message_ids, **kwargs))

    def inbox(self, **kwargs: Any) -> list[InboundMessage]:
        return self._run(self.dispatcher.inbox(**kwargs))

    def balance(self, **kwargs: Any) -> Balance:
        return self._run(self.dispatcher.balance(**kwargs))

    def estimate(self, text: str, **kwargs: Any) -> Estimate:
        return self._run(self.dispatcher.estimate(text, **kwargs))

    def statistics(self, start: datetime, end: datetime | None = None, **kwargs: Any) -> Statistics:
        return self._run(self.dispatcher.statistics(start, end, **kwargs))

    def notify(self, text: str, **kwargs: Any) -> NotifyResult:
        return self._run(self.dispatcher.notify(text, **kwargs))


__all__ = ["Dispatcher", "DispatcherState", "SyncDispatcher"]
