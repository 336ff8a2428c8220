"""A grant counts from the moment its request is written, and the client says when that is."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from notify_devino_soap import envelopes
from notify_devino_soap.client import DevinoClient
from notify_devino_soap.emulator import Sandbox
from notify_devino_soap.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_grant_moved_to_its_write_expires_from_there() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(2, 1.0, guard=0.0, clock=clock)
    await limiter.acquire()
    late = await limiter.acquire()
    clock.now = 0.5
    late.sent()  # written 0.5 s after its grant
    clock.now = 0.25
    late.sent()  # never moved back
    assert late.at == 0.5
    clock.now = 1.0  # the first grant has expired, the second counts until 1.5
    await asyncio.wait_for(limiter.acquire(), 1)
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # two grants in the window ending at 1.0 + a little
    clock.now = 1.5
    await asyncio.wait_for(waiting, 2)


async def test_the_client_says_when_a_body_is_written(devino_sandbox: Sandbox) -> None:
    written: list[float] = []
    async with aiohttp.ClientSession() as http:
        client = DevinoClient(http, url=devino_sandbox.url, login="demo", password="demo-password")
        request = envelopes.build_get_session_id("demo", "demo-password")
        before = time.monotonic()
        status, body, _ = await client._post(
            request, on_write=lambda: written.append(time.monotonic())
        )
    assert status == 200
    assert b"GetSessionIDResult" in body
    assert len(written) == 1  # once, when aiohttp wrote the body
    assert before <= written[0] <= devino_sandbox.requests[0].monotonic
