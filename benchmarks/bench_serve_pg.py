"""Durable accepts per second of ``serve`` on PostgreSQL with 1, 2 and 3 instances, against a
bare aiohttp handler, with the SQLite engine's figure beside: ``python -m benchmarks serve_pg``.

Every server is a process of its own on 127.0.0.1: the baseline (``python -m
benchmarks.bench_serve_pg baseline``: parses the same JSON body, stores nothing, answers 202
with a small JSON body), ``notify-devino serve`` on SQLite (one instance: the file has one
writer), and 1, 2 and 3 ``serve`` instances on one throw-away PostgreSQL (the tests' peer,
``tests/peers/postgres.py``: fsync and synchronous commits on). 64 clients in this process post
one notification each at a time, round-robin over the instances, for ``SECONDS`` after a warm-up;
a 202 from ``serve`` means committed. The channel is a Devino sandbox in its own process (its 10
requests/s limit on): sends go on meanwhile, as in production.

``python -m benchmarks.bench_serve_pg soak [COUNT]`` runs the scale-out soak of the test suite
(tests/service/test_scale_out_postgres.py) with COUNT notifications (default 10,000; each is
one provider request, so a run takes COUNT / 10 seconds and more) and prints its figures.

On a machine of two cores every instance, the database, the sandbox and the clients share them:
more instances add availability more than throughput there. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

CLIENTS = 64
SECONDS = 8.0
WARMUP = 2.0


async def _baseline(port: int) -> None:
    async def post(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or "text" not in body:
            return web.json_response({"error": "bad"}, status=400)
        return web.json_response({"id": "x", "state": "queued"}, status=202)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/notifications", post)
    app.router.add_get("/-/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def load(urls: Sequence[str], seconds: float = SECONDS) -> tuple[float, float, int]:
    """(accepts per second, p99 latency in ms, non-202 answers) of CLIENTS posting at once."""
    latencies: list[float] = []
    errors = 0
    counting = False
    stop = False

    async def client(n: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        i = 0
        while not stop:
            url = urls[(n + i) % len(urls)]
            body = {"text": f"bench {n} {i}", "addresses": [f"+7903{n:03d}{i % 10000:04d}"]}
            started = time.perf_counter()
            async with http.post(f"{url}/v1/notifications", json=body) as response:
                await response.read()
                ok = response.status == 202
            if counting:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
            i += 1

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(client(n, http)) for n in range(CLIENTS)]
        await asyncio.sleep(WARMUP)
        counting = True
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        counting = False
        elapsed = time.perf_counter() - started
        stop = True
        await asyncio.gather(*tasks)
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else 0.0
    return len(latencies) / elapsed, p99, errors


def _spawn_baseline(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "benchmarks.bench_serve_pg", "baseline", str(port)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


@contextlib.asynccontextmanager
async def baseline_process() -> AsyncIterator[str]:
    from tests.service.scaleout import free_port

    port = free_port()
    proc = _spawn_baseline(port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


@contextlib.asynccontextmanager
async def instances(
    count: int, store: str, sandbox_url: str, folder: Path
) -> AsyncIterator[list[str]]:
    from tests.service.scaleout import ServeProcess, serve_config

    config = folder / f"serve-{count}-{store.split(':')[0]}.yaml"
    config.write_text(serve_config(sandbox_url).replace("login: demo", "login: bench")
                      .replace("password: demo-password", "password: bench-password"))  # fmt: skip
    started = [ServeProcess(f"bench{count}-{n}", config, store, folder) for n in range(count)]
    try:
        await started[0].start()
        await asyncio.gather(*(s.start() for s in started[1:]))
        yield [s.url for s in started]
    finally:
        for s in started:
            s.stop()


async def run_async() -> None:
    from benchmarks.common import sandbox_process
    from tests.peers.postgres import PostgresPeer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("no PostgreSQL server binaries: python -m tests.peers install (as root)")
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-pg-"))
    rows: list[tuple[str, float, float, int]] = []
    with sandbox_process(rate_limit=True) as sandbox_url, PostgresPeer(bindir) as pg:
        async with baseline_process() as url:
            base, p99, errors = await load([url])
        rows.append(("bare aiohttp handler (baseline)", base, p99, errors))
        async with instances(1, f"sqlite:///{folder}/outbox.db", sandbox_url, folder) as urls:
            rows.append(("serve, SQLite, 1 instance", *await load(urls)))
        for count in (1, 2, 3):
            async with instances(count, pg.create_database("bench"), sandbox_url, folder) as urls:
                rows.append((f"serve, PostgreSQL, {count} instance(s)", *await load(urls)))
    print(f"durable accepts/s, {CLIENTS} concurrent clients, {SECONDS:g} s each, on "
          f"{os.cpu_count()} CPU(s) shared by every process")  # fmt: skip
    for name, rate, p99, errors in rows:
        print(
            f"  {name:36} {rate:8.0f}/s  {rate / base:5.2f} of the baseline  "
            f"p99 {p99:6.1f} ms" + (f"  ({errors} not 202)" if errors else "")
        )


def soak(count: int) -> None:
    env = {**os.environ, "NOTIFY_SCALE_COUNT": str(count)}
    test = (
        "tests/service/test_scale_out_postgres.py::"
        "test_three_instances_share_the_outbox_and_the_rate_limit_through_two_kills"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
        env=env,
        check=False,
    )
    if done.returncode:
        sys.exit(done.returncode)


def run() -> None:
    args = sys.argv[1:]
    if args[:1] == ["soak"]:
        soak(int(args[1]) if len(args) > 1 else 10_000)
        return
    asyncio.run(run_async())


if __name__ == "__main__":
    if sys.argv[1:2] == ["baseline"]:
        asyncio.run(_baseline(int(sys.argv[2])))
    else:
        run()
