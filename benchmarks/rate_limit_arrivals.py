"""How many requests the Devino sandbox sees arrive in its busiest second, per client limiter.

    python benchmarks/rate_limit_arrivals.py            # this project's limiter only
    pip install pyrate-limiter && python benchmarks/rate_limit_arrivals.py   # and a baseline

61 requests (a login and 60 balance queries, all at once) go through a DevinoClient limited to
10 per second, against a sandbox whose own limit is off; the figure is the most arrivals the
sandbox timestamped in any one-second window (the service's limit: 10). With ``handshake`` the
first request on each of the first ten connections is held 0.2 s before it leaves, as a TLS
handshake would hold it. The baseline, pyrate-limiter's sliding log, counts a request when it
is let go; this project's limiter counts it until a window after it ends. Prints one line per
limiter and case; asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from notify_devino_soap.client import DevinoClient
from notify_devino_soap.emulator import RateLimit, Sandbox, SandboxConfig
from notify_devino_soap.ratelimit import AccountLimiter

REQUESTS = 60
HANDSHAKE = 0.2


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


class StartTimeLog:
    """pyrate-limiter's in-memory sliding log, ``limit`` grants per ``window_ms``."""

    def __init__(self, window_ms: int) -> None:
        from pyrate_limiter import InMemoryBucket, Limiter, Rate, SingleBucketFactory

        bucket = InMemoryBucket([Rate(10, window_ms)])
        self.limiter = Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=0)

    @contextlib.asynccontextmanager
    async def slot(
        self, *, before: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        await self.limiter.try_acquire_async("devino")
        if before is not None:
            await before()
        yield


async def measure(limiter: Any, handshake: float) -> tuple[int, float]:
    config = SandboxConfig(rate_limit=RateLimit(enabled=False))
    connector = aiohttp.TCPConnector(limit=10)
    async with Sandbox(config) as sandbox, aiohttp.ClientSession(connector=connector) as http:
        client = DevinoClient(http, url=sandbox.url, login="demo", password="demo-password")
        client.limiter = limiter
        post: Callable[..., Awaitable[Any]] = client._post
        fresh = iter(range(10))

        async def post_after_handshake(request: Any, limit: float) -> Any:
            if handshake and next(fresh, None) is not None:
                await asyncio.sleep(handshake)
            return await post(request, limit)

        client._post = post_after_handshake  # type: ignore[method-assign,assignment]
        started = time.monotonic()
        await asyncio.gather(*(client.get_balance() for _ in range(REQUESTS)))
        wall = time.monotonic() - started
        return most_in_any_second([r.monotonic for r in sandbox.requests]), wall


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    limiters: list[tuple[str, Callable[[], Any]]] = [
        ("this project (counted until 1 s after each ends)", lambda: AccountLimiter(10)),
    ]
    try:
        import pyrate_limiter  # noqa: F401
    except ImportError:
        print("pyrate-limiter is not installed: no baseline")
    else:
        limiters += [
            ("pyrate-limiter, 10 per 1.000 s of grants", lambda: StartTimeLog(1000)),
            ("pyrate-limiter, 10 per 1.050 s of grants", lambda: StartTimeLog(1050)),
        ]
    for handshake in (0.0, HANDSHAKE):
        for name, make in limiters:
            peak, wall = await measure(make(), handshake)
            print(
                f"{name:50s} handshake {handshake:.1f} s: busiest second at the sandbox "
                f"{peak:2d} of {REQUESTS + 1} requests (limit 10), wall {wall:.1f} s"
            )


if __name__ == "__main__":
    asyncio.run(main())
