"""Hook implementations of the SMTP plugin: only the glue between the core's hooks and
:class:`~notify_devino_smtp.channel.SmtpChannel`. The send hook answers for an SMTP channel
and returns None for any other, as pluggy's ``firstresult`` needs. Email has no delivery
status, inbox or balance, so the plugin implements no other operation hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from notify_devino import hookimpl
from notify_devino.hookspecs import Channel, ChannelContext, ChannelType
from notify_devino.types import Notification, SendResult

if TYPE_CHECKING:  # imported when a hook first needs them, not at every CLI start
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
            operations=frozenset({"send"}),
        )
    ]


@hookimpl
def notify_send(channel: Channel, notification: Notification) -> Awaitable[SendResult] | None:
    from .channel import SmtpChannel

    return channel.send(notification) if isinstance(channel, SmtpChannel) else None
