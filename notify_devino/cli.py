"""The ``notify-devino`` command line.

Core commands: ``send``, ``notify`` (contacts and routes), ``status``, ``inbox``, ``balance``,
``stats``, ``plugins`` and ``config check``; plugins add their own (the Devino plugin adds
``sandbox`` and ``demo``) through the ``notify_register_commands`` hook. Tables for people,
``--json`` for programs.

Exit codes: 0 success; 1 the operation failed (provider, transport or plugin error);
2 bad usage or configuration; 3 some recipients failed or some messages ended undelivered;
4 the outcome of some send is unknown, or ``--wait`` timed out before every message was final.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from .config import Config, find_config, load_config
from .dispatcher import Dispatcher
from .errors import ConfigError, InvalidInputError, NotifyError
from .logconfig import configure_logging, redact
from .plugins import PluginManager
from .types import (
    ChannelAttempt,
    DeliveryState,
    MessageStatus,
    NotifyResult,
    RouteOutcome,
    SendOutcome,
    SendResult,
    utc_now,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_UNKNOWN = 0, 1, 2, 3, 4

T = TypeVar("T")


@dataclasses.dataclass
class CliState:
    """What the top-level group hands its commands (plugin commands too, via ``ctx.obj``)."""

    config_path: str | None
    plugins: PluginManager
    log_format: str | None
    log_level: str | None

    def load_config(self) -> Config:
        return load_config(find_config(self.config_path))

    def run(self, work: Callable[[Dispatcher], Awaitable[T]]) -> T:
        """Load the configuration, set up logging, and run ``work`` inside a dispatcher."""
        config = self.load_config()
        setup_logging(self, config)

        async def main() -> T:
            async with Dispatcher(config, plugins=self.plugins) as dispatcher:
                return await work(dispatcher)

        return asyncio.run(main())


def setup_logging(state: CliState, config: Config | None = None) -> None:
    fmt = state.log_format or (config.logging.format if config else None)
    level = state.log_level or (config.logging.level if config else "warning")
    configure_logging(fmt, level, cache=False)  # type: ignore[arg-type]


# -- output helpers --------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Typed values as JSON-ready data: dates in ISO 8601, decimals as strings, errors as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseException):
        out = {"type": type(value).__name__, "message": redact(str(value))}
        if getattr(value, "reason", None) is not None:
            out["reason"] = str(value.reason)  # type: ignore[attr-defined]
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[("" if c is None else redact(str(c))) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(out)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(value: str, *, name: str, allow_naive: bool = False) -> datetime:
    """An ISO 8601 moment (``2026-12-01T09:00:00+03:00``, ``2026-12-01``), or a span back from
    now (``90m``, ``2h``, ``7d``)."""
    span = _DURATION.fullmatch(value.strip())
    if span:
        return utc_now() - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use ISO 8601 (2026-12-01T09:00:00+03:00) or a span such "
            "as 90m, 2h, 7d",
            param_hint=name,
        ) from None
    if moment.tzinfo is None and not allow_naive:
        moment = moment.replace(tzinfo=UTC)
    return moment


# -- the group -------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    envvar="NOTIFY_DEVINO_CONFIG",
    help="Configuration file. Default: $NOTIFY_DEVINO_CONFIG, ./notify-devino.yaml, "
    "./config/notify-devino.yaml, ~/.config/notify-devino/config.yaml, "
    "/etc/notify-devino/config.yaml.",
)
@click.option(
    "--log-format", type=click.Choice(["console", "json"]), help="How logs are written (to stderr)."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Lowest log level shown.",
)
@click.version_option(package_name="notify-devino")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_format: str | None, log_level: str | None
) -> None:
    """Send notifications and follow them through configured channels (Devino SMS, ...)."""
    if ctx.obj is None:
        ctx.obj = CliState(config_path, PluginManager(), log_format, log_level)
    else:  # tests may hand in a state with their own plugin manager
        ctx.obj.config_path = config_path or ctx.obj.config_path
        ctx.obj.log_format = log_format or ctx.obj.log_format
        ctx.obj.log_level = log_level or ctx.obj.log_level


pass_state = click.make_pass_decorator(CliState)


def _exit_for_send(results: Sequence[SendResult], statuses: Sequence[MessageStatus] | None) -> int:
    outcomes = {r.outcome for result in results for r in result.recipients}
    if SendOutcome.UNKNOWN in outcomes or (statuses and any(not s.final for s in statuses)):
        return EXIT_UNKNOWN
    if SendOutcome.FAILED in outcomes or (
        statuses and any(s.state is not DeliveryState.DELIVERED for s in statuses)
    ):
        return EXIT_PARTIAL
    return EXIT_OK


def _status_rows(statuses: Sequence[MessageStatus]) -> list[list[Any]]:
    return [
        [s.message_id, s.state.value, s.name, s.code, "yes" if s.final else "no", s.description]
        for s in statuses
    ]


STATUS_HEADERS = ("message id", "state", "provider state", "code", "final", "description")


@cli.command()
@click.argument("text", required=False)
@click.option(
    "-t",
    "--to",
    "recipients",
    multiple=True,
    metavar="ADDRESS",
    help="A recipient; repeat for several, or separate with commas.",
)
@click.option(
    "--to-file",
    metavar="PATH",
    help="Recipients from a file, streamed in batches: one per line, or a CSV column "
    "('-' reads standard input). Prints a summary, or JSON lines with --json.",
)
@click.option(
    "--column",
    metavar="NAME|N",
    help="With --to-file: the CSV column of the addresses, by header name or 1-based number.",
)
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--sender", help="Sender name or number (default: the channel's).")
@click.option(
    "--at",
    "send_at",
    metavar="WHEN",
    help="Send later: ISO 8601 with an offset, or a wall-clock time with --local-time.",
)
@click.option("--local-time", is_flag=True, help="Read --at as each recipient's local time.")
@click.option(
    "--validity",
    type=click.IntRange(min=1),
    metavar="MINUTES",
    help="How long the provider keeps trying.",
)
@click.option("--wait", is_flag=True, help="Follow every message to a final state.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def send(
    state: CliState,
    text: str | None,
    recipients: tuple[str, ...],
    to_file: str | None,
    column: str | None,
    channel: str | None,
    sender: str | None,
    send_at: str | None,
    local_time: bool,
    validity: int | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Send TEXT (or standard input, when TEXT is absent or '-') to every --to recipient, or to
    every recipient of a --to-file."""
    if not recipients and not to_file:
        raise click.UsageError("give the recipients with --to or --to-file")
    if column is not None and not to_file:
        raise click.UsageError("--column goes with --to-file")
    if text is None or text == "-":
        if to_file == "-":
            raise click.UsageError("with --to-file -, give the text as an argument")
        if sys.stdin.isatty():
            raise click.UsageError("give the text as an argument or on standard input")
        text = sys.stdin.read().rstrip("\n")
    to = [r.strip() for value in recipients for r in value.split(",") if r.strip()]
    when = parse_moment(send_at, name="--at", allow_naive=local_time) if send_at else None
    if when is not None and local_time and when.tzinfo is not None:
        raise click.BadParameter(
            "with --local-time, give a wall-clock time without an offset", param_hint="--at"
        )
    if to_file:
        if wait:
            raise click.UsageError(
                "--wait does not go with --to-file (a streamed send keeps no list of IDs): "
                "follow IDs later with 'notify-devino status'"
            )
        from .cli_bulk import send_file

        fields = {
            "sender": sender,
            "send_at": when,
            "recipient_local_time": local_time,
            "validity": timedelta(minutes=validity) if validity else None,
        }
        code = _guard(
            lambda: send_file(
                state, text, to, to_file, column, channel=channel, as_json=as_json, **fields
            )
        )
        sys.exit(code)

    async def work(dispatcher: Dispatcher) -> tuple[SendResult, list[MessageStatus] | None]:
        result = await dispatcher.send(
            text,
            to=to,
            channel=channel,
            sender=sender,
            send_at=when,
            recipient_local_time=local_time,
            validity=timedelta(minutes=validity) if validity else None,
        )
        statuses = None
        if wait and result.message_ids:
            statuses = await dispatcher.wait(
                result.message_ids, channel=result.channel, timeout=timeout
            )
        return result, statuses

    result, statuses = _guard(lambda: state.run(work))
    if as_json:
        emit_json({"result": result, "statuses": statuses})
    else:
        click.echo(
            table(
                ("recipient", "address", "outcome", "message ids", "error"),
                [
                    [r.recipient, r.address, r.outcome.value, " ".join(r.message_ids), r.error]
                    for r in result.recipients
                ],
            )
        )
        if statuses is not None:
            click.echo()
            click.echo(table(STATUS_HEADERS, _status_rows(statuses)))
    sys.exit(_exit_for_send([result], statuses))


