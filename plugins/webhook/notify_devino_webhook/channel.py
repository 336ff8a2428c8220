"""The ``webhook`` channel: one signed JSON POST per recipient.

The body (UTF-8 JSON)::

    {"version": 1, "id": "<idempotency key>", "notification_id": "...", "channel": "hooks",
     "recipient": "ops-bot", "text": "db-1 is down", "sender": null,
     "metadata": {"severity": "critical", ...}, "created_at": "2026-11-28T20:00:00+00:00"}

is the same on every attempt; each attempt gets a fresh timestamp and signature
(:mod:`.signing`). A 2xx answer means the receiver took it. A recipient's address in the result
is its name, never the URL (webhook URLs often hold a token).

No aiohttp exception leaves this module:

=========================================  =================================================
what happened                              error, outcome
=========================================  =================================================
no connection (refused, DNS, TLS)          ConnectionFailedError(request_sent=False): failed
timed out connecting                       RequestTimeoutError(request_sent=False): failed
no answer in time, connection lost after   RequestTimeoutError / ConnectionFailedError
the request was written                    (request_sent=True): unknown
429, or 503 with a Retry-After             RateLimitedError(retry_after): failed
401 / 403                                  AuthenticationError: failed
other 3xx / 4xx (redirects not followed)   ProviderFaultError(http_status): failed
other 5xx                                  ProviderFaultError (transient): unknown
=========================================  =================================================

Retries use the core's :class:`~notify_devino.retrying.RetryPolicy`. A POST is a send: by default
only what proves the receiver did not process it (no connection, 429, 503 with Retry-After) is
retried. With ``receiver_deduplicates: true`` the receivers promise to process an
``Idempotency-Key`` once, so a timeout or a 5xx is retried too: delivery becomes at-least-once
on the wire and exactly-once at the receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yarl

from notify_devino.errors import (
    AuthenticationError,
    ChannelError,
    InvalidInputError,
    ProviderFaultError,
    RateLimitedError,
    UnexpectedError,
    send_outcome_of,
)
from notify_devino.hookspecs import ChannelContext
from notify_devino.logconfig import get_logger, register_secret
from notify_devino.retrying import Attempt, RetryPolicy
from notify_devino.transport import parse_retry_after, transport_errors
from notify_devino.types import Notification, RecipientResult, SendOutcome, SendResult

from .settings import SECRET_HEADER_WORDS, WebhookSettings
from .signing import signed_headers

log = get_logger(__name__)

PAYLOAD_VERSION = 1
_ERROR_BODY_BYTES = 2048


def idempotency_key(notification_id: str, channel: str, recipient: str) -> str:
    """The same for every attempt, and every resend, of one notification to one recipient."""
    digest = hashlib.sha256(f"{notification_id}\0{channel}\0{recipient}".encode())
    return digest.hexdigest()[:32]


class WebhookChannel:
    """Configured webhook targets, running inside a dispatcher."""

    def __init__(self, context: ChannelContext, settings: WebhookSettings) -> None:
        self.name = context.name
        self.settings = settings
        self._http = context.session
        self._secret = settings.secret.get_secret_value()
        register_secret(self._secret)
        for name, value in settings.headers.items():
            if any(word in name.lower() for word in SECRET_HEADER_WORDS):
                register_secret(value)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self.retry = RetryPolicy(settings.retry, channel=self.name)

    async def start(self) -> None:
        """Nothing to do: the dispatcher owns the HTTP session."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def url_for(self, recipient: str) -> str:
        """The URL a recipient's webhook goes to.

        :raises InvalidInputError: the recipient is no target and there is no ``url``.
        """
        url = self.settings.targets.get(recipient, self.settings.url)
        if url is None:
            raise InvalidInputError(
                f"{recipient!r} is not a webhook target of channel {self.name!r}",
                field="recipient",
                value=recipient,
                expected="one of " + ", ".join(sorted(self.settings.targets)),
                channel=self.name,
            )
        return url

    async def send(self, notification: Notification) -> SendResult:
        if notification.send_at is not None:
            raise InvalidInputError(
                "a webhook cannot be held until a later time",
                field="send_at",
                value=notification.send_at,
                expected="no send_at",
                channel=self.name,
            )
        try:  # what JSON in UTF-8 cannot carry is refused as a whole, before anything is sent
            json.dumps(
                [notification.text, notification.sender, dict(notification.metadata)],
                ensure_ascii=False,
            ).encode()
        except (UnicodeError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"the notification cannot be written as JSON: {exc}",
                field="text",
                channel=self.name,
            ) from None
        notification_id = notification.metadata.get("notification_id") or uuid.uuid4().hex
        created_at = datetime.now(UTC).isoformat()
        unique = list(dict.fromkeys(notification.recipients))  # the same target twice: once

        async def one(recipient: str) -> RecipientResult:
            try:
                url = self.url_for(recipient)
            except InvalidInputError as exc:
                return RecipientResult(recipient, recipient, SendOutcome.FAILED, error=exc)
            key = idempotency_key(notification_id, self.name, recipient)
            payload = {
                "version": PAYLOAD_VERSION,
                "id": key,
                "notification_id": notification_id,
                "channel": self.name,
                "recipient": recipient,
                "text": notification.text,
                "sender": notification.sender,
                "metadata": dict(notification.metadata),
                "created_at": created_at,
            }
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            return await self._deliver(recipient, url, key, body)

        done = dict(zip(unique, await asyncio.gather(*(one(r) for r in unique)), strict=True))
        return SendResult(self.name, notification, tuple(done[r] for r in notification.recipients))

    async def _deliver(self, recipient: str, url: str, key: str, body: bytes) -> RecipientResult:
        started = time.perf_counter()

        async def exchange(attempt: Attempt) -> int:
            async with self._slots:
                return await self._post(url, key, body)

        try:
            status = await self.retry.call(
                "post", exchange, idempotent=self.settings.receiver_deduplicates
            )
        except ChannelError as exc:
            outcome = send_outcome_of(exc)
            log.warning(
                "webhook_outcome_unknown" if outcome is SendOutcome.UNKNOWN else "webhook_failed",
                channel=self.name,
                idempotency_key=key,
                error=type(exc).__name__,
                http_status=getattr(exc, "http_status", None),
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return RecipientResult(recipient, recipient, outcome, error=exc)
        except Exception as exc:  # a bug here must not lose what the other recipients were told
            log.exception("webhook_outcome_unknown", channel=self.name, idempotency_key=key)
            unknown = UnexpectedError.of(exc, channel=self.name)
            return RecipientResult(recipient, recipient, SendOutcome.UNKNOWN, error=unknown)
        log.info(
            "webhook_sent",
            channel=self.name,
            idempotency_key=key,
            http_status=status,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return RecipientResult(recipient, recipient, SendOutcome.ACCEPTED, (key,))

    async def _post(self, url: str, key: str, body: bytes) -> int:
        """One signed POST; :return: its 2xx status. aiohttp errors become ours."""
        headers = {
            **self.settings.headers,
            "Content-Type": "application/json; charset=utf-8",
            **signed_headers(self._secret, body, idempotency_key=key),
        }
        host = yarl.URL(url).host
        with transport_errors(
            what="POST", host=host, timeout=self.settings.timeout_seconds, channel=self.name
        ):
            async with self._http.post(
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return resp.status
                text = (await resp.content.read(_ERROR_BODY_BYTES)).decode("utf-8", "replace")
                raise self._refusal(resp.status, resp.headers.get("Retry-After"), text)

    def _refusal(self, status: int, retry_after: str | None, text: str) -> ChannelError:
        wait = parse_retry_after(retry_after)
        message = f"the receiver answered HTTP {status}: {text[:200]}".rstrip(": ")

        def refusal(cls: type[ProviderFaultError], **more: Any) -> ProviderFaultError:
            return cls(
                message, http_status=status, raw=text, channel=self.name, operation="POST", **more
            )

        if status == 429 or (status == 503 and wait is not None):
            return refusal(RateLimitedError, retry_after=wait)
        if status in (401, 403):
            return refusal(AuthenticationError, text=text)
        # An HTTP error status is no refusal the receiver defined: a 5xx says nothing of whether
        # it processed the request (``text`` stays None, so the core treats it as a bare
        # server error: transient, and possibly processed).
        return refusal(ProviderFaultError, transient=status >= 500)
