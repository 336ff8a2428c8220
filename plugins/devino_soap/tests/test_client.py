"""The Devino client over real HTTP on loopback.

Most tests run against the Devino sandbox (``devino_sandbox``). Transport faults the sandbox does
not produce (a closed port, a stall past the timeout, a connection closed after the request,
HTTP 503 with Retry-After, a non-XML body) come from small real servers written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from notify_devino.errors import (
    AuthenticationError,
    ChannelError,
    ConnectionFailedError,
    InsufficientFundsError,
    InvalidInputError,
    ParseError,
    ProviderFaultError,
    RateLimitedError,
    RequestTimeoutError,
    SessionExpiredError,
)
from notify_devino.retrying import RetrySettings
from notify_devino_soap.client import DevinoClient
from notify_devino_soap.emulator import RateLimit, Sandbox, SandboxConfig
from notify_devino_soap.envelopes import DEVINO_NS, SOAP12_NS
from notify_devino_soap.models import DevinoStatistics, MessageState

PASSWORD = "demo-password"
NUMBER = "79031234567"
SID = "Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(
    http: aiohttp.ClientSession, url: str, *, retry: dict[str, Any] | None = None, **kwargs: Any
) -> DevinoClient:
    options: dict[str, Any] = {"login": "demo", "password": PASSWORD, "channel": "sms"}
    options.update(kwargs)
    settings = RetrySettings(
        **{"wait_initial_seconds": 0.01, "wait_max_seconds": 2.0, **(retry or {})}
    )
    return DevinoClient(http, url=url, retry=settings, **options)


def operations(sandbox: Sandbox) -> list[str | None]:
    return [r.operation for r in sandbox.requests]


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps that fall in any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- against the sandbox -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.1"])
async def test_every_operation(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox, version: str
) -> None:
    client = make_client(http, devino_sandbox.url, soap_version=version)
    session_id = await client.get_session_id()
    assert len(session_id) == 36

    assert await client.get_balance() == Decimal("1000")

    long_text = "Диск заполнен на сервере " * 5  # 125 UCS-2 characters: 2 segments
    ids = await client.send_message(
        source="Alerts", destinations=[NUMBER, "+7 903 765-43-21"], data=long_text
    )
    assert len(ids) == 4
    assert all(i.isdigit() for i in ids)
    assert [int(i) for i in ids] == list(range(int(ids[0]), int(ids[0]) + 4))

    local = datetime.now() + timedelta(hours=1)  # a wall-clock time, on purpose
    one = await client.send_message_by_time_zone(
        source="Alerts", destination="89031234567", data="later", send_date=local, validity=60
    )
    many = await client.send_message_by_time_zone_to_addresses(
        source="Alerts", destinations=[NUMBER, "79131234567"], data="later", send_date=local
    )
    assert (len(one), len(many)) == (1, 2)

    state = await client.get_message_state(ids[0])
    assert isinstance(state, MessageState)
    assert state.message_id == ids[0]
    assert state.state_name != ""
    same = await client.get_message_state(int(ids[0]))
    assert same.message_id == ids[0]

    now = datetime.now(UTC)
    stats = await client.get_statistics(now - timedelta(days=1), now + timedelta(hours=1))
    assert isinstance(stats, DevinoStatistics)
    assert stats.total >= 1

    devino_sandbox.state.inject_incoming("79031234567", "Alerts", "ack </Data> & <done>")
    messages = await client.get_incoming_messages(
        now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert [m.data for m in messages] == ["ack </Data> & <done>"]
    assert messages[0].source_address == "79031234567"
    assert messages[0].created_date_utc.tzinfo is UTC

    assert {r.soap_version for r in devino_sandbox.requests} == {version}
    assert all(r.status == 200 for r in devino_sandbox.requests)
    # get_session_id() is a raw login; the client fetched its own session once besides.
    assert operations(devino_sandbox).count("GetSessionID") == 2


async def test_send_escapes_text_and_sender(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    client = make_client(http, devino_sandbox.url)
    text = "</data><x>&amp; \"quoted\" 'single'"
    (message_id,) = await client.send_message(source="A&B'Co", destinations=[NUMBER], data=text)
    (stored,) = devino_sandbox.state.messages("demo")
    assert stored.text == text
    assert stored.source == "A&B'Co"
    assert str(stored.message_id) == message_id


async def test_query_ranges_cover_their_fractional_seconds(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    devino_sandbox.state.inject_incoming(NUMBER, "Alerts", "late", base + timedelta(seconds=0.5))
    devino_sandbox.state.inject_incoming(NUMBER, "Alerts", "early", base + timedelta(seconds=0.1))
    client = make_client(http, devino_sandbox.url)
    messages = await client.get_incoming_messages(
        base + timedelta(seconds=0.2), base + timedelta(seconds=0.7)
    )
    # The wire carries whole seconds; the range is widened to [base, base + 1 s], never cut.
    assert [m.data for m in messages] == ["early", "late"]


INVALID_CALLS: list[tuple[str, Callable[[DevinoClient], Awaitable[object]], str]] = [
    (
        "bad number",
        lambda c: c.send_message(source="A", destinations=["12"], data="x"),
        "recipient",
    ),
    ("no numbers", lambda c: c.send_message(source="A", destinations=[], data="x"), "recipients"),
    (
        "1001 numbers",
        lambda c: c.send_message(source="A", destinations=[NUMBER] * 1001, data="x"),
        "recipients",
    ),
    (
        "one string",
        lambda c: c.send_message(source="A", destinations=NUMBER, data="x"),
        "recipients",
    ),
    (
        "long sender",
        lambda c: c.send_message(source="TooLongSender", destinations=[NUMBER], data="x"),
        "sender",
    ),
    ("empty text", lambda c: c.send_message(source="A", destinations=[NUMBER], data=""), "text"),
    (
        "text too long",
        lambda c: c.send_message(source="A", destinations=[NUMBER], data="x" * 2001),
        "text",
    ),
    (
        "control char",
        lambda c: c.send_message(source="A", destinations=[NUMBER], data="bell\x07"),
        "text",
    ),
    (
        "validity",
        lambda c: c.send_message(source="A", destinations=[NUMBER], data="x", validity=0),
        "validity",
    ),
    (
        "naive delay",
        lambda c: c.send_message(
            source="A", destinations=[NUMBER], data="x", delay_until_utc=datetime(2030, 1, 1)
        ),
        "delay_until_utc",
    ),
    (
        "aware send date",
        lambda c: c.send_message_by_time_zone(
            source="A", destination=NUMBER, data="x", send_date=datetime(2030, 1, 1, tzinfo=UTC)
        ),
        "send_date",
    ),
    (
        "bad number by time zone",
        lambda c: c.send_message_by_time_zone_to_addresses(
            source="A", destinations=[NUMBER, "abc"], data="x", send_date=datetime(2030, 1, 1)
        ),
        "recipient",
    ),
    ("message id 0", lambda c: c.get_message_state(0), "message_id"),
    ("message id 2**63", lambda c: c.get_message_state(2**63), "message_id"),
    ("message id text", lambda c: c.get_message_state("12ab"), "message_id"),
    (
        "statistics > 3 months",
        lambda c: c.get_statistics(
            datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC)
        ),
        "range",
    ),
    (
        "statistics naive",
        lambda c: c.get_statistics(datetime(2024, 1, 1), datetime(2024, 1, 2)),
        "start",
    ),
    (
        "incoming inverted",
        lambda c: c.get_incoming_messages(
            datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
        ),
        "range",
    ),
]


@pytest.mark.parametrize(
    ("call", "field"), [(c, f) for _, c, f in INVALID_CALLS], ids=[n for n, _, _ in INVALID_CALLS]
)
async def test_invalid_input_sends_nothing(
    http: aiohttp.ClientSession,
    devino_sandbox: Sandbox,
    call: Callable[[DevinoClient], Awaitable[object]],
    field: str,
) -> None:
    client = make_client(http, devino_sandbox.url)
    with pytest.raises(InvalidInputError) as info:
        await call(client)
    assert info.value.field == field
    assert info.value.channel == "sms"
    assert devino_sandbox.requests == []


async def test_session_fetched_once_for_20_concurrent_calls(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    client = make_client(http, devino_sandbox.url)
    balances = await asyncio.gather(*(client.get_balance() for _ in range(20)))
    assert balances == [Decimal("1000")] * 20
    assert operations(devino_sandbox).count("GetSessionID") == 1
    assert operations(devino_sandbox)[0] == "GetSessionID"
    assert client.sessions.logins == 1


async def test_session_renewed_once_on_expired_fault(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    client = make_client(http, devino_sandbox.url)
    await client.get_balance()
    devino_sandbox.state.expire_sessions()
    devino_sandbox.requests.clear()

    with capture_logs() as logs:
        balances = await asyncio.gather(*(client.get_balance() for _ in range(5)))
    assert balances == [Decimal("1000")] * 5
    ops = operations(devino_sandbox)
    assert ops.count("GetSessionID") == 1  # five tasks saw the fault, one renewal
    assert ops.count("GetBalance") == 10  # five refused, five repeated
    faults = [r.fault for r in devino_sandbox.requests if r.fault]
    assert len(faults) == 5
    assert all(f.endswith("---> SessionID expired") for f in faults)
    assert any(e.get("session") == "renewed" for e in logs)


async def test_send_repeated_once_after_session_fault(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    client = make_client(http, devino_sandbox.url)
    await client.get_balance()
    devino_sandbox.state.expire_sessions()
    ids = await client.send_message(source="Alerts", destinations=[NUMBER], data="once")
    assert len(ids) == 1
    assert len(devino_sandbox.state.messages("demo")) == 1  # the refused send was not processed
    assert operations(devino_sandbox)[-3:] == ["SendMessage", "GetSessionID", "SendMessage"]


async def test_session_replaced_before_it_expires(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    now = [datetime(2024, 3, 5, 12, 0, tzinfo=UTC)]
    client = make_client(http, devino_sandbox.url, clock=lambda: now[0])
    await client.get_balance()
    now[0] += timedelta(minutes=114)
    await client.get_balance()
    assert operations(devino_sandbox).count("GetSessionID") == 1
    now[0] += timedelta(minutes=1)  # 115 = 120 - 5 minutes margin
    await client.get_balance()
    assert operations(devino_sandbox) == [
        "GetSessionID",
        "GetBalance",
        "GetBalance",
        "GetSessionID",
        "GetBalance",
    ]
    assert all(r.fault is None for r in devino_sandbox.requests)


async def test_bad_password_one_login_for_many_callers(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    client = make_client(http, devino_sandbox.url, password="wrong")
    results = await asyncio.gather(
        *(client.get_balance() for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    error = results[0]
    assert isinstance(error, AuthenticationError)
    assert error.text == "Server was unable to process request. ---> Invalid user login or password"
    assert error.http_status == 500
    assert error.code == "soap:Receiver"
    assert error.channel == "sms"
    assert operations(devino_sandbox) == ["GetSessionID"]  # not retried, not repeated


async def test_insufficient_funds(http: aiohttp.ClientSession, devino_sandbox: Sandbox) -> None:
    client = make_client(http, devino_sandbox.url, login="poor", password="poor-password")
    with pytest.raises(InsufficientFundsError) as info:
        await client.send_message(source="Alerts", destinations=[NUMBER] * 3, data="x")
    assert "Not enough credits" in (info.value.text or "")
    assert operations(devino_sandbox).count("SendMessage") == 1


async def test_rate_limit_window(http: aiohttp.ClientSession, devino_sandbox: Sandbox) -> None:
    client = make_client(http, devino_sandbox.url)
    started = time.monotonic()
    await asyncio.gather(*(client.get_balance() for _ in range(25)))
    elapsed = time.monotonic() - started
    times = [r.monotonic for r in devino_sandbox.requests]
    assert len(times) == 26  # one login + 25 calls
    assert all(r.status == 200 for r in devino_sandbox.requests)  # the sandbox refused none
    assert max_in_any_window(times) <= 10
    assert elapsed >= 2.0  # 26 requests need three windows


async def test_rate_limited_sends_are_retried(http: aiohttp.ClientSession) -> None:
    # A client allowed far more than the service takes: the sandbox refuses the excess with
    # 503; sends are retried (the refusal proves nothing was processed) and none is doubled.
    config = SandboxConfig(rate_limit=RateLimit(response="http_503", retry_after_seconds=0))
    async with Sandbox(config) as devino_sandbox:
        await _rate_limited_sends(http, devino_sandbox)


async def _rate_limited_sends(http: aiohttp.ClientSession, devino_sandbox: Sandbox) -> None:
    client = make_client(
        http,
        devino_sandbox.url,
        rate_limit=1000,
        retry={"attempts": 6, "wait_initial_seconds": 0.2},
    )
    await client.get_balance()
    with capture_logs() as logs:
        results = await asyncio.gather(
            *(
                client.send_message(source="Alerts", destinations=[NUMBER], data=f"n{i}")
                for i in range(15)
            )
        )
    assert all(len(ids) == 1 for ids in results)
    assert len(devino_sandbox.state.messages("demo")) == 15
    refused = [r for r in devino_sandbox.requests if r.status == 503]
    assert refused
    retries = [e for e in logs if e["event"] == "retry_scheduled"]
    assert len(retries) == len(refused)
    assert {e["error"] for e in retries} == {"RateLimitedError"}
    assert {e["operation"] for e in retries} == {"SendMessage"}


async def test_nothing_secret_in_logs(http: aiohttp.ClientSession, devino_sandbox: Sandbox) -> None:
    client = make_client(http, devino_sandbox.url)
    with capture_logs() as logs:
        await client.get_balance()
        await client.send_message(source="Alerts", destinations=[NUMBER], data="hello")
        devino_sandbox.state.expire_sessions()
        await client.get_balance()  # renewal
        raw = await client.get_session_id()
        bad = make_client(http, devino_sandbox.url, password="wrong-" + PASSWORD)
        with pytest.raises(AuthenticationError):
            await bad.get_balance()
    held = client.sessions._session_id
    assert held is not None
    secrets = [PASSWORD, held, raw]
    text = repr(logs)
    for secret in secrets:
        assert secret not in text
    calls = [e for e in logs if e["event"] == "soap_call"]
    assert len(calls) == len([r for r in devino_sandbox.requests if r.operation])
    for event in calls:
        assert set(event) >= {
            "operation",
            "soap_version",
            "elapsed_ms",
            "outcome",
            "http_status",
            "channel",
        }
    assert {e["outcome"] for e in calls} == {"ok", "SessionExpiredError", "AuthenticationError"}


# -- small real servers for what the sandbox does not do ------------------------------------------


def reply(operation: str, result: str, status: int = 200) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body>'
        f'<{operation}Response xmlns="{DEVINO_NS}"><{operation}Result>{result}'
        f"</{operation}Result></{operation}Response></soap:Body></soap:Envelope>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/soap+xml")


def default_reply(operation: str) -> web.Response:
    return {
        "GetSessionID": lambda: reply("GetSessionID", SID),
        "GetBalance": lambda: reply("GetBalance", "42.5"),
        "SendMessage": lambda: reply("SendMessage", "<string>579700854169272358</string>"),
    }[operation]()


Handler = Callable[[web.Request, str, int], Awaitable[web.StreamResponse]]


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 whose answer to each operation a test scripts.

    ``script(request, operation, n)`` gets the n-th (1-based) request of that operation; it
    answers like Devino by default.
    """

    def __init__(self, script: Handler | None = None) -> None:
        self.script = script
        self.calls: list[tuple[str, float]] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        """Set when a request other than a login arrives."""
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/SmsService.asmx"

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        content_type = request.headers.get("Content-Type", "")
        action = request.headers.get("SOAPAction") or content_type.partition('action="')[2]
        operation = action.strip('"').rsplit("/", 1)[-1]
        self.calls.append((operation, time.monotonic()))
        if operation != "GetSessionID":
            self.arrived.set()
        if self.script is not None:
            return await self.script(request, operation, self.count(operation))
        return default_reply(operation)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/SmsService.asmx", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self.release = asyncio.Event()


