"""Contacts, groups, routes and fallback through ``Dispatcher.notify``, with the test suite's
installed memory plugin (its channels fail, lose, reject or deliver by address)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
import structlog

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher, SyncDispatcher
from notify_devino.errors import ConfigError, InvalidInputError
from notify_devino.hookspecs import ChannelContext, ChannelType
from notify_devino.plugins import PluginManager
from notify_devino.routing import NOTIFICATION_ID_KEY, resolve_contacts, select_route
from notify_devino.testing import ConfigFactory, DispatcherFactory, EventRecorder
from notify_devino.types import (
    DeliveryState,
    Notification,
    RouteOutcome,
    SendOutcome,
    SendResult,
)
from notify_devino_memory import MemoryChannel, MemoryPlugin, MemorySettings

CONFIG = """\
version: 1
default_channel: email
status:
  poll_interval_seconds: 0.01
  wait_timeout_seconds: 5
channels:
  sms:
    type: memory
    settings:
      fail_for: ["+100"]
      undelivered_for: ["+200"]
      stuck_for: ["+300"]
      unknown_for: ["+400"]
      max_text: 70
      reads_to_deliver: 2
  email:
    type: memory_sendonly
  pager:
    type: memory
contacts:
  ann: {sms: "+1", email: ann@example.com}
  ben: {sms: "+100", email: ben@example.com}
  cat: {sms: "+200", email: cat@example.com}
  dan: {sms: "+300", email: dan@example.com}
  eve: {sms: "+400", email: eve@example.com}
  fay: {email: fay@example.com}
  gus: {pager: "7"}
groups:
  oncall: [ann, ben]
  everyone: [oncall, cat, ann, fay]
routes:
  critical: [sms, email]
  slow:
    match: {severity: [warning, major]}
    channels: [sms, email]
    fallback_after_seconds: 0.3
  quiet:
    match: {severity: info}
    channels: [sms, email]
    follow: false
  database:
    match: {tags: [db, prod]}
    channels: [pager, email]
  pager-first: [pager, sms]
