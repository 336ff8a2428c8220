"""Hook implementations of the Devino SOAP plugin: only the glue between the core's hooks and
:class:`~notify_devino_soap.channel.DevinoChannel`. Each operation hook answers for a Devino
channel and returns None for any other, as pluggy's ``firstresult`` needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from notify_devino import hookimpl
from notify_devino.hookspecs import Channel, ChannelContext, ChannelType
from notify_devino.types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    SendResult,
    Statistics,
)

from . import rules
from .channel import DevinoChannel
from .settings import DevinoSettings

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import click

    from notify_devino.config import Config

CHANNEL_TYPE = "devino_soap"


def _make_channel(context: ChannelContext, settings: Any) -> DevinoChannel:
    return DevinoChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    return [
        ChannelType(
            name=CHANNEL_TYPE,
            settings_model=DevinoSettings,
            factory=_make_channel,
            description="Devino Telecom SMS over the SmsService SOAP API",
            operations=frozenset({"send", "status", "inbox", "balance", "statistics", "estimate"}),
            batch_size=rules.MAX_ADDRESSES_PER_CALL,
        )
    ]


@hookimpl
def notify_register_commands(cli: click.Group) -> None:
    from .commands import demo, estimate, sandbox

    cli.add_command(sandbox)
    cli.add_command(demo)
    cli.add_command(estimate)


@hookimpl
def notify_send(channel: Channel, notification: Notification) -> Awaitable[SendResult] | None:
    return channel.send(notification) if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_status(
    channel: Channel, message_ids: Sequence[str]
) -> Awaitable[Sequence[MessageStatus]] | None:
    return channel.status(message_ids) if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_inbox(
    channel: Channel, since: datetime, until: datetime
) -> Awaitable[Sequence[InboundMessage]] | None:
    return channel.inbox(since, until) if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_balance(channel: Channel) -> Awaitable[Balance] | None:
    return channel.balance() if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_statistics(
    channel: Channel, start: datetime, end: datetime
) -> Awaitable[Statistics] | None:
    return channel.statistics(start, end) if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_estimate(channel: Channel, text: str, recipients: int) -> Awaitable[Estimate] | None:
    return channel.estimate(text, recipients) if isinstance(channel, DevinoChannel) else None


@hookimpl
def notify_embedded_setup() -> AbstractAsyncContextManager[Config]:
    from .demo import embedded_setup

    return embedded_setup()