def _attempt_text(attempt: ChannelAttempt) -> str:
    reason = f" ({attempt.reason})" if attempt.reason else ""
    return f"{attempt.channel}: {attempt.outcome.value}{reason}"


@cli.command()
@click.argument("text", required=False)
@click.option(
    "-t",
    "--to",
    "names",
    multiple=True,
    required=True,
    metavar="NAME",
    help="A contact or group of the configuration; repeat for several, or separate with commas.",
)
@click.option("--severity", help="The notification's severity; routes match on it (critical).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag routes match on; repeat.")
@click.option("--route", help="Take this route instead of the first one that matches.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def notify(
    state: CliState,
    text: str | None,
    names: tuple[str, ...],
    severity: str | None,
    tags: tuple[str, ...],
    route: str | None,
    as_json: bool,
) -> None:
    """Send TEXT (or standard input) to contacts and groups along a route, falling back from
    channel to channel (the configuration's contacts:, groups: and routes:)."""
    if text is None or text == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give the text as an argument or on standard input")
        text = sys.stdin.read().rstrip("\n")
    to = [n.strip() for value in names for n in value.split(",") if n.strip()]

    async def work(dispatcher: Dispatcher) -> NotifyResult:
        return await dispatcher.notify(text, to=to, severity=severity, tags=tags, route=route)

    def run() -> NotifyResult:
        try:
            return state.run(work)
        except InvalidInputError as exc:  # a name or route the configuration does not have
            raise click.UsageError(str(exc)) from None

    result = _guard(run)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"route: {result.route or '(default channel)'}")
        click.echo(
            table(
                ("contact", "outcome", "carried by", "channels tried"),
                [
                    [
                        r.contact,
                        r.outcome.value,
                        r.carried_by,
                        "; ".join(_attempt_text(a) for a in r.attempts),
                    ]
                    for r in result.recipients
                ],
            )
        )
    outcomes = {r.outcome for r in result.recipients}
    if RouteOutcome.UNKNOWN in outcomes:
        sys.exit(EXIT_UNKNOWN)
    sys.exit(EXIT_PARTIAL if RouteOutcome.FAILED in outcomes else EXIT_OK)


