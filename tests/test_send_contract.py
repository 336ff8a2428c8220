"""The core holds every channel plugin to the send contract and calls only the plugin that owns
a channel: what a plugin implements is what its channels answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
import structlog
from pydantic import BaseModel

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.departure import departing, on_departure
from notify_devino.errors import (
    ChannelError,
    ConnectionFailedError,
    DepartureRefused,
    InvalidInputError,
    PluginError,
    UnknownChannelError,
)
from notify_devino.hookspecs import Channel, ChannelContext, ChannelType
from notify_devino.plugins import PluginManager
from notify_devino.testing import DispatcherFactory
from notify_devino.types import Notification, RecipientResult, SendOutcome, SendResult
from notify_devino_memory import MemoryPlugin

ConfigMaker = Callable[..., Config]


class Empty(BaseModel):
    pass


class Plain:
    """A channel of a test plugin: it records who was asked to send over it."""

    def __init__(self, context: ChannelContext, settings: Any) -> None:
        self.name = context.name
        self.asked: list[str] = []

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def plain_plugin(type_name: str, *, operations: frozenset[str] | None = None) -> object:
    """A plugin whose hooks answer for whatever channel they are given: no isinstance test."""

    class Plugin:
        def __init__(self) -> None:
            self.calls: list[str] = []

        @hookimpl
        def notify_register_channel_types(self) -> Iterable[ChannelType]:
            extra = {} if operations is None else {"operations": operations}
            return [ChannelType(type_name, Empty, Plain, **extra)]  # type: ignore[arg-type]

        @hookimpl
        def notify_send(
            self, channel: Channel, notification: Notification
        ) -> Awaitable[SendResult]:
            self.calls.append(f"{type_name} sends over {channel.name}")

            async def send() -> SendResult:
                results = tuple(
                    RecipientResult(r, r, SendOutcome.ACCEPTED, (f"{type_name}-{r}",))
                    for r in notification.recipients
                )
                return SendResult(channel.name, notification, results)

            return send()

    return Plugin()


async def test_the_core_calls_only_the_plugin_that_owns_the_channel(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    first, second = plain_plugin("first"), plain_plugin("second")
    notify_plugin_manager.register(first, name="first")
    notify_plugin_manager.register(second, name="second")
    config = notify_config({"a": {"type": "first"}, "b": {"type": "second"}}, default_channel="a")
    dispatcher = await notify_dispatcher(config)
    a = await dispatcher.send("x", to=["alice"])
    b = await dispatcher.send("x", to=["bob"], channel="b")
    assert a.message_ids == ("first-alice",)
    assert b.message_ids == ("second-bob",)
    assert first.calls == ["first sends over a"]  # type: ignore[attr-defined]
    assert second.calls == ["second sends over b"]  # type: ignore[attr-defined]


def test_operations_are_what_the_owning_plugin_implements(
    notify_plugin_manager: PluginManager,
) -> None:
    notify_plugin_manager.register(plain_plugin("plain"), name="plain")
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    types = notify_plugin_manager.channel_types()
    assert types["plain"].operations == frozenset({"send"})  # not the old {send, status, inbox}
    # a plugin with two types narrows one of them by declaring its operations
    assert types["memory"].operations == frozenset({"send", "status", "inbox", "balance"})
    assert types["memory_sendonly"].operations == frozenset({"send"})


def test_a_type_declaring_an_operation_its_plugin_does_not_implement_is_refused(
    notify_plugin_manager: PluginManager,
) -> None:
    notify_plugin_manager.register(
        plain_plugin("liar", operations=frozenset({"send", "status"})), name="liar"
    )
    with pytest.raises(PluginError, match=r"'liar'.*status.*notify_status") as info:
        notify_plugin_manager.channel_types()
    assert info.value.plugins == ("liar",)


async def test_a_route_does_not_poll_a_channel_whose_plugin_has_no_status(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    notify_plugin_manager.register(plain_plugin("plain"), name="plain")
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    config = notify_config(
        {"chat": {"type": "plain"}, "sms": {"type": "memory"}},
        default_channel="chat",
        contacts={"alice": {"chat": "alice", "sms": "+1"}},
        routes={"all": {"match": {}, "channels": ["chat", "sms"], "fallback_after_seconds": 30}},
    )
    dispatcher = await notify_dispatcher(config)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.notify("db-1 is down", to="alice")
    assert result.carried_by == {"alice": "chat"}
    assert [e for e in logs if e["event"].startswith("route_status")] == []


async def test_a_plugin_bug_after_sending_makes_each_recipient_unknown_and_is_never_raised(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
    notify_events: Any,
) -> None:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    config = notify_config({"m": {"type": "memory", "settings": {"bug_for": "+2"}}})
    dispatcher = await notify_dispatcher(config)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.send("x", to=["+1", "+2"])
    assert [r.outcome for r in result.recipients] == [SendOutcome.UNKNOWN] * 2
    error = result.recipients[0].error
    assert isinstance(error, ChannelError)
    assert error.may_have_been_processed()
    assert "RuntimeError: a bug after sending" in str(error)
    assert error.channel == "m"
    (broken,) = [e for e in logs if e["event"] == "send_contract_broken"]
    assert broken["channel"] == "m"
    assert broken["recipients"] == 2
    assert notify_events.sent == [result]  # observers hear of it like of any send


class Raising:
    """A plugin whose send raises the error it is given, after or before sending."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    @hookimpl
    def notify_register_channel_types(self) -> Iterable[ChannelType]:
        return [ChannelType("raising", Empty, Plain)]

    @hookimpl
    def notify_send(self, channel: Channel, notification: Notification) -> Awaitable[SendResult]:
        async def send() -> SendResult:
            raise self.error

        return send()


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (InvalidInputError("too long", field="text"), True),  # refused before sending
        (DepartureRefused("the outbox cannot commit"), True),  # the caller's own refusal
        (ConnectionFailedError("no connection", request_sent=False), True),  # never left
        (ConnectionFailedError("lost after sending", request_sent=True), False),
        (TypeError("a bug"), False),
    ],
)
async def test_what_a_plugins_send_may_raise(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
    error: BaseException,
    raised: bool,
) -> None:
    notify_plugin_manager.register(Raising(error), name="raising")
    dispatcher = await notify_dispatcher(notify_config({"r": {"type": "raising"}}))
    if raised:
        with pytest.raises(type(error)) as info:
            await dispatcher.send("x", to=["a"])
        assert info.value is error
    else:
        result = await dispatcher.send("x", to=["a", "b"])
        assert [r.outcome for r in result.recipients] == [SendOutcome.UNKNOWN] * 2


