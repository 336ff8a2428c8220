"""A real Alertmanager (Debian's 0.25) posting to ``serve``, which sends through the Devino
sandbox (and falls back to a real SMTP server on loopback). Each test is bounded; they are
``slow`` because Alertmanager's own timers (group_wait, group_interval, retry backoff) run."""

from __future__ import annotations

import asyncio
import contextlib
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notify_devino.config import parse_config
from notify_devino.plugins import PluginManager
from notify_devino.service.app import STATE, make_app
from notify_devino.service.settings import ServiceSettings
from notify_devino.service.states import State
from notify_devino.service.store import SqliteStore
from tests.peers.alertmanager import AlertmanagerPeer, webhook_config
from tests.service.harness import eventually

from .test_receiver import sms_to

if TYPE_CHECKING:
    from notify_devino_smtp.loopback import LoopbackSmtpServer
    from notify_devino_soap.emulator import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.devino]

AM_TOKEN = "alertmanager-token-0123456789"
SEND = "send-token-0123456789abcdef"
CODE = re.compile(r"Reply (\d{4}) to ack")
ANN, STUCK = "79031234567", "79990000003"


@dataclass
class Stack:
    serve: TestServer
    app: Any
    alertmanager: AlertmanagerPeer
    session: aiohttp.ClientSession

    @property
    def store(self) -> SqliteStore:
        store = self.app[STATE].store
        assert store is not None
        return store

    def total(self, metric: Any, keep: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
        """A counter's ``_total`` summed over the series whose labels ``keep`` keeps."""
        return sum(
            sample.value
            for family in metric.collect()
            for sample in family.samples
            if sample.name.endswith("_total") and keep(sample.labels)
        )

    def http_count(self, code: str) -> float:
        return self.total(
            self.app[STATE].metrics.http_requests,
            lambda labels: (
                labels.get("code") == code and "alertmanager" in labels.get("handler", "")
            ),
        )

    def submitted(self) -> float:
        """``notify_devino_notifications_submitted_total``, over all routes."""
        return self.total(self.app[STATE].metrics.submitted)


StackFactory = Callable[..., Any]


@pytest.fixture
async def make_stack(
    alertmanager_binary: Path,
    devino_sandbox: Sandbox,
    smtp_server: LoopbackSmtpServer,
    notify_plugin_manager: PluginManager,
    tmp_path: Path,
) -> AsyncIterator[StackFactory]:
    notify_plugin_manager.load_entrypoints()
    cleanup = contextlib.AsyncExitStack()

    async def make(
        *, limits: dict[str, Any] | None = None, fallback_after: float = 6, **am: Any
    ) -> Stack:
        folder = tmp_path / "alertmanager"
        folder.mkdir()
        peer = AlertmanagerPeer(alertmanager_binary, "", folder)  # its port is chosen now
        text = f"""
        version: 1
        default_channel: sms
        status: {{poll_interval_seconds: 0.2, wait_timeout_seconds: 30}}
        channels:
          sms:
            type: devino_soap
            settings: {{url: "{devino_sandbox.url}", login: demo, password: demo-password,
                        sender: ALERTS, timeout_seconds: 5}}
          email:
            type: smtp
            settings: {{host: 127.0.0.1, port: {smtp_server.port}, security: none,
                        sender: "Alerts <alerts@example.com>"}}
        contacts:
          ann: {{sms: "+{ANN}", email: ann@example.com}}
          stuck: {{sms: "+{STUCK}", email: stuck@example.com}}
        routes:
          db:
            matchers: ['team="db"']
            channels: [sms, email]
            fallback_after_seconds: {fallback_after}
        alertmanager:
          to: [ann]
          bearer_token: {AM_TOKEN}
          routes:
            db: {{to: [stuck]}}
          silence: {{url: "{peer.url}", duration_seconds: 3600, check_interval_seconds: 0.5}}
        """
        config = parse_config(textwrap.dedent(text), source="<e2e>", env={})
        settings = ServiceSettings.model_validate(
            {
                "tokens": [{"name": "sender", "token": SEND, "scopes": ["send"]}],
                "workers": {"inbox_interval_seconds": 0.2},
                "limits": limits or {},
            }
        )
        app = make_app(
            config,
            settings,
            store=SqliteStore(tmp_path / "outbox.db"),
            plugins=notify_plugin_manager,
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        cleanup.push_async_callback(server.close)
        session = aiohttp.ClientSession()
        cleanup.push_async_callback(session.close)
        peer.config_file.write_text(
            webhook_config(
                url=str(server.make_url("/v1/alertmanager")), bearer_token=AM_TOKEN, **am
            )
        )
        await peer.start()
        cleanup.push_async_callback(peer.stop)
        return Stack(server, app, peer, session)

    yield make
    await cleanup.aclose()


def labels(name: str, instance: str, **more: str) -> dict[str, str]:
    return {"alertname": name, "instance": instance, "severity": "critical", **more}


async def test_alerts_fired_become_one_sms_per_group_and_a_resolution_one_more(
    make_stack: StackFactory, devino_sandbox: Sandbox
) -> None:
    stack = await make_stack()
    am = stack.alertmanager
    disk = [
        await am.fire(labels("DiskFull", f"db-{i}"), {"summary": f"db-{i} full"}) for i in (1, 2)
    ]
    await am.fire(labels("HighLoad", "web-1"), {"summary": "load 40"})
    texts = await eventually(lambda: _ready(sms_to(devino_sandbox, ANN), 2), timeout=30)
    firsts = sorted(t.splitlines()[0] for t in texts)
    assert firsts == ["FIRING 2: DiskFull critical", "FIRING: HighLoad critical"]
    for alert in disk:
        await am.resolve(alert)
    texts = await eventually(lambda: _ready(sms_to(devino_sandbox, ANN), 3), timeout=30)
    assert texts[2].splitlines()[0] == "RESOLVED 2: DiskFull critical"
    assert stack.http_count("5xx") == 0
    # one notification per Alertmanager notification: nothing else was queued
    assert len(await stack.store.list_deliveries(limit=100)) == 3
    assert stack.submitted() == 3  # counted as the API's are


async def test_serve_answering_503_for_20_s_still_gives_exactly_one_sms(
    make_stack: StackFactory, devino_sandbox: Sandbox
) -> None:
    stack = await make_stack(limits={"outbox_max_depth": 1, "retry_after_seconds": 1})
    # a notification held for 20 s fills the outbox: every Alertmanager post is 503 until then
    held_until = datetime.now(UTC) + timedelta(seconds=20)
    async with stack.session.post(
        stack.serve.make_url("/v1/notifications"),
        json={"text": "held", "addresses": ["+79031230000"], "send_at": held_until.isoformat()},
        headers={"Authorization": f"Bearer {SEND}"},
    ) as response:
        assert response.status == 202
    await stack.alertmanager.fire(labels("DiskFull", "db-1"), {"summary": "db-1 full"})
    (text,) = await eventually(lambda: _ready(sms_to(devino_sandbox, ANN), 1), timeout=60)
    assert datetime.now(UTC) >= held_until
    assert text.startswith("FIRING: DiskFull")
    refused = stack.http_count("5xx")
    assert refused >= 3  # Alertmanager retried through the 20 s
    assert "Notify attempt failed" in stack.alertmanager.log()
    # ... and its retries after the outbox drained made one notification, one SMS
    await eventually(lambda: _async(stack.http_count("2xx") >= 1))
    assert len(sms_to(devino_sandbox, ANN)) == 1
    deliveries = await stack.store.list_deliveries(limit=100)
    assert sorted(d.address for d in deliveries) == ["+79031230000", f"+{ANN}"]


async def test_ack_by_reply_silences_the_alert_stops_the_email_and_resolution_ends_it(
    make_stack: StackFactory, devino_sandbox: Sandbox, smtp_server: LoopbackSmtpServer
) -> None:
    stack = await make_stack(fallback_after=6)
    am = stack.alertmanager
    alert_labels = labels("DiskFull", "db-7", team="db")
    posted = await am.fire(alert_labels, {"summary": "db-7 full"})
    (text,) = await eventually(lambda: _ready(sms_to(devino_sandbox, STUCK), 1), timeout=30)
    code = CODE.search(text)
    assert code is not None
    devino_sandbox.state.inject_incoming(STUCK, "ALERTS", f"ACK {code[1]}")

    async def silence() -> dict[str, Any] | None:
        active = [s for s in await am.silences() if s["status"]["state"] == "active"]
        return active[0] if active else None

    found = await eventually(silence, timeout=20)
    assert found["createdBy"] == "stuck"
    assert code[1] in found["comment"]
    assert sorted((m["name"], m["value"], m["isRegex"]) for m in found["matchers"]) == sorted(
        (k, v, False) for k, v in alert_labels.items()
    )
    (alert,) = await am.alerts()
    assert alert["status"]["silencedBy"] == [found["id"]]
    confirmation = await eventually(
        lambda: _async([t for t in sms_to(devino_sandbox, STUCK) if "Acknowledged" in t])
    )
    assert confirmation == [f"Acknowledged alert {code[1]}, silenced for 1 h. Thank you."]

    # the SMS is never delivered: its fallback time runs out, and the email is not sent
    async def late() -> bool:
        rows = await stack.store.list_deliveries(limit=100)
        return any(d.state is State.LATE for d in rows)

    await eventually(late, timeout=30)
    assert [d.channel for d in await stack.store.list_deliveries(limit=100)].count("email") == 0
    assert smtp_server.messages == []

    await am.resolve(posted)  # Alertmanager notifies no resolution of a silenced alert ...

    async def expired() -> bool:  # ... so the sink sees it resolved, and ends the silence
        return (await am.silence(found["id"]))["status"]["state"] == "expired"

    await eventually(expired, timeout=30)
    (row,) = await stack.store.alert_codes(next(iter(await _keys(stack))))
    assert row.closed_at is not None


async def _keys(stack: Stack) -> set[str]:
    rows = await stack.store.list_deliveries(limit=100)
    return {
        d.payload["metadata"]["alert_key"] for d in rows if "alert_key" in d.payload["metadata"]
    }


async def _ready(values: list[str], count: int) -> list[str] | None:
    return values if len(values) >= count else None


async def _async(value: Any) -> Any:
    await asyncio.sleep(0)
    return value