"""


@pytest.fixture
def config(notify_config: ConfigFactory) -> Config:
    return notify_config(CONFIG)


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(MemoryPlugin(), name="memory")
    return notify_plugin_manager


def channels(dispatcher: Dispatcher) -> tuple[MemoryChannel, MemoryChannel]:
    sms, email = dispatcher.channel("sms"), dispatcher.channel("email")
    assert isinstance(sms, MemoryChannel)
    assert isinstance(email, MemoryChannel)
    return sms, email


def test_groups_expand_to_contacts_once_each_in_the_order_first_named(config: Config) -> None:
    assert resolve_contacts(config, ["everyone", "ben", "gus"]) == [
        "ann",
        "ben",
        "cat",
        "fay",
        "gus",
    ]
    with pytest.raises(InvalidInputError, match="'zed' is neither a contact nor a group") as info:
        resolve_contacts(config, ["ann", "zed"])
    assert info.value.field == "to"
    assert "everyone" in str(info.value)


@pytest.mark.parametrize(
    ("severity", "tags", "route", "expected"),
    [
        ("critical", (), None, ("critical", ("sms", "email"), 5.0)),
        ("major", ("db",), None, ("slow", ("sms", "email"), 0.3)),
        ("info", ("db", "prod"), None, ("quiet", ("sms", "email"), None)),  # follow: false
        ("info", (), None, ("quiet", ("sms", "email"), None)),
        (None, ("prod", "db", "x"), None, ("database", ("pager", "email"), 5.0)),
        (None, ("db",), None, (None, ("email",), None)),  # tags are all-of: default channel
        ("pager-first", (), None, ("pager-first", ("pager", "sms"), 5.0)),  # the short form
        ("info", (), "critical", ("critical", ("sms", "email"), 5.0)),  # named beats matched
    ],
)
def test_the_first_matching_route_is_taken_in_file_order(
    config: Config,
    severity: str | None,
    tags: tuple[str, ...],
    route: str | None,
    expected: tuple[str | None, tuple[str, ...], float | None],
) -> None:
    plan = select_route(config, severity=severity, tags=tags, route=route)
    assert (plan.name, plan.channels, plan.fallback_after) == expected


def test_unknown_routes_and_unroutable_notifications_say_so(notify_config: ConfigFactory) -> None:
    config = notify_config(CONFIG)
    with pytest.raises(InvalidInputError, match="no route named 'nope'"):
        select_route(config, route="nope")
    bare = notify_config(
        {"a": {"type": "memory"}, "b": {"type": "memory"}},
        routes={"critical": ["a", "b"]},
    )
    with pytest.raises(ConfigError, match="no route matches severity='info'"):
        select_route(bare, severity="info")


async def test_a_failed_sms_falls_back_to_email_and_a_taken_one_does_not(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, email = channels(dispatcher)
    result = await dispatcher.notify(
        "db-1 down", to=["oncall", "fay"], severity="critical", tags=["db"]
    )
    assert result.route == "critical"
    assert result.carried_by == {"ann": "sms", "ben": "email", "fay": "email"}
    ann, ben, fay = result.recipients
    assert ann.outcome is RouteOutcome.DELIVERED
    assert [(a.channel, a.outcome) for a in ann.attempts] == [("sms", RouteOutcome.DELIVERED)]
    assert [s.state for s in ann.attempts[0].statuses] == [DeliveryState.DELIVERED]
    assert ben.outcome is RouteOutcome.ACCEPTED  # email cannot say whether it was delivered
    assert [(a.channel, a.outcome) for a in ben.attempts] == [
        ("sms", RouteOutcome.FAILED),
        ("email", RouteOutcome.ACCEPTED),
    ]
    assert ben.attempts[0].reason is not None
    assert "refused" in ben.attempts[0].reason
    assert ben.attempts[0].result is not None
    assert ben.attempts[0].result.outcome is SendOutcome.FAILED
    assert [(a.channel, a.outcome) for a in fay.attempts] == [
        ("sms", RouteOutcome.SKIPPED),
        ("email", RouteOutcome.ACCEPTED),
    ]
    assert result.ok
    # Email went only to those the SMS did not reach; the SMS was one request for both.
    assert [n.recipients for n in sms.sent] == [("+1", "+100")]
    assert sorted(r for n in email.sent for r in n.recipients) == [
        "ben@example.com",
        "fay@example.com",
    ]


async def test_a_message_reported_undelivered_falls_back_at_once(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, email = channels(dispatcher)
    result = await dispatcher.notify("x", to=["cat"], severity="critical")
    (cat,) = result.recipients
    assert (cat.outcome, cat.carried_by) == (RouteOutcome.ACCEPTED, "email")
    first = cat.attempts[0]
    assert (first.channel, first.outcome, first.reason) == (
        "sms",
        RouteOutcome.UNDELIVERED,
        "failed (Rejected)",
    )
    assert first.result is not None
    assert first.result.message_ids
    # one status read told it; the route's 5 s were not waited for
    assert sum(sms.reads.values()) == 1
    assert [n.recipients for n in email.sent] == [("cat@example.com",)]


async def test_a_message_not_delivered_in_time_falls_back_and_may_still_arrive(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, _ = channels(dispatcher)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await dispatcher.notify("x", to=["dan", "ann"], severity="warning")
    elapsed = loop.time() - started
    dan, ann = result.recipients
    assert [(a.channel, a.outcome) for a in dan.attempts] == [
        ("sms", RouteOutcome.LATE),
        ("email", RouteOutcome.ACCEPTED),
    ]
    assert dan.attempts[0].reason == "not delivered within 0.3 s"
    assert dan.attempts[0].statuses[-1].state is DeliveryState.SENT
    assert dan.carried_by == "email"
    assert ann.carried_by == "sms"
    assert elapsed >= 0.3  # dan's SMS was followed for the whole 0.3 s before email was tried
    assert sms.reads[dan.attempts[0].result.message_ids[0]] >= 2  # type: ignore[union-attr]


async def test_an_unknown_outcome_falls_back_and_a_route_can_end_with_nothing_carried(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.notify("x", to=["eve", "gus"], severity="critical")
    eve, gus = result.recipients
    assert [(a.channel, a.outcome) for a in eve.attempts] == [
        ("sms", RouteOutcome.UNKNOWN),
        ("email", RouteOutcome.ACCEPTED),
    ]
    assert eve.attempts[0].reason is not None
    assert "outcome unknown" in eve.attempts[0].reason
    assert (gus.outcome, gus.carried_by) == (RouteOutcome.FAILED, None)
    assert [(a.outcome, a.reason) for a in gus.attempts] == [
        (RouteOutcome.SKIPPED, "gus has no sms address"),
        (RouteOutcome.SKIPPED, "gus has no email address"),
    ]
    assert result.failed == (gus,)
    assert not result.ok


async def test_with_follow_false_a_taken_message_is_not_followed(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, _email = channels(dispatcher)
    result = await dispatcher.notify("x", to=["cat", "ben"], severity="info")
    cat, ben = result.recipients
    assert [(a.channel, a.outcome) for a in cat.attempts] == [("sms", RouteOutcome.ACCEPTED)]
    assert ben.carried_by == "email"  # a failed send still falls back
    assert sms.status_calls == 0


async def test_the_last_channel_of_a_route_is_not_followed(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, _ = channels(dispatcher)
    result = await dispatcher.notify("x", to=["cat"], route="pager-first")
    (cat,) = result.recipients
    assert [(a.channel, a.outcome) for a in cat.attempts] == [
        ("pager", RouteOutcome.SKIPPED),
        ("sms", RouteOutcome.ACCEPTED),  # it will be rejected; there is nothing after it
    ]
    assert sms.status_calls == 0


async def test_a_text_one_channel_refuses_as_a_whole_goes_by_the_next(
    config: Config, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    sms, email = channels(dispatcher)
    result = await dispatcher.notify("y" * 71, to=["ann", "cat"], severity="critical")
    assert result.carried_by == {"ann": "email", "cat": "email"}
    refused = result.recipients[0].attempts[0]
    assert refused.outcome is RouteOutcome.FAILED
    assert refused.result is not None
    assert isinstance(refused.result.error, InvalidInputError)
    assert refused.result.error.channel == "sms"
    assert sms.sent == []
    assert [n.recipients for n in email.sent] == [("ann@example.com", "cat@example.com")]


async def test_every_channel_carries_the_same_notification_id_and_labels(
    config: Config,
    plugins: PluginManager,
    notify_events: EventRecorder,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.notify(
        "x", to=["ben"], severity="critical", tags=["db", "prod"], metadata={"alert": "A1"}
    )
    labels = [dict(sent.notification.metadata) for sent in notify_events.sent]
    assert [sent.channel for sent in notify_events.sent] == ["sms", "email"]
    assert (
        labels
        == [
            {
                NOTIFICATION_ID_KEY: result.notification_id,
                "severity": "critical",
                "tags": "db,prod",
                "route": "critical",
                "alert": "A1",
            }
        ]
        * 2
    )


async def test_following_goes_through_the_status_hook_and_observers_hear_it(
    config: Config,
    plugins: PluginManager,
    notify_events: EventRecorder,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.notify("x", to=["ann", "cat"], severity="critical")
    ids = {r.contact: r.attempts[0].result.message_ids[0] for r in result.recipients}  # type: ignore[union-attr]
    changes = [(c.status.message_id, c.status.state) for c in notify_events.status_changes]
    assert (ids["ann"], DeliveryState.SENT) in changes
    assert (ids["ann"], DeliveryState.DELIVERED) in changes
    assert (ids["cat"], DeliveryState.FAILED) in changes


async def test_names_are_checked_before_anything_is_sent(
    config: Config,
    plugins: PluginManager,
    notify_events: EventRecorder,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    with pytest.raises(InvalidInputError, match="'nobody'"):
        await dispatcher.notify("x", to=["ann", "nobody"], severity="critical")
    with pytest.raises(InvalidInputError, match="no route named"):
        await dispatcher.notify("x", to=["ann"], route="nope")
    assert notify_events.sent == []


@pytest.mark.parametrize(
    ("status_error", "reason"),
    [
        ("transport", "status not readable: status service down"),
        ("bug", "status not readable: unexpected RuntimeError: status bug"),
    ],
)
async def test_a_status_that_cannot_be_read_moves_on_to_the_next_channel(
    notify_config: ConfigFactory,
    plugins: PluginManager,
    notify_dispatcher: DispatcherFactory,
    status_error: str,
    reason: str,
) -> None:
    config = notify_config(
        {
            "sms": {"type": "memory", "settings": {"status_error": status_error}},
            "email": {"type": "memory_sendonly"},
        },
        status={"poll_interval_seconds": 0.01},
        contacts={"ann": {"sms": "+1", "email": "ann@example.com"}},
        routes={"critical": {"channels": ["sms", "email"], "fallback_after_seconds": 0.2}},
    )
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.notify("x", to=["ann"], severity="critical")
    (ann,) = result.recipients
    assert [(a.channel, a.outcome, a.reason) for a in ann.attempts] == [
        ("sms", RouteOutcome.LATE, reason),
        ("email", RouteOutcome.ACCEPTED, None),
    ]
    assert ann.carried_by == "email"


class CrashingChannel:
    def __init__(self, context: ChannelContext, settings: object) -> None:
        self.name = context.name
        self.calls = 0

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def send(self, notification: Notification) -> SendResult:
        self.calls += 1
        raise RuntimeError("plugin bug")


class CrashingPlugin:
    """A plugin that breaks the send hook's contract: it raises after it may have sent."""

    @hookimpl
    def notify_register_channel_types(self) -> list[ChannelType]:
        return [ChannelType("crashing", MemorySettings, CrashingChannel)]

    @hookimpl
    def notify_send(
        self, channel: CrashingChannel, notification: Notification
    ) -> Awaitable[SendResult]:
        return channel.send(notification)


