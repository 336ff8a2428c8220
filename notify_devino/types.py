"""Typed values that travel between the dispatcher, the hooks and the channels.

They are channel-neutral: a channel plugin maps its provider's shapes onto them and keeps the
provider's own codes (``MessageStatus.code``) so nothing is lost in translation.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import ChannelError


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to send to one or more recipients over one channel.

    :param text: the message text.
    :param recipients: addresses in the channel's own form (phone numbers for SMS).
    :param sender: the sender name or number; None uses the channel's configured default.
    :param channel: the configured channel name; None uses the config's default channel.
    :param send_at: when to send. None sends now. An aware datetime is an absolute moment
        (Devino: ``DelayUntilUtc``). A naive datetime is a wall-clock time, and needs
        ``recipient_local_time=True``.
    :param recipient_local_time: read ``send_at`` as the local time of each recipient
        (Devino: ``SendMessageByTimeZone*``); the provider holds the message until then.
    :param validity: how long the provider keeps trying to deliver; None is the provider's default.
    :param metadata: free-form labels for observers and logs (severity, alert id, ...).
    """

    text: str
    recipients: tuple[str, ...]
    sender: str | None = None
    channel: str | None = None
    send_at: datetime | None = None
    recipient_local_time: bool = False
    validity: timedelta | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if not self.recipients:
            raise ValueError("a notification needs at least one recipient")
        if self.recipient_local_time:
            if self.send_at is None:
                raise ValueError("recipient_local_time needs send_at (the recipients' local time)")
            if self.send_at.tzinfo is not None:
                raise ValueError(
                    "with recipient_local_time, send_at is a wall-clock time: pass a naive datetime"
                )
        elif self.send_at is not None and self.send_at.tzinfo is None:
            raise ValueError(
                "send_at must be timezone-aware (or set recipient_local_time=True for a "
                "wall-clock time in each recipient's zone)"
            )
        if self.validity is not None and self.validity <= timedelta(0):
            raise ValueError("validity must be positive")


class SendOutcome(enum.StrEnum):
    """What became of one recipient of a send."""

    ACCEPTED = "accepted"
    """The provider took the message and gave it IDs."""
    FAILED = "failed"
    """The message was not taken; ``error`` says why. Safe to send again."""
    UNKNOWN = "unknown"
    """The request may have reached the provider but no answer came back. Sending again may
    deliver the message twice; the caller decides."""


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The result of a send for one recipient.

    :param recipient: the address as the caller gave it.
    :param address: the address as sent on the wire (normalised), or the given one if invalid.
    :param outcome: accepted, failed or unknown.
    :param message_ids: one provider ID per message segment (several for a long SMS).
    :param error: why it failed or why the outcome is unknown.
    """

    recipient: str
    address: str
    outcome: SendOutcome
    message_ids: tuple[str, ...] = ()
    error: ChannelError | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The result of sending one notification over one channel."""

    channel: str
    notification: Notification
    recipients: tuple[RecipientResult, ...]

    @property
    def accepted(self) -> tuple[RecipientResult, ...]:
        return tuple(r for r in self.recipients if r.outcome is SendOutcome.ACCEPTED)

    @property
    def failed(self) -> tuple[RecipientResult, ...]:
        return tuple(r for r in self.recipients if r.outcome is SendOutcome.FAILED)

    @property
    def unknown(self) -> tuple[RecipientResult, ...]:
        return tuple(r for r in self.recipients if r.outcome is SendOutcome.UNKNOWN)

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Every message ID of the send, in recipient order."""
        return tuple(i for r in self.recipients for i in r.message_ids)

    @property
    def ok(self) -> bool:
        """True when every recipient was accepted."""
        return all(r.outcome is SendOutcome.ACCEPTED for r in self.recipients)


class DeliveryState(enum.StrEnum):
    """A channel-neutral summary of a message's state. The provider's own code is kept beside it."""

    PENDING = "pending"
    """Accepted, waiting (queued, scheduled)."""
    SENT = "sent"
    """Handed on towards the recipient; not yet confirmed."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Final: rejected, bad address, provider error."""
    EXPIRED = "expired"
    """Final: not delivered within its validity."""
    UNKNOWN = "unknown"
    """The provider gave a code this library does not know, or knows nothing of the message."""

    @property
    def is_final(self) -> bool:
        return self in (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.EXPIRED)


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """The state of one message (one SMS segment for Devino).

    :param message_id: the provider's ID.
    :param channel: the configured channel name.
    :param state: the channel-neutral summary.
    :param code: the provider's own state code, kept even when unknown to this library.
    :param name: the provider's name for the code (``Delivered_To_Recipient``), or
        ``Unknown(<code>)`` for a code this library does not know.
    :param description: the provider's description, verbatim.
    :param final: True when the state will not change any more.
    """

    message_id: str
    channel: str
    state: DeliveryState
    final: bool
    code: int | None = None
    name: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    submitted_at: datetime | None = None
    reported_at: datetime | None = None
    updated_at: datetime | None = None
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message received by the account (a reply to an alert, say)."""

    channel: str
    sender: str
    recipient: str
    text: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's balance, overdraft included where the provider counts it."""

    channel: str
    amount: Decimal
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counts of messages by outcome over a period, as the provider reports them.

    :param counts: counter name -> value, in the provider's order and names
        (Devino: ``Sent``, ``Delivered``, ``Errors``, ...).
    :param ratio: the provider's delivery ratio, when it gives one.
    """

    channel: str
    start: datetime
    end: datetime
    counts: Mapping[str, int]
    ratio: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status seen by the dispatcher that differs from the last one it saw for that ID."""

    status: MessageStatus
    previous: MessageStatus | None


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


__all__ = [
    "Balance",
    "DeliveryState",
    "InboundMessage",
    "MessageStatus",
    "Notification",
    "RecipientResult",
    "SendOutcome",
    "SendResult",
    "Statistics",
    "StatusChange",
    "utc_now",
]
