"""The Devino SmsService client: one async method per SOAP operation.

A :class:`DevinoClient` runs on an ``aiohttp.ClientSession`` it is given (it never creates or
closes one). Each method checks its inputs with :mod:`.rules` before any request, takes a session
ID from its :class:`~.session.SessionKeeper`, builds the envelope (:mod:`.envelopes`), holds a
slot of the account's rate limiter (:mod:`.ratelimit`) for one HTTP exchange, and reads the reply
(:mod:`.parsing`).

Errors are those of :mod:`notify_devino.errors`, with the client's channel name on them; no
aiohttp exception leaves this module (the transport rows are :mod:`notify_devino.transport`,
shared with every HTTP channel):

==========================================  =================================================
what happened                               error
==========================================  =================================================
no connection (refused, DNS, TLS)           ConnectionFailedError(request_sent=False)
timed out (the total ``timeout``; aiohttp   RequestTimeoutError(request_sent=True)
cannot tell whether the request went out)
aiohttp's own connect timeout, if raised    RequestTimeoutError(request_sent=False)
disconnect / OS error / bad payload after   ConnectionFailedError(request_sent=True)
the request was written
HTTP 429 / 503                              RateLimitedError(retry_after=Retry-After)
SOAP fault                                  by parsing.FAULT_RULES (auth, session, funds, rate,
                                            else ProviderFaultError)
other non-200                               ProviderFaultError(http_status=...)
a 200 that is not SOAP (HTML, JSON, text,   ParseError(transient=True), naming the operation,
empty, a foreign content type)              the URL, the status and what it answered
a reply over ``max_reply_bytes`` (decoded,  ParseError, refused as soon as the count passes the
or by its declared Content-Length)          cap
unreadable, or of the wrong shape (a send   ParseError: a send's outcome is then unknown
without message IDs among them)
==========================================  =================================================

Retries (:class:`notify_devino.retrying.RetryPolicy`, built once per client from a
:class:`~notify_devino.retrying.RetrySettings`, copied per call): read-only operations retry
whatever ``is_transient()`` says is transient; the three sends, under the default
``send_policy: at_most_once``, retry only what proves the request was not processed: a
connection never made (``request_sent=False``), a rate-limit refusal, a fault the service marks
as temporary. A send that timed out or lost its connection after the request was written, or
whose reply could not be read, is never resent: it surfaces with the error (the outcome is
unknown). ``send_policy: at_least_once`` resends those too. A ``Retry-After`` longer than
``retry.wait_max_seconds`` is not waited for; the error surfaces with its ``retry_after``.

Every error leaving the client carries the ``operation`` whose request failed, so a caller can
tell a failed login before a send (nothing sent) from a failed send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import aiohttp
import yarl

from notify_devino.departure import departing, returned
from notify_devino.errors import (
    ChannelError,
    InvalidInputError,
    ParseError,
    RequestTimeoutError,
)
from notify_devino.limits import RateLimiter
from notify_devino.logconfig import get_logger, redact_error, register_secret
from notify_devino.retrying import Attempt, RetryPolicy, RetrySettings, SendAttempts
from notify_devino.transport import transport_errors
from notify_devino.types import utc_now

from . import envelopes, parsing, rules
from .envelopes import SoapRequest, SoapVersion
from .models import DevinoStatistics, IncomingMessage, MessageState
from .ratelimit import account_limiter
from .session import DEFAULT_LIFETIME, DEFAULT_MARGIN, SessionKeeper

log = get_logger(__name__)

T = TypeVar("T")

DEFAULT_URL = "https://ws.devinotele.com/SmsService.asmx"
_CHUNK = 64 * 1024

READ_ONLY_OPERATIONS = frozenset(
    {"GetSessionID", "GetBalance", "GetMessageState", "GetStatistics", "GetIncomingMessages"}
)
SEND_OPERATIONS = frozenset(
    {"SendMessage", "SendMessageByTimeZone", "SendMessageByTimeZoneToAddresses"}
)


class _Reply(NamedTuple):
    """What one HTTP exchange brought back."""

    status: int
    body: bytearray
    retry_after: str | None
    content_type: str | None
    location: str | None
    """The ``Location`` of a redirect (3xx), else None."""


class _Stamp:
    """Puts the channel name (and the operation, when given) on a ChannelError passing through,
    and masks any registered secret in its texts (a fault that echoes the session ID). A plain
    class: it wraps every call, several times, and a generator-based context manager
    costs several times as much (``python -m benchmarks cpu`` measures the whole call)."""

    __slots__ = ("_channel", "_operation")

    def __init__(self, channel: str | None, operation: str | None) -> None:
        self._channel = channel
        self._operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, ChannelError):
            redact_error(exc)  # a fault that echoes the session ID or the password
            if exc.channel is None:
                exc.channel = self._channel
            if exc.operation is None and self._operation is not None:
                exc.operation = self._operation


def _utc(moment: datetime, *, field: str) -> datetime:
    """An aware datetime in UTC; a naive one (or a non-datetime) is an InvalidInputError."""
    envelopes.format_utc(moment, field=field)  # refuses naive values with the standard error
    return moment.astimezone(UTC)


def _widen(low: datetime, high: datetime) -> tuple[datetime, datetime]:
    """A query range on whole seconds, never narrower than asked: the wire carries whole
    seconds, and cutting the fraction off the upper bound would miss what happened in its
    last second (a message received at 12:00:00.300 with ``until`` = 12:00:00.500)."""
    low = low.replace(microsecond=0)
    if high.microsecond:
        high = high.replace(microsecond=0) + timedelta(seconds=1)
    return low, high


class DevinoClient:
    """A client of the Devino SmsService SOAP API.

    :param session: the aiohttp session to send on; the client never closes it.
    :param url: the service endpoint (``https://ws.devinotele.com/SmsService.asmx``).
    :param login: the account login.
    :param password: the account password; never logged, never in an error.
    :param soap_version: ``"1.2"`` (default) or ``"1.1"``.
    :param timeout: seconds for one whole HTTP exchange (connect, send, read).
    :param retry: attempts, backoff, deadline and send policy; None is ``RetrySettings()``.
    :param rate_limit: requests per second, at most, in any one-second window, for the account
        (every client of the same ``url`` and ``login`` in the process shares one limiter).
    :param limiter: the account's limiter, given instead (one shared by several processes,
        :mod:`notify_devino.limits`); it must keep the same rule. ``rate_limit`` is then unused.
    :param max_reply_bytes: replies larger than this are refused (ParseError).
    :param clock: returns the current time as an aware UTC datetime (session expiry).
    :param channel: the configured channel name, put on every error.
    :param session_lifetime: how long the service keeps a session (120 minutes).
    :param session_margin: how long before its end a session is replaced (5 minutes).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str = DEFAULT_URL,
        login: str,
        password: str,
        soap_version: SoapVersion = "1.2",
        timeout: float = 30.0,
        retry: RetrySettings | None = None,
        rate_limit: float = 10,
        max_reply_bytes: int = parsing.DEFAULT_MAX_REPLY_BYTES,
        clock: Callable[[], datetime] | None = None,
        channel: str | None = None,
        session_lifetime: timedelta = DEFAULT_LIFETIME,
        session_margin: timedelta = DEFAULT_MARGIN,
        limiter: RateLimiter | None = None,
    ) -> None:
        parsed = yarl.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"Devino URL must be an http(s) URL with a host, not {url!r}")
        if soap_version not in envelopes.SOAP_NAMESPACES:
            raise ValueError(f"soap_version must be '1.1' or '1.2', not {soap_version!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_reply_bytes < 1:
            raise ValueError("max_reply_bytes must be positive")
        self._http = session
        self._url = parsed
        self._shown_url = str(parsed.with_user(None).with_query(None).with_fragment(None))
        """The URL as errors show it: no credentials, no query."""
        self._login_name = login
        self._password = password
        register_secret(password)
        self.soap_version: SoapVersion = soap_version
        self.channel = channel
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_reply_bytes = max_reply_bytes
        self.limiter: RateLimiter = (
            limiter if limiter is not None else account_limiter(str(parsed), login, rate_limit)
        )
        self.sessions = SessionKeeper(
            self._fresh_login,
            lifetime=session_lifetime,
            margin=session_margin,
            channel=channel,
            clock=clock if clock is not None else utc_now,
        )
        self.retry = RetryPolicy(retry if retry is not None else RetrySettings(), channel=channel)

    def __repr__(self) -> str:
        return (
            f"<DevinoClient channel={self.channel!r} url={str(self._url)!r} "
            f"soap={self.soap_version}>"
        )

    # -- one exchange ---------------------------------------------------------------------------

    def _stamped(self, operation: str | None = None) -> _Stamp:
        """Put the channel name (and the operation, if given) on every ChannelError passing
        through."""
        return _Stamp(self.channel, operation)

    def _shown_redirect(self, location: str | None) -> str | None:
        """Where a redirect points, as errors show it: absolute, without credentials or
        query (it is never followed: a send must reach the URL it was configured with)."""
        if location is None:
            return None
        try:
            target = self._url.join(yarl.URL(location))
            return str(target.with_user(None).with_query(None).with_fragment(None))
        except (ValueError, TypeError):
            return "a location that is not a URL"

    async def _read_body(self, resp: aiohttp.ClientResponse, operation: str) -> bytearray:
        """The reply's body, decoded, refused as soon as it passes the cap.

        The cap holds on decoded bytes: ``resp.content`` streams what aiohttp has already
        inflated (gzip, deflate, br), in bounded steps, so a reply of 1 MiB that inflates to
        1 GiB costs no more than the cap. A declared ``Content-Length`` over the cap is refused
        before anything is read. The body grows in one buffer (no list of chunks joined at the
        end, which would hold it twice)."""
        limit = self._max_reply_bytes
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise ParseError(
                f"{operation}: reply declares {declared} bytes, more than the cap of {limit} "
                "(max_reply_bytes); refused unread"
            )
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            if len(body) + len(chunk) > limit:
                encoding = resp.headers.get("Content-Encoding")
                inflated = f", inflated from Content-Encoding {encoding}" if encoding else ""
                raise ParseError(
                    f"{operation}: reply is larger than {limit} bytes (max_reply_bytes; "
                    f"counted decoded{inflated}); cut off at the cap"
                )
            body += chunk
        return body

    async def _post(
        self,
        request: SoapRequest,
        timeout: float,  # noqa: ASYNC109 - aiohttp's own per-request timeout, mapped below
        on_answer: Callable[[], None] | None = None,
    ) -> _Reply:
        """One HTTP exchange. aiohttp errors become ours.

        :param on_answer: called when the reply's status line and headers have arrived.
        """
        with transport_errors(what=request.operation, host=self._url.host, timeout=timeout):
            async with self._http.post(
                self._url,
                data=request.body,
                headers=request.headers,
                timeout=(
                    self._client_timeout
                    if timeout == self._timeout
                    else aiohttp.ClientTimeout(total=timeout)
                ),
                allow_redirects=False,
            ) as resp:
                if on_answer is not None:
                    on_answer()
                body = await self._read_body(resp, request.operation)
                headers = resp.headers
                return _Reply(
                    resp.status,
                    body,
                    headers.get("Retry-After"),
                    headers.get("Content-Type"),
                    headers.get("Location") if 300 <= resp.status < 400 else None,
                )

    async def _exchange(self, request: SoapRequest, attempt: Attempt) -> Any:
        """Hold a rate-limit slot for one exchange, return the ``<Op>Result`` node; log one
        event."""
        started = time.perf_counter()
        status: int | None = None
        outcome = "interrupted"
        announced = False

        async def announce() -> None:
            nonlocal announced
            await departing()
            announced = True

        try:
            with self._stamped(request.operation):
                # A send announces its departure as its slot nears, so the caller's record of
                # it overlaps the wait; one refused unprocessed is given back below.
                before = announce if request.operation in SEND_OPERATIONS else None
                async with self.limiter.slot(before=before) as slot:
                    started = time.perf_counter()
                    timeout = attempt.start(self._timeout)
                    if timeout is None:
                        raise RequestTimeoutError(
                            f"{request.operation}: the retry deadline passed before the request "
                            "could be sent",
                            request_sent=False,
                        )
                    reply = await self._post(request, timeout, on_answer=slot.answered)
                status = reply.status
                result = parsing.read_result(
                    reply.body,
                    operation=request.operation,
                    http_status=status,
                    retry_after=reply.retry_after,
                    max_bytes=self._max_reply_bytes,
                    content_type=reply.content_type,
                    url=self._shown_url,
                    redirect=self._shown_redirect(reply.location),
                )
                del reply  # a reply of megabytes is not kept while the result is read
            outcome = "ok"
            return result
        except ChannelError as exc:
            outcome = type(exc).__name__
            if announced and not exc.may_have_been_processed():
                await returned()  # nothing of it is out: the recipients wait for the retry
            raise
        finally:
            log.info(
                "soap_call",
                channel=self.channel,
                operation=request.operation,
                soap_version=request.soap_version,
                attempt=attempt.number,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                outcome=outcome,
                http_status=status,
            )

    async def _with_retries(
        self, request: SoapRequest, attempts: SendAttempts | None = None
    ) -> Any:
        return await self.retry.call(
            request.operation,
            lambda attempt: self._exchange(request, attempt),
            idempotent=request.operation not in SEND_OPERATIONS,
            attempts=attempts,
        )

    async def _session_call(
        self, build: Callable[[str], SoapRequest], read: Callable[[Any], T]
    ) -> T:
        """Run one operation with a session ID (renewed, at most twice, on a session fault).
        A send's attempts are remembered across the renewals: one that may have been processed
        before a session fault still makes the outcome unknown."""
        attempts = SendAttempts()

        async def once(session_id: str) -> T:
            request = build(session_id)
            result = await self._with_retries(request, attempts)
            with self._stamped(request.operation):
                return read(result)

        try:
            with self._stamped():
                return await self.sessions.call(once)
        except ChannelError as final:
            settled = attempts.settle(final)
            if settled is final:
                raise
            raise settled  # noqa: B904 - its own cause (the lost reply) is what matters

    async def _fresh_login(self) -> str:
        request = envelopes.build_get_session_id(
            self._login_name, self._password, soap_version=self.soap_version
        )
        result = await self._with_retries(request)
        with self._stamped(request.operation):
            return parsing.session_id_from(result)

    # -- operations -----------------------------------------------------------------------------

    async def get_session_id(self) -> str:
        """``GetSessionID``: a fresh login. Returns a new session ID; the client's own held
        session is not touched (the other methods manage theirs)."""
        with self._stamped():
            return await self._fresh_login()

    async def get_balance(self) -> Decimal:
        """``GetBalance``: the account balance, overdraft included."""
        return await self._session_call(
            lambda sid: envelopes.build_get_balance(sid, soap_version=self.soap_version),
            parsing.balance_from,
        )

    def _destinations(self, destinations: Sequence[str]) -> list[str]:
        if isinstance(destinations, str) or not isinstance(destinations, Sequence):
            raise InvalidInputError(
                "destinations must be a sequence of numbers, not one string",
                field="recipients",
                value=destinations,
                expected="a list of phone numbers",
            )
        rules.check_address_count(destinations)
        return [rules.normalize_phone(number) for number in destinations]

    @staticmethod
    def _text(data: str) -> str:
        return envelopes.check_xml_text(rules.check_text(data), field="text")

    async def send_message(
        self,
        *,
        source: str,
        destinations: Sequence[str],
        data: str,
        delay_until_utc: datetime | None = None,
        validity: int | None = None,
        receipt_requested: bool = True,
    ) -> list[str]:
        """``SendMessage``: one text to up to 1000 numbers, now or at an absolute moment.

        :param delay_until_utc: an aware moment to send at; None sends now.
        :param validity: minutes the service keeps trying; None is the default (2880).
        :return: the message IDs, one per segment per destination, in the service's order.
        """
        with self._stamped():
            sender = rules.check_sender(source)
            numbers = self._destinations(destinations)
            text = self._text(data)
            minutes = rules.check_validity(validity)
            delay = (
                None if delay_until_utc is None else _utc(delay_until_utc, field="delay_until_utc")
            )
            receipt = bool(receipt_requested)
        return await self._session_call(
            lambda sid: envelopes.build_send_message(
                sid,
                source=sender,
                destinations=numbers,
                data=text,
                delay_until_utc=delay,
                receipt_requested=receipt,
                validity=minutes,
                soap_version=self.soap_version,
            ),
            lambda result: parsing.message_ids_from(result, operation="SendMessage"),
        )

    async def send_message_by_time_zone(
        self,
        *,
        source: str,
        destination: str,
        data: str,
        send_date: datetime,
        validity: int | None = None,
    ) -> list[str]:
        """``SendMessageByTimeZone``: one text to one number at a wall-clock time of the
        recipient's own time zone.

        :param send_date: a naive datetime, read by the service as the recipient's local time.
        :return: the message IDs, one per segment.
        """
        with self._stamped():
            sender = rules.check_sender(source)
            number = rules.normalize_phone(destination)
            text = self._text(data)
            envelopes.format_local(send_date, field="send_date")
            minutes = rules.check_validity(validity)
        return await self._session_call(
            lambda sid: envelopes.build_send_message_by_time_zone(
                sid,
                source=sender,
                destination=number,
                data=text,
                send_date=send_date,
                validity=minutes,
                soap_version=self.soap_version,
            ),
            lambda result: parsing.message_ids_from(result, operation="SendMessageByTimeZone"),
        )

    async def send_message_by_time_zone_to_addresses(
        self,
        *,
        source: str,
        destinations: Sequence[str],
        data: str,
        send_date: datetime,
        validity: int | None = None,
    ) -> list[str]:
        """``SendMessageByTimeZoneToAddresses``: one text to up to 1000 numbers, each at a
        wall-clock time of its own time zone.

        :param send_date: a naive datetime, read as each recipient's local time.
        :return: the message IDs, one per segment per destination, in the service's order.
        """
        with self._stamped():
            sender = rules.check_sender(source)
            numbers = self._destinations(destinations)
            text = self._text(data)
            envelopes.format_local(send_date, field="send_date")
            minutes = rules.check_validity(validity)
        return await self._session_call(
            lambda sid: envelopes.build_send_message_by_time_zone_to_addresses(
                sid,
                source=sender,
                destinations=numbers,
                data=text,
                send_date=send_date,
                validity=minutes,
                soap_version=self.soap_version,
            ),
            lambda result: parsing.message_ids_from(
                result, operation="SendMessageByTimeZoneToAddresses"
            ),
        )

    async def get_message_state(self, message_id: int | str) -> MessageState:
        """``GetMessageState`` of one message (segment) ID, a positive 64-bit integer."""
        with self._stamped():
            wire_id = envelopes.format_message_id(message_id)
        return await self._session_call(
            lambda sid: envelopes.build_get_message_state(
                sid, wire_id, soap_version=self.soap_version
            ),
            lambda result: parsing.message_state_from(result, message_id=wire_id),
        )

    async def get_statistics(self, start: datetime, end: datetime) -> DevinoStatistics:
        """``GetStatistics`` between two aware moments at most 3 months apart (widened to whole
        seconds: the wire carries no fractions)."""
        with self._stamped():
            start_utc = _utc(start, field="start")
            end_utc = _utc(end, field="end")
            rules.check_statistics_range(start_utc, end_utc)
            start_utc, end_utc = _widen(start_utc, end_utc)
        return await self._session_call(
            lambda sid: envelopes.build_get_statistics(
                sid, start_utc, end_utc, soap_version=self.soap_version
            ),
            parsing.statistics_from,
        )

    async def get_incoming_messages(
        self, min_date_utc: datetime, max_date_utc: datetime
    ) -> list[IncomingMessage]:
        """``GetIncomingMessages`` received between two aware moments, bounds included (widened
        to whole seconds: the wire carries no fractions). The caller should expect a message
        on a boundary second to come back in two adjacent polls."""
        with self._stamped():
            low = _utc(min_date_utc, field="min_date_utc")
            high = _utc(max_date_utc, field="max_date_utc")
            if high < low:
                raise InvalidInputError(
                    f"incoming-messages range ends ({high.isoformat()}) before it starts "
                    f"({low.isoformat()})",
                    field="range",
                    expected="min_date_utc not after max_date_utc",
                )
            low, high = _widen(low, high)
        return await self._session_call(
            lambda sid: envelopes.build_get_incoming_messages(
                sid, min_date_utc=low, max_date_utc=high, soap_version=self.soap_version
            ),
            parsing.incoming_messages_from,
        )


__all__ = ["DEFAULT_URL", "READ_ONLY_OPERATIONS", "SEND_OPERATIONS", "DevinoClient"]
