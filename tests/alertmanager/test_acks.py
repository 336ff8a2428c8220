from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notify_devino.alertmanager.acks import Reply, parse_reply


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4821", Reply("4821")),
        ("ACK 4821", Reply("4821")),
        ("ack4821", Reply("4821")),
        ("  Ack: 4821. ", Reply("4821")),
        ("ack", Reply(None)),
        ("ACK!", Reply(None)),
        ("hello", None),
        ("ack it later", None),
        ("12", None),  # too short to be a code
        ("48210000", None),
        ("call me at 4821", None),
    ],
)
def test_replies_that_acknowledge(text: str, expected: Reply | None) -> None:
    assert parse_reply(text) == expected


async def test_a_reply_older_than_the_alert_is_not_an_ack_for_it(tmp_path: Path) -> None:
    from notify_devino.alertmanager.acks import AckReader
    from notify_devino.service.store import Inbound, SqliteStore

    sent: list[tuple[str, str]] = []

    async def send_reply(channel: str, address: str, text: str, key: str) -> None:
        sent.append((address, text))

    async with SqliteStore(tmp_path / "outbox.db") as store:
        now = datetime.now(UTC)
        code = await store.open_alert_code("g1", {"79031234567": "ann"}, {"a": "b"}, now=now)
        await store.record_inbox(
            "sms",
            [
                Inbound("sms", "79031234567", "ALERTS", f"ACK {code}", now - timedelta(days=2)),
                Inbound("sms", "79031234567", "ALERTS", f"ACK {code}", now + timedelta(seconds=5)),
            ],
            now + timedelta(seconds=10),
        )
        acks: list[object] = []
        reader = AckReader(store, send_reply=send_reply, on_ack=acks.append)
        assert await reader.read_once() == 2
        assert sent == [
            ("79031234567", f"Code {code} matches no open alert (resolved, or mistyped)."),
            ("79031234567", f"Acknowledged alert {code}. Thank you."),
        ]
        assert len(acks) == 1
        assert await store.cursor(AckReader.CURSOR) == 2
        assert await reader.read_once() == 0  # read once, across restarts too
