"""``serve`` and ``queue`` as a user runs them: ``serve`` with no configuration (the embedded
sandbox, loopback, auth off, the store in the working directory) in a process of its own,
since SIGTERM and the exit code are the point; ``queue`` beside it."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from notify_devino.service.commands import SERVING_GEN0_THRESHOLD, collector_tuned_for_serving
from notify_devino.testing import run_cli

from .harness import eventually
from .test_soak import free_port

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino


async def _ready(session: aiohttp.ClientSession, url: str) -> None:
    """Wait until the service at ``url`` answers ``/-/ready`` with 200."""

    async def ready() -> bool:
        try:
            async with session.get(f"{url}/-/ready") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(ready, timeout=30)


async def _post_one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> str:
    """POST one notification; :return: its id."""
    async with session.post(
        f"{url}/v1/notifications",
        json={"text": "Disk full on db-1", "addresses": ["+79031234567"]},
        headers=headers,
    ) as r:
        assert r.status == 202
        return str((await r.json())["id"])


async def test_serve_without_configuration_runs_on_the_embedded_sandbox(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NOTIFY_DEVINO_CONFIG": "", "HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        "serve",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, url)
            nid = await _post_one(session, url)  # no token: auth is off

            async def delivered() -> bool:
                async with session.get(f"{url}/v1/notifications/{nid}") as r:
                    body = await r.json()
                return body["deliveries"][0]["state"] == "delivered"

            await eventually(delivered, timeout=30)
        assert (tmp_path / "notify-devino-outbox.db").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    text = stderr.decode()
    assert "auth_disabled" in text
    assert f"serving on http://127.0.0.1:{port}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("level", ["info", "warning"])
async def test_serve_logs_at_the_configured_level_with_an_access_log_line_per_request(
    tmp_path: Path, devino_sandbox: Sandbox, level: str
) -> None:
    """A service takes ``logging.level`` from its configuration (commands at the prompt show
    warnings only): at info each request is one JSON line naming its request id."""
    port = free_port()
    config = tmp_path / "notify-devino.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            default_channel: sms
            logging: {{format: json, level: {level}}}
            channels:
              sms:
                type: devino_soap
                settings: {{url: "{devino_sandbox.url}", login: demo, password: demo-password}}
            service:
              listen: {{host: 127.0.0.1, port: {port}}}
              store: sqlite://{tmp_path}/outbox.db
              auth: false
            """
        )
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "notify_devino", "--config", str(config), "serve",
            stdout=out, stderr=out,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, url)
            await _post_one(session, url, headers={"X-Request-Id": "req-42"})
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    posts = [e for e in lines if e.get("event") == "http_request" and e["method"] == "POST"]
    if level == "info":
        assert [(e["request_id"], e["path"], e["status"]) for e in posts] == [
            ("req-42", "/v1/notifications", 202)
        ]
        assert any(e["event"] == "service_listening" for e in lines)
    else:
        assert posts == []
        assert {e["level"] for e in lines} <= {"warning", "error", "critical"}


async def test_serve_refuses_a_public_address_without_configuration(tmp_path: Path) -> None:
    code, _, err = await run_cli("serve", "--host", "0.0.0.0", env={"HOME": str(tmp_path)})
    assert code == 2
    assert "loopback only" in err


async def test_queue_reads_the_outbox(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from notify_devino.service.store import NewDelivery, NewNotification, SqliteStore

    path = tmp_path / "o.db"
    async with SqliteStore(path) as store:
        now = datetime.now(UTC)
        await store.submit(
            NewNotification("n1", "t", {}, now),
            [NewDelivery("sms", "+79031234567", now, "g", {"text": "t"})],
        )
        # Read while the writer holds the store, as beside a running serve.
        code, out, err = await run_cli("queue", "--store", f"sqlite://{path}", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["depth"][0]["state"] == "queued"
    assert data["depth"][0]["count"] == 1
    assert [d["address"] for d in data["deliveries"]] == ["+79031234567"]
    code, out, _ = await run_cli("queue", "--store", f"sqlite://{path}")
    assert code == 0
    assert "+79031234567" in out
    code, _, err = await run_cli("queue", "--store", f"sqlite://{tmp_path}/missing.db")
    assert code == 1
    assert "there is no store" in err


def test_serving_freezes_what_start_up_made_raises_the_young_threshold_and_restores_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector_tuned_for_serving():
        assert gc.get_freeze_count() > 1000  # the modules, classes and functions loaded
        assert gc.get_threshold() == (max(before[0], SERVING_GEN0_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
