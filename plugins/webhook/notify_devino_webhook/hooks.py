"""Hook implementations of the webhook plugin: only the glue between the core's hooks and
:class:`~notify_devino_webhook.channel.WebhookChannel`. The send hook answers for a webhook
channel and returns None for any other, as pluggy's ``firstresult`` needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from notify_devino import hookimpl
from notify_devino.hookspecs import Channel, ChannelContext, ChannelType
from notify_devino.types import Notification, SendResult

if TYPE_CHECKING:  # imported when a hook first needs them, not at every CLI start
    from .channel import WebhookChannel

CHANNEL_TYPE = "webhook"


def _make_channel(context: ChannelContext, settings: Any) -> WebhookChannel:
    from .channel import WebhookChannel

    return WebhookChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    from .settings import WebhookSettings

    return [
        ChannelType(
            name=CHANNEL_TYPE,
            settings_model=WebhookSettings,
            factory=_make_channel,
            description="signed JSON webhooks (HMAC-SHA256, timestamp, idempotency key)",
            operations=frozenset({"send"}),
        )
    ]


@hookimpl
def notify_send(channel: Channel, notification: Notification) -> Awaitable[SendResult] | None:
    from .channel import WebhookChannel

    return channel.send(notification) if isinstance(channel, WebhookChannel) else None
