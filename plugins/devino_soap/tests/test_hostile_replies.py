"""Hostile replies and awkward text, over real HTTP on loopback.

A reply may be a billion-laughs bomb, an XXE probe or a never-ending stream: each must become a
ParseError at once, with nothing expanded, fetched or buffered beyond the cap. And text that
looks like markup must reach the service, and come back from it, exactly as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import ParseError
from notify_devino.plugins import PluginManager
from notify_devino.retrying import RetrySettings
from notify_devino.types import SendOutcome
from notify_devino_soap import parsing
from notify_devino_soap.client import DevinoClient
from notify_devino_soap.emulator import Sandbox
from notify_devino_soap.envelopes import DEVINO_NS, SOAP12_NS

SID = "Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1"
MiB = 2**20

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n'
        for n in range(1, 10)
    )
    + "]>\n"
    + f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body>'
    + f'<GetBalanceResponse xmlns="{DEVINO_NS}"><GetBalanceResult>&lol9;</GetBalanceResult>'
    + "</GetBalanceResponse></soap:Body></soap:Envelope>"
)
"""Nine levels of ten: a billion "lol"s (3 GB) if expanded."""


def envelope(operation: str, result: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP12_NS}">'
        f'<soap:Body><{operation}Response xmlns="{DEVINO_NS}"><{operation}Result>{result}'
        f"</{operation}Result></{operation}Response></soap:Body></soap:Envelope>"
    )


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HostileServer:
    """Answers a login properly and every GetBalance with ``answer``; logs every request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/SmsService.asmx"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.seen.append(f"{request.method} {request.path}")
        if 'GetSessionID"' in request.headers.get("Content-Type", ""):
            return web.Response(
                body=envelope("GetSessionID", SID).encode(), content_type="application/soap+xml"
            )
        return await self.answer(request)

    async def __aenter__(self) -> HostileServer:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(http: aiohttp.ClientSession, url: str, **kwargs: object) -> DevinoClient:
    return DevinoClient(
        http,
        url=url,
        login="demo",
        password="demo-password",
        retry=RetrySettings(wait_initial_seconds=0.01),
        **kwargs,  # type: ignore[arg-type]
    )


def xml_reply(body: str) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body.encode(), content_type="application/soap+xml")

    return answer


async def test_a_billion_laughs_reply_is_refused_unexpanded(http: aiohttp.ClientSession) -> None:
    async with HostileServer(xml_reply(BILLION_LAUGHS)) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        tracemalloc.start()
        try:
            with pytest.raises(ParseError, match="DTD") as info:
                await client.get_balance()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * MiB  # expanded, it would be 3 GB
    assert not info.value.is_transient()  # refused as hostile: asking again would not help
    assert server.seen.count("POST /SmsService.asmx") == 2  # the login and one GetBalance
    assert "lol" * 100 not in str(info.value) + (info.value.body or "")


def test_the_parser_alone_refuses_the_bomb_unexpanded() -> None:
    tracemalloc.start()
    try:
        for _ in range(100):
            with pytest.raises(ParseError):
                parsing.read_result(BILLION_LAUGHS.encode(), operation="GetBalance")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB


async def test_an_xxe_reply_reads_no_file_and_fetches_nothing(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    probes = []
    async with HostileServer(xml_reply("")) as server:
        dtd_url = f"http://127.0.0.1:{server.port}/evil.dtd"
        for doctype, reference in (
            (f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>', "&xxe;"),
            (f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{dtd_url}"> %p;]>', "1"),
            (f'<!DOCTYPE x SYSTEM "{dtd_url}">', "1"),
        ):
            body = envelope("GetBalance", reference).replace("?>", "?>" + doctype, 1)
            server.answer = xml_reply(body)
            client = client_for(http, server.url)
            with capture_logs() as logs, pytest.raises(ParseError) as info:
                await client.get_balance()
            probes.append((info.value, logs))
    for error, logs in probes:
        shown = f"{error} {error.body} {error.__cause__} {logs}"
        assert "TOP-SECRET-MARKER" not in shown
    assert "GET /evil.dtd" not in server.seen  # no external DTD was ever fetched


async def test_an_oversized_reply_is_refused_by_its_length(http: aiohttp.ClientSession) -> None:
    big = envelope("GetBalance", "1" + " " * (2 * MiB))
    async with HostileServer(xml_reply(big)) as server:
        client = client_for(http, server.url, max_reply_bytes=MiB)
        with pytest.raises(ParseError, match=rf"reply of {len(big)} bytes is larger than {MiB}"):
            await client.get_balance()


async def test_an_endless_reply_is_cut_at_the_cap(http: aiohttp.ClientSession) -> None:
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        total = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await response.write(envelope("GetBalance", "1")[:-40].encode())
            for _ in range(256):  # up to 64 MiB, unless the client hangs up
                await response.write(b" " * (256 * 1024))
                total += 256 * 1024
        sent.append(total)
        return response

    async with HostileServer(endless) as server:
        client = client_for(http, server.url, max_reply_bytes=MiB)
        with pytest.raises(ParseError, match=f"larger than {MiB} bytes"):
            await client.get_balance()
    assert sent
    assert max(sent) < 32 * MiB  # the client hung up long before the 64 MiB end


TEXTS = [
    "</data><x>&amp;",
    "]]> <![CDATA[ x ]]> &lt;&gt; &#x41; &unknown;",
    "<?xml version='1.0'?><soap:Envelope/>",
    "tab\tand\r\nCRLF\rCR\nLF",
    '"double" \'single\' <a href="x">',
    "Привет, <b>мир</b> & co",
]


@pytest.mark.parametrize("soap_version", ["1.1", "1.2"])
@pytest.mark.parametrize("text", TEXTS)
async def test_markup_in_text_travels_verbatim(
    text: str,
    soap_version: str,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    devino_sandbox.state.inject_incoming("79031234567", "ALERTS", text)
    config = make_config(devino_sandbox.url, soap_version=soap_version)
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send(text, to=["79031234567"], sender="A&B'Co")
        (received,) = await dispatcher.inbox()
    assert result.recipients[0].outcome is SendOutcome.ACCEPTED
    stored = devino_sandbox.state.messages()
    assert {m.text for m in stored} == {text}  # what the service stored, every segment
    assert stored[0].source == "A&B'Co"
    assert received.text == text  # and what came back from it
