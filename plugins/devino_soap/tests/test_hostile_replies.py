"""Hostile replies and awkward text, over real HTTP on loopback.

A reply may be a billion-laughs bomb, an XXE probe or a never-ending stream: each must become a
ParseError at once, with nothing expanded, fetched or buffered beyond the cap. And text that
looks like markup must reach the service, and come back from it, exactly as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import ParseError, ProviderFaultError
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
    """Answers a login properly (unless ``logins`` is False) and every other request with
    ``answer``; logs every request."""

    def __init__(self, answer: Answer, *, logins: bool = True) -> None:
        self.answer = answer
        self.logins = logins
        self.seen: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/SmsService.asmx"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.seen.append(f"{request.method} {request.path}")
        if self.logins and 'GetSessionID"' in request.headers.get("Content-Type", ""):
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


def xml_reply(body: str | bytes) -> Answer:
    encoded = body.encode() if isinstance(body, str) else body  # once, not per request

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=encoded, content_type="application/soap+xml")

    return answer


def streamed_reply(body: bytes, **headers: str) -> Answer:
    """Answer ``body`` with a Content-Length, in 16 KiB writes each drained, so the server
    holds little of it in buffers while the client is measured in the same process."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml", **headers})
        response.content_length = len(body)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            view = memoryview(body)
            for start in range(0, len(body), 16 * 1024):
                await response.write(view[start : start + 16 * 1024])
        return response

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
        with pytest.raises(
            ParseError, match=rf"reply declares {len(big)} bytes, more than the cap of {MiB}"
        ):
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


# -- memory: the cap holds on decoded bytes, the parser bounds nesting ---------------------------

GiB = 2**30
SLACK = 4 * MiB
"""What a refused reply may cost over the cap: aiohttp's buffers, the parser's, the error."""


