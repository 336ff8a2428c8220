"""Logging setup for entry points (the CLI, a service's main), never for the library itself.

The library only calls ``structlog.get_logger(__name__)``; an application that configures
structlog itself keeps full control. :func:`configure_logging` is what the CLI uses: JSON lines
for machines or console rendering for people, and always the :func:`redact_secrets` processor,
which an application can put in its own chain too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

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
_longest_first: tuple[str, ...] = ()
"""The registered secrets, longest first: a secret that contains another is masked whole."""
_MAX_SECRET_VALUES = 1024


def register_secret(value: str) -> None:
    """Make :func:`redact_secrets` mask ``value`` wherever it appears in a log line.

    Channels call this for passwords and session IDs as they learn them. Only the newest
    1024 values are kept; values shorter than 6 characters are ignored (too likely to be common).
    """
    if len(value) < 6:
        return
    global _longest_first
    _secret_values[value] = None
    while len(_secret_values) > _MAX_SECRET_VALUES:
        del _secret_values[next(iter(_secret_values))]
    _longest_first = tuple(sorted(_secret_values, key=len, reverse=True))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _longest_first:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_KEYS else _scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: masks secret keys and every registered secret value."""
    for key, value in list(event_dict.items()):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        elif _secret_values or isinstance(value, dict | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def configure_logging(
    format: Literal["console", "json"] | None = None,
    level: str = "info",
    stream: TextIO | None = None,
    *,
    cache: bool = True,
) -> None:
    """Configure structlog (and the standard library's logging, for aiohttp's own messages).

    :param format: ``json`` for one JSON object per line, ``console`` for people; None picks
        console when ``stream`` is a terminal and JSON otherwise.
    :param level: the lowest level shown.
    :param stream: where logs go; stderr by default, so stdout stays for the command's output.
    :param cache: let each logger keep this configuration once it has logged (structlog's
        ``cache_logger_on_first_use``: a logger otherwise rebuilds itself on every event, ~10 us).
        Call it once, at start. The CLI passes False: it configures again once it has read the
        configuration file, and a test process runs many commands.
    """
    stream = stream or sys.stderr
    if format is None:
        format = "console" if stream.isatty() else "json"
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if format == "json":
        processors += [structlog.processors.dict_tracebacks]
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream, force=True)
