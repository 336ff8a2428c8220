"""Hook implementations of the webhook plugin: only the glue between the core's hooks and
:class:`~notify_devino_webhook.channel.WebhookChannel`. The core calls an operation hook only
for a channel of this plugin's own type, and the type answers what the plugin implements: send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from notify_devino import hookimpl
from notify_devino.hookspecs import ChannelContext, ChannelType
from notify_devino.types import Notification, SendResult

from .channel import WebhookChannel
from .settings import WebhookSettings

CHANNEL_TYPE = "webhook"


def _make_channel(context: ChannelContext, settings: Any) -> WebhookChannel:
    return WebhookChannel(context, settings)


@hookimpl
def notify_register_channel_types() -> Iterable[ChannelType]:
    return [
        ChannelType(
            name=CHANNEL_TYPE,
            settings_model=WebhookSettings,
            factory=_make_channel,
            description="signed JSON webhooks (HMAC-SHA256, timestamp, idempotency key)",
        )
    ]


@hookimpl
def notify_send(channel: WebhookChannel, notification: Notification) -> Awaitable[SendResult]:
    return channel.send(notification)
