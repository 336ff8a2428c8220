"""The service: ``python -m benchmarks serve``.

(a) durable accepts/s: POST /v1/notifications from 64 concurrent clients to ``serve`` (every
    202 after a commit to the SQLite outbox, workers sending meanwhile), against a bare aiohttp
    handler that parses the same JSON and stores nothing; both in a process of their own on the
    same CPU, the same client, in alternating rounds (the median of the rounds' ratios).
    Target: ratio >= 0.5. Also the p99 accept latency.
(b) 100,000 recipients as 100 notifications of 1,000 posted at once: the share of the
    10,000 recipients/s ceiling (10 requests/s x 1,000 addresses) reached end to end, from the
    first POST to the last recipient accepted by the sandbox. Target >= 0.95, with 0 rate-limit
    refusals counted by the sandbox.
(c) 1,000 notifications of one text to 1,000 numbers posted at once: provider requests used.
    Target <= 2.

The sandbox runs in its own process with its 10 requests/s limit on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .common import LOGIN, PASSWORD, quiet, sandbox_process, sandbox_requests

CEILING = 10_000
CONCURRENCY = 64
ACCEPTS = 2000
ROUNDS = 5
TEXT = "Planned maintenance tonight 22:00-23:00 UTC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server(port: int) -> None:
    """The baseline: parse the JSON, answer 202 with an id, keep nothing."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            return web.json_response({"error": "not an object"}, status=400)
        return web.json_response({"id": str(uuid.uuid4()), "state": "queued"}, status=202)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/v1/notifications", handler)
    app.router.add_get("/-/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def process(args: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_ready(url, proc))
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/-/ready") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not become ready")


