"""What a plugin's commands may use of the ``notify-devino`` command line.

A plugin adds commands with the ``notify_register_commands`` hook; they get this module's
:class:`CliState` (``@pass_state``, or ``ctx.find_object(CliState)``), print with
:func:`table` and :func:`emit_json`, end with :func:`fail` and the exit codes below, and run
their work with :meth:`CliState.run` (a started dispatcher) or :func:`guard` (errors mapped to
exit codes). Nothing else of the CLI's modules is promised to plugins.

The module imports only click and the standard library, so that loading a plugin's commands
costs nothing at start-up (``notify-devino --help``): the dispatcher, the configuration and
aiohttp are imported when a command runs.

Exit codes, the same for every command (:data:`EXIT_CODES`):

===  ===========================================================================================
0    done: every recipient accepted, every followed message delivered
1    the operation failed: a provider fault, the network, a plugin; nothing known to be sent
2    bad usage, bad input or bad configuration, found before any request
3    some recipients failed, or some followed messages ended undelivered
4    the outcome of some send is unknown, or ``--wait`` ended before every message was final
5    the provider refused the credentials (login or password), whichever command asked
130  interrupted (Ctrl-C or SIGTERM); what was sent before is printed and counted
===  ===========================================================================================
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from .config import Config
    from .dispatcher import Dispatcher
    from .plugins import PluginManager

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_UNKNOWN = 4
EXIT_AUTH = 5
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done: every recipient accepted, every followed message delivered",
    EXIT_FAILED: "the operation failed (provider fault, network, plugin); nothing known sent",
    EXIT_USAGE: "bad usage, bad input or bad configuration, found before any request",
    EXIT_PARTIAL: "some recipients failed, or some followed messages ended undelivered",
    EXIT_UNKNOWN: "some outcome is unknown, or --wait ended before every message was final",
    EXIT_AUTH: "the provider refused the credentials (login or password)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); what was sent before is reported",
}
"""Exit code -> what it means; the README's table is this one."""

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass
class CliState:
    """What the top-level group hands every command, a plugin's too (``ctx.obj``).

    :ivar config_path: ``--config`` (or ``$NOTIFY_DEVINO_CONFIG``); None searches the defaults.
    :ivar config_from_command_line: True when ``--config`` was typed, not taken from the
        environment (the demo uses only a typed one).
    :ivar plugins: the plugin manager the command line was built with.
    :ivar log_format: ``--log-format``; None: the configuration's, else console on a terminal
        and JSON otherwise.
    :ivar log_level: ``--log-level``, or ``-v`` (info) / ``-vv`` (debug); None: warnings.
    """

    config_path: str | None
    plugins: PluginManager
    log_format: str | None = None
    log_level: str | None = None
    config_from_command_line: bool = False

    def load_config(self) -> Config:
        """The configuration ``--config`` names, or the first found in the default places.

        :raises ConfigError: none found, or it is invalid (exit 2 through :func:`guard`).
        """
        from .config import find_config, load_config

        return load_config(find_config(self.config_path))

    def setup_logging(
        self, config: Config | None = None, *, config_level: bool = False, final: bool = False
    ) -> None:
        """Configure logging to stderr.

        The format is ``--log-format``, else the configuration's ``logging.format``, else
        console on a terminal and JSON otherwise. The level is ``--log-level`` or ``-v``
        (info) / ``-vv`` (debug), else warnings only: a command at the prompt prints its result,
        not its progress. A long-running command (a service) passes ``config_level=True`` to
        take the configuration's ``logging.level`` instead of warnings, and ``final=True``
        when this is the process's last configuration: each logger then keeps it once it has
        logged, instead of rebuilding itself on every event (structlog's
        ``cache_logger_on_first_use``; an event filtered out by its level otherwise costs
        5 µs, once per request for the access log).
        """
        from .logconfig import configure_logging

        fmt = self.log_format or (config.logging.format if config is not None else None)
        level = self.log_level
        if level is None and config_level and config is not None:
            level = config.logging.level
        configure_logging(fmt, level or "warning", cache=final)  # type: ignore[arg-type]

    def run(self, work: Callable[[Dispatcher], Awaitable[T]]) -> T:
        """Load the configuration, set up logging, and run ``work`` inside a started
        dispatcher, in a fresh event loop."""
        import asyncio

        from .dispatcher import Dispatcher

        config = self.load_config()
        self.setup_logging(config)

        async def main() -> T:
            async with Dispatcher(config, plugins=self.plugins) as dispatcher:
                return await work(dispatcher)

        return asyncio.run(main())