@contextlib.asynccontextmanager
async def scripted(script: Handler | None = None) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(script)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_read_is_retried(http: aiohttp.ClientSession) -> None:
    client = make_client(http, f"http://127.0.0.1:{closed_port()}/SmsService.asmx")
    with capture_logs() as logs, pytest.raises(ConnectionFailedError) as info:
        await client.get_balance()
    assert info.value.request_sent is False
    assert info.value.channel == "sms"
    assert not isinstance(info.value.__cause__, ChannelError)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    calls = [e for e in logs if e["event"] == "soap_call"]
    assert [e["attempt"] for e in calls] == [1, 2, 3]
    assert {e["outcome"] for e in calls} == {"ConnectionFailedError"}
    retries = [e for e in logs if e["event"] == "retry_scheduled"]
    assert [(e["operation"], e["attempt"]) for e in retries] == [
        ("GetSessionID", 1),
        ("GetSessionID", 2),
    ]


async def test_send_retried_after_connection_refused() -> None:
    # A new connection per request: a pooled keep-alive connection to the stopped server
    # would fail after writing (request_sent=True), which is not what this test is about.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        scripted() as server,
    ):
        client = make_client(http, server.url, retry={"wait_initial_seconds": 0.3})
        await client.get_balance()
        await server.stop()  # now the port refuses connections

        async def come_back() -> None:
            await asyncio.sleep(0.05)
            await server.start(server.port)

        with capture_logs() as logs:
            restart = asyncio.create_task(come_back())
            ids = await client.send_message(source="Alerts", destinations=[NUMBER], data="x")
            await restart
        assert ids == ["579700854169272358"]
        assert server.count("SendMessage") == 1  # the first attempt never reached a server
        outcomes = [e["outcome"] for e in logs if e["event"] == "soap_call"]
        assert outcomes == ["ConnectionFailedError", "ok"]


