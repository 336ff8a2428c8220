"""The dispatcher's own mechanics, with a channel plugin defined in the test suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import structlog

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher, SyncDispatcher
from notify_devino.errors import UnknownChannelError, UnsupportedOperationError
from notify_devino.plugins import PluginManager
from notify_devino.types import (
    DeliveryState,
    InboundMessage,
    Notification,
    SendOutcome,
    SendResult,
    StatusChange,
)
from notify_devino_memory import MemoryChannel, MemoryPlugin


class Recorder:
    """A host system's plugin object: it observes, and owns no channel."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @hookimpl
    def notify_dispatcher_started(self, dispatcher: Dispatcher) -> None:
        self.events.append(("started", dispatcher))

    @hookimpl
    def notify_dispatcher_closing(self, dispatcher: Dispatcher) -> None:
        self.events.append(("closing", dispatcher))

    @hookimpl
    def notify_after_send(self, result: SendResult) -> None:
        self.events.append(("sent", result))

    @hookimpl
    def notify_status_changed(self, change: StatusChange) -> None:
        self.events.append(("status", change))

    @hookimpl
    def notify_inbound_message(self, message: InboundMessage) -> None:
        self.events.append(("inbound", message))


class Broken:
    @hookimpl
    def notify_after_send(self, result: SendResult) -> None:
        raise RuntimeError("observer bug")


@pytest.fixture
def config(notify_config) -> Config:  # type: ignore[no-untyped-def]
    return notify_config(
        {"a": {"type": "memory", "settings": {"fail_for": ["bad"]}}, "b": {"type": "memory"}},
        default_channel="a",
    )


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    return notify_plugin_manager


async def test_lifecycle_starts_and_closes_every_channel_and_tells_observers(
    config: Config, plugins: PluginManager
) -> None:
    recorder = Recorder()
    plugins.register(recorder)
    async with Dispatcher(config, plugins=plugins) as dispatcher:
        channels = dict(dispatcher.channels)
        assert set(channels) == {"a", "b"}
        assert all(
            isinstance(c, MemoryChannel) and c.events == ["start"] for c in channels.values()
        )
    assert all(c.events == ["start", "close"] for c in channels.values())  # type: ignore[attr-defined]
    assert [e for e, _ in recorder.events] == ["started", "closing"]
    with pytest.raises(RuntimeError, match="not running"):
        dispatcher.channel()


async def test_send_routes_to_the_default_or_named_channel_and_observers_see_it(
    config: Config, plugins: PluginManager
) -> None:
    recorder = Recorder()
    plugins.register(recorder)
    plugins.register(Broken())
    with structlog.testing.capture_logs() as logs:
        async with Dispatcher(config, plugins=plugins) as dispatcher:
            first = await dispatcher.send("hello", to=["x", "bad"])
            second = await dispatcher.send(Notification("hi", ("y",), channel="b"))
            a, b = dispatcher.channel("a"), dispatcher.channel("b")
            assert [n.text for n in a.sent] == ["hello"]  # type: ignore[attr-defined]
            assert [n.text for n in b.sent] == ["hi"]  # type: ignore[attr-defined]
    assert [r.outcome for r in first.recipients] == [SendOutcome.ACCEPTED, SendOutcome.FAILED]
    assert (first.channel, second.channel) == ("a", "b")
    assert [r for e, r in recorder.events if e == "sent"] == [first, second]
    # the broken observer was logged, and changed nothing
    assert any(e["event"] == "observer_failed" and "observer bug" in e["error"] for e in logs)


async def test_status_changes_are_reported_once_per_change_and_wait_stops_at_final(
    config: Config, plugins: PluginManager
) -> None:
    recorder = Recorder()
    plugins.register(recorder)
    async with Dispatcher(config, plugins=plugins) as dispatcher:
        result = await dispatcher.send("hello", to=["x"], channel="b")
        statuses = await dispatcher.wait(result.message_ids, interval=0.01, timeout=5)
    assert [s.state for s in statuses] == [DeliveryState.DELIVERED]
    changes = [c for e, c in recorder.events if e == "status"]
    # polled three times (sent, sent, delivered): two changes, the repeat is not reported
    assert [(c.previous.state if c.previous else None, c.status.state) for c in changes] == [  # type: ignore[union-attr]
        (None, DeliveryState.SENT),
        (DeliveryState.SENT, DeliveryState.DELIVERED),
    ]


async def test_wait_gives_up_after_its_timeout_and_says_what_is_not_final(
    config: Config, plugins: PluginManager
) -> None:
    async with Dispatcher(config, plugins=plugins) as dispatcher:
        result = await dispatcher.send("hello", to=["x"])
        statuses = await dispatcher.wait(result.message_ids, interval=0.05, timeout=0.01)
    assert [s.final for s in statuses] == [False]


async def test_inbox_tells_observers_and_unsupported_operations_say_so(
    config: Config, plugins: PluginManager
) -> None:
    recorder = Recorder()
    plugins.register(recorder)
    now = datetime.now(UTC)
    async with Dispatcher(config, plugins=plugins) as dispatcher:
        channel = dispatcher.channel()
        channel.inbound.append(InboundMessage("a", "79031234567", "ALERTS", "ok", now))  # type: ignore[attr-defined]
        channel.inbound.append(
            InboundMessage("a", "79031234567", "ALERTS", "old", now - timedelta(days=3))
        )  # type: ignore[attr-defined]
        messages = await dispatcher.inbox(since=timedelta(hours=1))
        assert [m.text for m in messages] == ["ok"]
        assert (await dispatcher.balance()).amount == 42.5
        with pytest.raises(
            UnsupportedOperationError, match="channel 'a' does not support statistics"
        ):
            await dispatcher.statistics(now - timedelta(days=1))
        with pytest.raises(UnknownChannelError, match="no channel named 'zzz'"):
            await dispatcher.send("x", to=["y"], channel="zzz")
    assert [m for e, m in recorder.events if e == "inbound"] == messages


async def test_a_session_given_to_the_dispatcher_is_not_closed_by_it(
    config: Config, plugins: PluginManager
) -> None:
    async with aiohttp.ClientSession() as session:
        async with Dispatcher(config, plugins=plugins, session=session):
            pass
        assert not session.closed


def test_the_sync_facade_runs_the_same_operations(config: Config, plugins: PluginManager) -> None:
    with SyncDispatcher(config, plugins=plugins) as dispatcher:
        result = dispatcher.send("hello", to=["x"])
        assert result.ok
        assert dispatcher.wait(result.message_ids, interval=0.01)[0].final
        assert dispatcher.balance().currency == "XTS"


def test_notifications_refuse_ambiguous_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Notification("x", ("y",), send_at=datetime(2030, 1, 1, 9))
    with pytest.raises(ValueError, match="naive"):
        Notification(
            "x", ("y",), send_at=datetime(2030, 1, 1, 9, tzinfo=UTC), recipient_local_time=True
        )
    with pytest.raises(ValueError, match="needs send_at"):
        Notification("x", ("y",), recipient_local_time=True)
    with pytest.raises(ValueError, match="at least one recipient"):
        Notification("x", ())
    with pytest.raises(TypeError, match="not one string"):
        Notification("x", "79031234567")  # type: ignore[arg-type]
