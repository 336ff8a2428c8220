"""The ``notify-devino`` command line.

Core commands: ``send``, ``notify`` (contacts and routes), ``status``, ``inbox``, ``balance``,
``stats``, ``plugins`` and ``config check``; plugins add their own (the Devino plugin adds
``sandbox``, ``demo`` and ``estimate``) through the ``notify_register_commands`` hook, using only
:mod:`notify_devino.cliapi`. Tables for people, ``--json`` for programs; exit codes are
:data:`notify_devino.cliapi.EXIT_CODES`.

:func:`build_cli` makes a new command group on every call: nothing global is mutated, so a test
builds one per invocation and runs it in-process. A core command is one line of
:data:`CORE_COMMANDS`: ``"name": "module:attribute"`` imports the module when the command line
is built (it must import only click at the top, as this module does), and
``"name": ("module:attribute", "short help")`` imports it only when that command runs, with the
short help shown by ``--help`` meanwhile: the form for a module with heavy imports (aiohttp's web
server, a database driver). ``notify-devino --help`` imports click, pluggy and the plugins'
``hooks`` modules, nothing more (structlog comes with the first command that sets up logging).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .cliapi import (  # the names commands imported from here before cliapi are kept
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    LOG_LEVELS,
    CliState,
    emit_json,
    fail,
    guard,
    pass_state,
    read_text,
    setup_logging,
    table,
    to_jsonable,
    warn,
)

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .plugins import PluginManager
    from .types import ChannelAttempt, MessageStatus, NotifyResult, SendResult

CORE_COMMANDS: dict[str, str | tuple[str, str]] = {
    "send": "notify_devino.cli:send",
    "notify": "notify_devino.cli:notify",
    "status": "notify_devino.cli:status",
    "inbox": "notify_devino.cli:inbox",
    "balance": "notify_devino.cli:balance",
    "stats": "notify_devino.cli:stats",
    "plugins": "notify_devino.cli:plugins",
    "config": "notify_devino.cli:config_group",
    "serve": (
        "notify_devino.service.commands:serve",
        "Run the durable notification service: the HTTP API, the outbox and its workers.",
    ),
    "queue": (
        "notify_devino.service.commands:queue",
        "Show what the outbox holds (read-only, beside a running serve).",
    ),
    "template": (
        "notify_devino.alertmanager.commands:template_group",
        "Alert SMS templates: what an Alertmanager payload becomes.",
    ),
}
"""The core's commands: name -> ``module:attribute`` of a click command, or (``module:attribute``,
short help) to import it only when it runs. Adding a command is one line here."""


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


class _Names(dict[str, click.Command]):
    """The group's commands, where a name that is still to be imported counts as taken (a
    plugin cannot add a command of that name)."""

    def __init__(self, lazy: dict[str, tuple[str, str]]) -> None:
        super().__init__()
        self.lazy = lazy

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self.lazy

    def loaded(self, name: str) -> click.Command | None:
        """The command if it is imported; None for one still to import."""
        return super().get(name)


class _Group(click.Group):
    """A click group whose lazy commands are imported when they run, not to list them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}
        self.names = _Names(self.lazy)
        self.commands = self.names

    def add_lazy(self, name: str, target: str, short_help: str) -> None:
        self.lazy[name] = (target, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.names.keys(), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and self.names.loaded(cmd_name) is None:
            self.names[cmd_name] = _load(self.lazy[cmd_name][0])
        return self.names.loaded(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        limit = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
        for name in self.list_commands(ctx):
            loaded = self.names.loaded(name)
            if loaded is None:
                stand_in = click.Command(name, help=self.lazy[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
            elif not loaded.hidden:
                rows.append((name, loaded.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# -- moments and spans -----------------------------------------------------------------------------

_SPAN = re.compile(r"(\d{1,9})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT_FORMS = "ISO 8601 with an offset (2026-12-02T09:00+03:00, 2026-12-02T06:00Z)"


def _span(value: str) -> timedelta | None:
    match = _SPAN.fullmatch(value.strip())
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _iso(value: str, name: str, forms: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or a span: use {forms}", param_hint=name
        ) from None


def _naive_refused(value: str, name: str, extra: str = "") -> click.BadParameter:
    return click.BadParameter(
        f"{value!r} has no offset, so it could mean any of some 26 moments: add one "
        f"({value}+03:00), or Z for UTC ({value}Z){extra}",
        param_hint=name,
    )


def parse_since(value: str, *, name: str, now: datetime | None = None) -> datetime:
    """A range bound: ISO 8601 with an offset, a date (``2026-12-01``: midnight UTC), or a span
    back from now (``90m``, ``2h``, ``7d``)."""
    now = now or datetime.now(UTC)
    span = _span(value)
    if span is not None:
        return now - span
    forms = f"{_MOMENT_FORMS}, a date (2026-12-01, midnight UTC) or a span back (90m, 2h, 7d)"
    moment = _iso(value, name, forms)
    if moment.tzinfo is None:
        if _DATE_ONLY.fullmatch(value.strip()):
            return moment.replace(tzinfo=UTC)
        raise _naive_refused(value.strip(), name)
    return moment


def parse_at(
    value: str, *, local_time: bool, now: datetime | None = None
) -> tuple[datetime | None, str | None]:
    """``send --at``: when to send, and a warning for the user (or None).

    ``now`` sends now; a span (``90m``, ``2h``, ``7d``) is that long from now; ISO 8601 needs an
    offset or ``Z``, or, with ``--local-time``, is a wall-clock time without one. A moment that
    has passed is refused; so is a wall-clock time that has passed in every time zone.
    """
    now = now or datetime.now(UTC)
    text = value.strip()
    name = "--at"
    if text.lower() == "now":
        if local_time:
            raise click.BadParameter(
                "--local-time needs a wall-clock time, not 'now'", param_hint=name
            )
        return None, None
    span = _span(text)
    if span is not None:
        if local_time:
            raise click.BadParameter(
                f"{text!r} is a span from now, one moment for everyone: --local-time needs a "
                "wall-clock time such as 2026-12-02T09:00",
                param_hint=name,
            )
        if span <= timedelta(0):
            raise click.BadParameter(
                f"{text!r} is now: leave --at out to send now", param_hint=name
            )
        return now + span, None
    forms = f"{_MOMENT_FORMS}, a span from now (90m, 2h, 7d), or now"
    moment = _iso(text, name, forms)
    if local_time:
        if moment.tzinfo is not None:
            raise click.BadParameter(
                "with --local-time, give a wall-clock time without an offset", param_hint=name
            )
        earliest = (now - timedelta(hours=12)).replace(tzinfo=None)  # UTC-12, the last to get there
        latest = (now + timedelta(hours=14)).replace(tzinfo=None)  # UTC+14, the first
        if moment <= earliest:
            raise click.BadParameter(
                f"{text} has already passed in every time zone (it is now "
                f"{earliest:%Y-%m-%d %H:%M} at UTC-12): give a later time, or leave --at out to "
                "send now",
                param_hint=name,
            )
        if moment <= latest:
            return moment, (
                f"{text} has already passed in the time zones ahead of UTC{_offset(moment, now)}"
                ": a recipient there gets the message at once"
            )
        return moment, None
    if moment.tzinfo is None:
        raise _naive_refused(text, name, ", or --local-time for that time where each recipient is")
    if moment <= now:
        raise click.BadParameter(
            f"{text} is in the past (it is now {now:%Y-%m-%dT%H:%MZ}): give a later moment or a "
            "span from now (2h), or leave --at out to send now",
            param_hint=name,
        )
    return moment, None


def _offset(wall: datetime, now: datetime) -> str:
    hours = (wall - now.replace(tzinfo=None)).total_seconds() / 3600
    whole = int(hours) if hours >= 0 else -int(-hours)
    return f"{whole:+d}"


# -- the group -------------------------------------------------------------------------------------


def _version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"notify-devino {version('notify-devino')}")
    ctx.exit()


def _root(plugins: PluginManager) -> click.Group:
    @click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
        "--log-format",
        type=click.Choice(["console", "json"]),
        help="How logs are written to stderr. Default: the configuration's, else console on a "
        "terminal and JSON otherwise.",
    )
    @click.option(
        "--log-level", type=click.Choice(LOG_LEVELS), help="Lowest log level shown (warning)."
    )
    @click.option(
        "-v", "--verbose", count=True, help="Show progress logs: -v info, -vv debug as well."
    )
    @click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_version,
        help="Show the version and exit.",
    )
    @click.pass_context
    def cli(
        ctx: click.Context,
        config_path: str | None,
        log_format: str | None,
        log_level: str | None,
        verbose: int,
    ) -> None:
        """Send notifications and follow them through configured channels (Devino SMS, ...)."""
        if log_level is None and verbose:
            log_level = "info" if verbose == 1 else "debug"
        source = ctx.get_parameter_source("config_path")
        ctx.obj = CliState(
            config_path or None,
            plugins,
            log_format,
            log_level,
            config_from_command_line=source is click.core.ParameterSource.COMMANDLINE,
        )

    return cli


def build_cli(plugins: PluginManager | None = None) -> click.Group:
    """A new ``notify-devino`` command group: the core's commands and every plugin's.

    :param plugins: the plugin manager whose plugins add commands, and which every command
        uses; None makes one that loads the installed plugins.
    :raises PluginError: a plugin adds a command whose name is taken.
    """
    if plugins is None:
        from .plugins import PluginManager

        plugins = PluginManager()
    group = _root(plugins)
    assert isinstance(group, _Group)
    for name, target in CORE_COMMANDS.items():
        if isinstance(target, tuple):
            group.add_lazy(name, *target)
        else:
            group.add_command(_load(target), name)
    plugins.register_commands(group)
    return group


def main(argv: Sequence[str] | None = None) -> None:
    """The ``notify-devino`` console script."""
    from .errors import NotifyError
    from .logconfig import configure_stdlib_logging

    configure_stdlib_logging("warning")  # until a command knows what to use
    try:
        group = build_cli()
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        group.main(args=argv, prog_name="notify-devino", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # Ctrl-C outside a command's own handling
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(EXIT_OK)


# -- send ------------------------------------------------------------------------------------------

STATUS_HEADERS = ("message id", "state", "provider state", "code", "final", "description")

_TIMEOUT = click.FloatRange(min=0, min_open=True)
_TIMEOUT_HELP = "Follow for at most SECONDS (implies --wait; default: the configuration's)."


def _exit_for_send(results: Sequence[SendResult], statuses: Sequence[MessageStatus] | None) -> int:
    from .errors import AuthenticationError
    from .types import DeliveryState, SendOutcome

    recipients = [r for result in results for r in result.recipients]
    outcomes = {r.outcome for r in recipients}
    if SendOutcome.UNKNOWN in outcomes or (statuses and any(not s.final for s in statuses)):
        return EXIT_UNKNOWN
    if any(isinstance(r.error, AuthenticationError) for r in recipients):
        return EXIT_AUTH
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


def _split(values: Sequence[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.command()
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
    "('-' reads standard input). Prints each recipient's outcome and message IDs, then a "
    "summary; JSON lines with --json.",
)
@click.option(
    "--column",
    metavar="NAME|N",
    help="With --to-file: the CSV column of the addresses, by header name or 1-based number.",
)
@click.option(
    "--encoding",
    metavar="CODEC",
    help="With --to-file: the file's text encoding (cp1251, latin-1, ...). Default: UTF-8.",
)
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--sender", help="Sender name or number (default: the channel's).")
@click.option(
    "--at",
    "send_at",
    metavar="WHEN",
    help="Send later: a span from now (90m, 2h, 7d), ISO 8601 with an offset or Z "
    "(2026-12-02T09:00+03:00), or a wall-clock time with --local-time. A past moment is refused.",
)
@click.option(
    "--local-time", is_flag=True, help="Read --at as a wall-clock time where each recipient is."
)
@click.option(
    "--validity",
    type=click.IntRange(min=1),
    metavar="MINUTES",
    help="How long the provider keeps trying.",
)
@click.option("--wait", is_flag=True, help="Follow every message to a final state.")
@click.option("--timeout", type=_TIMEOUT, metavar="SECONDS", help=_TIMEOUT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def send(
    state: CliState,
    text: str | None,
    recipients: tuple[str, ...],
    to_file: str | None,
    column: str | None,
    encoding: str | None,
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
    if encoding is not None and not to_file:
        raise click.UsageError("--encoding goes with --to-file")
    if to_file == "-" and (text is None or text == "-"):
        raise click.UsageError("with --to-file -, give the text as an argument")
    text = read_text(text)
    to = _split(recipients)
    if recipients and not to:
        raise click.BadParameter("no address given", param_hint="--to")
    if local_time and not send_at:
        raise click.UsageError("--local-time goes with --at (the wall-clock time to send at)")
    when, caution = parse_at(send_at, local_time=local_time) if send_at else (None, None)
    wait = wait or timeout is not None
    validity_span = timedelta(minutes=validity) if validity else None
    if to_file:
        if wait:
            raise click.UsageError(
                "--wait and --timeout do not go with --to-file (a streamed send keeps no list of "
                "IDs): it prints every message ID; follow them later with 'notify-devino status'"
            )
        from .cli_bulk import check_encoding, send_file

        check_encoding(encoding)
        if caution:
            warn(caution)
        code = send_file(
            state,
            text,
            to,
            to_file,
            column,
            encoding=encoding,
            channel=channel,
            as_json=as_json,
            sender=sender,
            send_at=when,
            recipient_local_time=local_time,
            validity=validity_span,
        )
        sys.exit(code)
    if caution:
        warn(caution)

    async def work(dispatcher: Dispatcher) -> tuple[SendResult, list[MessageStatus] | None]:
        result = await dispatcher.send(
            text,
            to=to,
            channel=channel,
            sender=sender,
            send_at=when,
            recipient_local_time=local_time,
            validity=validity_span,
        )
        statuses = None
        if wait and result.message_ids:
            statuses = await dispatcher.wait(
                result.message_ids, channel=result.channel, timeout=timeout
            )
        return result, statuses

    result, statuses = guard(lambda: state.run(work))
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


# -- notify ----------------------------------------------------------------------------------------


def _attempt_text(attempt: ChannelAttempt) -> str:
    reason = f" ({attempt.reason})" if attempt.reason else ""
    return f"{attempt.channel}: {attempt.outcome.value}{reason}"


@click.command()
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
    from .types import RouteOutcome

    text = read_text(text)
    to = _split(names)
    if not to:
        raise click.BadParameter("no contact or group given", param_hint="--to")

    async def work(dispatcher: Dispatcher) -> NotifyResult:
        return await dispatcher.notify(text, to=to, severity=severity, tags=tags, route=route)

    result = guard(lambda: state.run(work))
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


# -- status, inbox, balance, stats -----------------------------------------------------------------


@click.command()
@click.argument("message_ids", nargs=-1, required=True)
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--wait", is_flag=True, help="Follow every message to a final state.")
@click.option("--timeout", type=_TIMEOUT, metavar="SECONDS", help=_TIMEOUT_HELP)
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
    from .types import DeliveryState

    ids = [i.strip() for i in message_ids]
    if not all(ids):
        raise click.BadParameter("a message ID is empty", param_hint="MESSAGE_IDS")
    wait = wait or timeout is not None

    async def work(dispatcher: Dispatcher) -> list[MessageStatus]:
        if wait:
            return await dispatcher.wait(ids, channel=channel, timeout=timeout)
        return await dispatcher.status(ids, channel=channel)

    statuses = guard(lambda: state.run(work))
    if as_json:
        emit_json(statuses)
    else:
        click.echo(table(STATUS_HEADERS, _status_rows(statuses)))
    if wait and any(not s.final for s in statuses):
        sys.exit(EXIT_UNKNOWN)
    if wait and any(s.state is not DeliveryState.DELIVERED for s in statuses):
        sys.exit(EXIT_PARTIAL)


F = TypeVar("F", bound=Callable[..., Any])


def _range_options(default_since: str) -> Callable[[F], F]:
    """``--since``/``--until``, the one spelling of a period in every command."""

    def decorate(command: F) -> F:
        command = click.option(
            "--until",
            metavar="WHEN",
            help="End of the period: ISO 8601 with an offset, a date, or a span back (default: "
            "now).",
        )(command)
        return click.option(
            "--since",
            metavar="WHEN",
            default=default_since,
            show_default=True,
            help="Start of the period: ISO 8601 with an offset, a date (2026-12-01, midnight "
            "UTC), or a span back from now (90m, 2h, 7d).",
        )(command)

    return decorate


def _period(since: str, until: str | None) -> tuple[datetime, datetime | None]:
    now = datetime.now(UTC)
    start = parse_since(since, name="--since", now=now)
    end = parse_since(until, name="--until", now=now) if until else None
    if start > (end or now):
        raise click.BadParameter(
            f"the period ends before it starts ({start.isoformat()} .. {(end or now).isoformat()})",
            param_hint="--since/--until",
        )
    return start, end


@click.command()
@_range_options("1d")
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def inbox(
    state: CliState, since: str, until: str | None, channel: str | None, as_json: bool
) -> None:
    """Show messages received (replies to alerts, say)."""
    start, end = _period(since, until)
    messages = guard(lambda: state.run(lambda d: d.inbox(since=start, until=end, channel=channel)))
    if as_json:
        emit_json(messages)
    else:
        click.echo(
            table(
                ("received", "from", "to", "text"),
                [[m.received_at.isoformat(), m.sender, m.recipient, m.text] for m in messages],
            )
        )


@click.command()
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def balance(state: CliState, channel: str | None, as_json: bool) -> None:
    """Show the account balance of a channel."""
    result = guard(lambda: state.run(lambda d: d.balance(channel=channel)))
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"{result.channel}: {result.amount}{' ' + result.currency if result.currency else ''}"
        )


def _deprecated(new: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            warn(f"{param.opts[0]} is deprecated and will go: use {new}")
        return value

    return callback


@click.command()
@_range_options("7d")
@click.option("--from", "old_since", hidden=True, callback=_deprecated("--since"))
@click.option("--to", "old_until", hidden=True, callback=_deprecated("--until"))
@click.option("--channel", help="Configured channel name (default: the config's default channel).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def stats(
    state: CliState,
    since: str,
    until: str | None,
    old_since: str | None,
    old_until: str | None,
    channel: str | None,
    as_json: bool,
) -> None:
    """Show the provider's delivery statistics for a period.

    --from and --to are deprecated spellings of --since and --until.
    """
    start, end = _period(old_since or since, old_until or until)
    result = guard(lambda: state.run(lambda d: d.statistics(start, end, channel=channel)))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result.channel}: {result.start.isoformat()} .. {result.end.isoformat()}")
        rows = [[k, v] for k, v in result.counts.items()]
        if result.ratio is not None:
            rows.append(["delivery ratio", result.ratio])
        click.echo(table(("counter", "value"), rows))


# -- plugins, config -------------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def plugins(state: CliState, as_json: bool) -> None:
    """List the installed plugins, their versions and the channel types they provide."""
    infos = guard(state.plugins.plugins)
    if as_json:
        emit_json(infos)
    else:
        click.echo(
            table(
                ("plugin", "distribution", "version", "channel types"),
                [[p.name, p.distribution, p.version, ", ".join(p.channel_types)] for p in infos],
            )
        )


@click.group("config")
def config_group() -> None:
    """Work with configuration files."""


@config_group.command("check")
@click.argument("path", required=False)
@pass_state
def config_check(state: CliState, path: str | None) -> None:
    """Validate a configuration file, its secrets and every channel's settings, offline."""
    from .config import Config, find_config, load_config
    from .dispatcher import Dispatcher

    def check() -> tuple[Any, Config]:
        file = find_config(path or state.config_path)
        config = load_config(file)
        types = state.plugins.channel_types()
        Dispatcher(config, plugins=state.plugins)  # names a channel type no plugin provides
        for name, channel in config.channels.items():
            config.channel_settings(name, types[channel.type].settings_model)
        return file, config

    file, config = guard(check)
    click.echo(
        f"{file}: OK ({len(config.channels)} channel(s): "
        + ", ".join(f"{n} ({c.type})" for n, c in config.channels.items())
        + f"; default {config.default_channel})"
    )


__all__ = [
    "CORE_COMMANDS",
    "EXIT_FAILED",
    "CliState",
    "build_cli",
    "emit_json",
    "fail",
    "main",
    "parse_at",
    "parse_since",
    "setup_logging",
    "table",
    "to_jsonable",
]
