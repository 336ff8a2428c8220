"""Streaming bulk sends (``Dispatcher.send_stream``) and the dispatcher's bounded per-message
memory, with the channel plugin defined in the test suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher, SyncDispatcher
from notify_devino.errors import InvalidInputError, PluginError
from notify_devino.hookspecs import ChannelType
from notify_devino.plugins import PluginManager
from notify_devino.recent import RecentDict
from notify_devino.types import SendResult, StatusChange
from notify_devino_memory import MemoryChannel, MemoryPlugin, MemorySettings, _factory


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    return notify_plugin_manager


@pytest.fixture
def make(notify_config: Callable[..., Config]) -> Callable[..., Config]:
    def build(**settings: Any) -> Config:
        return notify_config({"a": {"type": "memory", "settings": settings}})

    return build


class Counted:
    """A recipient source that counts how far it has been read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for n in range(self.count):
            self.read += 1
            yield f"r{n}"


async def collect(stream: AsyncIterator[SendResult], into: list[SendResult]) -> None:
    async for result in stream:
        into.append(result)


def memory_channel(dispatcher: Dispatcher) -> MemoryChannel:
    channel = dispatcher.channel()
    assert isinstance(channel, MemoryChannel)
    return channel


async def test_every_recipient_is_sent_once_in_batches(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    source = Counted(10_001)
    seen: list[str] = []
    async with Dispatcher(make(fail_for=["r5000"]), plugins=plugins) as dispatcher:
        async for result in dispatcher.send_stream("hello", source, sender="X"):
            assert result.notification.sender == "X"
            seen += [r.recipient for r in result.recipients]
            failed = [r.recipient for r in result.failed]
            assert failed == (["r5000"] if "r5000" in result.notification.recipients else [])
        channel = memory_channel(dispatcher)
    assert sorted(seen) == sorted(f"r{n}" for n in range(10_001))
    # no batch_size declared by the channel type: batches of 100
    assert sorted(len(n.recipients) for n in channel.sent) == [1] + [100] * 100


async def test_an_async_source_and_an_explicit_batch_size(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    async def numbers() -> AsyncIterator[str]:
        for n in range(50):
            await asyncio.sleep(0)
            yield f"r{n}"

    async with Dispatcher(make(), plugins=plugins) as dispatcher:
        results = [r async for r in dispatcher.send_stream("x", numbers(), batch_size=7)]
    assert sorted(len(r.recipients) for r in results) == [1] + [7] * 7
    assert sum(len(r.accepted) for r in results) == 50


async def test_the_channel_type_batch_size_is_used(
    notify_plugin_manager: PluginManager, notify_config: Callable[..., Config]
) -> None:
    class Batched(MemoryPlugin):
        @hookimpl
        def notify_register_channel_types(self) -> list[ChannelType]:
            return [ChannelType("memory", MemorySettings, _factory, batch_size=1000)]

    notify_plugin_manager.register(Batched(), name="batched")
    config = notify_config({"a": {"type": "memory"}})
    async with Dispatcher(config, plugins=notify_plugin_manager) as dispatcher:
        results = [r async for r in dispatcher.send_stream("x", Counted(2500))]
    assert sorted(len(r.recipients) for r in results) == [500, 1000, 1000]


async def test_batches_in_flight_are_bounded_and_the_source_is_read_lazily(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    source = Counted(1000)
    async with Dispatcher(make(delay_seconds=0.005), plugins=plugins) as dispatcher:
        consumed = 0
        async for result in dispatcher.send_stream("x", source, batch_size=10, max_in_flight=3):
            consumed += 1
            # read: what was consumed, what is in flight, and the batch being formed
            assert source.read <= (consumed + 3 + 1) * 10
            assert len(result.recipients) == 10
            await asyncio.sleep(0.002)  # a consumer slower than nothing
        channel = memory_channel(dispatcher)
    assert consumed == 100
    assert 1 < channel.max_in_flight <= 3


async def test_a_consumer_that_stops_early_lets_started_batches_finish(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    after_send: list[SendResult] = []

    class Observer:
        @hookimpl
        def notify_after_send(self, result: SendResult) -> None:
            after_send.append(result)

    plugins.register(Observer())
    source = Counted(1000)
    async with Dispatcher(make(delay_seconds=0.02), plugins=plugins) as dispatcher:
        stream = dispatcher.send_stream("x", source, batch_size=10, max_in_flight=4)
        first = await anext(stream)
        await stream.aclose()
        channel = memory_channel(dispatcher)
        started = len(channel.sent)
        # every batch that started has finished, none was cancelled, no new one started
        assert channel.completed == started
        assert channel.in_flight == 0
        await asyncio.sleep(0.05)
        assert len(channel.sent) == started
    assert 1 < started <= 5
    assert first in after_send
    assert len(after_send) == started  # the observers heard of every batch sent


async def test_an_error_stops_new_batches_yields_the_sent_ones_then_raises(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    source = Counted(1000)
    results: list[SendResult] = []
    async with Dispatcher(make(raise_for="r35", delay_seconds=0.01), plugins=plugins) as d:
        stream = d.send_stream("x", source, batch_size=10, max_in_flight=4)
        with pytest.raises(InvalidInputError, match="refused as a whole"):
            await collect(stream, results)
        channel = memory_channel(d)
    sent = {r for n in channel.sent for r in n.recipients}
    assert {r.recipient for result in results for r in result.recipients} == sent
    assert "r35" not in sent
    assert len(channel.sent) <= 3 + 4  # the three before it, and at most those in flight


async def test_a_failing_source_raises_after_the_batches_it_fed(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    def source() -> Iterator[str]:
        for n in range(25):
            yield f"r{n}"
        raise OSError("disk gone")

    async with Dispatcher(make(), plugins=plugins) as dispatcher:
        results: list[SendResult] = []
        stream = dispatcher.send_stream("x", source(), batch_size=10)
        with pytest.raises(OSError, match="disk gone"):
            await collect(stream, results)
    assert sorted(len(r.recipients) for r in results) == [10, 10]


async def test_bad_arguments(make: Callable[..., Config], plugins: PluginManager) -> None:
    async with Dispatcher(make(), plugins=plugins) as dispatcher:
        with pytest.raises(TypeError, match="not one string"):
            await anext(dispatcher.send_stream("x", "79031234567"))
        with pytest.raises(ValueError, match="max_in_flight"):
            await anext(dispatcher.send_stream("x", ["a"], max_in_flight=0))
        with pytest.raises(ValueError, match="timezone-aware"):
            await anext(dispatcher.send_stream("x", ["a"], send_at=datetime(2030, 1, 1)))
        assert memory_channel(dispatcher).sent == []


def test_the_sync_facade_streams_too(make: Callable[..., Config], plugins: PluginManager) -> None:
    with SyncDispatcher(make(), plugins=plugins) as dispatcher:
        results = list(dispatcher.send_stream("x", (f"r{n}" for n in range(250))))
    assert sum(len(r.accepted) for r in results) == 250


def test_a_bad_batch_size_is_a_plugin_error(notify_plugin_manager: PluginManager) -> None:
    class Bad(MemoryPlugin):
        @hookimpl
        def notify_register_channel_types(self) -> list[ChannelType]:
            return [ChannelType("memory", MemorySettings, _factory, batch_size=0)]

    notify_plugin_manager.register(Bad(), name="bad")
    with pytest.raises(PluginError, match="batch_size must be a whole number >= 1"):
        notify_plugin_manager.channel_types()


# -- bounded per-message memory -----------------------------------------------------------------


def test_recent_dict_keeps_the_most_recently_written_entries() -> None:
    recent: RecentDict[str, int] = RecentDict(3)
    for n in range(10):
        recent[f"k{n}"] = n
    recent["k7"] = 70  # rewritten: now the most recent
    recent["k10"] = 10
    assert list(recent.items()) == [("k9", 9), ("k7", 70), ("k10", 10)]
    nothing: RecentDict[str, int] = RecentDict(0)
    nothing["a"] = 1
    assert not nothing


async def test_the_dispatcher_forgets_the_oldest_messages(
    make: Callable[..., Config], plugins: PluginManager
) -> None:
    changes: list[StatusChange] = []

    class Observer:
        @hookimpl
        def notify_status_changed(self, change: StatusChange) -> None:
            changes.append(change)

    plugins.register(Observer())
    async with Dispatcher(make(), plugins=plugins, track_messages=2) as dispatcher:
        ids = [(await dispatcher.send("x", to=[f"r{n}"])).message_ids[0] for n in range(3)]
        await dispatcher.status(ids)  # three first reads: three changes
        await dispatcher.status(ids[2:])  # remembered, unchanged: nothing
        await dispatcher.status(ids[:1])  # forgotten: a first read again
    assert [(c.status.message_id, c.previous) for c in changes] == [
        (ids[0], None),
        (ids[1], None),
        (ids[2], None),
        (ids[0], None),
    ]
