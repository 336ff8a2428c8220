"""Hook implementations of the SMTP plugin: only the glue between the core's hooks and
:class:`~notify_devino_smtp.channel.SmtpChannel`. The core calls an operation hook only for a
channel of this plugin's own type, and the type answers what the plugin implements: email has
no delivery status, inbox or balance, so send alone.

The channel, its settings and their dependencies are imported when a hook first needs them, not
when the entry point loads: every ``notify-devino`` start (``--help`` too) loads this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from notify_devino import hookimpl
from notify_devino.hookspecs import ChannelContext, ChannelType
from notify_devino.types import Notification, SendResult

if TYPE_CHECKING:
    from .channel import SmtpChannel

CHANNEL_TYPE = "smtp"


def _make_channel(context: ChannelContext, settings: Any) -> SmtpChannel:
    from .channel import SmtpChannel

    return SmtpChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    from .settings import SmtpSettings

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
