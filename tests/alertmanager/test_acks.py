from __future__ import annotations

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