@cli.command()
@click.argument("message_ids", nargs=-1, required=True)
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--wait", is_flag=True, help="Follow every message to a final state.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def status(
    state: CliState,
    message_ids: tuple[str, ...],
    channel: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Show the state of one or more MESSAGE_IDS."""

    async def work(dispatcher: Dispatcher) -> list[MessageStatus]:
        if wait:
            return await dispatcher.wait(message_ids, channel=channel, timeout=timeout)
        return await dispatcher.status(message_ids, channel=channel)

    statuses = _guard(lambda: state.run(work))
    if as_json:
        emit_json(statuses)
    else:
        click.echo(table(STATUS_HEADERS, _status_rows(statuses)))
    if wait and any(not s.final for s in statuses):
        sys.exit(EXIT_UNKNOWN)


@cli.command()
@click.option(
    "--since",
    default="1d",
    show_default=True,
    help="ISO 8601 moment or a span back from now (90m, 2h, 7d).",
)
@click.option("--until", help="ISO 8601 moment (default: now).")
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def inbox(
    state: CliState, since: str, until: str | None, channel: str | None, as_json: bool
) -> None:
    """Show messages received (replies to alerts, say)."""
    start = parse_moment(since, name="--since")
    end = parse_moment(until, name="--until") if until else None
    messages = _guard(lambda: state.run(lambda d: d.inbox(since=start, until=end, channel=channel)))
    if as_json:
        emit_json(messages)
    else:
        click.echo(
            table(
                ("received", "from", "to", "text"),
                [[m.received_at.isoformat(), m.sender, m.recipient, m.text] for m in messages],
            )
        )


@cli.command()
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def balance(state: CliState, channel: str | None, as_json: bool) -> None:
    """Show the account balance of a channel."""
    result = _guard(lambda: state.run(lambda d: d.balance(channel=channel)))
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"{result.channel}: {result.amount}{' ' + result.currency if result.currency else ''}"
        )


@cli.command()
@click.option(
    "--from",
    "start",
    default="7d",
    show_default=True,
    help="ISO 8601 moment or a span back from now.",
)
@click.option("--to", "end", help="ISO 8601 moment (default: now).")
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def stats(state: CliState, start: str, end: str | None, channel: str | None, as_json: bool) -> None:
    """Show the provider's delivery statistics for a period."""
    begin = parse_moment(start, name="--from")
    finish = parse_moment(end, name="--to") if end else None
    result = _guard(lambda: state.run(lambda d: d.statistics(begin, finish, channel=channel)))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result.channel}: {result.start.isoformat()} .. {result.end.isoformat()}")
        rows = [[k, v] for k, v in result.counts.items()]
        if result.ratio is not None:
            rows.append(["delivery ratio", result.ratio])
        click.echo(table(("counter", "value"), rows))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def plugins(state: CliState, as_json: bool) -> None:
    """List the installed plugins, their versions and the channel types they provide."""
    infos = _guard(state.plugins.plugins)
    if as_json:
        emit_json(infos)
    else:
        click.echo(
            table(
                ("plugin", "distribution", "version", "channel types"),
                [[p.name, p.distribution, p.version, ", ".join(p.channel_types)] for p in infos],
            )
        )


