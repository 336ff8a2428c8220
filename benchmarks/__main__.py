"""Run every benchmark: ``python -m benchmarks`` (what ``tox -e bench`` runs).

``python -m benchmarks ceiling cpu`` runs only those named (ceiling, cpu, throughput, memory,
config, startup, serve, serve_pg).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from . import (
    bench_ceiling,
    bench_config,
    bench_cpu,
    bench_memory,
    bench_serve,
    bench_serve_pg,
    bench_startup,
    bench_throughput,
)

BENCHMARKS: dict[str, Callable[[], Any]] = {
    "ceiling": bench_ceiling.run,
    "cpu": bench_cpu.run,
    "throughput": bench_throughput.run,
    "memory": bench_memory.run,
    "config": bench_config.run,
    "startup": bench_startup.run,
    "serve": bench_serve.run,
    "serve_pg": bench_serve_pg.run,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if len(names) == 1:
        BENCHMARKS[names[0]]()
        return
    # Several: each in a fresh interpreter, so none runs on the heap and caches another left
    # (after the 100,000-recipient ceiling run, the CPU figures of both clients moved by 10 %).
    failed = []
    for name in names:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "benchmarks", name], check=False)
        if done.returncode:
            failed.append(name)
        print(f"  ({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    if failed:
        sys.exit(f"benchmark(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
