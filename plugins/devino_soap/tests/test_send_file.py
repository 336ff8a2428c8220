"""``notify-devino send --to-file``, as a user runs it: a real process, real HTTP to the sandbox,
and for the progress bar a real terminal (a pseudo-terminal on stderr)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from test_cli_devino import run_cli

from notify_devino_soap.emulator import Sandbox


async def test_a_csv_column_with_a_summary_and_the_failures(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "on-call.csv"
    numbers.write_text(
        "name;phone;team\nAnn;+7 903 123-45-67;db\nBob;12345;web\nCy;8 903 123 45 68;ops\n"
    )
    code, out, err = await run_cli(
        "--config", config, "send", "db-1 is down", "--to-file", str(numbers), "--column", "phone"
    )
    assert code == 3, err  # one failed
    lines = out.splitlines()
    assert lines[0].startswith("3 recipients: 2 accepted (2 messages), 1 failed, 0 unknown, in ")
    assert lines[2].split() == ["RECIPIENT", "OUTCOME", "ERROR"]
    assert lines[3].startswith("12345      failed   recipient '12345' is not a valid phone number")
    sends = [r.destinations for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sends == [("79031234567", "79031234568")]


async def test_standard_input_in_batches_of_1000_as_json_lines(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    config = str(write_config(devino_sandbox.url))
    numbers = "".join(f"7903{n:07d}\n" for n in range(2500))
    code, out, err = await run_cli(
        "--config",
        config,
        "send",
        "maintenance tonight",
        "--to",
        "79991234567",
        "--to-file",
        "-",
        "--json",
        stdin=numbers,
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    summary = records.pop()["summary"]
    assert {k: summary[k] for k in ("recipients", "accepted", "failed", "messages")} == {
        "recipients": 2501,
        "accepted": 2501,
        "failed": 0,
        "messages": 2501,
    }
    assert sorted(r["recipient"] for r in records) == sorted(
        ["79991234567", *(f"7903{n:07d}" for n in range(2500))]
    )
    assert all(r["outcome"] == "accepted" and len(r["message_ids"]) == 1 for r in records)
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sorted(len(r.destinations) for r in sends) == [501, 1000, 1000]
    assert [r.fault for r in devino_sandbox.requests if r.fault] == []


async def test_usage_errors(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = str(write_config("http://127.0.0.1:9/SmsService.asmx"))
    numbers = tmp_path / "n.txt"
    numbers.write_text("79031234567\n")
    for args, fragment in [
        (["x", "--to-file", str(numbers), "--wait"], "--wait does not go with --to-file"),
        (["--to-file", "-"], "with --to-file -, give the text as an argument"),
        (["x", "--to-file", str(tmp_path / "absent.txt")], "is not a readable file"),
        (["x", "--column", "phone", "--to", "79031234567"], "--column goes with --to-file"),
        (["x"], "give the recipients with --to or --to-file"),
    ]:
        code, _, err = await run_cli("--config", config, "send", *args, stdin="")
        assert code == 2, (args, err)
        assert fragment in err


async def test_a_progress_bar_on_a_terminal(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("".join(f"7903{n:07d}\n" for n in range(1500)))
    master, terminal = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "notify_devino",
            "--config",
            config,
            "--log-level",
            "error",
            "send",
            "hello",
            "--to-file",
            str(numbers),
            stdout=asyncio.subprocess.PIPE,
            stderr=terminal,
            env={**os.environ, "NOTIFY_DEVINO_CONFIG": "", "COLUMNS": "100"},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        os.close(terminal)
        terminal = -1
        screen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(master)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    assert "sending" in text
    assert "1500/1500" in text
    assert out.decode().startswith("1500 recipients: 1500 accepted (1500 messages), 0 failed")
