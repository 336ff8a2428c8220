"""Hook implementations of the SMTP plugin: only the glue between the core's hooks and
:class:`~notify_devino_smtp.channel.SmtpChannel`. The core calls an operation hook only for a
channel of this plugin's own type, and the type answers what the plugin implements: email has
no delivery status, inbox or balance, so send alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from notify_devino import hookimpl
from notify_devino.hookspecs import ChannelContext, ChannelType
from notify_devino.types import Notification, SendResult

from .channel import SmtpChannel
from .settings import SmtpSettings

CHANNEL_TYPE = "smtp"


def _make_channel(context: ChannelContext, settings: Any) -> SmtpChannel:
    return SmtpChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    return [
        ChannelType(
            name=CHANNEL_TYPE,
            settings_model=SmtpSettings,
            factory=_make_channel,
            description="email over SMTP (STARTTLS or TLS, login, plain text and HTML)",
        )
    ]


@hookimpl
def notify_send(channel: SmtpChannel, notification: Notification) -> Awaitable[SendResult]:
    return channel.send(notification)