@functools.cache
def gzip_bomb(inflated: int = GiB) -> bytes:
    """A gzip stream of about 1 MiB that inflates to the start of an envelope, then
    ``inflated`` bytes of spaces. Built from one deflate block repeated (after a sync
    flush, every MiB of spaces compresses to the same bytes), so making it costs no 1 GiB."""
    head = envelope("GetBalance", "1")[:-40].encode()
    unit = b" " * MiB
    count = inflated // MiB
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip framing
    first = deflate.compress(head + unit) + deflate.flush(zlib.Z_SYNC_FLUSH)
    repeated = deflate.compress(unit) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert repeated == deflate.compress(unit) + deflate.flush(zlib.Z_SYNC_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(unit, crc)
    size = len(head) + count * MiB
    final_empty_block = b"\x03\x00"
    return (
        first + repeated * (count - 1) + final_empty_block + struct.pack("<II", crc, size % 2**32)
    )


def test_the_gzip_bomb_is_what_it_claims() -> None:
    small = gzip_bomb(8 * MiB)
    head = envelope("GetBalance", "1")[:-40].encode()
    assert gzip.decompress(small) == head + b" " * (8 * MiB)
    assert len(gzip_bomb()) < 1.1 * MiB


async def _peak_growth(call: Callable[[], Awaitable[object]]) -> tuple[int, BaseException]:
    """Peak traced memory (bytes) while ``call()`` runs, and what it raised."""
    tracemalloc.start()
    try:
        try:
            await call()
        except Exception as exc:
            error: BaseException = exc
        else:
            raise AssertionError("the hostile reply was accepted")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_gzip_bomb_is_cut_at_the_cap_on_decoded_bytes(
    http: aiohttp.ClientSession, framing: str
) -> None:
    bomb = gzip_bomb()  # 1 MiB on the wire, 1 GiB inflated: under the cap, until decoded

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/soap+xml", "Content-Encoding": "gzip"}
        response = web.StreamResponse(headers=headers)
        if framing == "chunked":
            response.enable_chunked_encoding()
        else:
            response.content_length = len(bomb)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            for start in range(0, len(bomb), 16 * 1024):
                await response.write(bomb[start : start + 16 * 1024])
        return response

    async with HostileServer(answer) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        peak, error = await _peak_growth(client.get_balance)
    assert isinstance(error, ParseError), repr(error)
    cap = parsing.DEFAULT_MAX_REPLY_BYTES
    assert f"larger than {cap} bytes" in str(error)
    assert "decoded" in str(error)
    assert peak < cap + SLACK, f"peak {peak / MiB:.1f} MiB for a cap of {cap / MiB:.0f} MiB"


async def test_a_declared_length_over_the_cap_is_refused_unread(
    http: aiohttp.ClientSession,
) -> None:
    written: list[int] = []
    hung_up = asyncio.Event()

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml"})
        response.content_length = GiB
        await response.prepare(request)
        total = 0
        try:
            for _ in range(4 * 1024):  # 1 GiB in 256 KiB writes, unless the client hangs up
                await response.write(b" " * (256 * 1024))
                total += 256 * 1024
        except (ConnectionError, asyncio.CancelledError):
            hung_up.set()
        written.append(total)
        return response

    async with HostileServer(answer) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        peak, error = await _peak_growth(client.get_balance)
        await asyncio.wait_for(hung_up.wait(), 10)
    assert isinstance(error, ParseError), repr(error)
    cap = parsing.DEFAULT_MAX_REPLY_BYTES
    assert f"declares {GiB} bytes, more than the cap of {cap}" in str(error)
    assert peak < SLACK  # nothing of the body was kept
    assert max(written) < 64 * MiB  # refused on its headers: the rest was never read


def deep_reply(size: int) -> bytes:
    """A well-formed envelope ``size`` bytes long whose result nests ``<a>`` as deep as fits."""
    head = envelope("GetBalance", "@").encode()
    before, _, after = head.partition(b"@")
    depth = (size - len(head)) // len(b"<a></a>")
    return before + b"<a>" * depth + b"</a>" * depth + after


async def test_a_deeply_nested_reply_costs_no_more_than_the_cap(
    http: aiohttp.ClientSession,
) -> None:
    body = deep_reply(10_000_000)  # 1.4 million levels, just under the 10 MiB cap

    async with HostileServer(streamed_reply(body)) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        peak, error = await _peak_growth(client.get_balance)
    assert isinstance(error, ParseError), repr(error)
    assert f"nested deeper than {parsing.MAX_REPLY_DEPTH} elements" in str(error)
    assert not error.is_transient()  # the same reply again would be refused again
    assert peak < len(body) + SLACK, f"peak {peak / MiB:.1f} MiB for {len(body) / MiB:.1f} MiB"


def test_the_parser_alone_refuses_deep_nesting_in_bounded_memory() -> None:
    body = deep_reply(10_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match="nested deeper"):
            parsing.read_result(body, operation="GetBalance")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SLACK  # the body itself was allocated before tracing began


def test_legitimate_nesting_is_well_within_the_depth_bound() -> None:
    # The deepest reply the service sends: Envelope/Body/Response/Result/IncomingMessage/Data.
    body = envelope(
        "GetIncomingMessages",
        "<IncomingMessage><Data>x</Data><SourceAddress>79031234567</SourceAddress>"
        "<DestinationAddress>ALERTS</DestinationAddress>"
        "<CreatedDateUtc>2026-12-01T10:00:00</CreatedDateUtc></IncomingMessage>",
    )
    (message,) = parsing.incoming_messages_from(
        parsing.read_result(body.encode(), operation="GetIncomingMessages")
    )
    assert message.data == "x"
    assert parsing.MAX_REPLY_DEPTH >= 16


# -- a URL that answers something other than SOAP (issue 10.21) ----------------------------------

NGINX = (
    b"<!DOCTYPE html>\n<html>\n<head><title>Welcome to nginx!</title></head>\n"
    b"<body><h1>Welcome to nginx!</h1></body>\n</html>\n"
)


def plain(body: bytes, content_type: str, status: int = 200) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    return answer


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (NGINX, "text/html", "an HTML page"),
        (b'{"status": "ok"}', "application/json", "JSON"),
        (b"It works!", "text/plain; charset=utf-8", "plain text"),
        (b"", "application/soap+xml; charset=utf-8", "an empty body"),
        (envelope("GetBalance", "1").encode(), "image/gif", "a reply of type image/gif"),
    ],
)
async def test_a_url_that_answers_something_else_says_so(
    http: aiohttp.ClientSession, body: bytes, content_type: str, what: str
) -> None:
    async with HostileServer(plain(body, content_type)) as server:
        client = client_for(http, "http://user:pw@" + server.url[len("http://") :] + "?x=1")
        await client.sessions.get()
        with pytest.raises(ParseError) as info:
            await client.get_balance()
    assert str(info.value) == (
        f"GetBalance: {server.url} answered {what} (HTTP 200, Content-Type {content_type}), "
        "not SOAP; is this the Devino SmsService endpoint?"
    )
    assert "DTD" not in str(info.value)
    assert info.value.operation == "GetBalance"


