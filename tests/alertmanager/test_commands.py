"""``notify-devino template render``, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notify_devino.testing import invoke_cli

from .payloads import alert, body_v025

pytestmark = pytest.mark.devino

CONFIG = """\
version: 1
default_channel: sms
channels:
  sms:
    type: devino_soap
    settings: {login: alerts, password: devino-test-password, sender: ALERTS,
               price_per_segment: "2.50",
               currency: RUB}
  email: {type: memory_sendonly}
routes:
  db:
    matchers: ['team="db"']
    channels: [sms, email]
alertmanager:
  max_segments: 1
  routes:
    db: {max_segments: 2}
"""


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """In process, through the kit's invoke_cli (it undoes the logging set-up afterwards)."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return invoke_cli("--config", str(config), *args)


def write_payload(tmp_path: Path, count: int, team: str = "db") -> str:
    alerts = [
        alert(
            "DiskFull",
            fingerprint=f"{i:016x}",
            labels={"instance": f"db-{i}:9100", "team": team},
            annotations={"summary": f"Диск почти заполнен на db-{i}"},
        )
        for i in range(count)
    ]
    body = body_v025(alerts, commonLabels={"alertname": "DiskFull", "team": team})
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_render_prints_the_text_its_parts_and_cost(tmp_path: Path) -> None:
    code, out, err = invoke(
        tmp_path, "template", "render", "--payload", write_payload(tmp_path, 20)
    )
    assert code == 0, err
    text, _, summary = out.partition("\n\n")
    assert text.splitlines()[0] == "FIRING 20: DiskFull"
    assert text.splitlines()[-1] == "Reply 0000 to ack"
    lines = summary.splitlines()
    assert lines[0] == "route: db, channel: sms"
    assert lines[1].startswith("segments: 2 of at most 2 (UCS-2, ")
    assert lines[1].endswith("cost 5.00 RUB")
    assert "forces UCS-2" in err or "force UCS-2" in err


def test_render_json_and_an_explicit_route(tmp_path: Path) -> None:
    payload = write_payload(tmp_path, 20, team="web")  # no route matches: the default budget 1
    code, out, err = invoke(tmp_path, "template", "render", "--payload", payload, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["route"] is None
    assert found["segments"] == 1
    assert found["fits"]
    assert found["shown"] + found["more"] == 20
    code, out, err = invoke(
        tmp_path, "template", "render", "--payload", payload, "--route", "db", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["route"] == "db"
    assert json.loads(out)["segments"] == 2


def test_render_refuses_a_bad_payload(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"version": "3"}')
    code, _, err = invoke(tmp_path, "template", "render", "--payload", str(path))
    assert code == 2
    assert 'got version "3"' in err
