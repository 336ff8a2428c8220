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
        from .errors import InvalidInputError  # errors.py imports nothing from here at run time

        if isinstance(self.recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if not self.recipients:
            raise InvalidInputError(
                "a notification needs at least one recipient",
                field="recipients",
                expected="one address or more",
            )
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidInputError(
                "the text is empty or only whitespace; nothing would be worth sending",
                field="text",
                value=self.text,
                expected="a text with at least one visible character",
            )
        if self.recipient_local_time:
            if self.send_at is None:
                raise InvalidInputError(
                    "recipient_local_time needs send_at (the recipients' local time)",
                    field="send_at",
                    expected="a naive datetime: the wall-clock time in each recipient's zone",
                )
            if self.send_at.tzinfo is not None:
                raise InvalidInputError(
                    "with recipient_local_time, send_at is a wall-clock time: pass a naive "
                    f"datetime, not one with an offset ({self.send_at.isoformat()})",
                    field="send_at",
                    value=self.send_at,
                    expected="a naive datetime such as datetime(2026, 12, 2, 9, 0)",
                )
        elif self.send_at is not None and self.send_at.tzinfo is None:
            raise InvalidInputError(
                f"send_at {self.send_at.isoformat()} has no time zone, so it could mean any "
                "moment: it must be timezone-aware",
                field="send_at",
                value=self.send_at,
                expected="an offset (2026-12-02T09:00+03:00, tzinfo=ZoneInfo(...)), UTC "
                "(2026-12-02T09:00Z, tzinfo=UTC), or recipient_local_time=True for 09:00 where "
                "each recipient is",
            )
        if self.validity is not None and self.validity <= timedelta(0):
            raise InvalidInputError(
                "validity must be positive",
                field="validity",
                value=self.validity,
                expected="a timedelta above zero",
            )


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
class Estimate:
    """What a text costs on a channel before it is sent (its parts and price).

    :param channel: the configured channel name.
    :param segments: the provider messages (SMS parts) one recipient's copy takes; each is one
        message ID and one charge. 1 for channels that do not split texts.
    :param encoding: the channel's name for the encoding it will use (``GSM-7``, ``UCS-2``), or
        None where the channel has no such notion.
    :param characters: the text's length as the channel counts it.
    :param recipients: how many recipients ``cost`` is for.
    :param cost: the price of sending to ``recipients``, when the channel knows its tariff.
    :param currency: shown beside ``cost``, when known.
    :param warnings: what the sender may want to know (a character that forces a costlier
        encoding, a text over the channel's limit), in words.
    :param too_long: True when the channel would refuse the text as too long.
    """

    channel: str
    segments: int
    characters: int
    recipients: int = 1
    encoding: str | None = None
    cost: Decimal | None = None
    currency: str | None = None
    warnings: tuple[str, ...] = ()
    too_long: bool = False


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status seen by the dispatcher that differs from the last one it saw for that ID."""

    status: MessageStatus
    previous: MessageStatus | None


class RouteOutcome(enum.StrEnum):
    """What became of a routed notification on one channel (:class:`ChannelAttempt`), and for
    one contact over the whole route (:class:`ContactResult`, which is only ever delivered,
    accepted, failed or unknown)."""

    DELIVERED = "delivered"
    """The channel took the message and its status confirmed delivery."""
    ACCEPTED = "accepted"
    """The channel took the message; its delivery was not followed (the route's last channel,
    a channel that cannot report a status, or a route with ``follow: false``)."""
    LATE = "late"
    """The channel took the message, but it was not delivered within the route's
    ``fallback_after_seconds``; it may still arrive."""
    UNDELIVERED = "undelivered"
    """The channel took the message, then reported it failed or expired."""
    FAILED = "failed"
    """The channel did not take the message (bad address, refused, nothing sent)."""
    UNKNOWN = "unknown"
    """The send may have reached the provider but no answer came back."""
    SKIPPED = "skipped"
    """The contact has no address on this channel."""


@dataclass(frozen=True, slots=True)
class ChannelAttempt:
    """One channel of a route, tried for one contact.

    :param channel: the configured channel name.
    :param address: the contact's address on it (None when it has none: skipped).
    :param outcome: what became of the message on this channel.
    :param result: the channel's answer to the send (None when skipped).
    :param statuses: the last status read of each message ID, when the delivery was followed.
    :param reason: why the next channel was tried, in words; None when this one carried it.
    """

    channel: str
    address: str | None
    outcome: RouteOutcome
    result: RecipientResult | None = None
    statuses: tuple[MessageStatus, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ContactResult:
    """What became of a routed notification for one contact.

    :param contact: the contact's name in the configuration.
    :param outcome: delivered or accepted (``carried_by`` says on which channel), failed (no
        channel took it) or unknown (no channel took it for sure, and a send may have gone out).
    :param carried_by: the channel that carried the message: the last one that took it.
    :param attempts: every channel of the route, in order, up to the one that carried it.
    """

    contact: str
    outcome: RouteOutcome
    carried_by: str | None
    attempts: tuple[ChannelAttempt, ...]


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """The result of :meth:`Dispatcher.notify <notify_devino.dispatcher.Dispatcher.notify>`.

    :param text: the text sent.
    :param route: the name of the route taken; None when no route matched and the default
        channel was used alone.
    :param notification_id: the ID shared by every channel's send (``metadata["notification_id"]``).
    :param recipients: one result per contact, in the order the names were given (groups
        expanded, each contact once).
    """

    text: str
    route: str | None
    notification_id: str
    severity: str | None
    tags: tuple[str, ...]
    recipients: tuple[ContactResult, ...]

    @property
    def ok(self) -> bool:
        """True when a channel took the message for every contact."""
        return all(
            r.outcome in (RouteOutcome.DELIVERED, RouteOutcome.ACCEPTED) for r in self.recipients
        )

    @property
    def carried_by(self) -> dict[str, str | None]:
        """Contact name -> the channel that carried the message (None if none did)."""
        return {r.contact: r.carried_by for r in self.recipients}

    @property
    def failed(self) -> tuple[ContactResult, ...]:
        return tuple(r for r in self.recipients if r.outcome is RouteOutcome.FAILED)

    @property
    def unknown(self) -> tuple[ContactResult, ...]:
        return tuple(r for r in self.recipients if r.outcome is RouteOutcome.UNKNOWN)


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


__all__ = [
    "Balance",
    "ChannelAttempt",
    "ContactResult",
    "DeliveryState",
    "Estimate",
    "InboundMessage",
    "MessageStatus",
    "Notification",
    "NotifyResult",
    "RecipientResult",
    "RouteOutcome",
    "SendOutcome",
    "SendResult",
    "Statistics",
    "StatusChange",
    "utc_now",
]
