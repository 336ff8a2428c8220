"""One lifecycle state per dispatcher: it starts once, closes once, and waits for what is in
flight before it closes."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable

import pytest
import structlog

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher, DispatcherState, SyncDispatcher
from notify_devino.errors import DispatcherStateError
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome, SendResult
from notify_devino_memory import MemoryChannel, MemoryPlugin

ConfigMaker = Callable[..., Config]


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    return notify_plugin_manager


@pytest.fixture
def config(notify_config: ConfigMaker) -> Config:
    return notify_config({"m": {"type": "memory", "settings": {"delay_seconds": 0.2}}})


async def test_a_dispatcher_closed_before_it_started_refuses_to_start(
    config: Config, plugins: PluginManager
) -> None:
    dispatcher = Dispatcher(config, plugins=plugins)
    assert dispatcher.state is DispatcherState.NEW
    await dispatcher.aclose()
    assert dispatcher.state is DispatcherState.CLOSED
    with pytest.raises(DispatcherStateError, match="closed: a dispatcher starts once") as info:
        await dispatcher.start()
    assert info.value.state == "closed"
    assert dispatcher.channels == {}  # nothing was created, so nothing is left open
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.collect()  # an unclosed aiohttp session would warn here


async def test_a_dispatcher_starts_once_and_refuses_every_operation_once_closed(
    config: Config, plugins: PluginManager
) -> None:
    dispatcher = Dispatcher(config, plugins=plugins)
    with pytest.raises(DispatcherStateError, match="new, not running"):
        await dispatcher.send("x", to=["+1"])
    async with dispatcher:
        assert dispatcher.state is DispatcherState.RUNNING
        with pytest.raises(DispatcherStateError, match="running: a dispatcher starts once"):
            await dispatcher.start()
        assert (await dispatcher.send("x", to=["+1"])).ok
    assert dispatcher.state is DispatcherState.CLOSED
    with pytest.raises(DispatcherStateError, match="closed, not running"):
        await dispatcher.send("x", to=["+1"])
    with pytest.raises(DispatcherStateError, match="closed, not running"):
        dispatcher.channel()
    with pytest.raises(DispatcherStateError, match="closed: a dispatcher starts once"):
        await dispatcher.start()
    await dispatcher.aclose()  # idempotent


async def test_closing_waits_for_sends_in_flight_and_refuses_new_ones(
    config: Config, plugins: PluginManager
) -> None:
    dispatcher = Dispatcher(config, plugins=plugins)
    await dispatcher.start()
    channel = dispatcher.channel()
    assert isinstance(channel, MemoryChannel)
    in_flight = asyncio.create_task(dispatcher.send("x", to=["+1", "+2"]))
    await asyncio.sleep(0)  # one turn: the send is now waiting on its channel
    assert channel.in_flight == 1
    closing = asyncio.create_task(dispatcher.aclose())
    await asyncio.sleep(0)
    assert dispatcher.state is DispatcherState.CLOSING
    with pytest.raises(DispatcherStateError, match="closing, not running"):
        await dispatcher.send("y", to=["+3"])
    second_close = asyncio.create_task(dispatcher.aclose())  # waits for the first
    await closing
    assert in_flight.done()  # the send finished before the channel was closed
    assert [r.outcome for r in in_flight.result().recipients] == [SendOutcome.ACCEPTED] * 2
    assert channel.events == ["start", "close"]
    await second_close
    assert dispatcher.state is DispatcherState.CLOSED
    assert [n.recipients for n in channel.sent] == [("+1", "+2")]


async def test_a_failed_start_leaves_the_dispatcher_closed(
    notify_config: ConfigMaker, plugins: PluginManager
) -> None:
    config = notify_config({"m": {"type": "memory", "settings": {"no_such_setting": 1}}})
    dispatcher = Dispatcher(config, plugins=plugins)
    with pytest.raises(Exception, match="no_such_setting"):
        await dispatcher.start()
    assert dispatcher.state is DispatcherState.CLOSED
    await dispatcher.aclose()


async def test_the_sync_facade_refuses_a_running_loop_and_a_closed_facade(
    config: Config, plugins: PluginManager
) -> None:
    with pytest.raises(DispatcherStateError, match="inside a running event loop"):
        SyncDispatcher(config, plugins=plugins).__enter__()

    def outside_a_loop() -> None:
        with SyncDispatcher(config, plugins=plugins) as facade:
            assert facade.send("x", to=["+1"]).ok
        with pytest.raises(DispatcherStateError, match="not open"):
            facade.send("x", to=["+1"])
        with pytest.raises(DispatcherStateError, match="entered before"):
            facade.__enter__()

    await asyncio.to_thread(outside_a_loop)


class CallsBack:
    """An observer that calls the sync facade from inside the facade's own loop."""

    def __init__(self) -> None:
        self.facade: SyncDispatcher | None = None

    @hookimpl
    def notify_after_send(self, result: SendResult) -> None:
        assert self.facade is not None
        self.facade.balance()


async def test_the_sync_facade_called_from_its_own_loop_refuses_instead_of_hanging(
    config: Config, plugins: PluginManager
) -> None:
    observer = CallsBack()
    plugins.register(observer, name="calls_back")

    def outside_a_loop() -> list[dict[str, object]]:
        with (
            structlog.testing.capture_logs() as logs,
            SyncDispatcher(config, plugins=plugins) as facade,
        ):
            observer.facade = facade
            assert facade.send("x", to=["+1"]).ok
        return logs

    logs = await asyncio.to_thread(outside_a_loop)
    (failed,) = [e for e in logs if e["event"] == "observer_failed"]
    assert "DispatcherStateError: the SyncDispatcher was called from its own event loop" in str(
        failed["error"]
    )
