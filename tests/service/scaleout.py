"""Processes for the scale-out tests and benchmark: a Devino sandbox of its own, and ``serve``
instances sharing one PostgreSQL, each a real subprocess that can be killed with SIGKILL.

- :class:`SandboxProcess`: ``notify-devino sandbox`` on a free loopback port, with its own
  limit on (10 requests per second per account, refused with a fault); read back through its
  admin API: every arrival (``/admin/requests``), every message (``/admin/messages``); inject
  replies (``/admin/incoming``).
- :class:`ServeProcess`: ``notify-devino --config ... serve --port P``; the store's DSN comes
  from the environment (``store: ${NOTIFY_TEST_STORE}``), so no password is on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

NOTIFY = [sys.executable, "-m", "notify_devino"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def busiest_second(times: Sequence[float]) -> int:
    """The most timestamps in any half-open window [t, t + 1 s)."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _spawn(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> Any:
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)


async def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if process.poll() is not None:
                code = process.returncode
                raise RuntimeError(f"{url}: the process exited ({code}):\n{_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise RuntimeError(f"{url}: not ready in {within} s:\n{_tail(log)}")
            await asyncio.sleep(0.1)


class SandboxProcess:
    """A Devino sandbox in a process of its own."""

    def __init__(self, folder: Path, *, delivered_after: float = 1.0) -> None:
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/SmsService.asmx"
        self.config_file = folder / "sandbox.yaml"
        self.config_file.write_text(
            textwrap.dedent(
                f"""
                version: 1
                accounts:
                  - {{login: demo, password: demo-password, balance: 100000000}}
                delivery: {{gateway: 0.2, sent: 0.5, delivered: {delivered_after}}}
                """
            )
        )
        self.log_file = folder / "sandbox.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = _spawn(
            [*NOTIFY, "--log-level", "warning", "sandbox", "--port", str(self.port),
             "--config", str(self.config_file)],
            self.log_file,
        )  # fmt: skip
        await _wait_http(self.url, self.process, self.log_file, 30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def _get(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
            http.get(self.base_url + path) as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def requests(self) -> list[dict[str, Any]]:
        return list(await self._get("/admin/requests"))

    async def messages(self) -> list[dict[str, Any]]:
        return list(await self._get("/admin/messages"))

    async def inject(self, source: str, destination: str, text: str) -> None:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(
                self.base_url + "/admin/incoming",
                json={"source": source, "destination": destination, "text": text, "login": "demo"},
            ) as response,
        ):
            response.raise_for_status()


def serve_config(sandbox_url: str, *, lease: float = 3.0, inbox_interval: float = 0.5) -> str:
    """A configuration of one Devino channel on the sandbox and a shared PostgreSQL store."""
    return textwrap.dedent(
        f"""
        version: 1
        default_channel: sms
        status: {{poll_interval_seconds: 3600, wait_timeout_seconds: 30}}
        channels:
          sms:
            type: devino_soap
            settings: {{url: "{sandbox_url}", login: demo, password: demo-password,
                        sender: ALERTS, timeout_seconds: 5}}
        service:
          store: ${{NOTIFY_TEST_STORE}}
          send_policy: at_most_once
          workers:
            lease_seconds: {lease}
            claim_batch: 50
            max_in_flight: 4
            idle_poll_seconds: 0.5
            inbox_interval_seconds: {inbox_interval}
            inbox_lookback_seconds: 600
            inbox_overlap_seconds: 5
            shutdown_grace_seconds: 5
        """
    )


class ServeProcess:
    """One ``notify-devino serve`` instance."""

    def __init__(self, name: str, config_file: Path, dsn: str, folder: Path) -> None:
        self.name = name
        self.config_file = config_file
        self.dsn = dsn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> None:
        env = {**os.environ, "NOTIFY_TEST_STORE": self.dsn}
        self.process = _spawn(
            [*NOTIFY, "--config", str(self.config_file), "--log-format", "json",
             "--log-level", "info", "serve", "--port", str(self.port)],
            self.log_file,
            env,
        )  # fmt: skip
        self.starts += 1
        await _wait_http(f"{self.url}/-/ready", self.process, self.log_file, 60)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


__all__ = [
    "SandboxProcess",
    "ServeProcess",
    "busiest_second",
    "free_port",
    "serve_config",
]
