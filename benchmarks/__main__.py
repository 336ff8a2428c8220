"""Run every benchmark: ``python -m benchmarks`` (what ``tox -e bench`` runs).

``python -m benchmarks ceiling cpu`` runs only those named (ceiling, cpu, throughput, memory).
"""

from __future__ import annotations

import sys
import time

from . import bench_ceiling, bench_cpu, bench_memory, bench_throughput

BENCHMARKS = {
    "ceiling": bench_ceiling.run,
    "cpu": bench_cpu.run,
    "throughput": bench_throughput.run,
    "memory": bench_memory.run,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        started = time.perf_counter()
        BENCHMARKS[name]()
        print(f"  ({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
