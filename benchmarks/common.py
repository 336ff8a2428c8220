"""What every benchmark shares: a sandbox in its own process, its request log, quiet logs."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

from notify_devino.logconfig import configure_logging

LOGIN, PASSWORD = "bench", "bench-password"


def quiet() -> None:
    """Log warnings and errors only, as a service in production would."""
    configure_logging("json", "warning")


@contextlib.contextmanager
def sandbox_process(*, rate_limit: bool) -> Iterator[str]:
    """A sandbox in a child process; yields its SOAP endpoint URL."""
    args = ["benchmarks.sandbox_server"] + ([] if rate_limit else ["--no-rate-limit"])
    with server_process(*args) as url:
        yield url


@contextlib.contextmanager
def own_cpus(pid: int) -> Iterator[None]:
    """Give the server ``pid`` a CPU of its own and keep this process off it, while the block
    runs (where the OS allows it and there are two CPUs or more).

    A client's CPU time per call depends on whether its peer runs on the same core: there, every
    reply is a context switch that leaves the client's caches cold (measured: 5 to 8 % more CPU
    per call, for our client and for zeep, and the scheduler picks either arrangement from run
    to run). Apart, a run measures the client alone and repeats.
    """
    getaffinity = getattr(os, "sched_getaffinity", None)
    setaffinity = getattr(os, "sched_setaffinity", None)
    mine = getaffinity(0) if getaffinity is not None else set()
    if setaffinity is None or len(mine) < 2:
        yield
        return
    server_cpu = max(mine)
    try:
        setaffinity(pid, {server_cpu})
        setaffinity(0, mine - {server_cpu})
    except OSError:  # a container may forbid it: measure as the scheduler places us
        yield
        return
    try:
        yield
    finally:
        setaffinity(0, mine)


@contextlib.contextmanager
def server_process(module: str, *options: str) -> Iterator[str]:
    """``python -m module`` in a child process that prints its URL first and serves until its
    standard input closes, on a CPU of its own (:func:`own_cpus`); yields the URL."""
    args = [sys.executable, "-m", module, *options]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the sandbox did not start: {url!r}")
        with own_cpus(proc.pid):
            yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sandbox_requests(url: str) -> list[dict[str, Any]]:
    """The sandbox's request log (``GET /admin/requests``)."""
    base = url.rsplit("/", 1)[0]
    with urllib.request.urlopen(base + "/admin/requests", timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def peak_rss_mib() -> float:
    """This process's peak resident set size, in MiB.

    On Linux, ``VmHWM`` of /proc/self/status: ``getrusage``'s ``ru_maxrss`` survives ``exec``,
    so a client started from a large parent reports the parent's peak (measured: a 13 MiB
    child of a 300 MiB parent said 313 MiB). Elsewhere ``ru_maxrss`` (KiB on Linux and BSD,
    bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Russian mobile numbers, generated lazily."""
    for n in range(start, start + count):
        yield f"7903{n % 10_000_000:07d}" if n < 10_000_000 else f"7916{n % 10_000_000:07d}"
