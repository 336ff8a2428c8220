"""The ``smtp`` channel: a notification becomes one email per recipient, sent over one SMTP
connection per send (STARTTLS or TLS, and a login, as the settings say).

No aiosmtplib exception leaves this module; each becomes an error of :mod:`notify_devino.errors`
and a per-recipient outcome:

================================================  ============================================
what happened                                     error, outcome
================================================  ============================================
cannot connect, TLS or EHLO fails, no STARTTLS,   ConnectionFailedError / RequestTimeoutError
a refusing greeting, a timeout before MAIL        (request_sent=False): failed, retried
login refused                                     AuthenticationError: failed
connection lost before DATA                       ConnectionFailedError(request_sent=False):
                                                  failed, retried on a new connection
MAIL FROM, RCPT TO or the message refused         ProviderFaultError (``code`` is the SMTP
(4xx or 5xx reply)                                reply code; 4xx is transient): failed
connection lost or timed out during DATA          request_sent=True: **unknown**, never resent
================================================  ============================================

Retries use the core's :class:`~notify_devino.retrying.RetryPolicy` for a non-idempotent
operation: only what proves the message was not taken is retried. A message whose DATA may
have reached the server is never sent again (a duplicate alert wakes someone twice). When the
server cannot be reached or refuses the login, the remaining recipients of the send fail with
the same error at once, without a connection attempt each.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from datetime import UTC, datetime
from email.utils import make_msgid

import aiosmtplib

from notify_devino.errors import (
    AuthenticationError,
    ChannelError,
    ConnectionFailedError,
    InvalidInputError,
    ProviderFaultError,
    RequestTimeoutError,
    UnexpectedError,
    send_outcome_of,
)
from notify_devino.hookspecs import ChannelContext
from notify_devino.logconfig import get_logger, register_secret
from notify_devino.retrying import Attempt, RetryPolicy
from notify_devino.types import Notification, RecipientResult, SendOutcome, SendResult

from . import message as mail
from .settings import SmtpSettings

log = get_logger(__name__)

LABELS = {
    "severity": "Severity",
    "tags": "Tags",
    "route": "Route",
    "notification_id": "Notification-Id",
}
"""Notification metadata copied into ``X-Notify-*`` headers, for mail filters."""


def _refused(what: str, exc: aiosmtplib.SMTPResponseException, channel: str) -> ProviderFaultError:
    return ProviderFaultError(
        f"{what} refused: {exc.code} {exc.message}",
        code=str(exc.code),
        text=exc.message,
        transient=400 <= exc.code < 500,
        channel=channel,
    )


class _Connection:
    """One SMTP connection, opened on first need and again after it was lost."""

    def __init__(self, channel: SmtpChannel) -> None:
        self._channel = channel
        self._smtp: aiosmtplib.SMTP | None = None
        self.connect_error: ChannelError | None = None

    async def _open(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        settings = self._channel.settings
        where = f"{settings.host}:{settings.effective_port}"
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=self._channel.tls_context,
            validate_certs=settings.verify_tls,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            local_hostname=self._channel.helo_name,
            timeout=settings.timeout_seconds,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            self.connect_error = AuthenticationError(
                f"login to {where} refused: {exc.code} {exc.message}",
                code=str(exc.code),
                text=exc.message,
                channel=self._channel.name,
            )
        except TimeoutError as exc:  # SMTPTimeoutError is a TimeoutError
            self.connect_error = RequestTimeoutError(
                f"no answer from {where} within {settings.timeout_seconds} s while connecting: "
                f"{exc}",
                request_sent=False,
                channel=self._channel.name,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            self.connect_error = ConnectionFailedError(
                f"cannot set up SMTP with {where}: {type(exc).__name__}: {exc}",
                request_sent=False,
                channel=self._channel.name,
            )
        else:
            self.connect_error = None
            self._smtp = smtp
            return smtp
        raise self.connect_error

    def drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """Clear a refused transaction so the connection can carry the next message."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.drop()

    async def send(self, envelope_from: str, recipient: str, data: bytes) -> str:
        """One transaction: MAIL, RCPT, DATA. :return: the server's final reply text."""
        smtp = await self._open()
        try:
            await smtp.mail(envelope_from)
            await smtp.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp)
            what = "sender" if isinstance(exc, aiosmtplib.SMTPSenderRefused) else "recipient"
            raise _refused(what, exc, self._channel.name) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # lost before DATA: nothing taken
            self.drop()
            raise ConnectionFailedError(
                f"connection lost before the message was sent: {type(exc).__name__}: {exc}",
                request_sent=False,
                channel=self._channel.name,
            ) from exc
        try:
            response = await smtp.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp)
            raise _refused("message", exc, self._channel.name) from exc
        except TimeoutError as exc:
            self.drop()
            raise RequestTimeoutError(
                f"no answer to the message within {self._channel.settings.timeout_seconds} s",
                request_sent=True,
                channel=self._channel.name,
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.drop()
            raise ConnectionFailedError(
                f"connection lost while sending the message: {type(exc).__name__}: {exc}",
                request_sent=True,
                channel=self._channel.name,
            ) from exc
        return response.message

    async def close(self) -> None:
        if self._smtp is None:
            return
        transport = self._smtp.transport
        try:
            if self._smtp.is_connected:
                await self._smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self.drop()
            if isinstance(transport, asyncio.Transport):
                # The session is over. Over TLS, a plain close waits for the server's
                # close_notify, which a loop that ends next (the command line's) never reads:
                # the socket would be left open. Abort closes it on the loop's next turn.
                transport.abort()


class SmtpChannel:
    """A configured SMTP server, running inside a dispatcher."""

    def __init__(self, context: ChannelContext, settings: SmtpSettings) -> None:
        self.name = context.name
        self.settings = settings
        if settings.password is not None:
            register_secret(settings.password.get_secret_value())
        self.sender = mail.parse_mailbox(settings.sender)
        self.reply_to = mail.parse_mailbox(settings.reply_to) if settings.reply_to else None
        self.tls_context = self._tls_context(settings)
        # socket.gethostname() asks no DNS (aiosmtplib's own default, getfqdn, may wait on one)
        self.helo_name = settings.helo_name or socket.gethostname() or "localhost"
        self.retry = RetryPolicy(settings.retry, channel=self.name)

    @staticmethod
    def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
        if settings.security == "none":
            return None
        context = ssl.create_default_context(cafile=settings.ca_file)
        if not settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def start(self) -> None:
        """Nothing to do: a connection is opened for each send, so a mail server that is down
        does not stop the dispatcher (and its other channels) from starting."""

    async def aclose(self) -> None:
        """Nothing to release: every send closes its own connection."""

    def _check(self, notification: Notification) -> tuple[str, str]:
        if notification.send_at is not None:
            raise InvalidInputError(
                "an email cannot be held until a later time",
                field="send_at",
                value=notification.send_at,
                expected="no send_at",
                channel=self.name,
            )
        if notification.sender is None:
            return self.sender
        try:
            return mail.parse_mailbox(notification.sender)
        except ValueError as exc:
            raise InvalidInputError(
                str(exc), field="sender", value=notification.sender, channel=self.name
            ) from None

    async def send(self, notification: Notification) -> SendResult:
        sender = self._check(notification)
        fields = mail.template_fields(notification.text, notification.metadata, self.name)
        subject = mail.render_subject(self.settings.subject, fields)
        html_body = (
            mail.render_html(self.settings.html_template, fields) if self.settings.html else None
        )
        labels = {
            header: notification.metadata[key]
            for key, header in LABELS.items()
            if notification.metadata.get(key)
        }
        try:  # what cannot be encoded is refused as a whole, before anything is sent
            self._message(
                sender, "probe@example.invalid", subject, notification.text, html_body, labels
            )
        except (UnicodeError, ValueError) as exc:
            raise InvalidInputError(
                f"the notification cannot be written as an email: {exc}",
                field="text",
                channel=self.name,
            ) from None
        connection = _Connection(self)
        done: dict[str, RecipientResult] = {}
        results: list[RecipientResult] = []
        try:
            for recipient in notification.recipients:
                try:
                    address = mail.check_address(recipient)
                except ValueError as exc:
                    error = InvalidInputError(
                        str(exc), field="recipient", value=recipient, channel=self.name
                    )
                    failed = RecipientResult(recipient, recipient, SendOutcome.FAILED, error=error)
                    results.append(failed)
                    continue
                if address not in done:  # the same address twice is sent once
                    done[address] = await self._send_one(
                        connection, sender, address, subject, notification.text, html_body, labels
                    )
                sent = done[address]
                results.append(
                    RecipientResult(recipient, address, sent.outcome, sent.message_ids, sent.error)
                )
        finally:
            await connection.close()
        return SendResult(self.name, notification, tuple(results))

    def _message(
        self,
        sender: tuple[str, str],
        address: str,
        subject: str,
        text: str,
        html_body: str | None,
        labels: dict[str, str],
    ) -> tuple[str, bytes]:
        """One recipient's message: (its Message-ID, its bytes on the wire)."""
        message_id = make_msgid(domain=sender[1].rpartition("@")[2])
        message = mail.build_message(
            sender=sender,
            recipient=address,
            subject=subject,
            text=text,
            html_body=html_body,
            message_id=message_id,
            date=datetime.now(UTC),
            reply_to=self.reply_to,
            labels=labels,
        )
        return message_id, message.as_bytes()

    async def _send_one(
        self,
        connection: _Connection,
        sender: tuple[str, str],
        address: str,
        subject: str,
        text: str,
        html_body: str | None,
        labels: dict[str, str],
    ) -> RecipientResult:
        if connection.connect_error is not None:  # the server cannot be reached: fail the rest
            error = connection.connect_error
            return RecipientResult(address, address, send_outcome_of(error), error=error)
        try:
            message_id, data = self._message(sender, address, subject, text, html_body, labels)
        except (UnicodeError, ValueError) as exc:  # nothing was sent for this one
            error = InvalidInputError(str(exc), field="recipient", value=address, channel=self.name)
            return RecipientResult(address, address, SendOutcome.FAILED, error=error)
        started = time.perf_counter()

        async def exchange(attempt: Attempt) -> str:
            return await connection.send(sender[1], address, data)

        try:
            reply = await self.retry.call("send_email", exchange, idempotent=False)
        except ChannelError as exc:
            outcome = send_outcome_of(exc)
            log.warning(
                "email_outcome_unknown" if outcome is SendOutcome.UNKNOWN else "email_failed",
                channel=self.name,
                error=type(exc).__name__,
                code=getattr(exc, "code", None),
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return RecipientResult(address, address, outcome, error=exc)
        except Exception as exc:  # a bug must not lose what the others were told
            log.exception("email_outcome_unknown", channel=self.name)
            connection.drop()
            unknown = UnexpectedError.of(exc, channel=self.name)
            return RecipientResult(address, address, SendOutcome.UNKNOWN, error=unknown)
        log.info(
            "email_sent",
            channel=self.name,
            message_id=message_id,
            reply=reply,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return RecipientResult(address, address, SendOutcome.ACCEPTED, (message_id,))
