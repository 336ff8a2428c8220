"""The core retry policy against a real peer: a line-based TCP server on loopback.

The exchange here is a channel in miniature: it connects, writes one request line and reads
one reply line, and maps what happened onto the core's errors exactly as a channel must
(connection refused: not sent; connection dropped after writing: may have been processed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from notify_devino.errors import (
    AuthenticationError,
    ChannelError,
    ConnectionFailedError,
    RateLimitedError,
    TemporaryFaultError,
)
from notify_devino.retrying import Attempt, RetryPolicy, RetrySettings


class LineServer:
    """Answers the n-th request line with ``script[n]`` (the last entry repeats). ``CLOSE``
    drops the connection after reading the request, without a reply."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.arrivals: list[float] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not await reader.readline():
                return
            self.arrivals.append(asyncio.get_running_loop().time())
            answer = self.script[min(len(self.arrivals), len(self.script)) - 1]
            if answer != "CLOSE":
                writer.write(answer.encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serving(*script: str) -> AsyncIterator[LineServer]:
    server = LineServer(list(script))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exchange_with(port: int, attempts: list[Attempt]) -> Callable[[Attempt], object]:
    async def exchange(attempt: Attempt) -> str:
        attempts.append(attempt)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            raise ConnectionFailedError("connection refused", request_sent=False) from exc
        try:
            writer.write(b"SEND\n")
            await writer.drain()
            line = (await reader.readline()).decode().strip()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        if not line:
            raise ConnectionFailedError("dropped after the request", request_sent=True)
        word, _, arg = line.partition(" ")
        if word == "BUSY":
            raise RateLimitedError("busy", retry_after=float(arg), http_status=503)
        if word == "TEMP":
            raise TemporaryFaultError("later", code="soap:Receiver", text="try again later")
        if word == "DENY":
            raise AuthenticationError("denied", code="soap:Receiver", text="bad login")
        return line

    return exchange  # type: ignore[return-value]


def policy(**settings: object) -> RetryPolicy:
    return RetryPolicy(
        RetrySettings.model_validate(
            {"wait_initial_seconds": 0.01, "wait_max_seconds": 2, **settings}
        ),
        channel="test",
    )


async def call(
    retry: RetryPolicy, port: int, *, idempotent: bool, attempts: list[Attempt] | None = None
) -> str:
    seen: list[Attempt] = [] if attempts is None else attempts
    result = await retry.call("Op", exchange_with(port, seen), idempotent=idempotent)  # type: ignore[arg-type]
    assert isinstance(result, str)
    return result


@pytest.mark.parametrize("idempotent", [True, False])
async def test_connection_refused_is_retried_for_reads_and_sends(idempotent: bool) -> None:
    port = free_port()
    server = LineServer(["OK"])

    async def open_later() -> None:
        await asyncio.sleep(0.05)
        await server.start(port)

    opening = asyncio.create_task(open_later())
    try:
        with capture_logs() as logs:
            assert await call(policy(wait_initial_seconds=0.3), port, idempotent=idempotent) == "OK"
        await opening
    finally:
        await server.stop()
    assert len(server.arrivals) == 1  # the refused attempt never reached it
    (retry,) = [e for e in logs if e["event"] == "retry_scheduled"]
    assert (retry["operation"], retry["attempt"], retry["error"]) == (
        "Op",
        1,
        "ConnectionFailedError",
    )
    assert retry["wait_s"] >= 0.3


async def test_a_dropped_read_is_retried() -> None:
    async with serving("CLOSE", "OK") as server:
        assert await call(policy(), server.port, idempotent=True) == "OK"
        assert len(server.arrivals) == 2


async def test_a_dropped_send_is_not_retried_at_most_once() -> None:
    async with serving("CLOSE", "OK") as server:
        with pytest.raises(ConnectionFailedError) as info:
            await call(policy(), server.port, idempotent=False)
        assert info.value.request_sent is True
        assert len(server.arrivals) == 1


async def test_a_dropped_send_is_retried_at_least_once() -> None:
    async with serving("CLOSE", "OK") as server:
        with capture_logs() as logs:
            assert await call(policy(send_policy="at_least_once"), server.port, idempotent=False)
        assert len(server.arrivals) == 2
    events = [e["event"] for e in logs]
    assert events.count("retry_scheduled") == 1
    assert events.count("send_repeated_after_unknown_outcome") == 1


async def test_at_least_once_keeps_the_unknown_when_the_resend_is_refused() -> None:
    async with serving("CLOSE", "TEMP") as server:
        with pytest.raises(ConnectionFailedError) as info:
            await call(policy(send_policy="at_least_once"), server.port, idempotent=False)
        assert len(server.arrivals) == 3
    assert info.value.may_have_been_processed()
    assert "TemporaryFaultError" in info.value.__notes__[0]


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_temporary_fault_is_retried(idempotent: bool) -> None:
    async with serving("TEMP", "TEMP", "OK") as server:
        assert await call(policy(), server.port, idempotent=idempotent) == "OK"
        assert len(server.arrivals) == 3


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_permanent_fault_is_never_retried(idempotent: bool) -> None:
    async with serving("DENY", "OK") as server:
        with pytest.raises(AuthenticationError):
            await call(policy(send_policy="at_least_once"), server.port, idempotent=idempotent)
        assert len(server.arrivals) == 1


async def test_retry_after_is_honoured() -> None:
    async with serving("BUSY 0.4", "OK") as server:
        assert await call(policy(), server.port, idempotent=False) == "OK"
        first, second = server.arrivals
    assert second - first >= 0.4


async def test_a_retry_after_beyond_the_longest_wait_is_not_waited_for() -> None:
    async with serving("BUSY 30", "OK") as server:
        with pytest.raises(RateLimitedError) as info:
            await call(policy(wait_max_seconds=1), server.port, idempotent=True)
        assert info.value.retry_after == 30
        assert len(server.arrivals) == 1


async def test_attempts_are_bounded() -> None:
    async with serving("TEMP") as server:
        with pytest.raises(TemporaryFaultError):
            await call(policy(attempts=4), server.port, idempotent=True)
        assert len(server.arrivals) == 4


async def test_the_deadline_stops_retrying() -> None:
    # Each retry waits at least 0.3 s; a 0.5 s deadline allows one retry, not nine.
    async with serving("BUSY 0.3") as server:
        attempts: list[Attempt] = []
        with pytest.raises(RateLimitedError):
            await call(
                policy(attempts=10, deadline_seconds=0.5),
                server.port,
                idempotent=True,
                attempts=attempts,
            )
        assert len(server.arrivals) == 2
    assert [a.number for a in attempts] == [1, 2]


@pytest.mark.parametrize("idempotent", [True, False])
async def test_an_attempt_gets_what_is_left_of_the_deadline(idempotent: bool) -> None:
    # The deadline starts when the first request leaves; a read's attempt is cut to what is
    # left, a send's never; past the deadline, the exchange is told to send nothing.
    given: list[float | None] = []

    async def exchange(attempt: Attempt) -> str:
        if attempt.number == 2:
            await asyncio.sleep(0.3)  # queueing (a rate limit) before the request leaves
        given.append(attempt.start(30))
        raise TemporaryFaultError("later", code="soap:Receiver", text="try again later")

    retry = policy(deadline_seconds=0.25, attempts=3)
    with pytest.raises(TemporaryFaultError):
        await retry.call("Op", exchange, idempotent=idempotent)
    first, second = given
    assert first == (pytest.approx(0.25, abs=0.05) if idempotent else 30)
    assert second is None
    assert Attempt(1).start(30) == 30  # no deadline


def test_only_channel_errors_are_retried() -> None:
    retry = policy()
    assert not retry.may_retry_read(OSError("not ours"))
    assert not retry.may_retry_send(ValueError("not ours"))
    assert not retry.may_retry_read(ChannelError("unknown kind"))


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        RetrySettings(attempts=0)
    with pytest.raises(ValidationError):
        RetrySettings.model_validate({"send_policy": "exactly_once"})
    with pytest.raises(ValidationError):
        RetrySettings.model_validate({"retries": 3})
    assert RetrySettings().send_policy == "at_most_once"
    assert RetrySettings().deadline_seconds == 60
