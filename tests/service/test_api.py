"""The HTTP API over a real socket, backed by each store engine (a real SQLite file, a
throw-away PostgreSQL database) and the Devino sandbox."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from notify_devino.plugins import PluginManager
from notify_devino.service.app import STATE, make_app
from notify_devino.service.settings import ServiceSettings
from notify_devino.service.store import Store

from .harness import eventually, sandbox_config

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino

SEND = "send-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"


def settings(**overrides: Any) -> ServiceSettings:
    data: dict[str, Any] = {
        "tokens": [
            {"name": "sender", "token": SEND, "scopes": ["send"]},
            {"name": "reader", "token": READ, "scopes": ["read"]},
            {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
        ],
        "workers": {"inbox_interval_seconds": 0.1},
    }
    data.update(overrides)
    return ServiceSettings.model_validate(data)


class Api:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession, app: Any) -> None:
        self.server, self.session, self.app = server, session, app

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self, method: str, path: str, *, token: str | None = ADMIN, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.url(path), headers=headers, **kwargs) as r:
            text = await r.text()
            try:
                body = json.loads(text)
            except json.JSONDecodeError:
                body = text
            return r.status, body, r

    @property
    def store(self) -> Store:
        store = self.app[STATE].store
        assert store is not None
        return store


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(
    devino_sandbox: Sandbox, notify_plugin_manager: PluginManager, new_store: Callable[[], Store]
) -> AsyncIterator[ApiFactory]:
    notify_plugin_manager.load_entrypoints()
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(service: ServiceSettings | None = None) -> Api:
        config = sandbox_config(devino_sandbox.url)
        app = make_app(
            config,
            service or settings(),
            store=new_store(),
            plugins=notify_plugin_manager,
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Api(server, session, app)

    yield make
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    return await make_api()


def sms_sent(sandbox: Sandbox) -> list[str]:
    return sorted(m.destination for m in sandbox.state.messages())


BODY = {"text": "db-1 is down", "addresses": ["+79031234567"]}


async def test_one_post_three_times_in_a_row_is_one_notification_and_one_sms(
    api: Api, devino_sandbox: Sandbox
) -> None:
    answers = [
        await api.call(
            "POST", "/v1/notifications", json=BODY, headers={"Idempotency-Key": "k1"}, token=SEND
        )
        for _ in range(3)
    ]
    assert [a[0] for a in answers] == [202, 202, 202]
    assert [a[2].headers["Idempotent-Replayed"] for a in answers] == ["false", "true", "true"]
    assert answers[0][1] == answers[1][1] == answers[2][1]
    nid = answers[0][1]["id"]
    assert answers[0][2].headers["Location"] == f"/v1/notifications/{nid}"

    async def done() -> bool:
        status, body, _ = await api.call("GET", f"/v1/notifications/{nid}")
        return status == 200 and body["state"] == "done"

    await eventually(done)
    assert len(await api.store.list_deliveries()) == 1
    assert sms_sent(devino_sandbox) == ["79031234567"]
    # The same key with another body: 422, and nothing sent.
    status, body, _ = await api.call(
        "POST",
        "/v1/notifications",
        json={**BODY, "text": "other"},
        headers={"Idempotency-Key": "k1"},
        token=SEND,
    )
    assert status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["notification_id"] == nid
    assert len(await api.store.list_deliveries()) == 1


async def test_a_client_that_hangs_up_after_its_post_still_has_it_committed_and_sent(
    api: Api, devino_sandbox: Sandbox
) -> None:
    """Its handler is not cancelled when the client goes: what was received is committed and
    sent, and the client's retry with its key gets the first answer."""
    body = json.dumps(BODY).encode()
    assert api.server.port is not None
    _, writer = await asyncio.open_connection(api.server.host, api.server.port)
    writer.write(
        b"POST /v1/notifications HTTP/1.1\r\nHost: notify\r\n"
        b"Content-Type: application/json\r\nIdempotency-Key: gone-1\r\n"
        + f"Authorization: Bearer {SEND}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()  # before any answer
    await writer.wait_closed()
    await eventually(lambda: asyncio.sleep(0, sms_sent(devino_sandbox) == ["79031234567"]))
    status, _, response = await api.call(
        "POST", "/v1/notifications", json=BODY, headers={"Idempotency-Key": "gone-1"}, token=SEND
    )
    assert (status, response.headers["Idempotent-Replayed"]) == (202, "true")
    assert len(await api.store.list_deliveries()) == 1


async def test_one_post_three_times_at_once_is_one_notification_and_one_sms(
    api: Api, devino_sandbox: Sandbox
) -> None:
    answers = await asyncio.gather(
        *(
            api.call("POST", "/v1/notifications", json=BODY, headers={"Idempotency-Key": "k2"})
            for _ in range(3)
        )
    )
    accepted = [a for a in answers if a[0] == 202]
    assert accepted
    assert {a[1]["id"] for a in accepted} == {accepted[0][1]["id"]}
    for status, body, response in answers:
        assert status in (202, 409)
        if status == 409:
            assert body["error"]["code"] == "idempotency_key_in_use"
            assert response.headers["Retry-After"] == "1"
    # A retry after a 409 gets the first response.
    status, body, response = await api.call(
        "POST", "/v1/notifications", json=BODY, headers={"Idempotency-Key": "k2"}
    )
    assert status == 202
    assert body["id"] == accepted[0][1]["id"]

    async def sent() -> bool:
        rows = await api.store.list_deliveries()
        return len(rows) == 1 and rows[0].state.final

    await eventually(sent)
    assert sms_sent(devino_sandbox) == ["79031234567"]


async def test_tokens_and_scopes(api: Api) -> None:
    status, body, response = await api.call("GET", "/v1/channels", token=None)
    assert status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await api.call("GET", "/v1/channels", token="wrong-token-0123456789"))[0] == 401
    status, body, _ = await api.call("POST", "/v1/notifications", json=BODY, token=READ)
    assert status == 403
    assert "'send'" in body["error"]["message"]
    assert READ not in json.dumps(body)
    assert (await api.call("GET", "/v1/channels", token=READ))[0] == 200
    assert (await api.call("GET", "/v1/channels", token=SEND))[0] == 403
    assert (await api.call("GET", "/metrics", token=ADMIN))[0] == 200
    assert (await api.call("GET", "/metrics", token=None))[0] == 401
    # Health and the document need no token.
    assert (await api.call("GET", "/-/healthy", token=None))[0] == 200
    assert (await api.call("GET", "/-/ready", token=None))[0] == 200
    assert (await api.call("GET", "/v1/openapi.json", token=None))[0] == 200


