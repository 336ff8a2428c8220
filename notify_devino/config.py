"""YAML configuration: read, interpolate secrets, validate, and say exactly what is wrong.

A configuration file looks like this (``config/notify-devino.example.yaml`` is a commented one)::

    version: 1
    default_channel: sms
    channels:
      sms:
        type: devino_soap
        settings:
          login: alerts
          password: ${DEVINO_PASSWORD}        # from the environment
          # password_file: /run/secrets/devino  # or from a file
    contacts:                                 # people, with an address per channel name
      alice: {sms: "+79031234567", email: alice@example.com}
    groups:
      oncall: [alice]
    routes:                                   # severity/tags -> channels, tried in order
      critical: [sms, email]

Every error is a :class:`~notify_devino.errors.ConfigError` that names the file, the line, the
YAML path of the offending value and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .alertmanager.matchers import MatcherError, parse_matcher_lines
from .alertmanager.settings import AlertmanagerSettings
from .errors import ConfigError
from .service.settings import ServiceSettings

CONFIG_ENV_VAR = "NOTIFY_DEVINO_CONFIG"
"""Names the configuration file when ``--config`` is not given."""

SEARCH_PATHS = (
    Path("notify-devino.yaml"),
    Path("config/notify-devino.yaml"),
    Path("~/.config/notify-devino/config.yaml"),
    Path("/etc/notify-devino/config.yaml"),
)
"""Where the CLI looks for a configuration file, in order, after ``--config`` and the env var."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_CONTACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]


class ChannelConfig(BaseModel):
    """One configured channel: which plugin type serves it and that plugin's own settings."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="a channel type that an installed plugin registers")
    settings: dict[str, Any] = Field(default_factory=dict)


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["console", "json"] | None = None
    """console for people, json for machines; None picks console on a terminal, json otherwise."""
    level: Literal["debug", "info", "warning", "error"] = "info"


class StatusConfig(BaseModel):
    """How the dispatcher follows messages to a final state."""

    model_config = ConfigDict(extra="forbid")

    poll_interval_seconds: float = Field(default=2.0, gt=0)
    wait_timeout_seconds: float = Field(default=300.0, gt=0)


# -- contacts, groups and routes ------------------------------------------------------------------


def _number_as_text(value: object) -> object:
    """YAML reads an unquoted +79031234567 as a number; an address is text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Address = Annotated[str, BeforeValidator(_number_as_text), Field(min_length=1)]
"""An address in a channel's own form: a phone number, an email address, a webhook target."""


class RouteMatch(BaseModel):
    """Which notifications a route takes. Every condition given must hold; none given matches
    every notification."""

    model_config = ConfigDict(extra="forbid")

    severity: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    """The notification's severity is one of these (a single string is one)."""
    tags: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    """The notification carries every one of these tags."""

    def matches(self, severity: str | None, tags: Iterable[str]) -> bool:
        if self.severity and severity not in self.severity:
            return False
        return set(self.tags) <= set(tags)


