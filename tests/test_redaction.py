"""No secret surfaces: not in a log line (JSON or console, a traceback with its locals
included), not in a repr, str or dump of the configuration, not in an error text, not in what
the command line prints. Each path is driven for real and the secret string searched for in
everything it produced.

The Devino paths run against the sandbox over loopback; two seams are ours and forced, because
no real peer produces them on demand: a parser bug (an unexpected exception inside a send, its
frames holding the session ID) and a provider fault that echoes the caller's session ID.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from notify_devino.cli import to_jsonable
from notify_devino.config import load_config, parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import ConfigError
from notify_devino.logconfig import REDACTED, configure_logging, redact, register_secret
from notify_devino.testing import run_cli
from notify_devino.types import SendOutcome

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox, SandboxConfig

PASSWORD = "p4ss-Redaction-98765432"
NUMBER = "+79031234567"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Where :func:`configure_logging` writes during the test; the configuration before it is
    put back afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def assert_nowhere(secrets: list[str], *texts: str) -> None:
    assert all(len(s) >= 6 for s in secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- the Devino channel against the sandbox -------------------------------------------------------


@pytest.fixture
def devino_sandbox_config() -> SandboxConfig:
    from notify_devino_soap.emulator import Account, DeliveryTimings, SandboxConfig

    return SandboxConfig(
        accounts=[Account(login="demo", password=PASSWORD, balance=Decimal("1000"))],
        delivery=DeliveryTimings(gateway=0.05, sent=0.1, delivered=0.2),
    )


@pytest.fixture
def config_file(tmp_path: Path, devino_sandbox: Sandbox) -> Path:
    path = tmp_path / "notify-devino.yaml"
    settings = {"url": devino_sandbox.url, "login": "demo", "password": PASSWORD}
    settings |= {"sender": "ALERTS", "timeout_seconds": 5, "retry": {"attempts": 1}}
    data = {
        "version": 1,
        "channels": {"sms": {"type": "devino_soap", "settings": settings}},
        "contacts": {"alice": {"sms": NUMBER}},
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.devino
@pytest.mark.parametrize("format", ["json", "console"])
@pytest.mark.parametrize("telling", [False, True], ids=["plain-message", "message-with-secrets"])
async def test_an_unexpected_exception_in_a_send_logs_no_session_id(
    format: str,
    telling: bool,
    config_file: Path,
    log_stream: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notify_devino_soap import parsing

    configure_logging(format, "info", log_stream, cache=False)  # type: ignore[arg-type]
    async with Dispatcher(load_config(config_file)) as dispatcher:
        channel: Any = dispatcher.channel("sms")
        session_id = await channel.client.sessions.get()

        def parser_bug(result: object, *, operation: str) -> list[str]:
            # the frames above hold the session ID (the SOAP request, its closure's argument)
            if not telling:  # only the frames' locals hold the session ID
                raise RuntimeError("parser bug")
            raise RuntimeError(f"parser bug near session {session_id}, password {PASSWORD}")

        monkeypatch.setattr(parsing, "message_ids_from", parser_bug)
        result = await dispatcher.send("hello", to=[NUMBER])

    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.UNKNOWN
    logged = log_stream.getvalue()
    assert "send_outcome_unknown" in logged
    shown = json.dumps(to_jsonable(result))
    assert_nowhere([session_id, PASSWORD], logged, str(recipient.error), shown)
    masked = f"parser bug near session {REDACTED}, password {REDACTED}" if telling else "parser bug"
    if format == "console":
        assert f"RuntimeError: {masked}" in logged
    else:
        events = [json.loads(line) for line in logged.splitlines()]
        (crash,) = [e for e in events if "exception" in e]
        assert crash["exception"][0]["exc_value"] == masked
        assert all("locals" not in frame for frame in crash["exception"][0]["frames"])


@pytest.fixture
def echoing_fault(devino_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the sandbox refuse every call made with a session (a send, a balance) with a fault
    whose text echoes the caller's session ID, as a provider quoting the request back would;
    returns the session IDs it echoed."""
    from notify_devino_soap.emulator import SandboxFault

    state = devino_sandbox.state
    account_for_session = state.account_for_session
    echoed: list[str] = []

    def echoing(session_id: str | None) -> Any:
        account_for_session(session_id)  # the real checks first
        assert session_id is not None
        echoed.append(session_id)
        raise SandboxFault.processing("Not enough credits", f"caller {session_id} is poor")

    monkeypatch.setattr(state, "account_for_session", echoing)
    return echoed


