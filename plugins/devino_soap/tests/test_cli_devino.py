"""The ``notify-devino`` command line against the sandbox: real HTTP on loopback to a sandbox
served by the test's event loop. The commands run in this process (click's runner, in a worker
thread so each has an event loop of its own); a real process only where one proves more: a
server that must say where it listens, signals, the console script's exit status."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from notify_devino.testing import invoke_cli
from notify_devino_soap.commands import DEMO_CONFIG
from notify_devino_soap.emulator import Sandbox


async def cli(
    *args: str, stdin: str | bytes | None = None, env: dict[str, str | None] | None = None
) -> tuple[int, str, str]:
    """The command line in this process (a worker thread: the command runs its own loop)."""
    return await asyncio.to_thread(invoke_cli, *args, stdin=stdin, env=env)


async def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``python -m notify_devino ARGS`` in a subprocess."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NOTIFY_DEVINO_CONFIG": "", **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture(params=["1.2", "1.1"])
def soap_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_send_follow_read_through_the_cli(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], soap_version: str
) -> None:
    config = str(write_config(devino_sandbox.url, soap_version=soap_version))
    code, out, err = await cli(
        "--config",
        config,
        "send",
        "Disk full on db-1",
        "--to",
        "+79031234567,89031234568",
        "--wait",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [r["outcome"] for r in data["result"]["recipients"]] == ["accepted", "accepted"]
    assert [s["state"] for s in data["statuses"]] == ["delivered", "delivered"]
    ids = [i for r in data["result"]["recipients"] for i in r["message_ids"]]

    code, out, _ = await cli("--config", config, "status", *ids)
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["MESSAGE", "ID", "STATE"]
    assert all(i in out for i in ids)
    assert out.count("Delivered_To_Recipient") == 2

    code, out, _ = await cli(
        "--config", config, "send", "--to", "79031234569", stdin="from stdin\n"
    )
    assert code == 0
    assert "accepted" in out

    code, out, _ = await cli("--config", config, "balance", "--json")
    assert code == 0
    assert Decimal(json.loads(out)["amount"]) == Decimal("995.5")  # 1000 - 3 x 1.50

    code, out, _ = await cli("--config", config, "stats", "--since", "1h", "--json")
    assert code == 0
    assert json.loads(out)["counts"]["Total"] == 3

    devino_sandbox.state.inject_incoming("79031234567", "ALERTS", "1 - on it")
    code, out, _ = await cli("--config", config, "inbox", "--since", "10m", "--json")
    assert code == 0
    assert [m["text"] for m in json.loads(out)] == ["1 - on it"]
    assert {r.soap_version for r in devino_sandbox.requests} == {soap_version}


async def test_exit_codes_say_what_happened(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    config = str(write_config(devino_sandbox.url))
    # a number the operator rejects: the send is accepted, the message ends undelivered
    code, out, _ = await cli("--config", config, "send", "x", "--to", "79990000001", "--wait")
    assert code == 3
    assert "Error_Rejected" in out
    # a malformed number among good ones fails alone; the others go out
    code, out, _ = await cli("--config", config, "send", "x", "--to", "12345,79031234567")
    assert code == 3
    assert "is not a valid phone number" in out
    sent = [r.destinations for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sent[-1] == ("79031234567",)
    # a text that is too long: bad input, refused as a whole before any request
    before = len(devino_sandbox.requests)
    code, _, err = await cli("--config", config, "send", "x" * 2001, "--to", "79031234567")
    assert code == 2
    assert "text has 2001 characters; expected 1 to 2000 characters" in err
    # a 4-month statistics range is bad input too
    code, _, err = await cli(
        "--config", config, "stats", "--since", "2026-01-01", "--until", "2026-05-02"
    )
    assert code == 2
    assert "longer than 3 months" in err
    assert len(devino_sandbox.requests) == before
    # nobody listens: the operation failed
    nowhere = str(write_config("http://127.0.0.1:9/SmsService.asmx", timeout_seconds=1))
    code, _, err = await cli("--config", nowhere, "balance")
    assert code == 1
    assert "ConnectionFailedError" in err


async def test_a_wrong_password_exits_5_from_send_and_from_balance(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    bad = str(write_config(devino_sandbox.url, password="nope-wrong"))
    code, out, err = await cli("--config", bad, "send", "x", "--to", "79031234567")
    assert code == 5, out + err
    assert "Invalid user login or password" in out
    code, _, err = await cli("--config", bad, "balance")
    assert code == 5
    assert "Invalid user login or password" in err
    code, _, err = await cli("--config", bad, "status", "579700854169272358")
    assert code == 5
    assert "nope-wrong" not in out + err


async def test_status_checks_every_id_before_any_request(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    config = str(write_config(devino_sandbox.url))
    code, out, err = await cli("--config", config, "status", "123", "abc")
    assert code == 2
    assert out == ""
    assert err == (
        "error: message ID 'abc' is not a decimal number; expected a positive whole number up "
        "to 9223372036854775807\n"
    )  # and no retry logged for a request that should never have started
    assert devino_sandbox.requests == []


async def test_config_errors_exit_2_and_name_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nchannels:\n  sms:\n    type: devino_soap\n    settings:\n      login: a\n"
        "      password: ${NOT_SET_ANYWHERE}\n"
    )
    code, _, err = await cli("--config", str(bad), "balance")
    assert code == 2
    assert (
        f"{bad}:7: channels.sms.settings.password: environment variable NOT_SET_ANYWHERE is not set"
        in err
    )
    bad.write_text("version: 1\nchannels:\n  sms: [unclosed\n")
    code, _, err = await cli("--config", str(bad), "config", "check")
    assert code == 2
    assert "malformed YAML" in err
    bad.write_text(
        "version: 1\nchannels:\n  sms:\n    type: devino_soap\n    settings:\n      login: a\n"
        "      password: b\n      sender: ABCDEFGHIJKL\n"
    )
    code, _, err = await cli("--config", str(bad), "config", "check")
    assert code == 2
    assert (
        "line 8: channels.sms.settings.sender" in err or ":8: channels.sms.settings.sender" in err
    )
    code, _, err = await cli("--config", str(tmp_path / "absent.yaml"), "balance")
    assert code == 2
    assert "does not exist" in err


async def test_config_check_accepts_the_shipped_demo_config() -> None:
    # The example config also names the sibling plugins' channels: the core's tests check it
    # with every plugin installed (tests/test_cli.py).
    root = Path(__file__).parents[3] / "config"
    code, out, err = await cli("config", "check", str(root / "demo.yaml"))
    assert code == 0, err
    assert "OK (1 channel(s): sms (devino_soap); default sms)" in out


async def test_plugins_lists_the_installed_devino_plugin() -> None:
    code, out, _ = await cli("plugins", "--json")
    assert code == 0
    info = {p["name"]: p for p in json.loads(out)}["devino_soap"]
    assert info["distribution"] == "notify-devino-soap"
    assert info["channel_types"] == ["devino_soap"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_sandbox_command_says_where_it_listens_and_takes_injected_replies(
    write_config: Callable[..., Path],
) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        "sandbox",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = f"http://127.0.0.1:{port}"
        assert line.startswith(f"Devino sandbox listening on {url}/SmsService.asmx"), line
        code, out, err = await cli(
            "sandbox", "inject", "--url", url, "--from", "79031234567", "--to", "ALERTS", "ack"
        )
        assert code == 0, err
        config = str(write_config(url + "/SmsService.asmx"))
        code, out, err = await cli("--config", config, "inbox", "--json")
        assert code == 0, err
        assert [(m["sender"], m["text"]) for m in json.loads(out)] == [("79031234567", "ack")]
        # a sender that is no number, or no text, is refused before anything is stored
        for args, fragment in [
            (["--from", "abc", "--to", "ALERTS", "x"], "'abc' is not a phone number"),
            (["--from", "79031234567", "--to", "ALERTS", "  "], "only whitespace"),
        ]:
            code, _, err = await cli("sandbox", "inject", "--url", url, *args)
            assert code == 2, err
            assert fragment in err
        code, out, _ = await cli("--config", config, "inbox", "--json")
        assert len(json.loads(out)) == 1
    finally:
        proc.terminate()
        await proc.wait()


async def test_the_demo_runs_and_never_logs_a_secret(tmp_path: Path) -> None:
    # $NOTIFY_DEVINO_CONFIG is not the demo's business: a broken one does not stop it
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nchannels: [\n")
    code, out, err = await cli(
        "--log-format", "json", "-vv", "demo", env={"NOTIFY_DEVINO_CONFIG": str(broken)}
    )
    assert code == 0, out + err
    assert "Done:" in out
    logs: list[dict[str, Any]] = [
        json.loads(line) for line in err.splitlines() if line.startswith("{")
    ]
    assert any(e["event"] == "soap_call" for e in logs)
    everything = out + err
    assert "demo-password" not in everything
    # session IDs are 36 upper-case letters and digits; none may reach any line
    assert not re.search(r"\b[A-Z0-9]{36}\b", everything)


async def test_the_demo_takes_the_configuration_given_with_config(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(DEMO_CONFIG.read_text().replace("poll_interval_seconds:", "poll_interval_x:"))
    code, out, err = await cli("--config", str(mine), "demo")
    assert code == 2, out + err
    assert str(mine) in err
    assert "poll_interval_x" in err
    code, _, err = await cli("--config", str(tmp_path / "absent.yaml"), "demo")
    assert code == 2
    assert "absent.yaml" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["estimate", "x", "--price", "abc"], "'abc' is not a number"),
        (["estimate", "x", "--recipients", "0"], "0"),
        (["sandbox", "--port", "70000"], "70000"),
        (["sandbox", "inject", "--from", "+7", "--to", "A", "x"], "is not a phone number"),
        (["demo", "--sandbox-config", "/nonexistent/sandbox.yaml"], "does not exist"),
    ],
)
async def test_the_plugin_commands_exit_2_on_bad_input(args: list[str], fragment: str) -> None:
    code, out, err = await cli(*args)
    assert code == 2, out + err
    assert fragment in err
