"""Hook implementations of the webhook plugin: only the glue between the core's hooks and
:class:`~notify_devino_webhook.channel.WebhookChannel`. The core calls an operation hook only
for a channel of this plugin's own type, and the type answers what the plugin implements: send.

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
        )
    ]


@hookimpl
def notify_send(channel: WebhookChannel, notification: Notification) -> Awaitable[SendResult]:
    return channel.send(notification)