def setup_logging(
    state: CliState,
    config: Config | None = None,
    *,
    config_level: bool = False,
    final: bool = False,
) -> None:
    """:meth:`CliState.setup_logging` (the spelling commands written before this module used)."""
    state.setup_logging(config, config_level=config_level, final=final)


pass_state = click.make_pass_decorator(CliState)
"""Decorate a command to receive the :class:`CliState` as its first argument."""


def get_state(ctx: click.Context | None = None) -> CliState:
    """The :class:`CliState` of the current invocation."""
    state = (ctx or click.get_current_context()).find_object(CliState)
    if state is None:
        raise RuntimeError("no notify-devino CliState: run the command through build_cli()")
    return state


def run(work: Callable[[Dispatcher], Awaitable[T]]) -> T:
    """:meth:`CliState.run` of the current invocation, with errors mapped to exit codes."""
    state = get_state()
    return guard(lambda: state.run(work))


# -- output: every text a person or a program reads is masked of registered secrets -------------


def redact(text: str) -> str:
    """``text`` with every secret the channels registered (passwords, session IDs) masked."""
    from .logconfig import redact as mask

    return mask(text)


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


def json_line(value: Any) -> str:
    """``value`` as one line of JSON (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(value), ensure_ascii=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    click.echo(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned text table, headers in capitals."""
    cells = [[("" if c is None else redact(str(c))) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(out)


def warn(message: str) -> None:
    """A ``warning:`` line on stderr, for the person at the prompt."""
    click.echo(f"warning: {redact(message)}", err=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error that ended a command (see the module docstring)."""
    from .errors import (
        AuthenticationError,
        ConfigError,
        InvalidInputError,
        NotifyError,
        UnsupportedOperationError,
    )

    if isinstance(error, AuthenticationError):
        return EXIT_AUTH
    if isinstance(error, ConfigError | InvalidInputError | UnsupportedOperationError):
        return EXIT_USAGE
    if isinstance(error, NotifyError):
        return EXIT_FAILED
    if isinstance(error, ValueError):
        return EXIT_USAGE
    return EXIT_FAILED


def guard(call: Callable[[], T]) -> T:
    """Run a command's work; a notify-devino error (or a ValueError of bad input) becomes an
    ``error:`` line and its exit code (:func:`exit_code_for`)."""
    from .errors import ConfigError, InvalidInputError, NotifyError

    try:
        return call()
    except (ConfigError, InvalidInputError) as exc:
        fail(str(exc), exit_code_for(exc))
    except NotifyError as exc:
        fail(f"{exc} ({type(exc).__name__})", exit_code_for(exc))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def read_text(text: str | None, *, stdin_taken: bool = False, allow_blank: bool = False) -> str:
    """The message text of a command: ``text``, or standard input when it is None or ``-``.

    :raises click.UsageError: no text at all, or (unless ``allow_blank``) one that is empty or
        only whitespace.
    """
    if text is None or text == "-":
        if stdin_taken:
            raise click.UsageError("standard input is taken by the recipients: give the text")
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("give the text as an argument or on standard input")
        text = sys.stdin.read().rstrip("\n")
    if not allow_blank and not text.strip():
        raise click.UsageError("the text is empty or only whitespace: nothing to send")
    return text


__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_UNKNOWN",
    "EXIT_USAGE",
    "LOG_LEVELS",
    "CliState",
    "emit_json",
    "exit_code_for",
    "fail",
    "get_state",
    "guard",
    "json_line",
    "pass_state",
    "read_text",
    "redact",
    "run",
    "setup_logging",
    "table",
    "to_jsonable",
    "warn",
]
