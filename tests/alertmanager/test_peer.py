"""The payload model against what a real Alertmanager (Debian's) posts to a webhook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from notify_devino.alertmanager.payload import parse_payload
from tests.peers.alertmanager import webhook_config

from .conftest import AlertmanagerFactory

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        ({"bearer_token": "s3cret"}, "Bearer s3cret"),
        ({"basic_auth": ("am", "pw")}, "Basic YW06cHc="),
    ],
)
async def test_a_real_alertmanager_posts_what_the_model_reads(
    alertmanager: AlertmanagerFactory, auth: dict[str, Any], header: str
) -> None:
    bodies: asyncio.Queue[tuple[bytes, str | None]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await bodies.put((await request.read(), request.headers.get("Authorization")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        peer = await alertmanager(webhook_config(url=f"http://127.0.0.1:{port}/hook", **auth))
        posted = await peer.fire(
            {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
            {"summary": "Disk almost full on db-1"},
        )
        body, sent_auth = await asyncio.wait_for(bodies.get(), 20)
        assert sent_auth == header
        message = parse_payload(body)
        assert message.status == "firing"
        assert message.receiver == "sms"
        assert message.group_labels == {"alertname": "DiskFull"}
        (alert,) = message.alerts
        assert alert.labels["instance"] == "db-1"
        assert alert.annotations["summary"] == "Disk almost full on db-1"
        assert alert.ends_at is None or alert.ends_at > alert.starts_at
        assert alert.fingerprint

        await peer.resolve(posted)
        body, _ = await asyncio.wait_for(bodies.get(), 20)
        resolved = parse_payload(body)
        assert resolved.status == "resolved"
        assert resolved.group_key == message.group_key
        assert resolved.alerts[0].fingerprint == alert.fingerprint
        assert resolved.alerts[0].ends_at is not None
    finally:
        await runner.cleanup()
