"""Hook implementations of the Devino SOAP plugin: only the glue between the core's hooks and
:class:`~notify_devino_soap.channel.DevinoChannel`. The core calls an operation hook only for a
channel of this plugin's own type, and the type answers every operation implemented here.

The channel, its settings and their dependencies are imported when a hook first needs them, not
when the entry point loads: every ``notify-devino`` start (``--help`` too) loads this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from notify_devino import hookimpl
from notify_devino.hookspecs import ChannelContext, ChannelType
from notify_devino.types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    SendResult,
    Statistics,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import click

    from notify_devino.config import Config

    from .channel import DevinoChannel

CHANNEL_TYPE = "devino_soap"


def _make_channel(context: ChannelContext, settings: Any) -> DevinoChannel:
    from .channel import DevinoChannel

    return DevinoChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    from . import rules
    from .settings import DevinoSettings

    return [
        ChannelType(
            name=CHANNEL_TYPE,
            settings_model=DevinoSettings,
            factory=_make_channel,
            description="Devino Telecom SMS over the SmsService SOAP API",
            batch_size=rules.MAX_ADDRESSES_PER_CALL,
            announces_departure=True,
        )
    ]


@hookimpl
def notify_register_commands(cli: click.Group) -> None:
    from .commands import demo, estimate, sandbox

    cli.add_command(sandbox)
    cli.add_command(demo)
    cli.add_command(estimate)


@hookimpl
def notify_send(channel: DevinoChannel, notification: Notification) -> Awaitable[SendResult]:
    return channel.send(notification)


@hookimpl
def notify_status(
    channel: DevinoChannel, message_ids: Sequence[str]
) -> Awaitable[Sequence[MessageStatus]]:
    return channel.status(message_ids)


@hookimpl
def notify_inbox(
    channel: DevinoChannel, since: datetime, until: datetime
) -> Awaitable[Sequence[InboundMessage]]:
    return channel.inbox(since, until)


@hookimpl
def notify_balance(channel: DevinoChannel) -> Awaitable[Balance]:
    return channel.balance()


@hookimpl
def notify_statistics(
    channel: DevinoChannel, start: datetime, end: datetime
) -> Awaitable[Statistics]:
    return channel.statistics(start, end)


@hookimpl
def notify_estimate(channel: DevinoChannel, text: str, recipients: int) -> Awaitable[Estimate]:
    return channel.estimate(text, recipients)


@hookimpl
def notify_embedded_setup() -> AbstractAsyncContextManager[Config]:
    from .demo import embedded_setup

    return embedded_setup()