@cli.group("config")
def config_group() -> None:
    """Work with configuration files."""


@config_group.command("check")
@click.argument("path", required=False)
@pass_state
def config_check(state: CliState, path: str | None) -> None:
    """Validate a configuration file, its secrets and every channel's settings, offline."""

    def check() -> tuple[Path, Config]:
        file = find_config(path or state.config_path)
        config = load_config(file)
        types = state.plugins.channel_types()
        Dispatcher(config, plugins=state.plugins)  # names a channel type no plugin provides
        for name, channel in config.channels.items():
            config.channel_settings(name, types[channel.type].settings_model)
        return file, config

    file, config = _guard(check)
    click.echo(
        f"{file}: OK ({len(config.channels)} channel(s): "
        + ", ".join(f"{n} ({c.type})" for n, c in config.channels.items())
        + f"; default {config.default_channel})"
    )


def _guard(call: Callable[[], T]) -> T:
    """Run a command's work; map notify-devino errors to a message and an exit code."""
    try:
        return call()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except NotifyError as exc:
        fail(f"{exc} ({type(exc).__name__})", EXIT_FAILED)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def build_cli(plugins: PluginManager | None = None) -> click.Group:
    """The command line with every plugin's commands added."""
    from .service.commands import queue, serve

    cli.add_command(serve)
    cli.add_command(queue)
    manager = plugins or PluginManager()
    from .alertmanager.commands import template_group  # it uses this module's helpers

    cli.add_command(template_group)
    manager.register_commands(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """The ``notify-devino`` console script."""
    configure_logging(None, "warning", cache=False)  # until a command knows the configured format
    try:
        manager = PluginManager()
        group = build_cli(manager)
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    group.main(args=argv, prog_name="notify-devino", obj=CliState(None, manager, None, None))