async def test_a_gateway_page_says_its_status(http: aiohttp.ClientSession) -> None:
    async with HostileServer(plain(NGINX, "text/html", status=502)) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        with pytest.raises(ProviderFaultError) as info:
            await client.get_balance()
    assert str(info.value) == (
        f"GetBalance: HTTP 502 without a SOAP fault: {server.url} answered an HTML page "
        "(HTTP 502, Content-Type text/html)"
    )
    assert info.value.http_status == 502


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://ws.example/SmsService.asmx", "https://ws.example/SmsService.asmx"),
        ("/v2/SmsService.asmx?token=s3cr3t#x", "http://127.0.0.1:{port}/v2/SmsService.asmx"),
        ("https://user:pw@ws.example/SmsService.asmx", "https://ws.example/SmsService.asmx"),
    ],
)
async def test_a_redirect_says_where_it_points_and_is_not_followed(
    http: aiohttp.ClientSession, location: str, shown: str
) -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=301,
            body=b"<html>Moved</html>",
            headers={"Location": location, "Content-Type": "text/html"},
        )

    async with HostileServer(moved) as server:
        client = client_for(http, server.url)
        await client.sessions.get()
        with pytest.raises(ProviderFaultError) as info:
            await client.get_balance()
    message = str(info.value)
    assert message.startswith(
        f"GetBalance: HTTP 301 without a SOAP fault: {server.url} answered an HTML page"
    )
    assert f"; it redirects to {shown.format(port=server.port)} (redirects are not followed" in (
        message
    )
    assert "s3cr3t" not in message
    assert "pw@" not in message
    assert server.seen.count("POST /SmsService.asmx") == 2  # the login and one GetBalance
    assert not any(seen.startswith("POST /v2") for seen in server.seen)


async def test_a_login_that_answers_html_names_the_login(http: aiohttp.ClientSession) -> None:
    async with HostileServer(plain(NGINX, "text/html"), logins=False) as server:
        client = client_for(http, server.url)
        with pytest.raises(
            ParseError,
            match=r"^GetSessionID: http://127\.0\.0\.1:\d+/SmsService"
            r"\.asmx answered an HTML page \(HTTP 200",
        ):
            await client.get_balance()


# -- a send reply without message IDs is unknown, never accepted (issue 10.12) ------------------


