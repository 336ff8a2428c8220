"""The core's command line as a user runs it (a real process), with the installed plugins:
``plugins`` and ``notify``. The Devino commands are tested in the Devino plugin."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from notify_devino.testing import run_cli

ROOT = Path(__file__).parents[1]

ROUTED = """\
version: 1
default_channel: email
status: {poll_interval_seconds: 0.01, wait_timeout_seconds: 5}
channels:
  sms:
    type: memory
    settings: {fail_for: ["+100"], unknown_for: ["+400"], reads_to_deliver: 1}
  email:
    type: memory_sendonly
    settings: {fail_for: [nobody@example.com]}
contacts:
  ann: {sms: "+1", email: ann@example.com}
  ben: {sms: "+100", email: ben@example.com}
  cy: {sms: "+100", email: nobody@example.com}
  eve: {sms: "+400"}
groups:
  oncall: [ann, ben]
routes:
  critical: [sms, email]
"""


@pytest.fixture
def routed(tmp_path: Path) -> str:
    path = tmp_path / "routed.yaml"
    path.write_text(ROUTED)
    return str(path)


async def test_plugins_lists_the_installed_test_plugin_with_its_version_and_channels() -> None:
    expected = tomllib.loads((ROOT / "tests" / "memory_plugin" / "pyproject.toml").read_text())
    code, out, err = await run_cli("plugins", "--json")
    assert code == 0, err
    listed = {p["name"]: p for p in json.loads(out)}
    assert listed["memory"]["distribution"] == expected["project"]["name"]
    assert listed["memory"]["version"] == expected["project"]["version"]
    assert listed["memory"]["channel_types"] == ["memory", "memory_sendonly"]
    assert listed["smtp"]["channel_types"] == ["smtp"]
    assert listed["webhook"]["channel_types"] == ["webhook"]

    code, out, _ = await run_cli("plugins")
    assert code == 0
    row = next(line.split() for line in out.splitlines() if line.startswith("memory "))
    assert row == [
        "memory",
        expected["project"]["name"],
        expected["project"]["version"],
        "memory,",
        "memory_sendonly",
    ]


async def test_notify_prints_who_got_it_on_which_channel(routed: str) -> None:
    code, out, err = await run_cli(
        "--config", routed, "notify", "db-1 down", "--to", "oncall", "--severity", "critical"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "route: critical"
    assert lines[1].split() == ["CONTACT", "OUTCOME", "CARRIED", "BY", "CHANNELS", "TRIED"]
    assert lines[2].split()[:4] == ["ann", "delivered", "sms", "sms:"]
    assert lines[3].startswith("ben      accepted   email       sms: failed (failed: refused")
    assert lines[3].endswith("; email: accepted")


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (["ann"], 0),
        (["cy"], 3),  # every channel failed
        (["eve", "ann"], 4),  # the SMS may have gone out, and eve has no email
    ],
)
async def test_notify_exit_codes(routed: str, names: list[str], code: int) -> None:
    args = [arg for name in names for arg in ("--to", name)]
    got, out, err = await run_cli(
        "--config", routed, "notify", "--severity", "critical", *args, "--json", stdin="from stdin"
    )
    assert got == code, err
    result = json.loads(out)
    assert result["text"] == "from stdin"
    assert [r["contact"] for r in result["recipients"]] == names


async def test_notify_refuses_names_the_configuration_does_not_have(routed: str) -> None:
    code, _, err = await run_cli("--config", routed, "notify", "x", "--to", "ann,zed")
    assert code == 2
    assert "'zed' is neither a contact nor a group" in err
    code, _, err = await run_cli("--config", routed, "notify", "x", "--to", "ann", "--route", "no")
    assert code == 2
    assert "no route named 'no'" in err


async def test_config_check_reports_routing_mistakes_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ROUTED.replace("oncall: [ann, ben]", "oncall: [ann, bob]"))
    code, _, err = await run_cli("config", "check", str(path))
    assert code == 2
    assert f"{path}:17: groups.oncall[1]: 'bob' is neither a contact nor a group" in err


@pytest.mark.devino
async def test_the_example_configuration_passes_config_check_with_every_plugin() -> None:
    env = {
        "DEVINO_LOGIN": "a",
        "DEVINO_PASSWORD": "b",
        "SMTP_PASSWORD": "c",
        "WEBHOOK_SECRET": "d" * 16,
    }
    example = ROOT / "config" / "notify-devino.example.yaml"
    code, out, err = await run_cli("config", "check", str(example), env=env)
    assert code == 0, err
    assert "sms (devino_soap), email (smtp), chatops (webhook)" in out
