"""A channel plugin defined in the test suite: it keeps what it 'sends' in memory.

Used to test the dispatcher's own mechanics (routing, observers, status changes) without a
provider; everything Devino-specific is tested against the sandbox over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from notify_devino import hookimpl
from notify_devino.errors import InvalidInputError
from notify_devino.hookspecs import Channel, ChannelContext, ChannelType
from notify_devino.types import (
    Balance,
    DeliveryState,
    InboundMessage,
    MessageStatus,
    Notification,
    RecipientResult,
    SendOutcome,
    SendResult,
)


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_for: list[str] = []
    delay_seconds: float = 0.0
    """How long one send takes (to observe how many run at once)."""
    raise_for: str | None = None
    """A send whose recipients include this address raises InvalidInputError (as a channel
    does for a notification that breaks a rule as a whole)."""


class MemoryChannel:
    def __init__(self, context: ChannelContext, settings: MemorySettings) -> None:
        self.name = context.name
        self.settings = settings
        self.sent: list[Notification] = []
        self.events: list[str] = []
        self.polls = 0
        self.inbound: list[InboundMessage] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed = 0

    async def start(self) -> None:
        self.events.append("start")

    async def aclose(self) -> None:
        self.events.append("close")

    async def send(self, notification: Notification) -> SendResult:
        if self.settings.raise_for in notification.recipients:
            raise InvalidInputError("refused as a whole", field="recipients", channel=self.name)
        self.sent.append(notification)
        number = len(self.sent)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.settings.delay_seconds)
        finally:
            self.in_flight -= 1
        self.completed += 1
        results = []
        for n, recipient in enumerate(notification.recipients):
            if recipient in self.settings.fail_for:
                results.append(RecipientResult(recipient, recipient, SendOutcome.FAILED))
            else:
                mid = f"{number}-{n}"
                results.append(RecipientResult(recipient, recipient, SendOutcome.ACCEPTED, (mid,)))
        return SendResult(self.name, notification, tuple(results))

    async def status(self, message_ids: Sequence[str]) -> list[MessageStatus]:
        self.polls += 1
        state = DeliveryState.DELIVERED if self.polls >= 3 else DeliveryState.SENT
        return [
            MessageStatus(
                i, self.name, state, final=state.is_final, code=0 if state.is_final else -1
            )
            for i in message_ids
        ]

    async def inbox(self, since: datetime, until: datetime) -> list[InboundMessage]:
        return [m for m in self.inbound if since <= m.received_at <= until]

    async def balance(self) -> Balance:
        return Balance(self.name, Decimal("42.50"), "XTS")


def _factory(context: ChannelContext, settings: Any) -> MemoryChannel:
    return MemoryChannel(context, settings)


class MemoryPlugin:
    @hookimpl
    def notify_register_channel_types(self) -> Iterable[ChannelType]:
        return [
            ChannelType(
                "memory",
                MemorySettings,
                _factory,
                "in-memory test channel",
                frozenset({"send", "status", "inbox", "balance"}),
            )
        ]

    @hookimpl
    def notify_send(
        self, channel: Channel, notification: Notification
    ) -> Awaitable[SendResult] | None:
        return channel.send(notification) if isinstance(channel, MemoryChannel) else None

    @hookimpl
    def notify_status(
        self, channel: Channel, message_ids: Sequence[str]
    ) -> Awaitable[list[MessageStatus]] | None:
        return channel.status(message_ids) if isinstance(channel, MemoryChannel) else None

    @hookimpl
    def notify_inbox(
        self, channel: Channel, since: datetime, until: datetime
    ) -> Awaitable[list[InboundMessage]] | None:
        return channel.inbox(since, until) if isinstance(channel, MemoryChannel) else None

    @hookimpl
    def notify_balance(self, channel: Channel) -> Awaitable[Balance] | None:
        return channel.balance() if isinstance(channel, MemoryChannel) else None
