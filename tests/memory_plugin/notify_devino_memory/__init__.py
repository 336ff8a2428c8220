"""A channel plugin defined in the test suite: it keeps what it 'sends' in memory.

It is installed as a real distribution (``notify-devino-memory``, entry point ``memory`` in the
``notify_devino`` group) so the core's tests see it the way a user's installation sees any
plugin. It tests the dispatcher's own mechanics (routing, fallback, observers, status changes)
without a provider; everything Devino-specific is tested against the sandbox over real HTTP.

Two channel types:

``memory``
    send, status, inbox and balance. What happens to an address is set by its settings:
    ``fail_for`` (the send fails), ``unknown_for`` (the send's outcome is unknown),
    ``undelivered_for`` (taken, then reported failed), ``stuck_for`` (taken, and never gets past
    "sent"); any other address is delivered on the ``reads_to_deliver``-th status read of its
    message. A text longer than ``max_text`` is refused as a whole.
``memory_sendonly``
    the same, but answers no status: a channel whose delivery cannot be followed.

``delay_seconds`` makes each send take that long (to observe how many run at once:
``in_flight``, ``max_in_flight``, ``completed``); ``raise_for`` makes a send that includes that
address raise InvalidInputError, as a channel does for a notification that breaks a rule as a
whole; ``bug_for`` makes a send that includes that address raise a RuntimeError after it has
sent (a plugin breaking the send contract). ``status_error`` makes every status read fail:
``transport`` (a ConnectionFailedError) or ``bug`` (a RuntimeError, a plugin breaking its
contract).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from notify_devino import hookimpl
from notify_devino.errors import ConnectionFailedError, InvalidInputError
from notify_devino.hookspecs import ChannelContext, ChannelType
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
    unknown_for: list[str] = []
    undelivered_for: list[str] = []
    stuck_for: list[str] = []
    reads_to_deliver: int = Field(default=3, ge=1)
    max_text: int | None = None
    status_error: Literal["transport", "bug"] | None = None
    delay_seconds: float = 0.0
    raise_for: str | None = None
    bug_for: str | None = None


class MemoryChannel:
    def __init__(self, context: ChannelContext, settings: MemorySettings) -> None:
        self.name = context.name
        self.settings = settings
        self.sent: list[Notification] = []
        self.events: list[str] = []
        self.status_calls = 0
        self.reads: dict[str, int] = {}
        self.address_of: dict[str, str] = {}
        self.inbound: list[InboundMessage] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed = 0

    async def start(self) -> None:
        self.events.append("start")

    async def aclose(self) -> None:
        self.events.append("close")

    def delivered_to(self) -> list[str]:
        """Every address a message was taken for, in order."""
        return [
            r
            for n in self.sent
            for r in n.recipients
            if r not in self.settings.fail_for and r not in self.settings.unknown_for
        ]

    async def send(self, notification: Notification) -> SendResult:
        if self.settings.max_text is not None and len(notification.text) > self.settings.max_text:
            raise InvalidInputError(
                f"text has {len(notification.text)} characters",
                field="text",
                expected=f"at most {self.settings.max_text}",
                channel=self.name,
            )
        if self.settings.raise_for in notification.recipients:
            raise InvalidInputError("refused as a whole", field="recipients", channel=self.name)
        self.sent.append(notification)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.settings.delay_seconds)
        finally:
            self.in_flight -= 1
        self.completed += 1
        if self.settings.bug_for in notification.recipients:
            raise RuntimeError("a bug after sending")
        results = []
        for n, recipient in enumerate(notification.recipients):
            if recipient in self.settings.fail_for:
                error = InvalidInputError("refused", field="recipient", value=recipient)
                results.append(RecipientResult(recipient, recipient, SendOutcome.FAILED, (), error))
            elif recipient in self.settings.unknown_for:
                lost = ConnectionFailedError("connection lost after sending", request_sent=True)
                results.append(RecipientResult(recipient, recipient, SendOutcome.UNKNOWN, (), lost))
            else:
                mid = f"{self.name}-{len(self.sent)}-{n}"
                self.address_of[mid] = recipient
                results.append(RecipientResult(recipient, recipient, SendOutcome.ACCEPTED, (mid,)))
        return SendResult(self.name, notification, tuple(results))

    def _status(self, message_id: str) -> MessageStatus:
        self.reads[message_id] = reads = self.reads.get(message_id, 0) + 1
        address = self.address_of.get(message_id)
        if address in self.settings.undelivered_for:
            state, code = DeliveryState.FAILED, 42
        elif address in self.settings.stuck_for or reads < self.settings.reads_to_deliver:
            state, code = DeliveryState.SENT, -1
        else:
            state, code = DeliveryState.DELIVERED, 0
        return MessageStatus(
            message_id,
            self.name,
            state,
            final=state.is_final,
            code=code,
            name={42: "Rejected", -1: "Sent", 0: "Delivered"}[code],
        )

    async def status(self, message_ids: Sequence[str]) -> list[MessageStatus]:
        self.status_calls += 1
        if self.settings.status_error == "transport":
            raise ConnectionFailedError("status service down", request_sent=False)
        if self.settings.status_error == "bug":
            raise RuntimeError("status bug")
        return [self._status(i) for i in message_ids]

    async def inbox(self, since: datetime, until: datetime) -> list[InboundMessage]:
        return [m for m in self.inbound if since <= m.received_at <= until]

    async def balance(self) -> Balance:
        return Balance(self.name, Decimal("42.50"), "XTS")


class SendOnlyChannel(MemoryChannel):
    """A memory channel that cannot report a status."""


def _factory(context: ChannelContext, settings: Any) -> MemoryChannel:
    return MemoryChannel(context, settings)


def _send_only(context: ChannelContext, settings: Any) -> SendOnlyChannel:
    return SendOnlyChannel(context, settings)


class MemoryPlugin:
    @hookimpl
    def notify_register_channel_types(self) -> Iterable[ChannelType]:
        return [
            ChannelType("memory", MemorySettings, _factory, "in-memory test channel"),
            ChannelType(
                "memory_sendonly",
                MemorySettings,
                _send_only,
                "in-memory test channel without status",
                frozenset({"send"}),  # narrower than what the plugin implements
            ),
        ]

    @hookimpl
    def notify_send(
        self, channel: MemoryChannel, notification: Notification
    ) -> Awaitable[SendResult]:
        return channel.send(notification)

    @hookimpl
    def notify_status(
        self, channel: MemoryChannel, message_ids: Sequence[str]
    ) -> Awaitable[list[MessageStatus]]:
        return channel.status(message_ids)

    @hookimpl
    def notify_inbox(
        self, channel: MemoryChannel, since: datetime, until: datetime
    ) -> Awaitable[list[InboundMessage]]:
        return channel.inbox(since, until)

    @hookimpl
    def notify_balance(self, channel: MemoryChannel) -> Awaitable[Balance]:
        return channel.balance()


plugin = MemoryPlugin()
"""What the ``memory`` entry point registers."""
