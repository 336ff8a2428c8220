"""Memory: peak RSS of the client process streaming 10,000 and 1,000,000 recipients.

Each count runs in a fresh client process (benchmarks.memory_client) against one sandbox in
its own process with its rate limit off, and reports its own peak resident set size; the
baseline is the 10,000-recipient run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .common import quiet, sandbox_process

COUNTS = (10_000, 1_000_000)


def client_run(url: str, count: int) -> tuple[int, float, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_client", url, str(count)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), time.perf_counter() - started


def run() -> dict[str, float]:
    quiet()
    peaks = {}
    print("memory: peak RSS of the client process, streaming recipients (Dispatcher.send_stream)")
    with sandbox_process(rate_limit=False) as url:
        for count in COUNTS:
            accepted, peak, elapsed = client_run(url, count)
            peaks[count] = peak
            print(
                f"  {count:>9,} recipients: {accepted:>9,} accepted, peak RSS {peak:6.1f} MiB"
                f"  ({elapsed:.0f} s)"
            )
    ratio = peaks[COUNTS[-1]] / peaks[COUNTS[0]]
    print(f"  1,000,000 vs 10,000: ratio {ratio:.2f}   (target <= 1.5)")
    return {"ratio": ratio}


if __name__ == "__main__":
    run()
