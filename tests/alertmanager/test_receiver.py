"""``POST /v1/alertmanager`` over a real socket: ``serve``'s app, a real SQLite file, the Devino
sandbox. (The same against a real Alertmanager is in test_end_to_end.py.)"""

from __future__ import annotations

import base64
import json
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notify_devino import hookimpl
from notify_devino.alertmanager.acks import Acknowledgement
from notify_devino.config import Config, parse_config
from notify_devino.plugins import PluginManager
from notify_devino.service.app import STATE, make_app
from notify_devino.service.settings import ServiceSettings
from notify_devino.service.states import State
from notify_devino.service.store import SqliteStore
from tests.service.harness import eventually

from .payloads import alert, body_latest, body_v025

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino

AM_TOKEN = "alertmanager-token-0123456789"
SEND = "send-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
CODE = re.compile(r"Reply (\d{4}) to ack")


def config_for(url: str, extra: str = "", replace: tuple[str, str] = ("", "")) -> Config:
    text = f"""
    version: 1
    default_channel: sms
    status: {{poll_interval_seconds: 0.1, wait_timeout_seconds: 30}}
    channels:
      sms:
        type: devino_soap
        settings: {{url: "{url}", login: demo, password: demo-password, sender: ALERTS,
                    timeout_seconds: 5}}
      backup:
        type: devino_soap
        settings: {{url: "{url}", login: other, password: other-password, sender: BACKUP,
                    timeout_seconds: 5}}
    contacts:
      ann: {{sms: "+79031234567", backup: "+79031239999"}}
      stuck: {{sms: "+79990000003", backup: "+79031230003"}}
    groups:
      oncall: [ann]
    routes:
      db:
        matchers: ['team="db"']
        channels: [sms, backup]
        fallback_after_seconds: 4
    alertmanager:
      to: [oncall]
      bearer_token: {AM_TOKEN}
      basic_auth: {{username: am, password: basic-password}}
      routes:
        db: {{to: [stuck]}}
    """
    text = textwrap.dedent(text)
    if replace[0]:
        assert replace[0] in text
        text = text.replace(*replace)
    return parse_config(text + textwrap.dedent(extra), source="<test>", env={})


def service_settings(**overrides: Any) -> ServiceSettings:
    data: dict[str, Any] = {
        "tokens": [
            {"name": "sender", "token": SEND, "scopes": ["send"]},
            {"name": "reader", "token": READ, "scopes": ["read"]},
        ],
        "workers": {"inbox_interval_seconds": 0.1},
    }
    data.update(overrides)
    return ServiceSettings.model_validate(data)


class Acks:
    def __init__(self) -> None:
        self.heard: list[Acknowledgement] = []

    @hookimpl
    def notify_alert_acknowledged(self, ack: Acknowledgement) -> None:
        self.heard.append(ack)


