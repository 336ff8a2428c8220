"""The sandbox's bookkeeping, with no HTTP in it: accounts, sessions, messages, incoming SMS.

Everything is computed from the injected clock when asked (no background task): a message's
state is a pure function of when it was accepted, when it is due, its validity and the time now.

The life of one segment, times counted from its *send moment* (acceptance, or the DelayUntilUtc /
recipient-local time it was held for)::

    -40 Queued              from creation until send moment + delivery.gateway
    -30 Sending_To_Gateway  from send + gateway   (SubmittedDateUtc is set)
    -1  Sent                from send + sent
    0   Delivered           from send + delivered (ReportedDateUtc is set)

A failing number ends at ``send + sent`` in its error state (42, 11 or 48), or, if it is
``never_delivered``, stays -1 Sent. A message not final when its validity (default 2880 minutes,
counted from the send moment) runs out becomes 46 Error_Expired at that moment.

Validation follows the live service: one bad value fails the whole request with a fault, and
nothing of it is stored or charged. The checks run in this order: session; parameters present;
number of addresses; sender; text; every destination; validity; then the balance against the
whole cost (price of the destination's prefix x segments, per destination).
"""

from __future__ import annotations

import secrets
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypeVar

from notify_devino.logconfig import get_logger

from ..segments import count_segments
from . import rules
from .clock import Clock, SystemClock
from .config import FailureKind, SandboxConfig

log = get_logger(__name__)

_In = TypeVar("_In")
_Out = TypeVar("_Out")

FAULT_PREFIX = "Server was unable to process request. ---> "

FaultCode = Literal["soap:Receiver", "soap:Sender", "soap:VersionMismatch"]

# -- message states ------------------------------------------------------------------------------

QUEUED = -40
SENDING_TO_GATEWAY = -30
SENT = -1
DELIVERED = 0
ERROR_INVALID_DESTINATION = 11
ERROR_REJECTED = 42
ERROR_EXPIRED = 46
DELETED = 47
DEVINO_REJECTED = 48
UNKNOWN = 255

STATE_DESCRIPTIONS: dict[int, str] = {
    -200: "Errors",
    -100: "Tarificated",
    -40: "Queued",
    -30: "Sending to gateway",
    -20: "Sending to recipient",
    -3: "Send date/time could not be interpreted",
    -2: "Being sent",
    -1: "Sent",
    0: "Delivered to recipient",
    8: "System error",
    10: "Invalid source address",
    11: "Invalid destination address",
    41: "Destination not allowed",
    42: "Rejected",
    46: "Expired",
    47: "Deleted",
    48: "Rejected by Devino",
    255: "Unknown",
}

_FAILURE_STATES: dict[FailureKind, int] = {
    "rejected": ERROR_REJECTED,
    "bad_address": ERROR_INVALID_DESTINATION,
    "rejected_by_devino": DEVINO_REJECTED,
}

MIN_DATETIME = datetime(1, 1, 1)
""".NET's DateTime.MinValue, the TimeStampUtc of an unknown message (naive on purpose)."""


_FINAL_NEGATIVE_STATES = frozenset({-3, -200})
"""ErrorSendingDateTimeInterpretation and Errors: the two negative states that are final."""


def is_final(state: int) -> bool:
    """Delivered and every error state are final; the other negative states are in progress."""
    return state >= 0 or state in _FINAL_NEGATIVE_STATES


class SandboxFault(Exception):
    """A request the sandbox refuses, as the service would: becomes a SOAP Fault.

    :ivar reason: the fault text as it goes on the wire (``Server was unable to process
        request. ---> Invalid session``).
    :ivar code: ``soap:Receiver`` (the service refused it; SOAP 1.1 ``soap:Server``),
        ``soap:Sender`` (the request was malformed; 1.1 ``soap:Client``) or
        ``soap:VersionMismatch``.
    :ivar http_status: 500 for every SOAP fault.
    :ivar headers: extra HTTP headers for the reply.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: FaultCode = "soap:Receiver",
        http_status: int = 500,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.http_status = http_status
        self.headers = dict(headers or {})

    @classmethod
    def processing(cls, text: str, detail: str | None = None) -> SandboxFault:
        """A fault raised while processing: ``Server was unable to process request. ---> text``."""
        return cls(FAULT_PREFIX + text + (f": {detail}" if detail else ""))


# -- records -------------------------------------------------------------------------------------


@dataclass
class AccountState:
    """An account as the sandbox keeps it; ``balance`` goes down as messages are charged."""

    login: str
    password: str = field(repr=False)
    balance: Decimal


@dataclass
class _Session:
    login: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One segment the sandbox accepted (one message ID)."""

    message_id: int
    login: str
    source: str
    destination: str
    text: str
    segment_index: int
    segment_count: int
    created_at: datetime
    send_at: datetime
    validity: timedelta
    price: Decimal
    failure: FailureKind | None


