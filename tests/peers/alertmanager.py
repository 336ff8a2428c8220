"""A real Prometheus Alertmanager as a test peer: found or installed, started on loopback.

**Install.** ``python -m tests.peers install`` (tox's ``tests`` env runs it first) makes sure an
Alertmanager is at hand, and does nothing when one is: ``$NOTIFY_DEVINO_ALERTMANAGER``, or
``prometheus-alertmanager`` or ``alertmanager`` on ``PATH``. Otherwise, as root on a Debian
machine, it installs Debian's ``prometheus-alertmanager`` (``apt-get install -y
--no-install-recommends``, after ``apt-get update`` when the package is not known yet). The
package's postinst starts the system service through its init script and fails the install when
that cannot start (a container has no init system); the tests need the binary, not a daemon
on port 9093, so when the machine has no ``/usr/sbin/policy-rc.d`` (Docker images ship one
that says no), the install puts one there that denies every start, and removes it afterwards.
(Extracting the .deb alone is not enough: Debian's build reads its default notification
template from ``/usr/share/prometheus/alertmanager``.)

**Run.** :class:`AlertmanagerPeer` starts one on 127.0.0.1 with a free port, a configuration
the test writes, its own data folder and clustering off, and waits for ``/-/ready``; it talks to
it through the API v2 (post alerts, list and read silences).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from . import apt_install, free_port

PACKAGE = "prometheus-alertmanager"
ENV_BINARY = "NOTIFY_DEVINO_ALERTMANAGER"


def find_binary() -> Path | None:
    """The Alertmanager binary to use, or None when there is none."""
    named = os.environ.get(ENV_BINARY)
    if named:
        return Path(named)
    for name in (PACKAGE, "alertmanager"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def install(*, quiet: bool = False) -> Path | None:
    """Make sure a binary is at hand (see the module docstring). :return: its path, or None
    when there is none and this process may not install it (not root, no apt)."""
    return apt_install(
        "alertmanager",
        PACKAGE,
        find_binary,
        f"install Debian's {PACKAGE}, or set {ENV_BINARY} to an Alertmanager binary",
        quiet=quiet,
    )


def version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


def webhook_config(
    *,
    url: str,
    group_by: Sequence[str] = ("alertname",),
    group_wait: str = "1s",
    group_interval: str = "2s",
    repeat_interval: str = "1h",
    send_resolved: bool = True,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    max_alerts: int = 0,
    receiver: str = "sms",
) -> str:
    """An Alertmanager configuration with one webhook receiver at ``url`` (JSON is YAML)."""
    import json

    http_config: dict[str, Any] = {}
    if bearer_token is not None:
        http_config["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    if basic_auth is not None:
        http_config["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    hook: dict[str, Any] = {"url": url, "send_resolved": send_resolved, "max_alerts": max_alerts}
    if http_config:
        hook["http_config"] = http_config
    return json.dumps(
        {
            "route": {
                "receiver": receiver,
                "group_by": list(group_by),
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": receiver, "webhook_configs": [hook]}],
        },
        indent=2,
    )


class AlertmanagerPeer:
    """One Alertmanager process on 127.0.0.1. ``async with AlertmanagerPeer(binary, config)``.

    :ivar url: its base URL (``http://127.0.0.1:PORT``).
    :ivar log_file: what it logged (read it when a test fails).
    """

    def __init__(self, binary: Path, config: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = folder / "alertmanager.yml"
        self.config_file.write_text(config)
        self.log_file = folder / "alertmanager.log"
        self._process: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AlertmanagerPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, ready_within: float = 30) -> None:
        storage = self.folder / "data"
        storage.mkdir(exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                str(self.binary),
                f"--config.file={self.config_file}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: one instance
                "--log.level=debug",
                stdout=log,
                stderr=log,
            )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_within
        while True:
            if self._process.returncode is not None:
                raise RuntimeError(f"alertmanager exited at start:\n{self.log()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.get(f"{self.url}/-/ready") as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise RuntimeError(f"alertmanager not ready in {ready_within} s:\n{self.log()}")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "start the peer first"
        return self._session

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, f"{self.url}/api/v2{path}", **kwargs) as response:
            text = await response.text()
            if response.status >= 300:
                raise AssertionError(f"{method} {path}: {response.status} {text}")
            return await response.json(content_type=None) if text else None

    async def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Post alerts (``{"labels": ..., "annotations": ..., "startsAt": ..., "endsAt": ...}``)."""
        await self._json("POST", "/alerts", json=list(alerts))

    async def fire(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        *,
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Post one firing alert (ending an hour from now); :return: what was posted."""
        now = datetime.now(UTC)
        alert = {
            "labels": dict(labels),
            "annotations": dict(annotations or {}),
            "startsAt": (starts_at or now).isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
        }
        await self.post_alerts([alert])
        return alert

    async def resolve(self, alert: Mapping[str, Any]) -> None:
        """Post ``alert`` again, ended now."""
        await self.post_alerts([{**alert, "endsAt": datetime.now(UTC).isoformat()}])

    async def alerts(self) -> list[dict[str, Any]]:
        return list(await self._json("GET", "/alerts"))

    async def silences(self) -> list[dict[str, Any]]:
        return list(await self._json("GET", "/silences"))

    async def silence(self, silence_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/silence/{silence_id}"))


__all__ = ["AlertmanagerPeer", "find_binary", "install", "version", "webhook_config"]