class Wrapping:
    @hookimpl(wrapper=True)
    def notify_after_send(self, result: SendResult) -> Any:
        return (yield)


class OldWrapping:
    @hookimpl(hookwrapper=True)
    def notify_send(self, channel: Channel, notification: Notification) -> Any:
        yield


@pytest.mark.parametrize("plugin", [Wrapping(), OldWrapping()])
def test_a_hook_wrapper_is_refused_at_registration(
    notify_plugin_manager: PluginManager, plugin: object
) -> None:
    with pytest.raises(PluginError, match="wrapper") as info:
        notify_plugin_manager.register(plugin, name="wrapping")
    assert info.value.plugins == ("wrapping",)
    assert not notify_plugin_manager.is_registered("wrapping")


async def test_an_unknown_channel_at_call_time_is_an_unknown_channel_error(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    config = notify_config({"a": {"type": "memory"}, "b": {"type": "memory"}})
    dispatcher = await notify_dispatcher(config)
    with pytest.raises(UnknownChannelError, match="no channel named 'zzz'") as info:
        await dispatcher.send("x", to=["+1"], channel="zzz")
    assert isinstance(info.value, InvalidInputError)
    assert (info.value.field, info.value.value) == ("channel", "zzz")
    assert info.value.expected == "one of a, b"
    with pytest.raises(UnknownChannelError, match="none is the default"):
        dispatcher.channel()


class Stray:
    """Operation hooks without a channel type: the old way of answering another's channels."""

    @hookimpl
    def notify_send(self, channel: Channel, notification: Notification) -> None:
        return None


def test_operation_hooks_of_a_plugin_without_a_channel_type_are_said_to_be_unused(
    notify_plugin_manager: PluginManager,
) -> None:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    notify_plugin_manager.register(Stray(), name="stray")
    with structlog.testing.capture_logs() as logs:
        notify_plugin_manager.channel_types()
    assert [(e["event"], e["plugin"], e["hook"]) for e in logs] == [
        ("plugin_hook_unused", "stray", "notify_send")
    ]


class Short:
    """A plugin whose send answers for fewer recipients than it was given."""

    @hookimpl
    def notify_register_channel_types(self) -> Iterable[ChannelType]:
        return [ChannelType("short", Empty, Plain)]

    @hookimpl
    def notify_send(self, channel: Channel, notification: Notification) -> Awaitable[SendResult]:
        async def send() -> SendResult:
            first = notification.recipients[0]
            taken = RecipientResult(first, first, SendOutcome.ACCEPTED, ("id-1",))
            return SendResult(channel.name, notification, (taken,))

        return send()


async def test_a_result_that_does_not_answer_for_every_recipient_is_unknown(
    notify_plugin_manager: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    notify_plugin_manager.register(Short(), name="short")
    dispatcher = await notify_dispatcher(notify_config({"s": {"type": "short"}}))
    result = await dispatcher.send("x", to=["a", "b"])
    assert [r.outcome for r in result.recipients] == [SendOutcome.UNKNOWN] * 2
    assert "answered for 1 of 2 recipients" in str(result.recipients[0].error)


def test_announces_departure_must_be_a_bool(notify_plugin_manager: PluginManager) -> None:
    class Vague(Raising):
        @hookimpl
        def notify_register_channel_types(self) -> Iterable[ChannelType]:
            return [ChannelType("vague", Empty, Plain, announces_departure="yes")]  # type: ignore[arg-type]

    notify_plugin_manager.register(Vague(TypeError()), name="vague")
    with pytest.raises(PluginError, match="announces_departure must be True or False"):
        notify_plugin_manager.channel_types()


async def test_departing_reaches_the_listener_of_its_block_and_its_tasks_only() -> None:
    heard: list[str] = []

    def listener(name: str) -> Callable[[], Awaitable[None]]:
        async def hear() -> None:
            heard.append(name)

        return hear

    await departing()  # nobody listens: nothing happens
    with on_departure(listener("outer")):
        await departing()
        with on_departure(listener("inner")):
            await asyncio.gather(departing(), asyncio.create_task(departing()))
        await departing()
    await departing()
    assert heard == ["outer", "inner", "inner", "outer"]