@pytest.mark.parametrize(
    ("result", "missing"),
    [
        ("<SendMessageResult />", "SendMessageResult has nothing, expected <string> message IDs"),
        (
            "<SendMessageResult><MessageId>1</MessageId></SendMessageResult>",
            "SendMessageResult has <MessageId>, expected <string> message IDs",
        ),
        ("", "SendMessageResponse has nothing, expected <SendMessageResult>"),
        (
            '<SendMessageResult xmlns="urn:elsewhere"><string>1</string></SendMessageResult>',
            "SendMessageResponse has <{urn:elsewhere}SendMessageResult>, expected "
            "<SendMessageResult>",
        ),
    ],
)
async def test_a_send_reply_without_message_ids_is_unknown(
    result: str,
    missing: str,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP12_NS}">'
        f'<soap:Body><SendMessageResponse xmlns="{DEVINO_NS}">{result}</SendMessageResponse>'
        "</soap:Body></soap:Envelope>"
    )
    async with HostileServer(xml_reply(body)) as server:
        config = make_config(server.url)
        async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
            sent = await dispatcher.send("disk full", to=["79031234567"])
    (recipient,) = sent.recipients
    assert recipient.outcome is SendOutcome.UNKNOWN
    assert recipient.message_ids == ()
    assert isinstance(recipient.error, ParseError)
    assert missing in str(recipient.error)
    assert server.seen.count("POST /SmsService.asmx") == 2  # the login, one send: not resent


def wide_reply(unit: bytes, size: int = 10_000_000) -> bytes:
    """A well-formed envelope ``size`` bytes long whose result repeats ``unit``."""
    head = envelope("GetBalance", "@").encode()
    before, _, after = head.partition(b"@")
    return before + unit * ((size - len(head)) // len(unit)) + after


@pytest.mark.parametrize(
    ("unit", "refusal"),
    [
        (b"<a/>", "more than 100000 elements"),
        (b'<a b=""/>', "more than 100000 elements"),  # a dict per element, were it kept
        (b"<x:a xmlns:x='u'/>", "more than 100000 elements"),  # and for each namespace
        (b"x", "not a decimal number the service sends"),  # one text of 10 MB
        ("я".encode(), "not a decimal number the service sends"),
        (b"&amp;", "not a decimal number the service sends"),  # two million references
    ],
)
def test_a_wide_reply_costs_no_more_than_a_few_mib(unit: bytes, refusal: str) -> None:
    body = wide_reply(unit)
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match=refusal) as info:
            parsing.balance_from(parsing.read_result(body, operation="GetBalance"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SLACK + 2 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert len(str(info.value)) < 500


def test_a_small_reply_is_parsed_without_the_wrappers_and_still_refused() -> None:
    # Below 64 KiB and 4,096 tags nothing built can be large, so the per-element bounds are
    # skipped there; what is refused is refused all the same, by shape.
    body = deep_reply(14_000)
    assert body.count(b"<") <= 4096
    with pytest.raises(ParseError, match="has elements where text was expected"):
        parsing.balance_from(parsing.read_result(body, operation="GetBalance"))


async def _print_peaks() -> None:
    """The figures behind the bounds above, for a person: the peak of traced memory each
    hostile reply costs the client, against the cap."""
    cap = parsing.DEFAULT_MAX_REPLY_BYTES
    served = {
        "gzip bomb, 1 MiB inflating to 1 GiB": streamed_reply(
            gzip_bomb(), **{"Content-Encoding": "gzip"}
        ),
        "10 MB of deep nesting": streamed_reply(deep_reply(10_000_000)),
        '10 MB of <a b=""/>': streamed_reply(wide_reply(b'<a b=""/>')),
    }
    async with aiohttp.ClientSession() as http:
        for name, answer in served.items():
            async with HostileServer(answer) as server:
                client = client_for(http, server.url)
                await client.sessions.get()
                peak, error = await _peak_growth(client.get_balance)
            print(
                f"{name}: peak {peak / MiB:.1f} MiB (cap {cap / MiB:.0f} MiB): "
                f"{type(error).__name__}: {str(error)[:100]}"
            )


if __name__ == "__main__":  # python plugins/devino_soap/tests/test_hostile_replies.py
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    asyncio.run(_print_peaks())