def serve_config(folder: Path, sandbox_url: str, port: int) -> Path:
    path = folder / "notify-devino.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            default_channel: sms
            logging: {{format: json, level: error}}
            channels:
              sms:
                type: devino_soap
                settings: {{url: "{sandbox_url}", login: {LOGIN}, password: {PASSWORD},
                            sender: ALERTS}}
            service:
              listen: {{host: 127.0.0.1, port: {port}}}
              store: sqlite://{folder}/outbox.db
              limits: {{max_recipients: 1000}}
            """
        )
    )
    return path


def serve_args(config: Path) -> list[str]:
    return [sys.executable, "-m", "notify_devino", "--config", str(config), "serve"]


async def post_many(
    url: str, bodies: list[dict[str, Any]], concurrency: int, keys: bool = True
) -> tuple[float, list[float]]:
    """POST every body with ``concurrency`` clients; the elapsed time and each latency."""
    latencies: list[float] = []
    queue = list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while queue:
                body = queue.pop()
                headers = {"Idempotency-Key": uuid.uuid4().hex} if keys else {}
                started = time.perf_counter()
                async with session.post(f"{url}/v1/notifications", json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 202:
                        raise RuntimeError(f"answered {r.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def accept_bodies(count: int, start: int) -> list[dict[str, Any]]:
    return [
        {"text": TEXT, "addresses": [f"+7903{(start + i) % 10_000_000:07d}"]} for i in range(count)
    ]


def part_a(sandbox_url: str, folder: Path) -> dict[str, float]:
    """Both servers run side by side and take turns: ``ROUNDS`` rounds of ``ACCEPTS`` POSTs
    to the bare handler, then to ``serve`` (once its outbox has drained, so its sending does
    not run during the bare round). The machine's speed drifts by a third within a minute
    here; one round each, a minute apart, measured the drift as much as the servers."""
    bare_port, port = free_port(), free_port()
    bare_url, url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{port}"
    (folder / "a").mkdir()
    store = folder / "a" / "outbox.db"
    bare_args = [sys.executable, "-m", "benchmarks.bench_serve", "--bare", str(bare_port)]
    bare_rates: list[float] = []
    durable_rates: list[float] = []
    bare_lat: list[float] = []
    durable_lat: list[float] = []
    with (
        process(bare_args, bare_url),
        process(serve_args(serve_config(folder / "a", sandbox_url, port)), url),
    ):
        asyncio.run(post_many(bare_url, accept_bodies(300, 0), CONCURRENCY))
        asyncio.run(post_many(url, accept_bodies(300, 5_000_000), CONCURRENCY))
        queued = 300
        for n in range(ROUNDS):
            asyncio.run(outbox_settled(store, queued))
            bodies = accept_bodies(ACCEPTS, n * ACCEPTS)
            elapsed, latencies = asyncio.run(post_many(bare_url, bodies, CONCURRENCY))
            bare_rates.append(ACCEPTS / elapsed)
            bare_lat += latencies
            elapsed, latencies = asyncio.run(post_many(url, bodies, CONCURRENCY))
            durable_rates.append(ACCEPTS / elapsed)
            durable_lat += latencies
            queued += ACCEPTS
    ratios = sorted(d / b for d, b in zip(durable_rates, bare_rates, strict=True))
    ratio = statistics.median(ratios)
    print(
        f"(a) POST /v1/notifications, {CONCURRENCY} concurrent clients, {ROUNDS} rounds of "
        f"{ACCEPTS:,} to each server in turn (median of the rounds, range in brackets)"
    )
    print(
        "  bare aiohttp handler (parse, store nothing): "
        f"{statistics.median(bare_rates):,.0f}/s [{min(bare_rates):,.0f} to "
        f"{max(bare_rates):,.0f}], p99 {p99(bare_lat) * 1000:.1f} ms"
    )
    print(
        "  serve, 202 after the SQLite commit:        "
        f"{statistics.median(durable_rates):,.0f}/s [{min(durable_rates):,.0f} to "
        f"{max(durable_rates):,.0f}], p99 {p99(durable_lat) * 1000:.1f} ms"
    )
    print(
        f"  ratio durable / bare: {ratio:.2f} [{ratios[0]:.2f} to {ratios[-1]:.2f}]   "
        "(target >= 0.5)"
    )
    return {"ratio": ratio, "p99_ms": p99(durable_lat) * 1000}


async def outbox_settled(store_path: Path, expected: int) -> None:
    from notify_devino.service.states import ACTIVE
    from notify_devino.service.store import open_store

    while True:
        async with open_store(f"sqlite://{store_path}", readonly=True) as store:
            depth = await store.depth()
        total = sum(d.count for d in depth)
        if total >= expected and not any(d.state in ACTIVE and d.count for d in depth):
            return
        await asyncio.sleep(0.5)


def _arrival(record: dict[str, Any]) -> float:
    moment = datetime.fromisoformat(record["at"])
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def part_b(sandbox_url: str, folder: Path) -> dict[str, float]:
    (folder / "b").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    before = len(sandbox_requests(sandbox_url))
    bodies = [
        {"text": TEXT, "addresses": [f"+7916{n * 1000 + i:07d}" for i in range(1000)]}
        for n in range(100)
    ]
    with process(serve_args(serve_config(folder / "b", sandbox_url, port)), url):

        async def run() -> tuple[float, float]:
            started = time.time()
            await post_many(url, bodies, CONCURRENCY)
            posted = time.time() - started
            await outbox_settled(folder / "b" / "outbox.db", 100_000)
            return started, posted

        started, posted = asyncio.run(run())
    log = sandbox_requests(sandbox_url)[before:]
    # The end is the sandbox's own arrival time of the last send (not when a poll saw it).
    arrivals = sorted(_arrival(r) for r in log if r["operation"] == "SendMessage")
    elapsed = arrivals[-1] - started
    refused = [r for r in log if r["fault"] and "Too many requests" in r["fault"]]
    refused += [r for r in log if r["status"] in (429, 503)]
    sends = [r for r in log if r["operation"] == "SendMessage" and r["status"] == 200]
    accepted = sum(len(r["destinations"]) for r in sends)
    rate = accepted / elapsed
    print("(b) 100,000 recipients as 100 notifications of 1,000, posted at once")
    print(
        f"  {accepted:,} accepted by the sandbox in {len(sends)} SendMessage calls; from the "
        f"first POST: all posted after {posted:.2f} s, first send arrived after "
        f"{arrivals[0] - started:.2f} s, last after {elapsed:.2f} s"
    )
    print(
        f"  rate {rate:,.0f} recipients/s; share of the {CEILING:,}/s ceiling: "
        f"{rate / CEILING:.3f}   (target >= 0.95)"
    )
    print(f"  rate-limit refusals counted by the sandbox: {len(refused)}   (target 0)")
    return {"share": rate / CEILING, "refusals": len(refused)}


def part_c(sandbox_url: str, folder: Path) -> dict[str, float]:
    (folder / "c").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    before = len(sandbox_requests(sandbox_url))
    bodies = [{"text": "db-1 is down", "addresses": [f"+7926{i:07d}"]} for i in range(1000)]
    with process(serve_args(serve_config(folder / "c", sandbox_url, port)), url):

        async def run() -> None:
            await post_many(url, bodies, CONCURRENCY)
            await outbox_settled(folder / "c" / "outbox.db", 1000)

        asyncio.run(run())
    log = sandbox_requests(sandbox_url)[before:]
    sends = [r for r in log if r["operation"] == "SendMessage"]
    print("(c) 1,000 notifications of one text to 1,000 numbers, posted at once")
    print(f"  provider requests (SendMessage): {len(sends)}   (target <= 2)")
    return {"requests": len(sends)}


def run() -> dict[str, float]:
    quiet()
    with sandbox_process(rate_limit=True) as sandbox_url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = part_a(sandbox_url, folder)
        results |= part_b(sandbox_url, folder)
        results |= part_c(sandbox_url, folder)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare"]:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        bare_server(int(sys.argv[2]))
    else:
        run()
