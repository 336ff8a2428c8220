"""Loopback throughput with the rate limit off: our client's requests per second against raw
aiohttp posting the same bytes to the same server, at 8 and at 64 requests in flight.

The operation is a SendMessage to one number (SOAP 1.2). Raw aiohttp (the baseline) posts the
envelope our client builds, with its headers, and reads the reply; ours does the whole call:
checks, envelope, limiter (set far above the rate reached), session, exchange, parse. The two
run in alternating rounds and each keeps its best, so drift of the machine or of the server's
state lands on neither side alone.

The target (>= 0.6) is against the sandbox, the server the issue names ("with the limit off"):
there the question is whether our client holds the service back, and the sandbox's own work
per request is what a real service's would be, only smaller. A second server that answers every
request with fixed bytes and does nothing else is measured too, with no target: it shows the
client's own cost per request beside raw aiohttp's, which no real service would let dominate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from notify_devino_soap import envelopes
from notify_devino_soap.client import DevinoClient

from .common import LOGIN, PASSWORD, quiet, sandbox_process, server_process

REQUESTS = 3000
ROUNDS = 3
NUMBER = "79031234567"
TEXT = "db-1: disk 91% full"


async def rate(call: Callable[[], Awaitable[Any]], concurrency: int, total: int) -> float:
    """Requests per second of ``call`` with ``concurrency`` workers, ``total`` requests."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    for _ in range(concurrency * 2):  # warm up: connections open, caches filled
        await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def measure(url: str, concurrency: int, total: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        client = DevinoClient(http, url=url, login=LOGIN, password=PASSWORD, rate_limit=10**6)
        session_id = await client.sessions.get()
        request = envelopes.build_send_message(
            session_id,
            source="ALERTS",
            destinations=[NUMBER],
            data=TEXT,
            delay_until_utc=None,
            receipt_requested=True,
            validity=2880,
        )
        timeout = aiohttp.ClientTimeout(total=30)

        async def raw() -> bytes:
            async with http.post(
                url, data=request.body, headers=request.headers, timeout=timeout
            ) as response:
                return await response.read()

        async def ours() -> list[str]:
            return await client.send_message(source="ALERTS", destinations=[NUMBER], data=TEXT)

        baseline = measured = 0.0
        for _ in range(ROUNDS):
            baseline = max(baseline, await rate(raw, concurrency, total))
            measured = max(measured, await rate(ours, concurrency, total))
        return baseline, measured


def run(total: int = REQUESTS) -> dict[str, float]:
    quiet()
    results: dict[str, float] = {}
    print(
        "loopback throughput, limit off: our client vs raw aiohttp posting the same bytes, "
        f"best of {ROUNDS} rounds of {total} requests each"
    )
    for server, start, target in (
        ("sandbox", lambda: sandbox_process(rate_limit=False), "(target >= 0.6)"),
        (
            "fixed reply",
            lambda: server_process("benchmarks.fixed_server"),
            "(no target: the client's own cost)",
        ),
    ):
        with start() as url:  # type: ignore[no-untyped-call]
            for concurrency in (8, 64):
                baseline, measured = asyncio.run(measure(url, concurrency, total))
                ratio = measured / baseline
                results[f"{server} c={concurrency}"] = ratio
                print(
                    f"  {server:<11} concurrency {concurrency:>2}: ours {measured:6.0f} req/s"
                    f"   raw aiohttp {baseline:6.0f} req/s   ratio {ratio:.3f}   {target}"
                )
    return results


if __name__ == "__main__":
    run()