async def test_every_answer_has_a_request_id_and_no_trace(api: Api) -> None:
    _, _, response = await api.call("GET", "/-/healthy", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    seen: set[str] = set()
    for method, path, kwargs in [
        ("GET", "/nowhere", {}),
        ("POST", "/v1/notifications", {"data": b"{not json"}),
        ("POST", "/v1/notifications", {"json": {"text": ""}}),
        ("POST", "/v1/notifications", {"json": {"text": "x", "to": ["nobody"]}}),
        ("DELETE", "/v1/channels", {}),
        ("GET", "/v1/inbox?after=-1", {}),
    ]:
        status, body, response = await api.call(method, path, **kwargs)
        assert 400 <= status < 500, (path, status, body)
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", response.headers["X-Request-Id"])
        seen.add(response.headers["X-Request-Id"])
        assert "Traceback" not in json.dumps(body)
        assert body["error"]["code"]
        assert body["error"]["message"]
    assert len(seen) == 6  # a new id for each request
    status, body, _ = await api.call(
        "POST", "/v1/notifications", json={"text": "x", "to": ["nobody"]}
    )
    assert status == 400
    assert "'nobody' is neither a contact nor a group" in body["error"]["message"]
    assert "raw addresses go in `addresses`" in body["error"]["message"]
    status, body, _ = await api.call("POST", "/v1/notifications", json={"text": ""})
    assert {p["field"] for p in body["error"]["problems"]} >= {"text"}


async def test_body_and_header_limits(make_api: ApiFactory) -> None:
    api = await make_api(settings(limits={"max_body_bytes": 2000, "max_recipients": 3}))
    big = {"text": "x" * 3000, "addresses": ["+79031234567"]}
    status, body, _ = await api.call("POST", "/v1/notifications", json=big)
    assert status == 413
    assert body["error"]["message"] == "the request body is too large"
    many = {"text": "x", "addresses": [f"+7903123456{i}" for i in range(4)]}
    status, body, _ = await api.call("POST", "/v1/notifications", json=many)
    assert status == 400
    assert body["error"]["code"] == "too_many_recipients"


async def test_a_full_outbox_answers_503_with_retry_after(make_api: ApiFactory) -> None:
    api = await make_api(settings(limits={"outbox_max_depth": 2, "retry_after_seconds": 7}))
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    held = {"text": "later", "addresses": ["+79031234567", "+79031234568"], "send_at": later}
    assert (await api.call("POST", "/v1/notifications", json=held))[0] == 202
    status, body, response = await api.call("POST", "/v1/notifications", json=BODY)
    assert status == 503
    assert response.headers["Retry-After"] == "7"
    assert body["error"]["code"] == "outbox_full"


async def test_a_notification_shows_every_channel_tried(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/v1/notifications",
        json={"text": "db-1 down", "to": ["rejected"], "severity": "critical"},
    )
    assert status == 202
    assert body["route"] == "critical"
    nid = body["id"]

    async def done() -> Any:
        _status, body, _ = await api.call("GET", f"/v1/notifications/{nid}", token=READ)
        return body if body["state"] == "done" and len(body["deliveries"]) == 2 else None

    body = await eventually(done)
    first, second = body["deliveries"]
    assert (first["channel"], first["state"], first["step"]) == ("sms", "undelivered", 0)
    assert (second["channel"], second["state"], second["step"]) == ("backup", "delivered", 1)
    assert [t["to"] for t in second["transitions"]] == [
        "queued",
        "claimed",
        "sending",
        "accepted",
        "delivered",
    ]
    assert (await api.call("GET", "/v1/notifications/nope"))[0] == 404


async def test_channels_estimate_and_inbox(api: Api, devino_sandbox: Sandbox) -> None:
    status, body, _ = await api.call("GET", "/v1/channels")
    assert [c["name"] for c in body["channels"]] == ["sms", "backup"]
    assert body["channels"][0]["default"] is True
    assert body["channels"][0]["batch_size"] == 1000
    status, body, _ = await api.call(
        "POST", "/v1/estimate", json={"text": "Привет " * 20, "recipients": 10}, token=SEND
    )
    assert status == 200
    assert (body["segments"], body["encoding"], body["recipients"]) == (3, "UCS-2", 10)
    assert Decimal(body["cost"]) == Decimal("45")
    status, body, _ = await api.call("POST", "/v1/estimate", json={"text": "x", "channel": "no"})
    assert status == 400
    for i in range(3):
        devino_sandbox.state.inject_incoming("79031234567", "ALERTS", f"ACK {i}", login="demo")

    async def three() -> Any:
        _, body, _ = await api.call("GET", "/v1/inbox", token=READ)
        return body if len(body["messages"]) == 3 else None

    body = await eventually(three)
    assert [m["text"] for m in body["messages"]] == ["ACK 0", "ACK 1", "ACK 2"]
    first = body["messages"][0]["cursor"]
    _, after, _ = await api.call("GET", f"/v1/inbox?after={first}&limit=1")
    assert [m["text"] for m in after["messages"]] == ["ACK 1"]
    assert after["next"] == after["messages"][0]["cursor"]


async def test_metrics_counts_equal_the_sandbox_records(api: Api, devino_sandbox: Sandbox) -> None:
    numbers = [f"+7903555000{i}" for i in range(5)]
    await api.call("POST", "/v1/notifications", json={"text": "a", "addresses": numbers[:3]})
    await api.call("POST", "/v1/notifications", json={"text": "b", "addresses": numbers[3:]})
    await api.call("POST", "/v1/notifications", json={"text": "c", "addresses": ["+79990000001"]})

    async def final() -> bool:
        rows = await api.store.list_deliveries()
        return len(rows) == 6 and all(d.state.final for d in rows)

    await eventually(final)
    _status, text, response = await api.call("GET", "/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value

    def total(name: str, **labels: str) -> float:
        want = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)

    stored = list(devino_sandbox.state.messages())
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage" and r.status == 200]
    assert total("notify_devino_deliveries_total", channel="sms", outcome="accepted") == len(stored)
    assert total("notify_devino_deliveries_total", channel="sms", outcome="delivered") == 5
    assert total("notify_devino_deliveries_total", channel="sms", outcome="undelivered") == 1
    assert total("notify_devino_provider_requests_total", channel="sms") == len(sends)
    assert total("notify_devino_provider_request_recipients_total", channel="sms") == sum(
        len(r.destinations) for r in sends
    )
    assert total("notify_devino_notifications_submitted_total") == 3
    # Series exist at zero for what has not happened.
    assert (
        "notify_devino_deliveries_total",
        frozenset({("channel", "backup"), ("route", "critical"), ("outcome", "late")}),
    ) in samples
    assert total("notify_devino_outbox_deliveries", state="delivered", channel="sms") == 5
    assert total("notify_devino_time_to_delivered_seconds_count", channel="sms") == 5
    assert total("notify_devino_last_success_timestamp_seconds", channel="sms") > 0


async def test_ready_is_503_while_draining(api: Api) -> None:
    api.app[STATE].draining = True
    status, body, _ = await api.call("GET", "/-/ready", token=None)
    assert status == 503
    assert body["problems"] == ["shutting down"]
    status, body, response = await api.call("POST", "/v1/notifications", json=BODY)
    assert status == 503
    assert response.headers["Retry-After"]


async def test_a_cursor_too_large_for_the_store_is_a_400_not_a_500(api: Api) -> None:
    # Found by the fuzz test: SQLite cannot bind an integer past 2**63 - 1.
    status, body, _ = await api.call("GET", f"/v1/inbox?after={2**64}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"


async def test_an_unknown_query_parameter_is_refused(api: Api) -> None:
    # Found by the fuzz test: a misspelt parameter (?afer=) was silently ignored.
    status, body, _ = await api.call("GET", "/v1/inbox?afer=3")
    assert status == 400
    assert "'afer'" in body["error"]["message"]
