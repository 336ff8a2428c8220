"""One streamed send of N recipients, in a process of its own; prints its peak RSS (MiB).

``python -m benchmarks.memory_client URL N``: used by bench_memory, which runs it for 10,000
and for 1,000,000 recipients against the same sandbox.
"""

from __future__ import annotations

import asyncio
import sys

from notify_devino.dispatcher import Dispatcher

from .bench_ceiling import TEXT, config
from .common import numbers, peak_rss_mib, quiet


async def stream(url: str, count: int) -> int:
    accepted = 0
    # The sandbox's rate limit is off: the client's own limit is set far above what it reaches.
    async with Dispatcher(config(url, rate_limit_per_second=100_000)) as dispatcher:
        async for batch in dispatcher.send_stream(TEXT, numbers(count)):
            accepted += len(batch.accepted)
    return accepted


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    quiet()
    accepted = asyncio.run(stream(url, count))
    print(f"{accepted} {peak_rss_mib():.1f}")


if __name__ == "__main__":
    main()