@dataclass(frozen=True, slots=True)
class MessageStateRecord:
    """What GetMessageState answers. Dates are aware UTC or None (nil on the wire);
    ``time_stamp_utc`` of an unknown message is :data:`MIN_DATETIME`."""

    state: int
    creation_date_utc: datetime | None
    submitted_date_utc: datetime | None
    reported_date_utc: datetime | None
    time_stamp_utc: datetime
    state_description: str
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class StatisticsRecord:
    """What GetStatistics answers; every count is in segments.

    - ``sent``: handed to the gateway or beyond (SubmittedDateUtc set, any later state);
    - ``delivered``: state 0;
    - ``errors``: in a final error state (every final state but 0);
    - ``in_process``: not final yet (the negative states but -3 and -200);
    - ``expired``: 46 or 47; ``rejected``: 42 or 48 (both also counted in ``errors``);
    - ``optimized``: always 0 (the sandbox merges nothing);
    - ``tarificated``: charged segments, which is every accepted one;
    - ``total`` and ``total_with_errors``: every accepted segment. A request the service
      refuses stores nothing (it faults as a whole), so the two are equal in the sandbox;
    - ``delivery_ratio``: delivered / total, rounded half-up to 2 decimals, 0.00 when total is 0.
    """

    sent: int
    delivered: int
    errors: int
    in_process: int
    expired: int
    rejected: int
    optimized: int
    tarificated: int
    total: int
    total_with_errors: int
    delivery_ratio: Decimal


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """An SMS sent *to* one of the customer's numbers. ``login`` None means every account
    sees it."""

    data: str
    source_address: str
    destination_address: str
    created_date_utc: datetime
    login: str | None = None


# -- the state -----------------------------------------------------------------------------------

_SESSION_ALPHABET = string.ascii_uppercase + string.digits
_SESSION_LENGTH = 36
_MAX_INT64 = 2**63 - 1


