"""The example configuration's ``critical: [sms, email]`` route, end to end: the Devino
sandbox and a real SMTP server (STARTTLS and login) on loopback, every plugin found through its
installed entry point, through the library and through the command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from notify_devino.config import load_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.testing import invoke_cli
from notify_devino.types import DeliveryState, RouteOutcome

if TYPE_CHECKING:
    from notify_devino_smtp.loopback import LoopbackSmtpServer
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino

EXAMPLE = Path(__file__).parents[1] / "config" / "notify-devino.example.yaml"
REJECTED = "+79990000001"  # config/sandbox.yaml: the operator rejects it (42 Error_Rejected)
REACHABLE = "+79031234567"
ENV = {
    "DEVINO_LOGIN": "demo",
    "DEVINO_PASSWORD": "demo-password",
    "SMTP_PASSWORD": "smtp-password-1",
    "WEBHOOK_SECRET": "webhook-secret-0123456789",
}


@pytest.fixture
async def mail_server(make_smtp_server: Callable[..., Awaitable[LoopbackSmtpServer]]) -> Any:
    # the example's email channel logs in as alerts@example.com over STARTTLS
    return await make_smtp_server(
        security="starttls", users={"alerts@example.com": ENV["SMTP_PASSWORD"]}
    )


@pytest.fixture
def config_path(tmp_path: Path, devino_sandbox: Sandbox, mail_server: LoopbackSmtpServer) -> Path:
    """The example configuration, its routes untouched, pointed at the loopback servers and
    given two contacts: one the sandbox rejects, one it delivers to."""
    data = yaml.safe_load(EXAMPLE.read_text())
    assert data["routes"]["critical"] == ["sms", "email"]
    data["status"] = {"poll_interval_seconds": 0.05, "wait_timeout_seconds": 20}
    data["logging"] = {"format": "json", "level": "info"}
    data["channels"]["sms"]["settings"]["url"] = devino_sandbox.url
    data["channels"]["email"]["settings"].update(
        host=mail_server.host, port=mail_server.port, ca_file=mail_server.ca_file
    )
    data["contacts"] = {
        "rejected": {"sms": REJECTED, "email": "rejected@example.com"},
        "reachable": {"sms": REACHABLE, "email": "reachable@example.com"},
    }
    data["groups"] = {"oncall": ["rejected", "reachable"]}
    path = tmp_path / "notify-devino.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def test_a_rejected_sms_arrives_by_email_and_a_delivered_one_sends_no_email(
    config_path: Path, devino_sandbox: Sandbox, mail_server: LoopbackSmtpServer
) -> None:
    async with Dispatcher(load_config(config_path, env=ENV)) as dispatcher:
        result = await dispatcher.notify("db-1 is down", to=["oncall"], severity="critical")

    assert result.route == "critical"
    assert result.carried_by == {"rejected": "email", "reachable": "sms"}
    rejected, reachable = result.recipients
    sms, email = rejected.attempts
    assert (sms.channel, sms.outcome, sms.reason) == (
        "sms",
        RouteOutcome.UNDELIVERED,
        "failed (Error_Rejected)",
    )
    assert [(s.code, s.state) for s in sms.statuses] == [(42, DeliveryState.FAILED)]
    assert (email.channel, email.outcome) == ("email", RouteOutcome.ACCEPTED)
    assert [(a.channel, a.outcome) for a in reachable.attempts] == [("sms", RouteOutcome.DELIVERED)]

    # one SMS request for both people, then one email, to the one the SMS did not reach
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert [r.destinations for r in sends] == [("79990000001", "79031234567")]
    (mail,) = mail_server.messages
    assert mail.rcpt_tos == ("rejected@example.com",)
    assert (mail.tls, mail.login) == (True, "alerts@example.com")
    assert mail.message["Subject"] == "[critical] db-1 is down"
    assert mail.message["X-Notify-Notification-Id"] == result.notification_id
    assert mail.body() == "db-1 is down\n"
    assert mail.message["Message-ID"] == email.result.message_ids[0]  # type: ignore[union-attr]


async def test_the_same_through_the_command_line(
    config_path: Path, devino_sandbox: Sandbox, mail_server: LoopbackSmtpServer
) -> None:
    # in this process (a worker thread, so the command has its own event loop), with the
    # plugins found through their installed entry points, as the console script finds them
    code, out, err = await asyncio.to_thread(
        invoke_cli,
        "--config",
        str(config_path),
        "-v",
        "notify",
        "db-1 is down",
        "--to",
        "oncall",
        "--severity",
        "critical",
        "--json",
        env=ENV,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["route"] == "critical"
    assert {r["contact"]: r["carried_by"] for r in result["recipients"]} == {
        "rejected": "email",
        "reachable": "sms",
    }
    assert [m.rcpt_tos for m in mail_server.messages] == [("rejected@example.com",)]
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "route_fallback" in events

    code, out, _ = await asyncio.to_thread(
        invoke_cli, "--config", str(config_path), "notify", "disk 80%", "--to", "reachable", env=ENV
    )
    # no severity: the catch-all route, email only, not followed
    assert code == 0
    assert out.splitlines()[0] == "route: everything-else"
    assert "reachable  accepted  email" in out
    assert [m.rcpt_tos for m in mail_server.messages][-1] == ("reachable@example.com",)


async def test_a_command_leaves_no_connection_open_when_it_ends(
    config_path: Path, mail_server: LoopbackSmtpServer
) -> None:
    # A command's event loop ends right after its work: every connection must be closed by
    # then (an email over STARTTLS left its socket open, waiting for TLS's close_notify).
    import gc
    import warnings

    for _ in range(3):
        code, _, err = await asyncio.to_thread(
            invoke_cli,
            "--config",
            str(config_path),
            "notify",
            "disk 80%",
            "--to",
            "reachable",
            env=ENV,
        )
        assert code == 0, err
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
    assert len(mail_server.messages) == 3