async def stall(
    server: ScriptedServer, request: web.Request, operation: str, n: int
) -> web.StreamResponse:
    """Answer a login at once; hold any other request until the server stops."""
    if operation == "GetSessionID":
        return default_reply(operation)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.release.wait(), timeout=10)
    return default_reply(operation)


@contextlib.asynccontextmanager
async def stalling() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    server.script = functools.partial(stall, server)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_send_not_retried_after_timeout(http: aiohttp.ClientSession) -> None:
    async with stalling() as server:
        client = make_client(http, server.url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            await client.send_message(source="Alerts", destinations=[NUMBER], data="x")
        assert time.monotonic() - started < 2
        assert info.value.request_sent is True
        assert info.value.is_transient()
        assert server.count("SendMessage") == 1


async def test_read_retried_after_timeout(http: aiohttp.ClientSession) -> None:
    async with stalling() as server:
        client = make_client(http, server.url, timeout=0.2)
        with pytest.raises(RequestTimeoutError) as info:
            await client.get_balance()
        assert info.value.request_sent is True
        assert server.count("GetBalance") == 3


async def test_cancellation_is_not_wrapped(http: aiohttp.ClientSession) -> None:
    async with stalling() as server:
        client = make_client(http, server.url, timeout=5)
        task = asyncio.create_task(client.get_balance())
        await asyncio.wait_for(server.arrived.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.count("GetBalance") == 1


class HangUpServer:
    """A raw TCP server that answers GetSessionID properly and hangs up on any other request
    after reading it in full."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/SmsService.asmx"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = head.decode("latin-1").lower()
                length = int(headers.split("content-length:")[1].split("\r\n")[0])
                await reader.readexactly(length)
                operation = headers.split('action="http://ws.devinosms.com/')[1].split('"')[0]
                self.requests.append(operation)
                if operation != "getsessionid":
                    break
                body = default_reply("GetSessionID").body
                assert isinstance(body, bytes)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=utf-8\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def __aenter__(self) -> HangUpServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_send_not_retried_after_disconnect(http: aiohttp.ClientSession) -> None:
    async with HangUpServer() as server:
        client = make_client(http, server.url)
        with pytest.raises(ConnectionFailedError) as info:
            await client.send_message(source="Alerts", destinations=[NUMBER], data="x")
        assert info.value.request_sent is True
        assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)
        assert server.requests == ["getsessionid", "sendmessage"]


async def test_read_retried_after_disconnect(http: aiohttp.ClientSession) -> None:
    async with HangUpServer() as server:
        client = make_client(http, server.url)
        with pytest.raises(ConnectionFailedError) as info:
            await client.get_balance()
        assert info.value.request_sent is True
        assert server.requests == ["getsessionid", "getbalance", "getbalance", "getbalance"]


async def test_read_retried_on_503_honouring_retry_after(http: aiohttp.ClientSession) -> None:
    async def busy_once(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetBalance" and n == 1:
            return web.Response(
                status=503, text="Service Unavailable", headers={"Retry-After": "1"}
            )
        return default_reply(operation)

    async with scripted(busy_once) as server:
        client = make_client(http, server.url)
        assert await client.get_balance() == Decimal("42.5")
        balance_times = [t for op, t in server.calls if op == "GetBalance"]
        assert len(balance_times) == 2
        assert balance_times[1] - balance_times[0] >= 0.95


async def test_long_retry_after_is_not_waited_for(http: aiohttp.ClientSession) -> None:
    async def busy(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetBalance":
            return web.Response(status=429, text="slow down", headers={"Retry-After": "3600"})
        return default_reply(operation)

    async with scripted(busy) as server:
        client = make_client(http, server.url)
        with pytest.raises(RateLimitedError) as info:
            await client.get_balance()
        assert info.value.retry_after == 3600
        assert info.value.http_status == 429
        assert server.count("GetBalance") == 1


async def test_non_xml_200_is_a_parse_error(http: aiohttp.ClientSession) -> None:
    async def html(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetBalance":
            return web.Response(
                text="<html><body>Maintenance</body></html>", content_type="text/html"
            )
        return default_reply(operation)

    async with scripted(html) as server:
        client = make_client(http, server.url)
        with pytest.raises(ParseError) as info:
            await client.get_balance()
        assert info.value.channel == "sms"
        assert "Maintenance" in (info.value.body or "")
        assert info.value.is_transient()  # unreadable bytes: a second read may do better
        assert server.count("GetBalance") == 3


async def test_oversized_reply_is_refused(http: aiohttp.ClientSession) -> None:
    async def huge(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetBalance":
            return reply("GetBalance", "1" + " " * 5000)
        return default_reply(operation)

    async with scripted(huge) as server:
        client = make_client(http, server.url, max_reply_bytes=2000)
        with pytest.raises(ParseError, match="more than the cap of 2000"):
            await client.get_balance()


def _balance_body(padding: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body>'
        f'<GetBalanceResponse xmlns="{DEVINO_NS}"><GetBalanceResult>42.5'
        f"</GetBalanceResult></GetBalanceResponse></soap:Body>{' ' * padding}</soap:Envelope>"
    ).encode()


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
async def test_the_reply_cap_counts_decoded_bytes_to_the_byte(
    http: aiohttp.ClientSession, encoding: str | None
) -> None:
    body = _balance_body(100_000)

    async def padded(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation != "GetBalance":
            return default_reply(operation)
        response = web.Response(body=body, content_type="application/soap+xml")
        if encoding is not None:
            response.enable_compression(web.ContentCoding(encoding))
        return response

    async with scripted(padded) as server:
        exact = make_client(http, server.url, max_reply_bytes=len(body))
        assert await exact.get_balance() == Decimal("42.5")
        short = make_client(http, server.url, max_reply_bytes=len(body) - 1)
        with pytest.raises(ParseError) as info:
            await short.get_balance()
    message = str(info.value)
    if encoding is None:  # the length is declared: refused before reading
        assert f"reply declares {len(body)} bytes, more than the cap of {len(body) - 1}" in message
    else:  # 100 KB of spaces compress to a few hundred bytes: only the decoded count tells
        assert f"larger than {len(body) - 1} bytes" in message
        assert f"inflated from Content-Encoding {encoding}" in message
    assert info.value.operation == "GetBalance"
    assert info.value.channel == "sms"
    assert server.count("GetBalance") == 2  # too large is not transient: not asked again


async def test_http_error_without_fault(http: aiohttp.ClientSession) -> None:
    # A proxy's 502 says nothing of whether the service processed the request: a read is
    # retried (it is transient), a send is not (it may be out).
    async def gateway(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetSessionID" and n > 3:
            return default_reply(operation)
        return web.Response(status=502, text="Bad Gateway")

    async with scripted(gateway) as server:
        client = make_client(http, server.url)
        with pytest.raises(ProviderFaultError) as info:
            await client.get_session_id()
        assert type(info.value) is ProviderFaultError
        assert info.value.http_status == 502
        assert info.value.is_transient()
        assert info.value.may_have_been_processed()
        assert info.value.operation == "GetSessionID"
        assert server.count("GetSessionID") == 3
        with pytest.raises(ProviderFaultError) as sent:
            await client.send_message(source="Alerts", destinations=[NUMBER], data="x")
        assert sent.value.operation == "SendMessage"
        assert server.count("SendMessage") == 1


async def test_third_session_fault_propagates(http: aiohttp.ClientSession) -> None:
    async def always_expired(request: web.Request, operation: str, n: int) -> web.StreamResponse:
        if operation == "GetSessionID":
            return default_reply(operation)
        body = (
            f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body><soap:Fault><soap:Code>'
            "<soap:Value>soap:Receiver</soap:Value></soap:Code><soap:Reason>"
            '<soap:Text xml:lang="en">Server was unable to process request. ---&gt; '
            "Invalid session</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>"
        )
        return web.Response(status=500, text=body, content_type="application/soap+xml")

    async with scripted(always_expired) as server:
        client = make_client(http, server.url)
        with pytest.raises(SessionExpiredError):
            await client.get_balance()
        assert [op for op, _ in server.calls] == ["GetSessionID", "GetBalance"] * 3


async def test_constructor_checks(http: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="http"):
        DevinoClient(http, url="ftp://x", login="a", password="b")
    with pytest.raises(ValueError, match="soap_version"):
        DevinoClient(http, url="http://x", login="a", password="b", soap_version="2")  # type: ignore[arg-type]
    client = DevinoClient(http, url="http://x", login="a", password="secret")
    assert "secret" not in repr(client)
