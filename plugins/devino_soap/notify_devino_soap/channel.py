"""The ``devino_soap`` channel: maps the dispatcher's channel-neutral values onto the Devino
client's operations and back.

One notification becomes one request per 1000 recipients (the service's limit), sent
concurrently under the client's rate limit. A recipient the rules reject fails alone, with its
reason; the others go out. A request that may have reached the service but got no answer makes
its recipients' outcome *unknown*, never *failed*: sending them again could deliver twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from notify_devino.errors import (
    ChannelError,
    DepartureRefused,
    InvalidInputError,
    UnexpectedError,
    send_outcome_of,
)
from notify_devino.hookspecs import ChannelContext
from notify_devino.logconfig import get_logger, redact_error, register_secret
from notify_devino.types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    RecipientResult,
    SendOutcome,
    SendResult,
    Statistics,
)

from . import envelopes, rules
from .client import SEND_OPERATIONS, DevinoClient
from .estimate import estimate
from .models import MessageState, state_info
from .segments import count_segments
from .settings import DevinoSettings

log = get_logger(__name__)

_CHECK_INLINE_UP_TO = 100
_CHECK_SLICE = 50


class DevinoChannel:
    """A configured Devino account, running inside a dispatcher."""

    def __init__(self, context: ChannelContext, settings: DevinoSettings) -> None:
        self.name = context.name
        self.settings = settings
        password = settings.password.get_secret_value()
        register_secret(password)
        self.client = DevinoClient(
            context.session,
            url=settings.url,
            login=settings.login,
            password=password,
            soap_version=settings.soap_version,
            timeout=settings.timeout_seconds,
            retry=settings.retry,
            rate_limit=settings.rate_limit_per_second,
            channel=self.name,
            limiter=(
                None
                if context.limiters is None
                else context.limiters(
                    f"devino_soap {settings.url} {settings.login}", settings.rate_limit_per_second
                )
            ),
        )
        self._checking = asyncio.Lock()

    async def start(self) -> None:
        """Nothing to do: the session ID is fetched on first need."""

    async def aclose(self) -> None:
        """Nothing to release: the dispatcher owns the HTTP session."""

    # -- send ------------------------------------------------------------------------------------

    def _check(self, notification: Notification) -> tuple[str, str, int]:
        sender = notification.sender or self.settings.sender
        if sender is None:
            raise InvalidInputError(
                "no sender: set 'sender' in the channel settings or on the notification",
                field="sender",
                expected="up to 11 Latin characters or up to 15 digits",
                channel=self.name,
            )
        validity = notification.validity
        minutes = (
            int(validity.total_seconds() // 60) if validity else self.settings.validity_minutes
        )
        try:
            return (
                rules.check_sender(sender),
                envelopes.check_xml_text(rules.check_text(notification.text), field="text"),
                rules.check_validity(minutes),
            )
        except InvalidInputError as exc:
            exc.channel = self.name
            raise

    def _sort_recipients(
        self,
        recipients: Sequence[str],
        offset: int,
        results: dict[int, RecipientResult],
        first_of: dict[str, int],
        batch: list[tuple[int, str]],
    ) -> None:
        """Check every number (``offset`` is the index of the first): a bad one goes to
        ``results`` as failed; the first recipient of each distinct number goes to ``first_of``
        (address -> index) and ``batch`` ((index, address), to send)."""
        for index, recipient in enumerate(recipients, offset):
            try:
                address = rules.normalize_phone(recipient)
            except InvalidInputError as exc:
                exc.channel = self.name
                results[index] = RecipientResult(
                    recipient, recipient, SendOutcome.FAILED, error=exc
                )
                continue
            if address in first_of:  # the same number twice: send once, report it for both
                continue
            first_of[address] = index
            batch.append((index, address))

    async def send(self, notification: Notification) -> SendResult:
        sender, text, validity = self._check(notification)
        results: dict[int, RecipientResult] = {}
        first_of: dict[str, int] = {}  # address -> index of the first recipient with it
        batch: list[tuple[int, str]] = []
        if len(notification.recipients) > _CHECK_INLINE_UP_TO:
            # Checking numbers takes time: a bulk batch is checked in slices, one batch at a
            # time, with the event loop let go between slices. A request the rate limiter has
            # just let go is then written within a slice's time, not after every pending
            # batch's whole check:
            # held back, it would reach the service later than its grant, and closer to the
            # next one than the limiter meant.
            async with self._checking:
                recipients = notification.recipients
                for start in range(0, len(recipients), _CHECK_SLICE):
                    await asyncio.sleep(0)
                    self._sort_recipients(
                        recipients[start : start + _CHECK_SLICE], start, results, first_of, batch
                    )
        else:
            self._sort_recipients(notification.recipients, 0, results, first_of, batch)

        chunks = [
            batch[i : i + rules.MAX_ADDRESSES_PER_CALL]
            for i in range(0, len(batch), rules.MAX_ADDRESSES_PER_CALL)
        ]
        segments = count_segments(text).segments
        for chunk_results in await asyncio.gather(
            *(
                self._send_chunk(notification, chunk, sender, text, validity, segments)
                for chunk in chunks
            )
        ):
            results.update(chunk_results)
        for index, recipient in enumerate(notification.recipients):
            if index not in results:  # a duplicate address
                try:
                    first = results[first_of[rules.normalize_phone(recipient)]]
                except (InvalidInputError, KeyError):  # pragma: no cover - normalised above
                    continue
                results[index] = RecipientResult(
                    recipient, first.address, first.outcome, first.message_ids, first.error
                )
        return SendResult(
            channel=self.name,
            notification=notification,
            recipients=tuple(results[i] for i in range(len(notification.recipients))),
        )

    async def _send_chunk(
        self,
        notification: Notification,
        chunk: Sequence[tuple[int, str]],
        sender: str,
        text: str,
        validity: int,
        segments: int,
    ) -> dict[int, RecipientResult]:
        addresses = [address for _, address in chunk]
        try:
            if notification.recipient_local_time:
                assert notification.send_at is not None  # Notification checks it
                if len(addresses) == 1:
                    ids = await self.client.send_message_by_time_zone(
                        source=sender,
                        destination=addresses[0],
                        data=text,
                        send_date=notification.send_at,
                        validity=validity,
                    )
                else:
                    ids = await self.client.send_message_by_time_zone_to_addresses(
                        source=sender,
                        destinations=addresses,
                        data=text,
                        send_date=notification.send_at,
                        validity=validity,
                    )
            else:
                ids = await self.client.send_message(
                    source=sender,
                    destinations=addresses,
                    data=text,
                    delay_until_utc=notification.send_at.astimezone(UTC)
                    if notification.send_at
                    else None,
                    validity=validity,
                    receipt_requested=self.settings.receipt_requested,
                )
        except ChannelError as exc:
            # an error of the login before the send proves the message did not leave
            outcome = send_outcome_of(exc, send_operations=SEND_OPERATIONS)
            log.warning(
                "send_outcome_unknown" if outcome is SendOutcome.UNKNOWN else "send_failed",
                channel=self.name,
                recipients=len(chunk),
                error=type(exc).__name__,
            )
            return {
                i: RecipientResult(notification.recipients[i], a, outcome, error=exc)
                for i, a in chunk
            }
        except DepartureRefused:
            raise  # the caller could not record the send: nothing left, and it knows
        except Exception as exc:  # a bug must not lose the other chunks' accepted messages
            log.exception("send_outcome_unknown", channel=self.name, recipients=len(chunk))
            unknown = redact_error(UnexpectedError.of(exc, channel=self.name))
            return {
                i: RecipientResult(
                    notification.recipients[i], a, SendOutcome.UNKNOWN, error=unknown
                )
                for i, a in chunk
            }
        per_recipient = self._ids_per_recipient(ids, len(chunk), segments)
        return {
            i: RecipientResult(
                notification.recipients[i],
                address,
                SendOutcome.ACCEPTED,
                tuple(ids[n * per_recipient : (n + 1) * per_recipient]) if per_recipient else (),
            )
            for n, (i, address) in enumerate(chunk)
        }

    def _ids_per_recipient(self, ids: Sequence[str], recipients: int, predicted: int) -> int:
        """The service returns one ID per segment, grouped per destination in request order."""
        if len(ids) == predicted * recipients:
            return predicted
        if len(ids) % recipients == 0 and ids:
            log.warning(
                "segment_count_mismatch",
                channel=self.name,
                predicted=predicted,
                returned=len(ids) // recipients,
            )
            return len(ids) // recipients
        # Accepted, but the IDs cannot be told apart per recipient: keep them in the log.
        log.error(
            "message_ids_unattributable",
            channel=self.name,
            message_ids=list(ids),
            recipients=recipients,
        )
        return 0

    # -- status, inbox, balance, statistics ------------------------------------------------------

    def _status(self, state: MessageState) -> MessageStatus:
        info = state_info(state.state)
        return MessageStatus(
            message_id=state.message_id,
            channel=self.name,
            state=info.delivery_state,
            final=state.is_final,
            code=state.state,
            name=state.state_name,
            description=state.description,
            created_at=state.creation_date_utc,
            submitted_at=state.submitted_date_utc,
            reported_at=state.reported_date_utc,
            updated_at=state.time_stamp_utc,
            price=state.price,
        )

    async def status(self, message_ids: Sequence[str]) -> list[MessageStatus]:
        """One GetMessageState per ID (the service answers one segment per call). Every ID is
        checked before any request: a bad one must not leave the others' requests behind."""
        for message_id in message_ids:
            envelopes.format_message_id(message_id)  # raises InvalidInputError
        states = await asyncio.gather(*(self.client.get_message_state(i) for i in message_ids))
        return [self._status(s) for s in states]

    async def inbox(self, since: datetime, until: datetime) -> list[InboundMessage]:
        messages = await self.client.get_incoming_messages(
            since.astimezone(UTC), until.astimezone(UTC)
        )
        return [
            InboundMessage(
                channel=self.name,
                sender=m.source_address,
                recipient=m.destination_address,
                text=m.data,
                received_at=m.created_date_utc,
            )
            for m in sorted(messages, key=lambda m: m.created_date_utc)
        ]

    async def estimate(self, text: str, recipients: int) -> Estimate:
        """The parts, encoding and cost of ``text`` for ``recipients`` numbers (nothing sent)."""
        found = estimate(
            text,
            recipients=recipients,
            price_per_segment=self.settings.price_per_segment,
            currency=self.settings.currency,
        )
        return Estimate(
            channel=self.name,
            segments=found.info.segments,
            characters=found.characters,
            recipients=recipients,
            encoding=found.info.encoding.value,
            cost=found.cost,
            currency=found.currency,
            warnings=tuple(found.warnings()),
            too_long=found.too_long,
        )

    async def balance(self) -> Balance:
        amount = await self.client.get_balance()
        return Balance(channel=self.name, amount=amount, currency=self.settings.currency)

    async def statistics(self, start: datetime, end: datetime) -> Statistics:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        stats = await self.client.get_statistics(start, end)
        return Statistics(
            channel=self.name,
            start=start,
            end=end,
            counts=stats.counts(),
            ratio=stats.delivery_ratio,
        )
