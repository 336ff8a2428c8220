"""A sibling plugin taken away leaves the core and the other plugins working, and a
configuration that names its channel type fails at start with an error naming it.

Here each plugin is taken away by blocking its entry point (``NOTIFY_DEVINO_BLOCK_PLUGINS``) in
a real ``notify-devino`` process; tox's ``tests-without-devino`` environment runs this module
again in an installation that never had the Devino plugin, where it is really absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from notify_devino.testing import run_cli
from notify_devino_smtp.loopback import LoopbackSmtpServer
from notify_devino_webhook.receiver import WebhookReceiver
from notify_devino_webhook.testing import TEST_SECRET

PLUGINS = {"devino_soap": "devino_soap", "smtp": "smtp", "webhook": "webhook"}
"""entry-point name -> the channel type it provides"""


def channels(smtp: LoopbackSmtpServer, hooks: WebhookReceiver) -> dict[str, dict[str, Any]]:
    return {
        "sms": {
            "type": "devino_soap",
            "settings": {"login": "demo", "password": "demo-password", "sender": "ALERTS"},
        },
        "mail": {"type": "smtp", "settings": smtp.channel_settings()},
        "hooks": {"type": "webhook", "settings": {"url": hooks.url(), "secret": TEST_SECRET}},
        "memo": {"type": "memory"},
    }


@pytest.mark.parametrize(
    "blocked",
    [
        "devino_soap",
        # the Devino channel is among those that must keep working
        pytest.param("smtp", marks=pytest.mark.devino),
        pytest.param("webhook", marks=pytest.mark.devino),
    ],
)
async def test_the_others_work_without_it_and_a_config_naming_it_fails_at_start(
    blocked: str,
    tmp_path: Path,
    smtp_server: LoopbackSmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    env = {"NOTIFY_DEVINO_BLOCK_PLUGINS": blocked}
    every = channels(smtp_server, webhook_receiver)
    remaining = {n: c for n, c in every.items() if c["type"] != PLUGINS[blocked]}

    code, out, err = await run_cli("plugins", "--json", env=env)
    assert code == 0, err
    listed = {p["name"] for p in json.loads(out)}
    assert blocked not in listed
    assert {"smtp", "webhook", "memory"} - {blocked} <= listed

    working = tmp_path / "working.yaml"
    working.write_text(yaml.safe_dump({"version": 1, "channels": remaining}))
    code, out, err = await run_cli("config", "check", str(working), env=env)
    assert code == 0, err
    for name, address in (("mail", "ann@example.com"), ("hooks", "ops")):
        if name in remaining:
            code, out, err = await run_cli(
                "--config",
                str(working),
                "send",
                "still here",
                "--channel",
                name,
                "--to",
                address,
                env=env,
            )
            assert code == 0, err
    assert len(smtp_server.messages) == ("mail" in remaining)
    assert len(webhook_receiver.deliveries) == ("hooks" in remaining)

    naming_it = tmp_path / "naming-it.yaml"
    naming_it.write_text(yaml.safe_dump({"version": 1, "channels": every}))
    (name,) = [n for n, c in every.items() if c["type"] == PLUGINS[blocked]]
    line = naming_it.read_text().splitlines().index(f"    type: {PLUGINS[blocked]}") + 1
    for command in (["config", "check", str(naming_it)], ["--config", str(naming_it), "balance"]):
        code, _, err = await run_cli(*command, env=env)
        assert code == 2
        assert (
            f"{naming_it}:{line}: channels.{name}.type: channel {name!r} has type "
            f"{PLUGINS[blocked]!r}, which no installed plugin provides"
        ) in err
