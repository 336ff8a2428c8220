"""aiohttp's exceptions become transport errors that say whether the request may have left,
against real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_devino.errors import ConnectionFailedError, ParseError, RequestTimeoutError
from notify_devino.transport import MAX_RETRY_AFTER_SECONDS, parse_retry_after, transport_errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def post(url: str, seconds: float = 2.0) -> int:
    async with aiohttp.ClientSession() as session:
        with transport_errors(what="POST", host="127.0.0.1", timeout=seconds):
            async with session.post(
                url, data=b"x", timeout=aiohttp.ClientTimeout(total=seconds)
            ) as resp:
                await resp.read()
                return resp.status


async def test_a_refused_connection_was_not_sent() -> None:
    with pytest.raises(ConnectionFailedError) as info:
        await post(f"http://127.0.0.1:{free_port()}/")
    assert info.value.request_sent is False
    assert not info.value.may_have_been_processed()
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


Handler = Callable[[asyncio.StreamReader], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A raw TCP server on loopback running ``handler`` per connection; every connection is
    closed and its handler finished before the server goes."""
    handlers: list[asyncio.Task[None]] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        await asyncio.gather(*handlers)


async def test_a_hang_up_after_the_request_may_have_been_processed() -> None:
    async def hang_up(reader: asyncio.StreamReader) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(1)

    async with serve(hang_up) as url:
        with pytest.raises(ConnectionFailedError) as info:
            await post(url)
    assert info.value.request_sent is True
    assert info.value.may_have_been_processed()


async def test_no_answer_in_time_may_have_been_processed() -> None:
    async def stall(reader: asyncio.StreamReader) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # never answer; return once the client gives up and hangs up

    async with serve(stall) as url:
        with pytest.raises(RequestTimeoutError) as info:
            await post(url, seconds=0.2)
    assert info.value.request_sent is True
    assert "no reply within 0.2 s" in str(info.value)


async def test_our_own_errors_pass_through_unchanged() -> None:
    with pytest.raises(ParseError), transport_errors(what="x", host="h", timeout=1):
        raise ParseError("not XML")


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Tue, 01 Dec 2026 09:00:30 GMT", 30.0),  # the IMF-fixdate of RFC 9110
        ("Tuesday, 01-Dec-26 09:01:00 GMT", 60.0),  # its obsolete RFC 850 form
        ("Tue Dec  1 09:02:00 2026", 120.0),  # its obsolete asctime form: no zone, GMT
        ("Tue, 01 Dec 2026 09:00:30 -0000", 30.0),  # a zone-less RFC 2822 date
        ("Tue, 01 Dec 2026 08:00:00 GMT", 0.0),  # already past
        ("9" * 20, MAX_RETRY_AFTER_SECONDS),  # bounded
        ("Tue, 01 Dec 9999 09:00:00 GMT", MAX_RETRY_AFTER_SECONDS),
        (None, None),
        ("", None),
        ("soon", None),
        ("²", None),  # str.isdigit() says yes; it is no number
        ("١٢٠", None),  # Arabic-Indic digits
        ("-5", None),
        ("1.5", None),
        ("9" * 5000, None),
        ("99999999999999999999 Dec 2026 10:15:00 GMT", None),  # overflows the parser
        ("Tue, 01 Dec 99999 09:00:00 GMT", None),
        ("Tue, 32 Dec 2026 09:00:00 GMT", None),
    ],
)
def test_retry_after_is_seconds_or_a_date_and_anything_else_is_none(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_counts_a_date_from_the_current_time_by_default() -> None:
    later = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = parse_retry_after(later)
    assert seconds is not None
    assert 590 < seconds <= 600


@given(st.text(max_size=80))
def test_retry_after_never_raises(header: str) -> None:
    seconds = parse_retry_after(header, now=NOW)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER_SECONDS
