"""The ``smtp`` channel against a real SMTP server on loopback (aiosmtpd), through the public
dispatcher: what arrives, over which security, and what each failure becomes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from notify_devino.config import Config
from notify_devino.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionFailedError,
    InvalidInputError,
    ProviderFaultError,
    RequestTimeoutError,
)
from notify_devino.plugins import PluginManager
from notify_devino.testing import DispatcherFactory
from notify_devino.types import SendOutcome
from notify_devino_smtp.loopback import LoopbackSmtpServer

ServerFactory = Callable[..., Awaitable[LoopbackSmtpServer]]
ConfigMaker = Callable[..., Config]

ALERT = "db-1: диск заполнен на 91%\nfree: 2 GB <check /var>\n"


async def test_plain_text_and_html_arrive_one_message_per_recipient(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    config = email_config(
        smtp_server.channel_settings(
            subject="[{severity}] {first_line}", reply_to="oncall@example.com"
        )
    )
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send(
        ALERT,
        to=["alice@example.com", "Bob@Example.ORG"],
        metadata={"severity": "critical", "notification_id": "n-1"},
    )
    assert result.ok
    assert [len(r.message_ids) for r in result.recipients] == [1, 1]
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ("alice@example.com",),
        ("Bob@Example.ORG",),
    ]
    assert smtp_server.connections == 1  # both over one connection
    first = smtp_server.messages[0]
    assert first.mail_from == "alerts@example.com"
    assert not first.tls
    headers = first.message
    assert headers["From"] == "Alerts <alerts@example.com>"
    assert headers["To"] == "alice@example.com"
    assert headers["Reply-To"] == "oncall@example.com"
    assert headers["Subject"] == "[critical] db-1: диск заполнен на 91%"
    assert headers["Message-ID"] == result.recipients[0].message_ids[0]
    assert headers["X-Notify-Severity"] == "critical"
    assert headers["X-Notify-Notification-Id"] == "n-1"
    assert first.body("plain") == ALERT
    html = first.body("html")
    assert html is not None
    assert "db-1: диск заполнен на 91%<br>\nfree: 2 GB &lt;check /var&gt;" in html
    assert first.data.isascii()  # 7-bit clean on the wire: UTF-8 is encoded


async def test_starttls_with_login(
    make_smtp_server: ServerFactory,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    server = await make_smtp_server(security="starttls", users={"alerts": "s3cret-pass"})
    dispatcher = await notify_dispatcher(email_config(server.channel_settings()), plugins=plugins)
    result = await dispatcher.send("hello", to=["alice@example.com"])
    assert result.ok
    (received,) = server.messages
    assert (received.tls, received.login) == (True, "alerts")


async def test_implicit_tls(
    make_smtp_server: ServerFactory,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    server = await make_smtp_server(security="tls", users={"alerts": "s3cret-pass"})
    dispatcher = await notify_dispatcher(email_config(server.channel_settings()), plugins=plugins)
    assert (await dispatcher.send("hello", to=["alice@example.com"])).ok
    assert [(m.tls, m.login) for m in server.messages] == [(True, "alerts")]


async def test_a_refused_login_fails_every_recipient_with_one_attempt(
    make_smtp_server: ServerFactory,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    server = await make_smtp_server(security="starttls", users={"alerts": "s3cret-pass"})
    config = email_config(server.channel_settings(password="wrong-pass"))
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send("hello", to=["a@example.com", "b@example.com"])
    assert [r.outcome for r in result.recipients] == [SendOutcome.FAILED] * 2
    assert all(isinstance(r.error, AuthenticationError) for r in result.recipients)
    assert result.recipients[0].error.code == "535"  # type: ignore[union-attr]
    assert server.connections == 1  # not retried, and the second recipient did not try again
    assert server.messages == []


async def test_a_certificate_that_is_not_trusted_is_refused_before_anything_is_sent(
    make_smtp_server: ServerFactory,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    server = await make_smtp_server(security="starttls", users={"alerts": "s3cret-pass"})
    settings = server.channel_settings()
    del settings["ca_file"]  # the throw-away CA is not in the system's store
    dispatcher = await notify_dispatcher(email_config(settings), plugins=plugins)
    result = await dispatcher.send("hello", to=["a@example.com"])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.FAILED
    assert isinstance(recipient.error, ConnectionFailedError)
    assert not recipient.error.request_sent
    assert "CERTIFICATE_VERIFY_FAILED" in str(recipient.error)
    assert server.messages == []


async def test_starttls_is_required_when_configured(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    config = email_config(smtp_server.channel_settings(security="starttls"))
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send("hello", to=["a@example.com"])
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(result.recipients[0].error, ConnectionFailedError)
    assert smtp_server.messages == []  # never sent in clear


async def test_a_refused_recipient_fails_alone(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    smtp_server.refuse_recipients["nobody@example.com"] = "550 5.1.1 no such user"
    dispatcher = await notify_dispatcher(
        email_config(smtp_server.channel_settings()), plugins=plugins
    )
    result = await dispatcher.send("x", to=["a@example.com", "nobody@example.com", "b@example.com"])
    assert [r.outcome for r in result.recipients] == [
        SendOutcome.ACCEPTED,
        SendOutcome.FAILED,
        SendOutcome.ACCEPTED,
    ]
    error = result.recipients[1].error
    assert isinstance(error, ProviderFaultError)
    assert (error.code, error.text, error.is_transient()) == ("550", "5.1.1 no such user", False)
    assert [m.rcpt_tos for m in smtp_server.messages] == [("a@example.com",), ("b@example.com",)]
    assert smtp_server.connections == 1  # the connection was reset and kept


async def test_a_refused_message_is_failed_with_the_servers_code(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    smtp_server.refuse_data = "451 4.3.0 try again later"
    dispatcher = await notify_dispatcher(
        email_config(smtp_server.channel_settings()), plugins=plugins
    )
    result = await dispatcher.send("x", to=["a@example.com"])
    error = result.recipients[0].error
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(error, ProviderFaultError)
    assert (error.code, error.is_transient()) == ("451", True)


async def test_a_message_whose_answer_was_lost_is_unknown_and_never_resent(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    smtp_server.drop_after_data = True
    config = email_config(smtp_server.channel_settings(retry={"attempts": 3}))
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send("x", to=["a@example.com", "b@example.com"])
    assert [r.outcome for r in result.recipients] == [SendOutcome.UNKNOWN] * 2
    assert all(isinstance(r.error, ConnectionFailedError) for r in result.recipients)
    assert all(r.error.request_sent for r in result.recipients)  # type: ignore[union-attr]
    # each was taken exactly once: the second went over a new connection, nothing was repeated
    assert [m.rcpt_tos for m in smtp_server.messages] == [("a@example.com",), ("b@example.com",)]
    assert smtp_server.connections == 2


async def test_a_slow_answer_to_the_message_is_unknown(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    smtp_server.data_reply_delay = 3
    config = email_config(smtp_server.channel_settings(timeout_seconds=0.3))
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send("x", to=["a@example.com"])
    error = result.recipients[0].error
    assert result.recipients[0].outcome is SendOutcome.UNKNOWN
    assert isinstance(error, RequestTimeoutError)
    assert error.request_sent
    assert len(smtp_server.messages) == 1


async def test_a_server_that_cannot_be_reached_is_retried_then_fails_everyone_at_once(
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
    unused_tcp_port: int,
) -> None:
    settings = {
        "host": "127.0.0.1",
        "port": unused_tcp_port,
        "security": "none",
        "sender": "alerts@example.com",
        "retry": {"attempts": 3, "wait_initial_seconds": 0.01, "wait_max_seconds": 0.05},
    }
    dispatcher = await notify_dispatcher(email_config(settings), plugins=plugins)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.send("x", to=["a@example.com", "b@example.com"])
    assert [r.outcome for r in result.recipients] == [SendOutcome.FAILED] * 2
    assert all(isinstance(r.error, ConnectionFailedError) for r in result.recipients)
    assert not any(r.error.request_sent for r in result.recipients)  # type: ignore[union-attr]
    retries = [e for e in logs if e["event"] == "retry_scheduled"]
    assert [(e["operation"], e["attempt"]) for e in retries] == [
        ("send_email", 1),
        ("send_email", 2),
    ]


async def test_a_server_that_never_greets_times_out_before_anything_is_sent(
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        settings = {
            "host": "127.0.0.1",
            "port": server.sockets[0].getsockname()[1],
            "security": "none",
            "sender": "alerts@example.com",
            "timeout_seconds": 0.2,
            "retry": {"attempts": 1},
        }
        dispatcher = await notify_dispatcher(email_config(settings), plugins=plugins)
        result = await dispatcher.send("x", to=["a@example.com"])
    finally:
        server.close()
        await server.wait_closed()
    error = result.recipients[0].error
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(error, RequestTimeoutError)
    assert not error.request_sent


async def test_bad_addresses_fail_alone_and_the_same_address_is_sent_once(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(
        email_config(smtp_server.channel_settings()), plugins=plugins
    )
    result = await dispatcher.send(
        "x",
        to=[
            "a@example.com",
            "not an address",
            "a@example.com\r\nBcc: eve@example.com",
            "ops@пример.рф",
            "a@example.com",
        ],
    )
    outcomes = [r.outcome for r in result.recipients]
    assert outcomes == [
        SendOutcome.ACCEPTED,
        SendOutcome.FAILED,
        SendOutcome.FAILED,
        SendOutcome.ACCEPTED,
        SendOutcome.ACCEPTED,
    ]
    assert all(isinstance(r.error, InvalidInputError) for r in result.recipients[1:3])
    assert result.recipients[3].address == "ops@xn--e1afmkfd.xn--p1ai"
    assert result.recipients[4].message_ids == result.recipients[0].message_ids
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ("a@example.com",),
        ("ops@xn--e1afmkfd.xn--p1ai",),
    ]


async def test_a_notification_email_cannot_carry_is_refused_before_any_connection(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(
        email_config(smtp_server.channel_settings()), plugins=plugins
    )
    with pytest.raises(InvalidInputError, match="cannot be held") as info:
        await dispatcher.send(
            "x", to=["a@example.com"], send_at=datetime.now(UTC) + timedelta(hours=1)
        )
    assert info.value.channel == "email"
    with pytest.raises(InvalidInputError, match="'ALERTS' is not an email address"):
        await dispatcher.send("x", to=["a@example.com"], sender="ALERTS")
    with pytest.raises(InvalidInputError, match="cannot be written as an email") as info:
        await dispatcher.send("half a character: \ud800", to=["a@example.com"])
    assert info.value.field == "text"
    assert smtp_server.connections == 0


async def test_the_sender_of_a_notification_replaces_the_configured_one(
    smtp_server: LoopbackSmtpServer,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(
        email_config(smtp_server.channel_settings(html=False)), plugins=plugins
    )
    await dispatcher.send("x", to=["a@example.com"], sender="Ops <ops@example.net>")
    (received,) = smtp_server.messages
    assert received.mail_from == "ops@example.net"
    assert received.message["From"] == "Ops <ops@example.net>"
    assert received.body("html") is None
    assert not received.message.is_multipart()


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"username": "a"}, "give both username and password"),
        ({"username": "a", "password": "b", "security": "none"}, "password in clear"),
        ({"sender": "not an address"}, "channels.email.settings.sender"),
        ({"subject": "{severity} {colour}"}, "template field {colour} is not known"),
        ({"html_template": "<p>{body</p>"}, "malformed"),
        ({"ca_file": "/nonexistent/ca.pem"}, "CA file '/nonexistent/ca.pem' does not exist"),
        ({"security": "ssl"}, "channels.email.settings.security"),
    ],
)
async def test_bad_settings_fail_at_start_with_their_yaml_path(
    plugins: PluginManager,
    notify_config: Callable[..., Config],
    notify_dispatcher: DispatcherFactory,
    settings: dict[str, str],
    fragment: str,
) -> None:
    base = {"host": "127.0.0.1", "sender": "alerts@example.com", **settings}
    config = notify_config({"email": {"type": "smtp", "settings": base}})
    with pytest.raises(ConfigError, match=r"channels\.email\.settings") as info:
        await notify_dispatcher(config, plugins=plugins)
    assert fragment in str(info.value)


async def test_the_password_is_masked_in_every_log_line(
    make_smtp_server: ServerFactory,
    plugins: PluginManager,
    email_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    from notify_devino.logconfig import REDACTED, redact_secrets

    server = await make_smtp_server(security="starttls", users={"alerts": "s3cret-pass"})
    await notify_dispatcher(email_config(server.channel_settings()), plugins=plugins)
    with structlog.testing.capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger("anything").warning("leak", detail="AUTH PLAIN alerts s3cret-pass")
    assert logs[0]["detail"] == f"AUTH PLAIN alerts {REDACTED}"


def test_the_plugin_is_found_through_its_installed_entry_point() -> None:
    manager = PluginManager(autoload=True)
    info = {p.name: p for p in manager.plugins()}["smtp"]
    assert info.distribution == "notify-devino-smtp"
    assert info.channel_types == ("smtp",)
    assert info.hooks == ("notify_register_channel_types", "notify_send")
