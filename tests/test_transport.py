"""aiohttp's exceptions become transport errors that say whether the request may have left,
against real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from notify_devino.errors import ConnectionFailedError, ParseError, RequestTimeoutError
from notify_devino.transport import transport_errors


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
