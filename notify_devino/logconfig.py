"""Logging: silent until the host turns it on, and never a secret in a line.

The library logs through :func:`get_logger` and never configures anything. Until its host
configures logging, nothing is printed:

- A host that configures structlog (``structlog.configure``, or :func:`configure_logging`,
  which the CLI uses) gets the library's events through its own structlog chain; put
  :func:`redact_secrets` in it, before the renderer.
- Otherwise the events go to the standard library's :mod:`logging`, under the loggers'
  module names (``notify_devino.dispatcher``, ``notify_devino_soap.client``), rendered as
  ``event key=value ...`` with secrets masked. A :class:`logging.NullHandler` on each
  top-level package keeps them silent until the host adds a handler
  (``logging.basicConfig(level=logging.INFO)``).

This is structlog's advice for libraries: the application decides, and a library that wants
structured events routes them through structlog only when the application uses it.

:func:`register_secret` names the values (passwords, session IDs) that :func:`redact_secrets`
and :func:`redact` mask wherever they appear: in log events, rendered tracebacks and error texts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO, TypeVar

E = TypeVar("E", bound=BaseException)

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "session_id",
        "sessionid",
        "session_token",
        "api_key",
        "authorization",
    }
)
"""Event keys whose values never reach a log line, whatever they hold (compared lower-case)."""

_secret_values: dict[str, None] = {}
_MAX_SECRET_VALUES = 1024
_pattern: re.Pattern[str] | None = None
_pattern_stale = False
_secrets_lock = threading.Lock()  # a sync facade's threads register and log at once


def register_secret(value: str) -> None:
    """Make :func:`redact_secrets` and :func:`redact` mask ``value`` wherever it appears.

    Channels call this for passwords and session IDs as they learn them; the configuration
    does for every secret it reads. Only the newest 1024 values are kept; values shorter than
    6 characters are ignored (too likely to be common).
    """
    global _pattern_stale
    if not isinstance(value, str) or len(value) < 6 or value in _secret_values:
        return
    with _secrets_lock:
        _secret_values[value] = None
        while len(_secret_values) > _MAX_SECRET_VALUES:
            del _secret_values[next(iter(_secret_values))]
        _pattern_stale = True


def _current_pattern() -> re.Pattern[str] | None:
    """One pattern for every registered secret, longest first (a secret that contains another
    is masked whole), with the forms JSON and repr give it (escaped quotes, ``\\uXXXX``)."""
    global _pattern, _pattern_stale
    if _pattern_stale:
        with _secrets_lock:
            if _pattern_stale:
                forms: set[str] = set()
                for secret in _secret_values:
                    forms.add(secret)
                    forms.add(json.dumps(secret)[1:-1])
                    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
                    forms.add(repr(secret)[1:-1])
                ordered = sorted(forms, key=len, reverse=True)
                _pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                _pattern_stale = False
    return _pattern


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``: for error texts shown
    to people or written as JSON."""
    pattern = _current_pattern()
    if pattern is None or not isinstance(text, str):
        return text
    return pattern.sub(REDACTED, text)


def redact_error(error: E) -> E:
    """Mask every registered secret in ``error``'s message and text attributes (a provider's
    fault text, the raw reply), and in those of its causes, in place; returns ``error``.

    For the place where a library's errors leave it: a fault that echoes a session ID then
    shows ``[redacted]`` wherever the error is printed, logged or serialised.
    """
    if _current_pattern() is None:
        return error
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        for name, value in list(getattr(current, "__dict__", {}).items()):
            if isinstance(value, str):
                setattr(current, name, redact(value))
        current = current.__cause__ or current.__context__
    return error


def _scrub(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value) if pattern is not None else value
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_KEYS else _scrub(v, pattern)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, pattern) for v in value)
    return value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: masks secret keys and every registered secret value, in nested
    dicts and lists too (a traceback rendered by ``dict_tracebacks`` or ``format_exc_info``).

    Put it after the processors that render exceptions and before the renderer.
    """
    pattern = _current_pattern()
    for key, value in list(event_dict.items()):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        elif pattern is not None or isinstance(value, dict | list | tuple):
            event_dict[key] = _scrub(value, pattern)
    return event_dict


class _Redacted:
    """A renderer whose output is passed through :func:`redact`: the last guard, for a secret
    inside a value :func:`redact_secrets` cannot see into (an object's repr)."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        rendered = self._renderer(logger, method_name, event_dict)
        return redact(rendered) if isinstance(rendered, str) else rendered


# -- the library's loggers ------------------------------------------------------------------------

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}
_quieted: set[str] = set()


