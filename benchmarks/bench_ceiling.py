"""The ceiling: 100,000 recipients against the sandbox with its 10 requests/s limit on.

The provider allows 10 requests per second and 1000 addresses per request, so one account's
physical ceiling is 10,000 recipients per second: that is the baseline the measured rate is a
share of. The sandbox runs in its own process and counts every request it refuses for the
rate limit; the client (this process) streams the recipients with Dispatcher.send_stream
under its own limiter, as a service would.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher

from .common import LOGIN, PASSWORD, numbers, quiet, sandbox_process, sandbox_requests

CEILING = 10_000  # recipients per second: 10 requests/s x 1000 addresses
TEXT = "Planned maintenance tonight 22:00-23:00 UTC"


def config(url: str, **settings: Any) -> Config:
    channel = {"url": url, "login": LOGIN, "password": PASSWORD, "sender": "ALERTS", **settings}
    return Config.model_validate(
        {"version": 1, "channels": {"sms": {"type": "devino_soap", "settings": channel}}}
    )


async def stream(url: str, count: int) -> tuple[float, dict[str, int]]:
    counts = {"accepted": 0, "failed": 0, "unknown": 0, "messages": 0}
    async with Dispatcher(config(url)) as dispatcher:
        started = time.perf_counter()
        async for batch in dispatcher.send_stream(TEXT, numbers(count)):
            counts["accepted"] += len(batch.accepted)
            counts["failed"] += len(batch.failed)
            counts["unknown"] += len(batch.unknown)
            counts["messages"] += len(batch.message_ids)
        elapsed = time.perf_counter() - started
    return elapsed, counts


def run(count: int = 100_000) -> dict[str, float]:
    quiet()
    with sandbox_process(rate_limit=True) as url:
        elapsed, counts = asyncio.run(stream(url, count))
        log = sandbox_requests(url)
    refused = [r for r in log if r["fault"] and "Too many requests" in r["fault"]]
    refused += [r for r in log if r["status"] in (429, 503)]
    sends = [r for r in log if r["operation"] == "SendMessage" and r["status"] == 200]
    rate = counts["accepted"] / elapsed
    print(f"ceiling: {count:,} recipients, sandbox in its own process, 10 requests/s limit on")
    print(
        f"  accepted {counts['accepted']:,}, failed {counts['failed']}, unknown "
        f"{counts['unknown']}, in {len(sends)} SendMessage calls (+1 login), {elapsed:.2f} s"
    )
    print(f"  rate: {rate:,.0f} recipients/s; baseline (the ceiling) {CEILING:,}/s")
    print(f"  share of the ceiling: {rate / CEILING:.3f}   (target >= 0.95)")
    print(f"  rate-limit rejections counted by the sandbox: {len(refused)}   (target 0)")
    return {"share": rate / CEILING, "rejections": len(refused), "rate": rate}


if __name__ == "__main__":
    run()