@pytest.mark.devino
@pytest.mark.parametrize("format", ["json", "console"])
async def test_a_fault_echoing_the_session_id_is_masked_in_logs_errors_and_results(
    format: str, config_file: Path, log_stream: io.StringIO, echoing_fault: list[str]
) -> None:
    configure_logging(format, "debug", log_stream, cache=False)  # type: ignore[arg-type]
    async with Dispatcher(load_config(config_file)) as dispatcher:
        result = await dispatcher.send("hello", to=[NUMBER])
        notified = await dispatcher.notify("db down", to=["alice"])

    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.FAILED
    error: Any = recipient.error
    assert f"caller {REDACTED} is poor" in str(error)
    assert f"caller {REDACTED} is poor" in error.text
    assert echoing_fault  # the sandbox did echo them
    texts = [log_stream.getvalue(), str(error), repr(error), error.raw or "", error.text]
    texts += [json.dumps(to_jsonable(result)), json.dumps(to_jsonable(notified)), str(notified)]
    assert_nowhere([*echoing_fault, PASSWORD], *texts)


@pytest.mark.devino
@pytest.mark.parametrize("as_json", [False, True])
async def test_the_cli_prints_no_echoed_session_id(
    as_json: bool, config_file: Path, echoing_fault: list[str]
) -> None:
    args = ["--config", str(config_file), "--log-level", "debug", "send", "--to", NUMBER, "hi"]
    code, out, err = await run_cli(*args, *(["--json"] if as_json else []))
    assert code != 0
    assert echoing_fault
    assert "is poor" in out + err  # the fault is shown, masked
    assert_nowhere([*echoing_fault, PASSWORD], out, err)
    code, out, err = await run_cli("--config", str(config_file), "balance")
    assert "is poor" in out + err
    assert_nowhere([*echoing_fault, PASSWORD], out, err)


# -- the configuration ----------------------------------------------------------------------------

CONFIG = f"""\
version: 1
channels:
  sms:
    type: devino_soap
    settings:
      login: alerts
      password: {PASSWORD}
  numeric:
    type: devino_soap
    settings: {{login: b, password: 98765432}}
  hook:
    type: webhook
    settings:
      url: https://example.com/hook
      secret: ${{HOOK_SECRET}}
      headers: {{Authorization: Bearer tok-0123456789}}
"""
CONFIG_SECRETS = [PASSWORD, "98765432", "hook-secret-0123456789abcdef", "tok-0123456789"]


def test_repr_str_and_dumps_of_the_config_show_no_secret() -> None:
    config = parse_config(CONFIG, env={"HOOK_SECRET": CONFIG_SECRETS[2]})
    assert_nowhere(
        CONFIG_SECRETS,
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(config.model_dump()),
        json.dumps(config.model_dump(mode="json")),
        repr(config.channels),
        repr(config._doc),
    )
    assert config.model_dump(mode="json")["channels"]["sms"]["settings"]["password"] == "**********"


class Secretive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str
    password: SecretStr = Field(min_length=30)


def test_a_plugin_model_gets_the_plain_secret() -> None:
    config = parse_config(CONFIG, env={"HOOK_SECRET": CONFIG_SECRETS[2]})

    class Plain(BaseModel):
        login: str
        password: SecretStr

    assert config.channel_settings("sms", Plain).password.get_secret_value() == PASSWORD
    assert config.channel_settings("numeric", Plain).password.get_secret_value() == "98765432"


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"password": PASSWORD}, "should have at least 30"),
        ({"password": ["98765432", PASSWORD]}, "Input should be a valid string"),
        ({"password": {"value": PASSWORD}}, "Input should be a valid string"),
    ],
)
def test_a_config_error_on_a_secret_field_never_quotes_it(
    settings: dict[str, Any], fragment: str
) -> None:
    settings = {"login": "alerts", **settings}
    text = yaml.safe_dump({"version": 1, "channels": {"sms": {"type": "x", "settings": settings}}})
    config = parse_config(text, source="c.yaml", env={})
    with pytest.raises(ConfigError) as info:
        config.channel_settings("sms", Secretive)
    assert fragment in str(info.value)
    assert "not shown" in str(info.value)
    assert_nowhere(["98765432", PASSWORD], str(info.value), repr(info.value))


