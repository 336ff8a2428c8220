"""The core's command line with the installed plugins, run in this process with click's
runner (a command line built for each call); a subprocess only where a process shows more
(the console script's imports, its exit status). The Devino commands are tested in the Devino
plugin."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest

from notify_devino import cliapi
from notify_devino.cli import build_cli, parse_at, parse_since
from notify_devino.errors import InvalidInputError
from notify_devino.plugins import PluginManager
from notify_devino.testing import invoke_cli
from notify_devino.types import Notification

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


def test_plugins_lists_the_installed_test_plugin_with_its_version_and_channels() -> None:
    expected = tomllib.loads((ROOT / "tests" / "memory_plugin" / "pyproject.toml").read_text())
    code, out, err = invoke_cli("plugins", "--json")
    assert code == 0, err
    listed = {p["name"]: p for p in json.loads(out)}
    assert listed["memory"]["distribution"] == expected["project"]["name"]
    assert listed["memory"]["version"] == expected["project"]["version"]
    assert listed["memory"]["channel_types"] == ["memory", "memory_sendonly"]
    assert listed["smtp"]["channel_types"] == ["smtp"]
    assert listed["webhook"]["channel_types"] == ["webhook"]

    code, out, _ = invoke_cli("plugins")
    assert code == 0
    row = next(line.split() for line in out.splitlines() if line.startswith("memory "))
    assert row == [
        "memory",
        expected["project"]["name"],
        expected["project"]["version"],
        "memory,",
        "memory_sendonly",
    ]


def test_notify_prints_who_got_it_on_which_channel(routed: str) -> None:
    code, out, err = invoke_cli(
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
def test_notify_exit_codes(routed: str, names: list[str], code: int) -> None:
    args = [arg for name in names for arg in ("--to", name)]
    got, out, err = invoke_cli(
        "--config", routed, "notify", "--severity", "critical", *args, "--json", stdin="from stdin"
    )
    assert got == code, err
    result = json.loads(out)
    assert result["text"] == "from stdin"
    assert [r["contact"] for r in result["recipients"]] == names


def test_notify_refuses_names_the_configuration_does_not_have(routed: str) -> None:
    code, _, err = invoke_cli("--config", routed, "notify", "x", "--to", "ann,zed")
    assert code == 2
    assert "'zed' is neither a contact nor a group" in err
    code, _, err = invoke_cli("--config", routed, "notify", "x", "--to", "ann", "--route", "no")
    assert code == 2
    assert "no route named 'no'" in err


def test_config_check_reports_routing_mistakes_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ROUTED.replace("oncall: [ann, ben]", "oncall: [ann, bob]"))
    code, _, err = invoke_cli("config", "check", str(path))
    assert code == 2
    assert f"{path}:17: groups.oncall[1]: 'bob' is neither a contact nor a group" in err


@pytest.mark.devino
def test_the_example_configuration_passes_config_check_with_every_plugin() -> None:
    env = {
        "DEVINO_LOGIN": "a",
        "DEVINO_PASSWORD": "b",
        "SMTP_PASSWORD": "c",
        "WEBHOOK_SECRET": "d" * 16,
    }
    example = ROOT / "config" / "notify-devino.example.yaml"
    code, out, err = invoke_cli("config", "check", str(example), env=env)
    assert code == 0, err
    assert "sms (devino_soap), email (smtp), chatops (webhook)" in out


# -- the factory, the modules, start-up (issue 11.3, 10.19) ---------------------------------------


def test_build_cli_makes_a_new_group_every_call() -> None:
    first, second = build_cli(PluginManager()), build_cli(PluginManager())
    assert first is not second
    assert {"send", "notify", "status", "plugins", "config"} <= set(first.commands)
    assert set(first.commands) == set(second.commands)
    assert invoke_cli("plugins", "--json")[0] == 0
    assert invoke_cli("plugins", "--json")[0] == 0  # a second invocation builds a second group


def test_a_plugin_command_cannot_take_a_core_command_name() -> None:
    from notify_devino import hookimpl
    from notify_devino.errors import PluginError

    class Squatter:
        @hookimpl
        def notify_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("send"))

    with pytest.raises(PluginError, match="'send', which already exists"):
        build_cli(PluginManager(autoload=False, plugins=[Squatter()]))


def _module_imports(path: Path) -> set[str]:
    """The modules a file imports when it is imported (not those imported inside functions or
    under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_the_cli_modules_import_no_cycle_and_plugins_only_the_declared_api() -> None:
    core = ROOT / "notify_devino"
    assert not any(
        m in {".cli", "notify_devino.cli"} for m in _module_imports(core / "cli_bulk.py")
    )
    assert not any("cli_bulk" in m for m in _module_imports(core / "cli.py"))
    assert not any(
        m.startswith((".cli", "notify_devino.cli")) for m in _module_imports(core / "cliapi.py")
    )
    soap = ROOT / "plugins" / "devino_soap" / "notify_devino_soap"
    for name in ("commands.py", "demo.py", "estimate.py"):
        source = (soap / name).read_text()
        assert "notify_devino.cli_bulk" not in source, name
        assert "from notify_devino.cli import" not in source, name


@pytest.mark.devino  # asserts that the Devino plugin's commands are listed, lazily
def test_help_imports_no_network_dispatcher_or_configuration_code() -> None:
    # What `notify-devino --help` imports, in a fresh interpreter (not a timing: what is loaded).
    probe = (
        "import sys\n"
        "from notify_devino.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {**os.environ, "NOTIFY_DEVINO_BLOCK_PLUGINS": "memory"}  # the suite's own plugin
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    modules = set(done.stderr.split())
    assert "notify_devino.cli" in modules
    assert "notify_devino_soap.commands" in modules  # the plugins' commands are there
    heavy = {
        "aiohttp",
        "pydantic",
        "yaml",
        "phonenumbers",
        "structlog",  # with rich beside it, a tenth of a second: logging is set up per command
        "notify_devino.dispatcher",
        "notify_devino.config",
        "notify_devino_soap.channel",
        "notify_devino_soap.emulator",
        "notify_devino_smtp.channel",
        "notify_devino_webhook.channel",
    }
    assert not modules & heavy
    assert "sandbox " in done.stdout.split("Commands:")[1]


# -- exit codes (issue 10.23) ----------------------------------------------------------------------

SIMPLE = """\
version: 1
default_channel: sms
status: {poll_interval_seconds: 0.01, wait_timeout_seconds: 5}
channels:
  sms:
    type: memory
    settings: {fail_for: ["+100"], unknown_for: ["+400"], stuck_for: ["+500"], reads_to_deliver: 1}
  mail:
    type: memory_sendonly
  broken:
    type: memory
    settings: {status_error: transport}
"""


@pytest.fixture
def simple(tmp_path: Path) -> str:
    path = tmp_path / "simple.yaml"
    path.write_text(SIMPLE)
    return str(path)


def test_the_exit_code_table_is_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for code in cliapi.EXIT_CODES:
        assert f"\n| {code} |" in readme, code


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["send", "x", "--to", "+1"], 0),
        (["send", "x", "--to", "+1", "--wait"], 0),
        (["status", "--channel", "broken", "m-1"], 1),  # the channel's transport failed
        (["send", "x", "--to", "+1,+100"], 3),
        (["send", "x", "--to", "+1,+400"], 4),
        (["send", "x", "--to", "+500", "--timeout", "0.05"], 4),  # --wait ran out
    ],
)
def test_exit_codes_of_outcomes(simple: str, args: list[str], code: int) -> None:
    got, out, err = invoke_cli("--config", simple, *args)
    assert got == code, out + err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["send", "   ", "--to", "+1"], "only whitespace"),
        (["send", "x", "--to", " , "], "no address given"),
        (["send", "x", "--to", "+1", "--timeout", "-1"], "-1"),
        (["send", "x", "--to", "+1", "--timeout", "0"], "0"),
        (["send", "x", "--to", "+1", "--at", "2026-12-02T09:00"], "has no offset"),
        (["send", "x", "--to", "+1", "--at", "2020-01-01T09:00Z"], "is in the past"),
        (["send", "x", "--to", "+1", "--at", "2h", "--local-time"], "a span from now"),
        (["send", "x", "--to", "+1", "--at", "soon"], "is not a date or a span"),
        (["send", "x", "--to", "+1", "--local-time"], "--local-time goes with --at"),
        (["send", "x", "--to", "+1", "--channel", "nope"], "no channel named 'nope'"),
        (["status", "--channel", "nope", "m-1"], "no channel named 'nope'"),
        (["inbox", "--channel", "nope"], "no channel named 'nope'"),
        (["balance", "--channel", "nope"], "no channel named 'nope'"),
        (["stats", "--since", "1d", "--channel", "nope"], "no channel named 'nope'"),
        (["status", "--channel", "mail", "m-1"], "does not support status"),
        (["status", " "], "a message ID is empty"),
        (["inbox", "--since", "2026-12-01T09:00"], "has no offset"),
        (["inbox", "--since", "1h", "--until", "2h"], "ends before it starts"),
        (["stats", "--since", "yesterday"], "is not a date or a span"),
        (["notify", "x", "--to", "nobody"], "neither a contact nor a group"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_exits_2_from_every_command(simple: str, args: list[str], fragment: str) -> None:
    code, out, err = invoke_cli("--config", simple, *args)
    assert code == 2, out + err
    assert fragment in err
    assert out == ""


def test_a_missing_configuration_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke_cli("--config", str(tmp_path / "absent.yaml"), "send", "x", "--to", "1")
    assert code == 2
    assert "does not exist" in err


def test_timeout_implies_wait(simple: str) -> None:
    code, out, err = invoke_cli(
        "--config", simple, "send", "x", "--to", "+1", "--timeout", "5", "--json"
    )
    assert code == 0, err
    assert [s["state"] for s in json.loads(out)["statuses"]] == ["delivered"]
    message_id = json.loads(out)["result"]["recipients"][0]["message_ids"][0]
    code, out, err = invoke_cli("--config", simple, "status", message_id, "--timeout", "5")
    assert code == 0, err
    assert "delivered" in out


# -- logging at the prompt (issue 10.18) -----------------------------------------------------------


def test_commands_print_warnings_only_unless_asked_for_more(simple: str) -> None:
    code, out, err = invoke_cli("--config", simple, "send", "x", "--to", "+1")
    assert code == 0
    assert err == ""
    assert out.startswith("RECIPIENT")

    code, _, err = invoke_cli(
        "--config", simple, "--log-format", "json", "-v", "send", "x", "--to", "+1"
    )
    assert code == 0
    events = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    assert {e["level"] for e in events} == {"info"}
    assert "notification_sent" in {e["event"] for e in events}

    code, _, err = invoke_cli(
        "--config", simple, "--log-format", "json", "-vv", "send", "x", "--to", "+1"
    )
    assert code == 0
    assert "debug" in {json.loads(line)["level"] for line in err.splitlines()}


def test_a_configured_level_does_not_make_the_prompt_chatty(tmp_path: Path) -> None:
    path = tmp_path / "info.yaml"
    path.write_text(SIMPLE + "logging: {level: info, format: json}\n")
    code, _, err = invoke_cli("--config", str(path), "send", "x", "--to", "+1")
    assert (code, err) == (0, "")


# -- when to send (issues 10.1, 10.2) --------------------------------------------------------------

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_span_for_send_at_is_from_now_and_for_a_range_is_back() -> None:
    assert parse_at("2h", local_time=False, now=NOW) == (NOW + timedelta(hours=2), None)
    assert parse_at("90m", local_time=False, now=NOW)[0] == NOW + timedelta(minutes=90)
    assert parse_at("now", local_time=False, now=NOW) == (None, None)
    assert parse_since("2h", name="--since", now=NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-11-30", name="--since", now=NOW) == datetime(2026, 11, 30, tzinfo=UTC)


def test_send_at_refuses_the_past_and_naive_times() -> None:
    with pytest.raises(click.BadParameter, match=r"add one \(2026-12-02T09:00\+03:00\), or Z"):
        parse_at("2026-12-02T09:00", local_time=False, now=NOW)
    with pytest.raises(click.BadParameter, match="is in the past"):
        parse_at("2026-12-01T08:59Z", local_time=False, now=NOW)
    with pytest.raises(click.BadParameter, match="is now"):
        parse_at("0m", local_time=False, now=NOW)
    assert parse_at("2026-12-01T12:30+03:00", local_time=False, now=NOW)[0] == NOW + timedelta(
        minutes=30
    )


def test_a_local_time_that_has_passed_everywhere_is_refused_and_somewhere_warned() -> None:
    # 09:00 UTC: at UTC-12 it is 21:00 the day before, at UTC+14 23:00 the same day
    with pytest.raises(click.BadParameter, match="already passed in every time zone"):
        parse_at("2026-11-30T20:00", local_time=True, now=NOW)
    when, caution = parse_at("2026-12-01T12:00", local_time=True, now=NOW)
    assert when == datetime(2026, 12, 1, 12, 0)
    assert "ahead of UTC+3" in str(caution)
    assert parse_at("2026-12-02T09:00", local_time=True, now=NOW) == (
        datetime(2026, 12, 2, 9, 0),
        None,
    )
    with pytest.raises(click.BadParameter, match="without an offset"):
        parse_at("2026-12-02T09:00+03:00", local_time=True, now=NOW)


def test_send_at_2h_sends_two_hours_from_now(simple: str) -> None:
    before = datetime.now(UTC)
    code, out, err = invoke_cli(
        "--config", simple, "send", "x", "--to", "+1", "--at", "2h", "--json"
    )
    assert code == 0, err
    send_at = datetime.fromisoformat(json.loads(out)["result"]["notification"]["send_at"])
    assert before + timedelta(hours=2) <= send_at <= datetime.now(UTC) + timedelta(hours=2)


def test_the_library_refuses_a_naive_send_at_with_an_input_error_that_says_what_to_add() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Notification("x", ("y",), send_at=datetime(2026, 12, 2, 9))
    assert caught.value.field == "send_at"
    for advice in ("an offset", "UTC", "recipient_local_time=True"):
        assert advice in str(caught.value)
    for bad in [
        lambda: Notification("x", ()),
        lambda: Notification("  \n ", ("y",)),
        lambda: Notification("x", ("y",), recipient_local_time=True),
        lambda: Notification("x", ("y",), validity=timedelta(0)),
    ]:
        with pytest.raises(InvalidInputError):
            bad()


# -- one name, one meaning (issue 10.24) -----------------------------------------------------------


def test_every_period_is_since_until_and_the_old_stats_spelling_warns(simple: str) -> None:
    from notify_devino.cli import inbox, stats

    for command in (inbox, stats):
        names = {opt for p in command.params if not p.hidden for opt in p.opts}
        assert {"--since", "--until"} <= names
        assert not names & {"--from", "--to"}
    code, _, err = invoke_cli("--config", simple, "stats", "--from", "1h")
    assert code == 2  # the memory channel keeps no statistics
    assert "--from is deprecated and will go: use --since" in err


def test_a_lazy_core_command_is_imported_only_when_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify_devino import cli
    from notify_devino.errors import PluginError

    monkeypatch.setitem(
        cli.CORE_COMMANDS, "probe", ("tests.cli_lazy_probe:probe", "A command loaded when run.")
    )
    monkeypatch.delitem(sys.modules, "tests.cli_lazy_probe", raising=False)
    code, out, _ = invoke_cli("--help")
    assert code == 0
    assert re.search(r"^  probe +A command loaded when run\.$", out, re.MULTILINE)
    assert "tests.cli_lazy_probe" not in sys.modules
    assert invoke_cli("probe") == (0, "probe ran\n", "")

    from notify_devino import hookimpl

    class Squatter:
        @hookimpl
        def notify_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("probe"))

    with pytest.raises(PluginError, match="'probe', which already exists"):
        build_cli(PluginManager(autoload=False, plugins=[Squatter()]))


def test_the_console_script_maps_usage_errors_to_2() -> None:
    # the console script itself (main), in a real process: click's own usage errors exit 2
    done = subprocess.run(
        [sys.executable, "-m", "notify_devino", "send", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "NOTIFY_DEVINO_CONFIG": ""},
    )
    assert done.returncode == 2
    assert "give the recipients with --to or --to-file" in done.stderr