class LibraryLogger:
    """What :func:`get_logger` returns: ``log.info("event_name", key=value)``, like a
    structlog logger, going to structlog once the host has configured it and to the standard
    library's :mod:`logging` before (see the module's docstring)."""

    __slots__ = ("_name", "_proxy", "_stdlib")

    def __init__(self, name: str) -> None:
        self._name = name
        self._proxy: Any = None  # structlog's logger, made when first needed
        self._stdlib = logging.getLogger(name)
        package = name.partition(".")[0]
        if package not in _quieted:  # a library's loggers stay silent until the host says
            _quieted.add(package)
            logging.getLogger(package).addHandler(logging.NullHandler())

    def _log(self, method: str, event: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        # structlog is imported only by a host that uses it (importing it costs a tenth of a
        # second where rich is installed, which `notify-devino --help` need not pay): a
        # structlog nobody imported is one nobody configured.
        imported = sys.modules.get("structlog")
        if imported is not None and imported.is_configured():
            if self._proxy is None:
                self._proxy = imported.get_logger(self._name)
            getattr(self._proxy, method)(event, *args, **kw)
            return
        level = _LEVELS[method]
        if not self._stdlib.isEnabledFor(level):
            return
        exc_info = kw.pop("exc_info", method == "exception")
        if args:
            event = event % args
        fields = redact_secrets(None, method, {"event": event, **kw})
        text = " ".join([str(fields.pop("event")), *(f"{k}={v!r}" for k, v in fields.items())])
        error = _exception_of(exc_info)
        if error is not None:
            text += "\n" + "".join(traceback.format_exception(error)).rstrip("\n")
        self._stdlib.log(level, "%s", redact(text), stacklevel=3)  # the caller's line

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("debug", event, args, kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("info", event, args, kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("warning", event, args, kw)

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("error", event, args, kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("exception", event, args, kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        self._log("critical", event, args, kw)


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 else None
    return sys.exc_info()[1] if exc_info else None


def get_logger(name: str) -> LibraryLogger:
    """The logger of a module of the library or of a plugin: ``log = get_logger(__name__)``.

    Silent until the host configures logging; see the module's docstring.
    """
    return LibraryLogger(name)


# -- the host's side ------------------------------------------------------------------------------


def configure_logging(
    format: Literal["console", "json"] | None = None,
    level: str = "info",
    stream: TextIO | None = None,
    *,
    cache: bool = True,
) -> None:
    """Configure structlog (and the standard library's logging, for aiohttp's own messages):
    for entry points (the CLI, a service's main), never for the library itself.

    Tracebacks are rendered without their frames' local variables, and before
    :func:`redact_secrets` runs, so a secret in an exception's text is masked too; the
    rendered line is masked once more.

    :param format: ``json`` for one JSON object per line, ``console`` for people; None picks
        console when ``stream`` is a terminal and JSON otherwise.
    :param level: the lowest level shown.
    :param stream: where logs go; stderr by default, so stdout stays for the command's output.
    :param cache: let each logger keep this configuration once it has logged (structlog's
        ``cache_logger_on_first_use``: a logger otherwise rebuilds itself on every event).
        Call it once, at start. The CLI passes False: it configures again once it has read the
        configuration file, and a test process runs many commands.
    """
    import structlog

    stream = stream or sys.stderr
    if format is None:
        format = "console" if stream.isatty() else "json"
    numeric = logging.getLevelNamesMapping()[level.upper()]
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if format == "json":
        processors += [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            redact_secrets,
            _Redacted(structlog.processors.JSONRenderer()),
        ]
    else:
        processors += [
            structlog.processors.format_exc_info,  # plain text, no locals
            redact_secrets,
            _Redacted(
                structlog.dev.ConsoleRenderer(
                    colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
                )
            ),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=cache,
    )
    configure_stdlib_logging(logging.getLevelName(max(numeric, logging.WARNING)), stream)


def configure_stdlib_logging(level: str = "warning", stream: TextIO | None = None) -> None:
    """Send the standard library's records (aiohttp's, and the library's own while structlog
    is not configured) to ``stream`` as plain lines, secrets masked.

    :func:`configure_logging` calls it; the CLI calls it alone at its start, until a command
    knows which format to use: it costs no import (structlog's, with rich beside it, costs a
    tenth of a second, which ``notify-devino --help`` need not pay).
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=numeric, stream=stream or sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_RedactingFormatter(logging.BASIC_FORMAT))


class _RedactingFormatter(logging.Formatter):
    """The standard library's records (aiohttp's), tracebacks included, with secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