async def test_a_plugin_that_breaks_the_send_contract_is_unknown_and_the_route_moves_on(
    notify_config: ConfigFactory, plugins: PluginManager, notify_dispatcher: DispatcherFactory
) -> None:
    plugins.register(CrashingPlugin(), name="crashing")
    config = notify_config(
        {"pager": {"type": "crashing"}, "email": {"type": "memory_sendonly"}},
        contacts={
            "ann": {"pager": "1", "email": "ann@example.com"},
            "ben": {"email": "ben@example.com"},
        },
        routes={"critical": ["pager", "email"]},
    )
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.notify("x", to=["ann", "ben"], severity="critical")
    ann, ben = result.recipients
    assert [(a.channel, a.outcome) for a in ann.attempts] == [
        ("pager", RouteOutcome.UNKNOWN),
        ("email", RouteOutcome.ACCEPTED),
    ]
    assert ann.attempts[0].reason == (
        "outcome unknown: channel 'pager' (plugin 'crashing') raised RuntimeError: plugin bug"
    )
    assert (ben.carried_by, ann.carried_by) == ("email", "email")
    # the core's guard caught it, before routing had to
    assert [e["event"] for e in logs].count("send_contract_broken") == 1
    assert [e["event"] for e in logs].count("route_send_crashed") == 0


def test_the_sync_facade_notifies_too(config: Config, plugins: PluginManager) -> None:
    with SyncDispatcher(config, plugins=plugins) as dispatcher:
        result = dispatcher.notify("x", to="ann", severity="critical")
    assert result.carried_by == {"ann": "sms"}
