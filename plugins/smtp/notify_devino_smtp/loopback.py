"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd, served by the running event loop.

It keeps every message it takes, can require STARTTLS or TLS (with a certificate from a
throw-away CA made by trustme) and a login, and can misbehave on purpose: refuse recipients,
refuse messages, or take a message and drop the connection before answering. Needs the
plugin's ``test`` extra (``pip install 'notify-devino-smtp[test]'``)::

    async with LoopbackSmtpServer(security="starttls", users={"alerts": "s3cret"}) as server:
        config = {"type": "smtp", "settings": server.channel_settings()}
        ...
        assert server.messages[0].message["Subject"] == "db-1 down"
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, cast

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the server took.

    :param mail_from: the envelope sender (MAIL FROM).
    :param rcpt_tos: the envelope recipients (RCPT TO).
    :param data: the message as received, byte for byte.
    :param login: the user the client logged in as, or None.
    :param tls: whether the connection was encrypted when the message came.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    tls: bool
    message: EmailMessage = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", message_from_bytes(self.data, policy=policy.default))

    def body(self, subtype: str = "plain") -> str | None:
        """The decoded ``text/<subtype>`` part with ``\n`` line ends, or None."""
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_subtype() != subtype:
            return None
        return str(cast(EmailMessage, part).get_content()).replace("\r\n", "\n")


class _Handler:
    def __init__(self, server: LoopbackSmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.server.users and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self.server.refuse_recipients.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.refuse_data is not None:
            return self.server.refuse_data
        transport = cast(asyncio.Transport | None, server.transport)
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        login = session.auth_data.login.decode() if session.auth_data is not None else None
        self.server.messages.append(
            ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                login=login,
                tls=tls,
            )
        )
        if self.server.drop_after_data and transport is not None:
            transport.abort()  # took it, and the client never hears so
        if self.server.data_reply_delay:
            await asyncio.sleep(self.server.data_reply_delay)
        return f"250 2.0.0 OK queued as {len(self.server.messages)}"


class LoopbackSmtpServer:
    """An SMTP server on 127.0.0.1 and a free port.

    :param security: ``none``; ``starttls`` (offered and required before MAIL); or ``tls``
        (TLS from the first byte).
    :param users: login -> password; when given, a login is required (over TLS only).
    :ivar messages: every message taken, in order.
    :ivar refuse_recipients: address -> the reply to its RCPT TO (``"550 5.1.1 no such user"``).
    :ivar refuse_data: when set, the reply to every message (``"554 5.6.0 rejected"``).
    :ivar drop_after_data: take each message, then drop the connection without answering.
    :ivar data_reply_delay: seconds to wait before answering a message (after taking it).
    :ivar connections: how many connections were made.
    """

    host = "127.0.0.1"

    def __init__(self, *, security: Security = "none", users: Mapping[str, str] | None = None):
        if users and security == "none":
            raise ValueError("a login needs TLS: use security='starttls' or 'tls'")
        self.security = security
        self.users = dict(users or {})
        self.messages: list[ReceivedMessage] = []
        self.refuse_recipients: dict[str, str] = {}
        self.refuse_data: str | None = None
        self.drop_after_data = False
        self.data_reply_delay = 0.0
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []
        self._folder = Path(tempfile.mkdtemp(prefix="notify-smtp-"))
        self.ca_file: str | None = None
        self._tls: ssl.SSLContext | None = None
        if security != "none":
            ca = trustme.CA()
            ca.issue_cert(self.host, "localhost").configure_cert(
                context := ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            )
            self._tls = context
            ca.cert_pem.write_to_path(str(self._folder / "ca.pem"))
            self.ca_file = str(self._folder / "ca.pem")

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _protocol(self) -> SMTP:
        self.connections += 1
        protocol = SMTP(
            _Handler(self),
            hostname="mx.loopback.test",
            ident="notify-devino loopback SMTP",
            tls_context=self._tls if self.security == "starttls" else None,
            require_starttls=self.security == "starttls",
            # A login is required (handle_MAIL refuses mail without one); over implicit TLS,
            # aiosmtpd cannot tell the connection is encrypted, so it is told not to check.
            auth_require_tls=self.security == "starttls",
            authenticator=self._authenticate if self.users else None,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.append(protocol)
        return protocol

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, self.host, 0, ssl=self._tls if self.security == "tls" else None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for protocol in self._protocols:
                transport = cast(asyncio.Transport | None, protocol.transport)
                if transport is not None:
                    transport.abort()
            await self._server.wait_closed()
            self._server = None
        shutil.rmtree(self._folder, ignore_errors=True)

    async def __aenter__(self) -> LoopbackSmtpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def channel_settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings of an ``smtp`` channel that sends to this server (and logs in as its first
        user, if it has any)."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "sender": "Alerts <alerts@example.com>",
            "timeout_seconds": 5,
            "retry": {"attempts": 2, "wait_initial_seconds": 0.01},
        }
        if self.ca_file is not None:
            settings["ca_file"] = self.ca_file
        if self.users:
            settings["username"], settings["password"] = next(iter(self.users.items()))
        return {**settings, **overrides}