def _to_ms(moment: datetime) -> datetime:
    """Cut to whole milliseconds: what is stored is exactly what the wire shows."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _as_utc(moment: datetime) -> datetime:
    """A naive moment is taken as UTC; an aware one is converted."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class SandboxState:
    """The pure, clock-driven core of the sandbox.

    :param config: the settings; None is ``SandboxConfig()``.
    :param clock: where time comes from; None is the wall clock.
    """

    def __init__(self, config: SandboxConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.accounts: dict[str, AccountState] = {
            a.login: AccountState(a.login, a.password, a.balance) for a in self.config.accounts
        }
        self._sessions: dict[str, _Session] = {}
        self._messages: dict[int, StoredMessage] = {}
        self._incoming: list[IncomingRecord] = []
        self._next_id = self.config.message_id_start
        self._texts = self.config.fault_texts

    def _fault(self, text: str, detail: str | None = None) -> SandboxFault:
        return SandboxFault.processing(text, detail)

    def _checked(self, text: str, check: Callable[[_In], _Out], value: _In) -> _Out:
        """``check(value)``, a broken rule answered as the fault ``text: <detail>``."""
        try:
            return check(value)
        except rules.RuleBroken as broken:
            raise self._fault(text, broken.detail) from None

    def _now(self) -> datetime:
        return _to_ms(_as_utc(self.clock.now()))

    # -- sessions --------------------------------------------------------------------------------

    def login(self, login: str | None, password: str | None) -> str:
        """Check the credentials and open a session: a 36-character ID of upper-case letters and
        digits that lives ``session_lifetime_minutes`` (120)."""
        if not login:
            raise self._fault(self._texts.argument_null, "login")
        if not password:
            raise self._fault(self._texts.argument_null, "password")
        account = self.accounts.get(login)
        if account is None or not secrets.compare_digest(
            account.password.encode(), password.encode()
        ):
            log.info("sandbox_login_refused", login=login)
            raise self._fault(self._texts.invalid_login)
        session_id = "".join(secrets.choice(_SESSION_ALPHABET) for _ in range(_SESSION_LENGTH))
        lifetime = timedelta(minutes=self.config.session_lifetime_minutes)
        self._sessions[session_id] = _Session(login, self._now() + lifetime)
        log.info("sandbox_session_opened", login=login)
        return session_id

    def login_for_session(self, session_id: str | None) -> str | None:
        """The login a session belongs to, expired or not, or None; never raises."""
        session = self._sessions.get(session_id or "")
        return session.login if session is not None else None

    def account_for_session(self, session_id: str | None) -> AccountState:
        """The account of a live session.

        :raise SandboxFault: argument_null without an ID, invalid_session for an unknown one,
            expired_session once its lifetime has passed.
        """
        if not session_id:
            raise self._fault(self._texts.argument_null, "sessionID")
        session = self._sessions.get(session_id)
        if session is None:
            raise self._fault(self._texts.invalid_session)
        if self._now() >= session.expires_at:
            raise self._fault(self._texts.expired_session)
        return self.accounts[session.login]

    def expire_sessions(self) -> int:
        """Expire every session now; returns how many were still alive."""
        now = self._now()
        alive = 0
        for session in self._sessions.values():
            if session.expires_at > now:
                alive += 1
                session.expires_at = now
        log.info("sandbox_sessions_expired", count=alive)
        return alive

    def expire_session(self, session_id: str | None) -> bool:
        """Expire one session now, ahead of its time; False if it was not alive."""
        session = self._sessions.get(session_id or "")
        now = self._now()
        if session is None or session.expires_at <= now:
            return False
        session.expires_at = now
        log.info("sandbox_session_expired_early", login=session.login)
        return True

    def balance(self, session_id: str | None) -> Decimal:
        return self.account_for_session(session_id).balance

    # -- sending ---------------------------------------------------------------------------------

    def send(
        self,
        session_id: str | None,
        source: str | None,
        destinations: Sequence[str | None] | None,
        data: str | None,
        *,
        delay_until_utc: datetime | None = None,
        local_send_time: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> list[int]:
        """Accept one text for one or more destinations, or refuse the whole request.

        :param delay_until_utc: hold until this moment (naive is taken as UTC); None or a past
            moment sends now.
        :param local_send_time: hold until this wall-clock time in each recipient's zone
            (``SendMessageByTimeZone*``); naive (an offset, if any, is ignored: the wall-clock
            digits are what count).
        :param validity_minutes: message lifetime from its send moment; None or 0 is 2880.
        :return: message IDs, one per segment, consecutive, grouped per destination in the
            order the destinations were given.
        :raise SandboxFault: for any rule broken; nothing is stored or charged then.
        """
        account = self.account_for_session(session_id)
        texts = self._texts
        if not source:
            raise self._fault(texts.argument_null, "sourceAddress")
        if not data:
            raise self._fault(texts.argument_null, "data")
        if not destinations:
            raise self._fault(texts.argument_null, "destinationAddresses")
        self._checked(texts.too_many_addresses, rules.check_address_count, len(destinations))
        self._checked(texts.invalid_source, rules.check_source_address, source)
        self._checked(texts.text_too_long, rules.check_text, data)
        numbers: list[str] = []
        for raw in destinations:
            if not raw:
                raise self._fault(texts.argument_null, "destinationAddress")
            numbers.append(
                self._checked(texts.invalid_destination, rules.normalize_destination, raw)
            )
        minutes = self._checked(texts.invalid_argument, rules.validity_minutes, validity_minutes)
        validity = timedelta(minutes=minutes)

        segments = count_segments(data).segments
        prices = [self.config.price_for(number) for number in numbers]
        cost = sum((price * segments for price in prices), Decimal(0))
        if account.balance < cost:
            log.info("sandbox_send_refused", login=account.login, reason="not_enough_credits")
            raise self._fault(texts.not_enough_credits)
        if self._next_id + segments * len(numbers) - 1 > _MAX_INT64:
            raise self._fault("Message ID space exhausted")

        now = self._now()
        if local_send_time is None:  # one moment for every number
            moment = self._send_moment(numbers[0], now, validity, delay_until_utc, None)
            send_moments = [moment] * len(numbers)
        else:
            send_moments = [
                self._send_moment(number, now, validity, delay_until_utc, local_send_time)
                for number in numbers
            ]
        ids: list[int] = []
        for number, price, send_at in zip(numbers, prices, send_moments, strict=True):
            for index in range(segments):
                message_id = self._next_id
                self._next_id += 1
                self._messages[message_id] = StoredMessage(
                    message_id=message_id,
                    login=account.login,
                    source=source,
                    destination=number,
                    text=data,
                    segment_index=index,
                    segment_count=segments,
                    created_at=now,
                    send_at=send_at,
                    validity=validity,
                    price=price,
                    failure=self.config.failing_numbers.get(number),
                )
                ids.append(message_id)
        account.balance -= cost
        log.info(
            "sandbox_message_accepted",
            login=account.login,
            destinations=len(numbers),
            segments=segments,
            message_ids=ids,
            cost=str(cost),
        )
        return ids

    def _send_moment(
        self,
        number: str,
        now: datetime,
        validity: timedelta,
        delay_until_utc: datetime | None,
        local_send_time: datetime | None,
    ) -> datetime:
        """When a message to ``number`` leaves the queue: now, or the moment it is held for."""
        try:
            if local_send_time is not None:
                zone = self.config.time_zone_for(number)
                due = local_send_time.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC)
            elif delay_until_utc is not None:
                due = _as_utc(delay_until_utc)
            else:
                due = now
            send_at = max(_to_ms(due), now)
            send_at + validity + timedelta(seconds=self.config.delivery.delivered)
        except OverflowError:
            raise self._fault(self._texts.invalid_argument, "send date out of range") from None
        return send_at

    # -- states ----------------------------------------------------------------------------------

    def _timeline(self, message: StoredMessage) -> list[tuple[datetime, int]]:
        timings = self.config.delivery
        send = message.send_at
        events: list[tuple[datetime, int]] = [
            (message.created_at, QUEUED),
            (send + timedelta(seconds=timings.gateway), SENDING_TO_GATEWAY),
        ]
        at_sent = send + timedelta(seconds=timings.sent)
        if message.failure is None:
            events += [(at_sent, SENT), (send + timedelta(seconds=timings.delivered), DELIVERED)]
        elif message.failure == "never_delivered":
            events.append((at_sent, SENT))
        else:
            events.append((at_sent, _FAILURE_STATES[message.failure]))
        expires_at = send + message.validity
        kept = events[:1] + [(at, state) for at, state in events[1:] if at < expires_at]
        if not is_final(kept[-1][1]):
            kept.append((expires_at, ERROR_EXPIRED))
        return [(_to_ms(at), state) for at, state in kept]

    def state_of(self, message: StoredMessage, now: datetime | None = None) -> MessageStateRecord:
        """The state of one stored segment at ``now`` (default: the clock's now)."""
        now = self._now() if now is None else now
        submitted = reported = None
        current, stamp = QUEUED, message.created_at
        for at, state in self._timeline(message):
            if at > now:
                break
            current, stamp = state, at
            if state == SENDING_TO_GATEWAY:
                submitted = at
            if is_final(state):
                reported = at
        return MessageStateRecord(
            state=current,
            creation_date_utc=message.created_at,
            submitted_date_utc=submitted,
            reported_date_utc=reported,
            time_stamp_utc=stamp,
            state_description=STATE_DESCRIPTIONS[current],
            price=message.price,
        )

    def message_state(self, session_id: str | None, message_id: int) -> MessageStateRecord:
        """The state of one segment of the caller's account. A message of another account, an
        unknown ID, or one older than ``message_retention_hours`` answers 255 Unknown."""
        account = self.account_for_session(session_id)
        now = self._now()
        message = self._messages.get(message_id)
        retention = timedelta(hours=self.config.message_retention_hours)
        if (
            message is None
            or message.login != account.login
            or message.created_at < now - retention
        ):
            return MessageStateRecord(
                state=UNKNOWN,
                creation_date_utc=None,
                submitted_date_utc=None,
                reported_date_utc=None,
                time_stamp_utc=MIN_DATETIME,
                state_description=STATE_DESCRIPTIONS[UNKNOWN],
                price=None,
            )
        return self.state_of(message, now)

    def messages(self, login: str | None = None) -> list[StoredMessage]:
        """Every stored segment (of one account if ``login`` is given), in ID order."""
        return [m for m in self._messages.values() if login is None or m.login == login]

    def sends_per_destination(self, login: str | None = None) -> Counter[str]:
        """How many times each number was sent a text (accepted requests, not segments), of one
        account if ``login`` is given: a number with a count above 1 was sent to twice."""
        return Counter(
            m.destination
            for m in self._messages.values()
            if m.segment_index == 0 and (login is None or m.login == login)
        )

    # -- statistics ------------------------------------------------------------------------------

    def statistics(
        self, session_id: str | None, start: datetime, end: datetime
    ) -> StatisticsRecord:
        """Count the caller's segments created in [start, end] (naive = UTC) by their state now.

        :raise SandboxFault: invalid_argument when end is before start, statistics_range when
            the range is longer than 3 calendar months.
        """
        account = self.account_for_session(session_id)
        start, end = _as_utc(start), _as_utc(end)
        try:
            rules.check_statistics_range(start, end)
        except rules.RuleBroken as broken:
            if broken.detail == "inverted":
                raise self._fault(
                    self._texts.invalid_argument, "endDateTime is before startDateTime"
                ) from None
            raise self._fault(self._texts.statistics_range) from None
        now = self._now()
        counts = dict.fromkeys(
            ("sent", "delivered", "errors", "in_process", "expired", "rejected", "total"), 0
        )
        for message in self._messages.values():
            if message.login != account.login or not start <= message.created_at <= end:
                continue
            record = self.state_of(message, now)
            counts["total"] += 1
            if record.submitted_date_utc is not None:
                counts["sent"] += 1
            if record.state == DELIVERED:
                counts["delivered"] += 1
            elif is_final(record.state):
                counts["errors"] += 1
            else:
                counts["in_process"] += 1
            if record.state in (ERROR_EXPIRED, DELETED):
                counts["expired"] += 1
            if record.state in (ERROR_REJECTED, DEVINO_REJECTED):
                counts["rejected"] += 1
        total = counts["total"]
        ratio = Decimal(counts["delivered"]) / Decimal(total) if total else Decimal(0)
        return StatisticsRecord(
            sent=counts["sent"],
            delivered=counts["delivered"],
            errors=counts["errors"],
            in_process=counts["in_process"],
            expired=counts["expired"],
            rejected=counts["rejected"],
            optimized=0,
            tarificated=total,
            total=total,
            total_with_errors=total,
            delivery_ratio=ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        )

    # -- incoming --------------------------------------------------------------------------------

    def inject_incoming(
        self,
        source: str,
        destination: str,
        text: str,
        created_at: datetime | None = None,
        *,
        login: str | None = None,
    ) -> IncomingRecord:
        """Store an SMS sent to the customer, as if a phone had texted one of its numbers.

        :param created_at: its CreatedDateUtc (naive = UTC); None is now.
        :param login: the only account that will see it; None shows it to every account.
        """
        if login is not None and login not in self.accounts:
            raise ValueError(f"no account {login!r}")
        moment = self._now() if created_at is None else _to_ms(_as_utc(created_at))
        record = IncomingRecord(text, source, destination, moment, login)
        self._incoming.append(record)
        log.info("sandbox_incoming_injected", login=login, created_at=moment.isoformat())
        return record

    def incoming(
        self, session_id: str | None, min_utc: datetime, max_utc: datetime
    ) -> list[IncomingRecord]:
        """The caller's incoming SMS with CreatedDateUtc in [min, max] (naive = UTC), oldest
        first (injection order among equal times). An inverted range is simply empty."""
        account = self.account_for_session(session_id)
        low, high = _as_utc(min_utc), _as_utc(max_utc)
        found = [
            r
            for r in self._incoming
            if r.login in (None, account.login) and low <= r.created_date_utc <= high
        ]
        return sorted(found, key=lambda r: r.created_date_utc)


__all__ = [
    "FAULT_PREFIX",
    "MIN_DATETIME",
    "STATE_DESCRIPTIONS",
    "AccountState",
    "IncomingRecord",
    "MessageStateRecord",
    "SandboxFault",
    "SandboxState",
    "StatisticsRecord",
    "StoredMessage",
    "is_final",
]
