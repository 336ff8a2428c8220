"""Start-up: how long ``notify-devino --help`` and an offline ``estimate`` take, against
``python -c pass`` in the same interpreter, measured in the same run.

Each command runs RUNS times as a fresh process (``python -m notify_devino ...``), the three
interleaved so a busy moment of the machine falls on all of them alike; the best and the
median of each are printed, and the ratio and the difference against ``python -c pass``. The
difference is what the command line costs a person who types it. Target: ``--help`` under
150 ms.

The plugins are the installed ones, but for the test suite's own ``memory`` plugin (blocked
with ``NOTIFY_DEVINO_BLOCK_PLUGINS``): no user has it. ``estimate`` is given ``--price``, so it
reads no configuration: it is the offline command, and the only one that needs no network.
No configuration file is searched from a directory that has one: the run is in a temporary one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 21
TARGET_MS = 150.0

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "notify-devino --help": ["-m", "notify_devino", "--help"],
    "notify-devino estimate": [
        "-m",
        "notify_devino",
        "estimate",
        "Server db-1 is down, failover in 5 min",
        "--price",
        "1.50",
    ],
}


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_DEVINO_CONFIG"}
    blocked = [b for b in env.get("NOTIFY_DEVINO_BLOCK_PLUGINS", "").split(",") if b]
    env["NOTIFY_DEVINO_BLOCK_PLUGINS"] = ",".join([*blocked, "memory"])
    return env


def _once(args: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run() -> dict[str, float]:
    env = _environment()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as cwd:
        for args in COMMANDS.values():  # one warm-up each: compiled files, the disk cache
            _once(args, env, cwd)
        for _ in range(RUNS):
            for name, args in COMMANDS.items():
                times[name].append(_once(args, env, cwd))
    base_best = min(times["python -c pass"]) * 1000
    base_median = statistics.median(times["python -c pass"]) * 1000
    print(f"startup: {RUNS} runs of each, interleaved; best and median wall time of a process")
    figures: dict[str, float] = {}
    for name, samples in times.items():
        best, median = min(samples) * 1000, statistics.median(samples) * 1000
        line = f"  {name:<24} best {best:6.1f} ms  median {median:6.1f} ms"
        if name != "python -c pass":
            line += (
                f"  ratio {best / base_best:5.1f}x (median {median / base_median:4.1f}x)"
                f"  +{best - base_best:5.1f} ms over python"
            )
        print(line)
        figures[name] = best
    help_best = figures["notify-devino --help"]
    verdict = "holds" if help_best < TARGET_MS else "MISSED"
    print(f"  target: --help under {TARGET_MS:.0f} ms (best): {verdict}")
    return figures


if __name__ == "__main__":
    run()
