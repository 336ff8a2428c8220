"""``notify-devino send --to-file`` against the sandbox: in this process with click's runner,
and as a real process where only one shows the behaviour: Ctrl-C (a real SIGINT) and the
progress bar (a pseudo-terminal on stderr)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from test_cli_devino import cli

from notify_devino_soap.emulator import Sandbox


def _sent(sandbox: Sandbox) -> list[tuple[str, ...]]:
    return [r.destinations for r in sandbox.requests if r.operation == "SendMessage"]


async def test_a_csv_column_prints_every_recipient_with_its_ids_then_a_summary(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "on-call.csv"
    numbers.write_text(
        "name;phone;team\nAnn;+7 903 123-45-67;db\nBob;12345;web\nCy;8 903 123 45 68;ops\n"
    )
    code, out, err = await cli(
        "--config", config, "send", "db-1 is down", "--to-file", str(numbers), "--column", "phone"
    )
    assert code == 3, err  # one failed
    lines = out.splitlines()
    assert lines[0].split() == ["RECIPIENT", "OUTCOME", "MESSAGE", "IDS", "/", "ERROR"]
    stored = {str(m.message_id): m.destination for m in devino_sandbox.state.messages()}
    accepted = [line.split() for line in lines[1:4] if " accepted " in line]
    # each accepted row ends with the message ID to follow, the one the provider stored
    assert sorted(stored[row[-1]] for row in accepted) == ["79031234567", "79031234568"]
    assert any(line.startswith("12345             failed    recipient '12345'") for line in lines)
    assert lines[-1].startswith("3 recipients: 2 accepted (2 messages), 1 failed, 0 unknown, in ")
    assert _sent(devino_sandbox) == [("79031234567", "79031234568")]


async def test_standard_input_in_batches_of_1000_as_json_lines(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    config = str(write_config(devino_sandbox.url))
    numbers = "".join(f"7903{n:07d}\n" for n in range(2500))
    code, out, err = await cli(
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
    assert sorted(map(len, _sent(devino_sandbox))) == [501, 1000, 1000]
    assert [r.fault for r in devino_sandbox.requests if r.fault] == []


async def test_usage_errors(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = str(write_config("http://127.0.0.1:9/SmsService.asmx"))
    numbers = tmp_path / "n.txt"
    numbers.write_text("79031234567\n")
    for args, fragment in [
        (["x", "--to-file", str(numbers), "--wait"], "--wait and --timeout do not go with"),
        (["x", "--to-file", str(numbers), "--timeout", "5"], "--wait and --timeout do not go"),
        (["--to-file", "-"], "with --to-file -, give the text as an argument"),
        (["x", "--to-file", str(tmp_path / "absent.txt")], "is not a readable file"),
        (["x", "--column", "phone", "--to", "79031234567"], "--column goes with --to-file"),
        (["x", "--encoding", "cp1251", "--to", "79031234567"], "--encoding goes with --to-file"),
        (["x", "--to-file", str(numbers), "--encoding", "klingon"], "not a known text encoding"),
        (["x", "--to-file", str(numbers), "--column", "2"], "one address per line, no columns"),
        (["x"], "give the recipients with --to or --to-file"),
        (["  ", "--to-file", str(numbers)], "only whitespace"),
    ]:
        code, _, err = await cli("--config", config, "send", *args, stdin="")
        assert code == 2, (args, err)
        assert fragment in err, (args, err)


async def test_a_column_the_file_does_not_have_is_refused_before_anything_is_sent(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "two.csv"
    numbers.write_text("name,phone\nAnn,79031234567\nBob,79031234568\n")
    code, out, err = await cli(
        "--config", config, "send", "x", "--to-file", str(numbers), "--column", "9"
    )
    assert code == 2, out + err
    assert "--column 9: the file has 2 column(s) (its first row: name, phone)" in err
    assert out == ""
    assert devino_sandbox.requests == []


async def test_a_file_in_another_encoding_names_the_line_and_is_read_with_encoding(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "cp1251.csv"
    numbers.write_bytes("телефон;имя\n79031234567;Аня\n79031234568;Борис\n".encode("cp1251"))
    code, out, err = await cli("--config", config, "send", "x", "--to-file", str(numbers))
    assert code == 2, out + err
    assert f"{numbers}: line 1: byte 0xf2 (byte 1 of the line) is not UTF-8 text" in err
    assert "--encoding" in err
    assert devino_sandbox.requests == []

    code, out, err = await cli(
        "--config", config, "send", "x", "--to-file", str(numbers), "--encoding", "cp1251"
    )
    assert code == 0, err
    assert _sent(devino_sandbox) == [("79031234567", "79031234568")]


async def test_ctrl_c_stops_starting_batches_and_reports_exactly_what_was_sent(
    devino_sandbox: Sandbox, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    devino_sandbox.state.accounts["demo"].balance = Decimal(1_000_000)
    config = str(write_config(devino_sandbox.url))
    numbers = tmp_path / "50k.txt"
    numbers.write_text("".join(f"7903{n:07d}\n" for n in range(50_000)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        "--config",
        config,
        "send",
        "maintenance tonight",
        "--to-file",
        str(numbers),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NOTIFY_DEVINO_CONFIG": ""},
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 60)  # a first batch is done
    proc.send_signal(signal.SIGINT)
    rest, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 130, err.decode()
    records = [json.loads(line) for line in (first + rest).decode().splitlines()]
    summary = records.pop()["summary"]
    assert "interrupted: no new batch starts" in err.decode()

    stored = devino_sandbox.state.sends_per_destination()
    accepted = {r["recipient"] for r in records if r["outcome"] == "accepted"}
    assert accepted == set(stored)  # what the provider took is what was printed
    assert max(stored.values()) == 1
    assert summary["interrupted"] is True
    assert summary["recipients"] == len(records) == summary["accepted"] == len(stored)
    assert summary["not_sent"] == 50_000 - len(records) > 0
    assert summary["batches"] == len(_sent(devino_sandbox))


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
    lines = out.decode().splitlines()
    assert len(lines) == 1 + 1500 + 2  # the header, a row per recipient, a blank, the summary
    assert lines[-1].startswith("1500 recipients: 1500 accepted (1500 messages), 0 failed")


async def test_a_bad_line_on_standard_input_stops_the_send_after_reporting_what_went_out(
    devino_sandbox: Sandbox, write_config: Callable[..., Path]
) -> None:
    # standard input cannot be read twice: what was sent before the bad line is reported
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    config = str(write_config(devino_sandbox.url))
    good = "".join(f"7903{n:07d}\n" for n in range(1500))
    code, out, err = await cli(
        "--config",
        config,
        "send",
        "x",
        "--to-file",
        "-",
        "--json",
        stdin=good.encode() + b"7903\xff\n",
    )
    assert code == 2, err
    assert "<stdin>: line 1501: byte 0xff" in err
    records = [json.loads(line) for line in out.splitlines()]
    summary = records.pop()["summary"]
    stored = devino_sandbox.state.sends_per_destination()
    assert {r["recipient"] for r in records} == set(stored)
    assert summary["recipients"] == len(records) == len(stored)
