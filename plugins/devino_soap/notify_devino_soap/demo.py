"""``notify-devino demo``: the whole product, end to end, on the embedded Devino sandbox.

Everything goes through the public dispatcher API and real HTTP on loopback, exactly as a service
would use it; only the peer is the sandbox instead of Devino.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import click

from notify_devino.cliapi import table
from notify_devino.config import Config, load_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.plugins import PluginManager
from notify_devino.types import MessageStatus, SendResult

from .emulator.config import load_sandbox_config
from .emulator.server import Sandbox
from .rules import normalize_phone

LATIN_TO = "+79031234567"
CYRILLIC_TO = "89161234567"
BULK_TO = (
    "79031112233",
    "+7 (926) 555-01-02",
    "79990000001",
    "7903123",
)  # a rejected and a malformed one
TIME_ZONE_TO = "79141234567"
REPLY_FROM = "79031234567"

CYRILLIC_TEXT = (
    "Авария: база данных db-1 не отвечает с 03:12 МСК. Дежурный инженер, проверьте репликацию "
    "и свободное место на диске; при необходимости переключите трафик на резервный узел db-2. "
    "Ответьте на это сообщение цифрой 1, если берёте инцидент в работу."
)


def _results(result: SendResult) -> str:
    return table(
        ("recipient", "sent as", "outcome", "segment ids", "why"),
        [
            [r.recipient, r.address, r.outcome.value, " ".join(r.message_ids), r.error or ""]
            for r in result.recipients
        ],
    )


def _statuses(statuses: Sequence[MessageStatus]) -> str:
    return table(
        ("message id", "state", "devino state", "final", "price"),
        [
            [
                s.message_id,
                s.state.value,
                f"{s.name} ({s.code})",
                "yes" if s.final else "no",
                s.price,
            ]
            for s in statuses
        ],
    )


@contextlib.asynccontextmanager
async def embedded_setup() -> AsyncIterator[Config]:
    """The sandbox (packaged settings), in-process on a free loopback port, and the demo
    configuration pointed at it: what ``notify-devino serve`` runs on without configuration."""
    package = Path(__file__).parent / "config"
    async with Sandbox(load_sandbox_config(package / "sandbox.yaml")) as box:
        yield load_config(package / "demo.yaml", env={**os.environ, "DEVINO_SANDBOX_URL": box.url})


async def run_demo(
    plugins: PluginManager,
    *,
    sandbox_config: Path,
    demo_config: Path,
    out: Callable[[str], None] = click.echo,
) -> int:
    """Run the demo; returns the exit code (0 when every message reached a final state)."""
    box_config = load_sandbox_config(sandbox_config)
    async with Sandbox(box_config) as box:
        env = {**os.environ, "DEVINO_SANDBOX_URL": box.url}
        config = load_config(demo_config, env=env)
        out(f"Devino sandbox listening on {box.url} (SOAP 1.2 and 1.1, WSDL at {box.url}?WSDL)")
        async with Dispatcher(config, plugins=plugins) as dispatcher:
            balance = await dispatcher.balance()
            out(f"\n== Balance before: {balance.amount}")

            out("\n== 1. A Latin SMS (GSM-7, one segment)")
            latin = await dispatcher.send(
                "Disk usage on db-1 is 91%. Runbook: wiki/db-disk", to=[LATIN_TO]
            )
            out(_results(latin))

            out("\n== 2. A long Cyrillic SMS (UCS-2, several segments: one ID each)")
            cyrillic = await dispatcher.send(CYRILLIC_TEXT, to=[CYRILLIC_TO])
            out(_results(cyrillic))

            out("\n== 3. A bulk send: a number the operator rejects and one malformed number")
            bulk = await dispatcher.send("Incident #4711 resolved.", to=list(BULK_TO))
            out(_results(bulk))

            zone = box_config.time_zone_for(normalize_phone(TIME_ZONE_TO))
            local_send = (datetime.now(zone) + timedelta(seconds=3)).replace(
                tzinfo=None, microsecond=0
            )
            out(
                f"\n== 4. A time-zone send: held until {local_send:%H:%M:%S} local time of the "
                f"recipient ({zone.key})"
            )
            held = await dispatcher.send(
                "Good morning: the maintenance window starts in one hour.",
                to=[TIME_ZONE_TO],
                send_at=local_send,
                recipient_local_time=True,
            )
            out(_results(held))
            out(_statuses(await dispatcher.status(held.message_ids)))

            ids = [i for r in (latin, cyrillic, bulk, held) for i in r.message_ids]
            out(f"\n== 5. Following {len(ids)} message IDs to their final state")
            statuses = await dispatcher.wait(ids, timeout=config.status.wait_timeout_seconds)
            out(_statuses(statuses))

            out("\n== 6. A reply arrives (injected through the sandbox's admin route) and is read")
            async with (
                aiohttp.ClientSession() as admin,
                admin.post(
                    box.base_url + "/admin/incoming",
                    json={
                        "source": REPLY_FROM,
                        "destination": "NotifyDemo",
                        "text": "1 - taking it",
                    },
                ) as response,
            ):
                response.raise_for_status()
            replies = await dispatcher.inbox(since=timedelta(minutes=5))
            out(
                table(
                    ("received", "from", "to", "text"),
                    [
                        [m.received_at.isoformat(timespec="seconds"), m.sender, m.recipient, m.text]
                        for m in replies
                    ],
                )
            )

            balance_after = await dispatcher.balance()
            out(
                f"\n== Balance after: {balance_after.amount} "
                f"(charged {balance.amount - balance_after.amount})"
            )
            stats = await dispatcher.statistics(datetime.now(UTC) - timedelta(hours=1))
            out("\n== Statistics for the last hour")
            out(
                table(("counter", "value"), [*stats.counts.items(), ("DeliveryRatio", stats.ratio)])
            )

    pending = [s.message_id for s in statuses if not s.final]
    if pending or not replies:
        out(
            f"\nNOT DONE: {len(pending)} message(s) not final: {' '.join(pending)}; "
            f"replies read: {len(replies)}"
        )
        return 4
    delivered = sum(1 for s in statuses if s.state.value == "delivered")
    out(
        f"\nDone: {len(statuses)} messages followed to a final state, {delivered} delivered, "
        f"{len(statuses) - delivered} failed as the sandbox was told to; {len(replies)} reply read."
    )
    return 0
