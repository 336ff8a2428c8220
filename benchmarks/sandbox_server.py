"""Run a Devino sandbox in its own process for a benchmark, so the client's process is measured
alone: ``python -m benchmarks.sandbox_server [--no-rate-limit]``. Prints the endpoint URL on
its first line, then serves until its standard input closes (the parent's ``with`` block)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
from decimal import Decimal

from notify_devino.logconfig import configure_logging
from notify_devino_soap.emulator import Account, DeliveryTimings, Sandbox, SandboxConfig


async def serve(rate_limit: bool) -> None:
    config = SandboxConfig(
        accounts=[Account(login="bench", password="bench-password", balance=Decimal(10**12))],
        delivery=DeliveryTimings(gateway=60, sent=60, delivered=60),
    )
    config.rate_limit.enabled = rate_limit
    async with Sandbox(config) as sandbox:
        print(sandbox.url, flush=True)
        # Serve until the parent closes our standard input.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> None:
    # The sandbox keeps every message it accepted (100,000 objects and more in a benchmark), so
    # a full cyclic collection pauses it for 50-60 ms, and requests arriving meanwhile are
    # stamped late: requests a second apart would look closer together and be refused. That
    # pause belongs to the stand-in for the provider, not to the client measured, so the
    # sandbox process runs without the cyclic collector (it makes few cycles; a run is short).
    gc.disable()
    # For the same reason it asks the scheduler for priority: on a busy two-core machine a
    # sandbox waiting 30-80 ms for a CPU stamps arrivals that late (a provider's edge does not
    # share a laptop with its client). Needs root or CAP_SYS_NICE; without, it runs as is.
    with contextlib.suppress(OSError):
        os.nice(-10)
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args()
    configure_logging("json", "error")
    asyncio.run(serve(rate_limit=not args.no_rate_limit))


if __name__ == "__main__":
    main()