def test_a_config_error_on_a_secret_named_setting_never_quotes_it() -> None:
    class Typed(BaseModel):
        api_token: int

    text = "version: 1\nchannels:\n  sms: {type: x, settings: {api_token: tok-0123456789}}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={}).channel_settings("sms", Typed)
    assert "Input should be a valid integer" in str(info.value)
    assert "tok-0123456789" not in str(info.value)


@pytest.mark.parametrize("format", ["json", "console"])
def test_logs_mask_secret_keys_and_registered_values_in_every_format(
    format: str, log_stream: io.StringIO
) -> None:
    register_secret("registered-secret-42")
    configure_logging(format, "info", log_stream, cache=False)  # type: ignore[arg-type]
    log = structlog.get_logger("test")
    log.info("event", password="plain-password-1", detail="a registered-secret-42 b")
    log.info("nested", data={"token": "tok-abcdefgh", "list": ["registered-secret-42"]})
    log.info("escaped", detail=json.dumps({"x": 'registered-secret-42"'}))
    try:
        raise ValueError("registered-secret-42 in a message")
    except ValueError:
        log.exception("crashed")
    logged = log_stream.getvalue()
    assert logged.count(REDACTED) >= 5
    assert_nowhere(["plain-password-1", "tok-abcdefgh", "registered-secret-42"], logged)


def test_redact_masks_registered_secrets_in_text() -> None:
    register_secret("another-secret-77")
    assert redact("x another-secret-77 y") == f"x {REDACTED} y"
    assert redact("nothing here") == "nothing here"


@pytest.mark.parametrize(
    ("module", "model", "settings"),
    [
        pytest.param(
            "notify_devino_soap.settings",
            "DevinoSettings",
            {"login": "a", "password": PASSWORD},
            marks=pytest.mark.devino,
        ),
        (
            "notify_devino_smtp.settings",
            "SmtpSettings",
            {"host": "h", "username": "u", "password": PASSWORD, "sender": "a@example.com"},
        ),
        (
            "notify_devino_webhook.settings",
            "WebhookSettings",
            {
                "url": "https://example.com/hook",
                "secret": PASSWORD,
                "headers": {"Authorization": "Bearer tok-0123456789", "X-Team": "ops"},
            },
        ),
    ],
)
def test_each_plugins_settings_hide_their_secrets(
    module: str, model: str, settings: dict[str, Any]
) -> None:
    settings_model = getattr(pytest.importorskip(module), model)
    text = yaml.safe_dump({"version": 1, "channels": {"c": {"type": "x", "settings": settings}}})
    config = parse_config(text, env={})
    validated = config.channel_settings("c", settings_model)
    assert_nowhere(
        [PASSWORD, "tok-0123456789"],
        repr(validated),
        str(validated),
        validated.model_dump_json(),
        repr(config),
        config.model_dump_json(),
    )


def test_an_unexpected_error_masks_the_secrets_its_cause_names() -> None:
    """UnexpectedError.of is what the core's send guard and the SMTP and webhook channels make of
    an exception outside the tree: its text, built from the exception's, masks every secret."""
    from notify_devino.errors import UnexpectedError

    secret = "Unexpected-S3cret-4242"
    register_secret(secret)
    cause = RuntimeError(f"login {secret!r} refused by the relay")
    for error in (
        UnexpectedError.of(cause, channel="email"),
        UnexpectedError.of(cause, channel="email", where="the plugin's notify_send"),
    ):
        assert secret not in str(error)
        assert REDACTED in str(error)
        assert error.error_type == "RuntimeError"
        assert error.__cause__ is cause  # the cause itself is the caller's, kept as raised