class RouteConfig(BaseModel):
    """An ordered list of channels a matching notification is tried on, one after the other.

    ``critical: [sms, email]`` is short for ``critical: {channels: [sms, email]}``. A route with
    no ``match:`` takes the notifications whose severity is the route's name; ``match: {}``
    takes every notification.
    """

    model_config = ConfigDict(extra="forbid")

    match: RouteMatch | None = None
    channels: list[str] = Field(min_length=1)
    follow: bool = True
    """Follow a message a channel took through the channel's status, and try the next channel
    when it fails or is not delivered in time. With false, a taken message ends the chain and
    only a failed send moves on. The last channel, and a channel that reports no status, are
    never followed: there is nothing to fall back to, or nothing to read."""
    fallback_after_seconds: float | None = Field(default=None, gt=0)
    """How long a followed message has to be delivered; default ``status.wait_timeout_seconds``."""
    matchers: list[str] = Field(default_factory=list)
    """Alertmanager label matchers (``severity="critical"``, ``team=~"db|infra"``): the route takes
    an alert group whose labels match them all. A route with matchers and no ``match:`` takes
    alerts only."""

    @field_validator("matchers")
    @classmethod
    def _check_matchers(cls, value: list[str]) -> list[str]:
        try:
            parse_matcher_lines(value)
        except MatcherError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        return {"channels": value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _timed_only_when_followed(self) -> RouteConfig:
        if not self.follow and self.fallback_after_seconds is not None:
            raise ValueError("fallback_after_seconds needs follow: true")
        return self


class Config(BaseModel):
    """The validated configuration of a dispatcher."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    channels: dict[str, ChannelConfig] = Field(min_length=1)
    default_channel: str | None = None
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    contacts: dict[str, dict[str, Address]] = Field(default_factory=dict)
    """People by name, each with an address per configured channel name."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Named lists of contacts and other groups."""
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    """Routes by name, in the order they are tried: the first that matches takes the
    notification."""
    service: ServiceSettings | None = None
    """``notify-devino serve``'s section (see :mod:`notify_devino.service.settings`)."""
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    """The Alertmanager receiver of ``serve``: recipients, templates, acks, silences."""

    _doc: YamlDocument = PrivateAttr(default_factory=lambda: YamlDocument(None))
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("channels")
    @classmethod
    def _check_channel_names(cls, channels: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        for name in channels:
            if not _CHANNEL_NAME.fullmatch(name):
                raise ValueError(
                    f"channel name {name!r} is not valid: "
                    "use lower-case letters, digits, '_' or '-'"
                )
        return channels

    @field_validator("default_channel")
    @classmethod
    def _check_default(cls, value: str | None, info: ValidationInfo) -> str | None:
        channels = info.data.get("channels")
        if value is not None and channels is not None and value not in channels:
            raise ValueError(
                f"default_channel {value!r} is not one of the configured channels "
                f"({', '.join(sorted(channels))})"
            )
        return value

    @model_validator(mode="after")
    def _single_channel_is_the_default(self) -> Config:
        if self.default_channel is None and len(self.channels) == 1:
            self.default_channel = next(iter(self.channels))
        return self

    @model_validator(mode="after")
    def _check_routing(self, info: ValidationInfo) -> Config:
        """Contacts, groups and routes may only name what exists. Raised as a ConfigError that
        names the YAML line when the YAML document is in the validation context."""
        problems = list(self._routing_problems())
        for name, route in self.routes.items():
            if route.match is None and not route.matchers:
                route.match = RouteMatch(severity=[name])
        if problems:
            doc = (info.context or {}).get("yaml")
            if not isinstance(doc, YamlDocument):
                doc = YamlDocument(None)
            raise doc.problems_error(problems)
        return self

    def _routing_problems(self) -> Iterator[tuple[Path_, str]]:
        channels = ", ".join(sorted(self.channels))
        for name, addresses in self.contacts.items():
            if not _CONTACT_NAME.fullmatch(name):
                yield ("contacts", name), f"contact name {name!r} is not valid"
            if not addresses:
                yield ("contacts", name), "a contact needs an address for at least one channel"
            for channel in addresses:
                if channel not in self.channels:
                    yield (
                        ("contacts", name, channel),
                        f"{channel!r} is not a configured channel (configured: {channels})",
                    )
        for name, members in self.groups.items():
            if not _CONTACT_NAME.fullmatch(name):
                yield ("groups", name), f"group name {name!r} is not valid"
            if name in self.contacts:
                yield ("groups", name), f"{name!r} is both a contact and a group"
            if not members:
                yield ("groups", name), "a group needs at least one member"
            for index, member in enumerate(members):
                if member not in self.contacts and member not in self.groups:
                    yield (
                        ("groups", name, index),
                        f"{member!r} is neither a contact nor a group",
                    )
        for name in self.groups:
            cycle = self._group_cycle(name, ())
            if cycle and name == min(cycle):  # each cycle once, at its first name
                yield ("groups", name), "groups include each other: " + " -> ".join(cycle)
        for name, route in self.routes.items():
            seen: set[str] = set()
            for index, channel in enumerate(route.channels):
                if channel not in self.channels:
                    yield (
                        ("routes", name, "channels", index),
                        f"{channel!r} is not a configured channel (configured: {channels})",
                    )
                elif channel in seen:
                    yield (("routes", name, "channels", index), f"{channel!r} is listed twice")
                seen.add(channel)

    def _group_cycle(self, name: str, path: tuple[str, ...]) -> tuple[str, ...]:
        if name in path:
            return (*path[path.index(name) :], name) if path[0] == name else ()
        for member in self.groups.get(name, ()):
            cycle = self._group_cycle(member, (*path, name))
            if cycle:
                return cycle
        return ()

    @property
    def source(self) -> str | None:
        """The file this configuration was read from, if any."""
        return self._doc.source

    def line_of(self, path: Path_) -> int | None:
        """The line of the YAML value at ``path`` (or of its nearest parent), if known."""
        return self._doc.line_of(path)

    def channel_settings(self, name: str, model: type[M]) -> M:
        """Validate channel ``name``'s settings against its plugin's model.

        A ``<field>_file`` key supplies ``<field>`` from a file (for secrets), when the model has
        a ``<field>`` and no ``<field>_file`` of its own.
        """
        raw = dict(self.channels[name].settings)
        base: Path_ = ("channels", name, "settings")
        for key in list(raw):
            field = key.removesuffix("_file")
            if (
                key.endswith("_file")
                and field in model.model_fields
                and key not in model.model_fields
            ):
                if field in raw:
                    raise self._error(f"give {field} or {key}, not both", (*base, key))
                raw[field] = self._read_secret_file(raw.pop(key), (*base, key))
        return self._doc.validate(model, raw, base)

    def _read_secret_file(self, value: object, path: Path_) -> str:
        if not isinstance(value, str):
            raise self._error("expected the path of a file holding the secret", path)
        file = Path(value).expanduser()
        if not file.is_absolute():
            file = self._base_dir / file
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise self._error(
                f"cannot read secret file {str(file)!r}: {exc.strerror}", path
            ) from None

    def _error(self, message: str, path: Path_) -> ConfigError:
        return self._doc.error(message, path)


def _validation_error(
    exc: ValidationError, base: Path_, line_of: Callable[[Path_], int | None], source: str | None
) -> ConfigError:
    problems = []
    for err in exc.errors(include_url=False):
        path = (*base, *err["loc"])
        problems.append((path, _describe(err)))
    return _problems_error(problems, line_of, source)


def _problems_error(
    problems: Sequence[tuple[Path_, str]],
    line_of: Callable[[Path_], int | None],
    source: str | None,
) -> ConfigError:
    """One ConfigError for one or more (path, what is wrong) problems, each with its line."""
    located = [(path, line_of(path), text) for path, text in problems]
    path, line, text = located[0]
    if len(located) == 1:
        return ConfigError(text, path=_dotted(path) or None, line=line, source=source)
    listing = "\n  ".join(
        (f"line {ln}: " if ln is not None else "") + f"{_dotted(p) or '(top level)'}: {t}"
        for p, ln, t in located
    )
    error = ConfigError(f"{len(located)} problems:\n  {listing}", source=source)
    error.path, error.line = _dotted(path), line
    return error


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected")
        return f"got {err.get('input')!r}, expected {expected}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if (
        "input" in err
        and kind not in ("value_error", "assertion_error")
        and not isinstance(err["input"], dict | list)
    ):
        return f"{msg} (got {err['input']!r})"
    return msg


def _line_map(node: yaml.Node, path: Path_ = ()) -> dict[Path_, int]:
    lines: dict[Path_, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines.update(_line_map(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_map(item, (*path, index)))
    return lines


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document that remembers where each value stood, so that any error about a
    value can name its file, line and path. Plugins use it for their own YAML files too."""

    data: Any
    source: str | None = None
    lines: Mapping[Path_, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, source: str | None = None) -> YamlDocument:
        """Parse YAML text with ``safe_load``; malformed YAML is a :class:`ConfigError`."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            raise ConfigError(
                f"malformed YAML: {problem}"
                + (f" (column {mark.column + 1})" if mark is not None else ""),
                line=mark.line + 1 if mark is not None else None,
                source=source,
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"malformed YAML: {exc}", source=source) from None
        return cls(data, source, _line_map(node) if node is not None else {})

    @classmethod
    def read(
        cls, path: str | os.PathLike[str], *, what: str = "configuration file"
    ) -> YamlDocument:
        """Read and parse a YAML file; a missing or unreadable file is a :class:`ConfigError`."""
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{what} {str(file)!r} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {str(file)!r}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what} {str(file)!r} is not UTF-8 text: {exc}") from None
        return cls.parse(text, source=str(file))

    def line_of(self, path: Path_) -> int | None:
        """The line of the value at ``path``, or of its nearest parent that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, message: str, path: Path_ = ()) -> ConfigError:
        return ConfigError(
            message, path=_dotted(path) or None, line=self.line_of(path), source=self.source
        )

    def mapping(self, expected: str) -> dict[str, Any]:
        """The document as a mapping; anything else is an error saying what was ``expected``."""
        if not isinstance(self.data, dict):
            got = "an empty file" if self.data is None else type(self.data).__name__
            raise ConfigError(
                f"expected a mapping at the top level ({expected}), got {got}",
                source=self.source,
                line=1,
            )
        return self.data

    def validate(self, model: type[M], data: Any = None, base: Path_ = ()) -> M:
        """Validate ``data`` (by default the whole document) against a pydantic model; every
        problem is reported with its YAML path and line. Validators find the document in the
        validation context as ``info.context["yaml"]``."""
        try:
            return model.model_validate(self.data if data is None else data, context={"yaml": self})
        except ValidationError as exc:
            raise _validation_error(exc, base, self.line_of, self.source) from None

    def problems_error(self, problems: Sequence[tuple[Path_, str]]) -> ConfigError:
        """One ConfigError for several (path, what is wrong) problems, each with its line."""
        return _problems_error(problems, self.line_of, self.source)


def _interpolate(value: Any, path: Path_, env: Mapping[str, str], doc: YamlDocument) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise doc.error(
                f"environment variable {name} is not set (referenced as ${{{name}}})", path
            )

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, doc) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, doc) for i, v in enumerate(value)]
    return value


def parse_config(
    text: str,
    *,
    source: str | None = None,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Parse and validate configuration from YAML text.

    :param source: the file name to put in errors.
    :param env: where ``${VAR}`` references are looked up; defaults to ``os.environ``.
        ``${VAR:-default}`` gives a default.
    :param base_dir: what relative ``*_file`` paths are relative to (the file's folder).
    """
    return _config_from(YamlDocument.parse(text, source=source), env, base_dir)


def _config_from(doc: YamlDocument, env: Mapping[str, str] | None, base_dir: Path | None) -> Config:
    data = doc.mapping("version: 1, channels: ...")
    data = _interpolate(data, (), os.environ if env is None else env, doc)
    config = doc.validate(Config, data)
    config._doc = doc
    config._base_dir = base_dir or Path.cwd()
    return config


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file; see :func:`parse_config`."""
    doc = YamlDocument.read(path)
    return _config_from(doc, env, Path(path).expanduser().resolve().parent)


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file to use: ``explicit``, else ``$NOTIFY_DEVINO_CONFIG``, else the
    first of :data:`SEARCH_PATHS` that exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR])
    for candidate in SEARCH_PATHS:
        path = candidate.expanduser()
        if path.is_file():
            return path
    raise ConfigError(
        "no configuration file found: pass --config, set "
        f"{CONFIG_ENV_VAR}, or create one of " + ", ".join(str(p) for p in SEARCH_PATHS)
    )