class Serve:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession, app: Any) -> None:
        self.server, self.session, self.app = server, session, app

    async def post(
        self,
        body: Any,
        *,
        path: str = "/v1/alertmanager",
        auth: str | None = None,
        raw: bool = False,
    ) -> tuple[int, Any, Any]:
        headers = {"Authorization": auth or f"Bearer {AM_TOKEN}"}
        data = body if raw else json.dumps(body)
        async with self.session.post(
            self.server.make_url(path), data=data, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None), response.headers

    async def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {READ}"}
        async with self.session.get(self.server.make_url(path), headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    @property
    def store(self) -> SqliteStore:
        store = self.app[STATE].store
        assert store is not None
        return store


ServeFactory = Callable[..., Any]


@pytest.fixture
async def make_serve(
    devino_sandbox: Sandbox, notify_plugin_manager: PluginManager, tmp_path: Path
) -> AsyncIterator[ServeFactory]:
    notify_plugin_manager.load_entrypoints()
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(extra: str = "", settings: ServiceSettings | None = None) -> Serve:
        app = make_app(
            config_for(devino_sandbox.url, extra),
            settings or service_settings(),
            store=SqliteStore(tmp_path / "outbox.db"),
            plugins=notify_plugin_manager,
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Serve(server, session, app)

    yield make
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


def sms_to(sandbox: Sandbox, number: str) -> list[str]:
    """The texts the sandbox took for a number, one per SMS (segments joined)."""
    found: dict[int, list[str]] = {}
    for m in sandbox.state.messages():
        if m.destination.lstrip("+") == number.lstrip("+"):
            first = m.message_id - m.segment_index
            found.setdefault(first, []).append(m.text)
    return ["".join(parts) for _, parts in sorted(found.items())]


def firing(team: str = "web", fingerprint: str = "aa01", **labels: str) -> dict[str, Any]:
    return body_latest(
        [
            alert(
                "DiskFull",
                fingerprint=fingerprint,
                labels={"instance": "db-1:9100", "team": team, **labels},
                annotations={"summary": "Disk almost full on db-1"},
            )
        ],
        commonLabels={"alertname": "DiskFull", "instance": "db-1:9100", "team": team},
    )


def resolved_of(body: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["status"] = "resolved"
    out["notification_reason"] = "all alerts resolved"
    for a in out["alerts"]:
        a["status"] = "resolved"
        a["endsAt"] = "2026-12-01T10:00:00Z"
    return out


async def test_a_group_becomes_one_sms_and_a_retry_or_ha_twin_none(
    make_serve: ServeFactory, devino_sandbox: Sandbox
) -> None:
    serve = await make_serve()
    body = firing()
    status, answer, _ = await serve.post(body)
    assert status == 200, answer
    assert answer["replayed"] is False
    (text,) = await eventually(lambda: _async(sms_to(devino_sandbox, "79031234567")))
    assert text.startswith("FIRING: DiskFull")
    assert CODE.search(text)
    # Alertmanager retrying after a lost answer, and its HA twin (no reason field: 0.25)
    for again in (body, body_v025(body["alerts"], **_without(body, "notification_reason"))):
        status, repeat, _ = await serve.post(again)
        assert status == 200
        assert repeat["replayed"] is True
        assert repeat["id"] == answer["id"]
    # new alerts in the group are a new notification
    more = firing(fingerprint="aa02")
    more["alerts"] = body["alerts"] + more["alerts"]
    status, grown, _ = await serve.post(more)
    assert status == 200
    assert grown["replayed"] is False
    texts = await eventually(lambda: _async(len(sms_to(devino_sandbox, "79031234567")) == 2))
    assert texts
    second = sms_to(devino_sandbox, "79031234567")[1]
    assert CODE.search(second)[1] == CODE.search(text)[1]  # the group keeps its code


async def test_a_resolution_is_one_resolved_sms_without_a_code(
    make_serve: ServeFactory, devino_sandbox: Sandbox
) -> None:
    serve = await make_serve()
    body = firing()
    assert (await serve.post(body))[0] == 200
    status, answer, _ = await serve.post(resolved_of(body))
    assert status == 200
    assert answer["replayed"] is False
    await eventually(lambda: _async(len(sms_to(devino_sandbox, "79031234567")) == 2))
    last = sms_to(devino_sandbox, "79031234567")[-1]
    assert last.startswith("RESOLVED: DiskFull")
    assert "ack" not in last
    assert (await serve.post(resolved_of(body)))[1]["replayed"] is True


@pytest.mark.parametrize(
    ("body", "raw", "field"),
    [
        ("{not json", True, "(body)"),
        (json.dumps({**firing(), "version": "3"}), True, "version"),
        (json.dumps({**firing(), "alerts": [{"status": "firing"}]}), True, "alerts[0].labels"),
    ],
)
async def test_a_body_that_can_never_succeed_is_400_with_the_field(
    make_serve: ServeFactory, body: str, raw: bool, field: str
) -> None:
    serve = await make_serve()
    status, answer, _ = await serve.post(body, raw=raw)
    assert status == 400
    assert answer["error"]["code"] == "invalid_payload"
    assert field in {p["field"] for p in answer["error"]["problems"]}


async def test_alertmanagers_own_auth_options(make_serve: ServeFactory) -> None:
    serve = await make_serve()
    basic = "Basic " + base64.b64encode(b"am:basic-password").decode()
    wrong_basic = "Basic " + base64.b64encode(b"am:guess").decode()
    for auth, expected in [
        (f"Bearer {AM_TOKEN}", 200),
        (basic, 200),
        (f"Bearer {SEND}", 200),  # a service token with the send scope
        (f"Bearer {READ}", 401),  # ... without it
        ("Bearer nope", 401),
        (wrong_basic, 401),
        ("Digest x", 401),
    ]:
        status, answer, headers = await serve.post(firing(fingerprint=auth[-6:]), auth=auth)
        assert status == expected, (auth, answer)
        if status == 401:
            assert "WWW-Authenticate" in headers
            assert AM_TOKEN not in json.dumps(answer)


async def test_a_full_outbox_is_503_with_retry_after_and_the_retry_succeeds(
    make_serve: ServeFactory,
) -> None:
    serve = await make_serve(
        settings=service_settings(limits={"outbox_max_depth": 1, "retry_after_seconds": 7})
    )
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with serve.session.post(
        serve.server.make_url("/v1/notifications"),
        json={"text": "later", "addresses": ["+79031234567"], "send_at": later},
        headers={"Authorization": f"Bearer {SEND}"},
    ) as response:
        assert response.status == 202
    status, answer, headers = await serve.post(firing())
    assert status == 503
    assert headers["Retry-After"] == "7"
    assert answer["error"]["code"] == "unavailable"


async def test_a_configuration_problem_is_500_so_alertmanager_keeps_the_alert(
    make_serve: ServeFactory,
) -> None:
    serve = await make_serve()
    status, answer, _ = await serve.post(firing(), path="/v1/alertmanager/nosuchroute")
    assert status == 500
    assert "nosuchroute" in answer["error"]["message"]
    status, answer, _ = await serve.post(firing(), path="/v1/alertmanager/db")
    assert status == 200  # the route named in the URL


async def _inject(sandbox: Sandbox, source: str, text: str) -> None:
    sandbox.state.inject_incoming(source, "ALERTS", text, login="demo")  # the sms channel's


async def test_ack_by_reply_stops_the_fallback_confirms_and_is_shown(
    make_serve: ServeFactory, devino_sandbox: Sandbox, notify_plugin_manager: PluginManager
) -> None:
    acks = Acks()
    notify_plugin_manager.register(acks, name="ack-recorder")
    serve = await make_serve()
    body = firing(team="db")  # route db: sms, then backup after 4 s; to 'stuck' (never delivered)
    status, answer, _ = await serve.post(body)
    assert status == 200
    (text,) = await eventually(lambda: _async(sms_to(devino_sandbox, "79990000003")))
    code = CODE.search(text)[1]
    await _inject(devino_sandbox, "79990000003", f"ACK {code}")
    confirmations = await eventually(
        lambda: _async([t for t in sms_to(devino_sandbox, "79990000003") if "Acknowledged" in t])
    )
    assert confirmations == [f"Acknowledged alert {code}. Thank you."]
    assert [(a.code, a.by) for a in acks.heard] == [(code, "stuck")]

    # the SMS was never delivered: its fallback time passes, and the backup is not tried
    async def late() -> bool:
        found = await serve.store.get_notification(answer["id"])
        return found is not None and any(d.state is State.LATE for d in found.deliveries)

    await eventually(late, timeout=30)
    stored = await serve.store.get_notification(answer["id"])
    assert stored is not None
    assert [d.channel for d in stored.deliveries] == ["sms"]
    assert sms_to(devino_sandbox, "79031230003") == []

    shown = await serve.get(f"/v1/notifications/{answer['id']}")
    (ack,) = shown["acknowledgements"]
    assert ack["code"] == code
    assert ack["acknowledged_by"] == "stuck"
    assert ack["closed_at"] is None

    await _inject(devino_sandbox, "79990000003", "ack")  # already acknowledged
    await eventually(
        lambda: _async(
            any("already acknowledged" in t for t in sms_to(devino_sandbox, "79990000003"))
        )
    )
    await _inject(devino_sandbox, "79990000003", "9999")  # no open alert has it
    await eventually(
        lambda: _async(
            any("matches no open alert" in t for t in sms_to(devino_sandbox, "79990000003"))
        )
    )
    assert (await serve.post(resolved_of(body)))[0] == 200
    shown = await serve.get(f"/v1/notifications/{answer['id']}")
    assert shown["acknowledgements"][0]["closed_at"] is not None
    await _inject(devino_sandbox, "79990000003", f"ACK {code}")  # stale now
    await eventually(
        lambda: _async(
            sum("matches no open alert" in t for t in sms_to(devino_sandbox, "79990000003")) == 2
        )
    )
    assert len(acks.heard) == 1


async def test_without_an_ack_the_route_falls_back(
    make_serve: ServeFactory, devino_sandbox: Sandbox
) -> None:
    serve = await make_serve()
    assert (await serve.post(firing(team="db")))[0] == 200
    (text,) = await eventually(lambda: _async(sms_to(devino_sandbox, "79031230003")), timeout=30)
    assert text.startswith("FIRING: DiskFull")


async def _async(value: Any) -> Any:
    return value


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys and k != "alerts"}


@pytest.mark.parametrize(
    ("replace", "needle"),
    [
        ("  to: [oncall]\n", "  to: [oncall]\n  template: '{{ nope }}'\n"),
        ("    db: {to: [stuck]}", "    nosuch: {to: [stuck]}"),
        ("    db: {to: [stuck]}", "    db: {to: [nobody]}"),
    ],
)
async def test_a_bad_alertmanager_section_fails_at_start(
    devino_sandbox: Sandbox,
    notify_plugin_manager: PluginManager,
    tmp_path: Path,
    replace: str,
    needle: str,
) -> None:
    from notify_devino.errors import ConfigError

    notify_plugin_manager.load_entrypoints()
    bad = config_for(devino_sandbox.url, replace=(replace, needle))
    with pytest.raises(ConfigError) as caught:
        make_app(
            bad,
            service_settings(),
            store=SqliteStore(tmp_path / "outbox.db"),
            plugins=notify_plugin_manager,
        )
    message = str(caught.value)
    assert any(word in message for word in ("nope", "nosuch", "nobody")), message


async def test_a_bare_ack_with_several_open_alerts_lists_their_codes(
    make_serve: ServeFactory, devino_sandbox: Sandbox
) -> None:
    serve = await make_serve()
    for name in ("DiskFull", "HighLoad"):
        body = firing(team="db", fingerprint=name)
        body["groupKey"] = f'{{}}:{{alertname="{name}"}}'
        assert (await serve.post(body))[0] == 200
    texts = await eventually(lambda: _async(sms_to(devino_sandbox, "79990000003")[1:]))
    assert texts
    codes = sorted(CODE.search(t)[1] for t in sms_to(devino_sandbox, "79990000003"))
    assert len(set(codes)) == 2  # unique among the phone's open alerts
    await _inject(devino_sandbox, "79990000003", "ACK")
    (listing,) = await eventually(
        lambda: _async([t for t in sms_to(devino_sandbox, "79990000003") if "Several" in t])
    )
    assert listing == f"Several alerts are open: reply ACK and one of {', '.join(codes)}."


async def _store_outage(serve: Serve) -> dict[str, Any]:
    store = serve.store
    await store.aclose()  # the store is gone (a disk, a database down)
    try:
        status, answer, headers = await serve.post(firing())
        assert status == 503
        assert headers["Retry-After"] == "5"
        assert answer["error"]["code"] == "unavailable"
    finally:
        await store.open()
    status, answer, _ = await serve.post(firing())  # Alertmanager's retry
    assert status == 200
    assert answer["replayed"] is False
    return answer


async def test_a_store_that_cannot_commit_is_503_and_the_retry_after_it_is_back_200(
    make_serve: ServeFactory,
) -> None:
    serve = await make_serve()
    answer = await _store_outage(serve)
    assert await serve.store.get_notification(answer["id"]) is not None


async def test_after_a_store_outage_the_sms_goes_out(
    make_serve: ServeFactory, devino_sandbox: Sandbox
) -> None:
    serve = await make_serve()
    await _store_outage(serve)
    await eventually(lambda: _async(sms_to(devino_sandbox, "79031234567")), timeout=15)


async def test_a_shutting_down_service_is_503(make_serve: ServeFactory) -> None:
    from notify_devino.alertmanager.integration import ALERTMANAGER

    serve = await make_serve()
    for callback in serve.app.on_shutdown:  # what aiohttp runs on SIGTERM, before cleanup
        await callback(serve.app)
    assert serve.app[ALERTMANAGER].closing
    status, answer, headers = await serve.post(firing())
    assert status == 503
    assert "shutting down" in answer["error"]["message"]
    assert headers["Retry-After"] == "5"
