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

import contextlib
import gc
import os
import re
import stat
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
    SecretBytes,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .alertmanager.matchers import MatcherError, parse_matcher_lines
from .alertmanager.settings import AlertmanagerSettings
from .errors import ConfigError
from .logconfig import SECRET_KEYS, register_secret
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

MAX_YAML_BYTES = 4 * 1024 * 1024
"""The largest YAML file (or text) read: 4 MiB holds over 100,000 contacts."""
MAX_SECRET_BYTES = 64 * 1024
"""The largest secret file read (``password_file:`` and the like)."""
MAX_DEPTH = 64
"""How deeply YAML collections may nest."""
MAX_ALIAS_VALUES = 100_000
"""How many values YAML aliases may add to a document, beyond those it spells out."""
MAX_INT_DIGITS = 100
"""The longest integer a YAML file may spell out (Python refuses 4,300 digits, slowly)."""

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]

_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "api_key", "apikey")


def is_secret_key(key: object) -> bool:
    """Whether a setting of this name holds a secret (``password``, ``smtp_password``,
    ``secret``, ``token``, ``authorization``, ...), compared lower-case."""
    name = str(key).lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _hidden(value: Any) -> Any:
    """``value`` with the value of every secret-named key wrapped in a :class:`SecretStr`, so
    that no repr, str or dump shows it; every such value is also registered for redaction."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (
                is_secret_key(key)
                and isinstance(item, str | int | float | SecretStr)
                and not isinstance(item, bool)
            ):
                secret = item if isinstance(item, SecretStr) else SecretStr(str(item))
                register_secret(secret.get_secret_value())
                out[key] = secret
            else:
                out[key] = _hidden(item)
        return out
    if isinstance(value, list):
        return [_hidden(item) for item in value]
    return value


def _revealed(value: Any) -> Any:
    """The inverse of :func:`_hidden`: what a plugin's own settings model validates."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    return value


def _register_secrets(value: Any) -> None:
    """Register every secret a validated model holds (its ``SecretStr`` and ``SecretBytes``)."""
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, SecretBytes):
        register_secret(value.get_secret_value().decode("utf-8", "replace"))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _register_secrets(getattr(value, name, None))
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _register_secrets(item)


class ChannelConfig(BaseModel):
    """One configured channel: which plugin type serves it and that plugin's own settings.

    Settings named like secrets (``password``, ``secret``, ``token``, ...) are held as
    :class:`~pydantic.SecretStr`, so a repr, str or dump of the configuration never shows them;
    :meth:`Config.channel_settings` gives the plugin's model the plain values.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="a channel type that an installed plugin registers")
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("settings")
    @classmethod
    def _hide_secrets(cls, settings: dict[str, Any]) -> dict[str, Any]:
        hidden: dict[str, Any] = _hidden(settings)
        return hidden


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
        stored = self.channels[name].settings
        raw = _revealed(stored)
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
                register_secret(raw[field])
        settings = self._doc.validate(model, raw, base)
        _register_secrets(settings)
        for field in type(settings).model_fields:  # what the plugin calls a secret, hide here too
            value = getattr(settings, field, None)
            if isinstance(value, SecretStr) and isinstance(stored.get(field), str | int | float):
                stored[field] = SecretStr(str(stored[field]))
        return settings

    def _read_secret_file(self, value: object, path: Path_) -> str:
        """A secret from a regular file of at most :data:`MAX_SECRET_BYTES`, UTF-8, without its
        trailing line breaks. Opened without blocking, so a FIFO with no writer cannot hang it."""
        if not isinstance(value, str):
            raise self._error("expected the path of a file holding the secret", path)
        file = Path(value).expanduser()
        if not file.is_absolute():
            file = self._base_dir / file
        what = f"secret file {str(file)!r}"
        try:
            data = _read_regular_file(file, MAX_SECRET_BYTES)
        except _FileProblem as exc:
            raise self._error(f"{what} {exc}; expected {_SECRET_EXPECTED}", path) from None
        except OSError as exc:
            raise self._error(f"cannot read {what}: {exc.strerror or exc}", path) from None
        try:
            secret = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise self._error(
                f"{what} is not UTF-8 text; expected the secret as UTF-8 text", path
            ) from None
        if not secret:
            raise self._error(f"{what} is empty; expected {_SECRET_EXPECTED}", path)
        return secret

    def _error(self, message: str, path: Path_) -> ConfigError:
        return self._doc.error(message, path)


def _validation_error(
    exc: ValidationError,
    base: Path_,
    line_of: Callable[[Path_], int | None],
    source: str | None,
    model: type[BaseModel] | None = None,
) -> ConfigError:
    problems = []
    for err in exc.errors(include_url=False):
        path = (*base, *err["loc"])
        secret = _is_secret_field(model, err["loc"])
        problems.append((path, _describe(err, secret=secret)))
    return _problems_error(problems, line_of, source)


def _is_secret_field(model: type[BaseModel] | None, loc: Sequence[str | int]) -> bool:
    """Whether the value at ``loc`` in ``model`` is a secret: a field typed ``SecretStr`` (or
    ``SecretBytes``, alone or in a union), or a setting named like one."""
    current: Any = model
    for part in loc:
        if isinstance(part, str) and is_secret_key(part):
            return True
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                current = None
                continue
            kinds = _types_in(info.annotation)
            if any(issubclass(k, SecretStr | SecretBytes) for k in kinds):
                return True
            models = [k for k in kinds if issubclass(k, BaseModel)]
            current = models[0] if len(models) == 1 else None
        else:
            current = None
    return False


def _types_in(annotation: Any) -> list[type]:
    """The classes an annotation names, through unions, Optional and Annotated."""
    found: list[type] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type):
            found.append(item)
        for arg in getattr(item, "__args__", ()) or ():
            stack.append(arg)
        origin = getattr(item, "__origin__", None)
        if origin is not None and isinstance(origin, type) and not getattr(item, "__args__", ()):
            found.append(origin)
    return found


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
    return ConfigError(
        f"{len(located)} problems:\n  {listing}",
        path=_dotted(path),
        line=line,
        source=source,
        located=True,
    )


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: Mapping[str, Any], *, secret: bool = False) -> str:
    """What is wrong, in words; the rejected value is quoted unless it is a secret."""
    kind = err["type"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected")
        got = "a secret value (not shown)" if secret else repr(err.get("input"))
        return f"got {got}, expected {expected}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if secret:
        return f"{msg} (the value is a secret: not shown)"
    if (
        "input" in err
        and kind not in ("value_error", "assertion_error")
        and not isinstance(err["input"], dict | list)
    ):
        return f"{msg} (got {err['input']!r})"
    return msg


_INT_TAG = "tag:yaml.org,2002:int"
_SECRET_EXPECTED = f"a regular file of at most {MAX_SECRET_BYTES // 1024} KiB holding the secret"


def _make_loader(base: type[Any]) -> type[Any]:
    class Loader(base):  # type: ignore[misc]
        """``safe_load``'s loader: a timestamp Python cannot build (the 31st of February) is
        a YAML error with its mark, not a bare ValueError."""

        def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
            try:
                return super().construct_yaml_timestamp(node)
            except (ValueError, OverflowError) as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read this value: {exc}", node.start_mark
                ) from None

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)
    return Loader


_Loader = _make_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
"""libyaml's loader when PyYAML has it, else the pure-Python one."""


class _TreeProblem(Exception):
    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.message = message
        self.line = node.start_mark.line + 1


_Scalar = yaml.ScalarNode
_Mapping = yaml.MappingNode


def _check_graph(root: yaml.Node) -> None:
    """Check every node once (aliases share nodes): no duplicate key, no integer too long, no
    recursive alias, and no more than :data:`MAX_ALIAS_VALUES` values added by aliases.

    Iterative, and linear in the nodes the text spells out, however far aliases would expand.
    """
    if type(root) is _Scalar:
        _check_scalar(root)
        return
    seen: set[int] = {id(root)}
    shared: dict[int, yaml.Node] = {}
    spelled = 1  # collections once each, scalars at each place they stand
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is _Mapping:
            _check_keys(node)
            children = [part for pair in node.value for part in pair]
        else:
            children = node.value
        for child in children:
            if type(child) is _Scalar:
                spelled += 1
                if child.tag == _INT_TAG:
                    _check_scalar(child)
            elif id(child) in seen:
                shared[id(child)] = child  # an alias (or a recursive one)
            else:
                seen.add(id(child))
                spelled += 1
                stack.append(child)
    if shared:
        _check_expansion(root, spelled, shared)


def _check_scalar(node: yaml.ScalarNode) -> None:
    if node.tag == _INT_TAG and len(node.value) > MAX_INT_DIGITS:
        raise _TreeProblem(
            f"an integer of {len(node.value)} characters; expected a number of at most "
            f"{MAX_INT_DIGITS} digits",
            node,
        )


def _check_expansion(root: yaml.Node, spelled: int, shared: dict[int, yaml.Node]) -> None:
    """How many values the aliased collections expand to, memoised per collection; a
    collection reached again while it is being counted is a recursive alias."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = (
            [part for pair in node.value for part in pair] if type(node) is _Mapping else node.value
        )
        if done:
            open_.discard(key)
            size[key] = 1 + sum(
                1 if type(child) is _Scalar else size[id(child)] for child in children
            )
            continue
        if key in size:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if type(child) is _Scalar or id(child) in size:
                continue
            if id(child) in open_:
                raise _TreeProblem("an alias refers to a collection that contains it", child)
            stack.append((child, False))
    added = size[id(root)] - spelled
    if added > MAX_ALIAS_VALUES:
        worst = max(shared.values(), key=lambda node: size[id(node)])
        raise _TreeProblem(
            f"aliases expand the document by {added:,} values (the largest repeated "
            f"collection starts here); expected at most {MAX_ALIAS_VALUES:,} values added by "
            "aliases",
            worst,
        )


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if type(key) is not _Scalar or key.tag == "tag:yaml.org,2002:merge":
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise _TreeProblem(
                f"key {key.value!r} appears twice (first on line {first.start_mark.line + 1}); "
                "expected each key once",
                key,
            )


def _line_map(root: yaml.Node) -> dict[Path_, int]:
    """The line of every value by its path, aliases expanded (after :func:`_check_graph` has
    bounded them); no collection deeper than :data:`MAX_DEPTH`."""
    lines: dict[Path_, int] = {(): root.start_mark.line + 1}
    stack: list[tuple[yaml.Node, Path_]] = [] if type(root) is _Scalar else [(root, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise _TreeProblem(
                f"collections nest deeper than {MAX_DEPTH} levels; expected collections nested at "
                f"most {MAX_DEPTH} deep",
                node,
            )
        if type(node) is _Mapping:
            for key, value in node.value:
                child = (*path, key.value if type(key) is _Scalar else "?")
                # a key's line is where the key stands, for a value on the lines below it
                lines[child] = key.start_mark.line + 1
                if type(value) is not _Scalar:
                    stack.append((value, child))
        else:
            for index, item in enumerate(node.value):
                child = (*path, index)
                lines[child] = item.start_mark.line + 1
                if type(item) is not _Scalar:
                    stack.append((item, child))
    return lines


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document's objects are built: they are all
    alive, and a large contacts list would otherwise trigger a full collection after full
    collection (``python -m benchmarks config`` measures the load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _FileProblem(Exception):
    """A file that is not read: not a regular file, or too large (the message says which).

    :ivar line: for a file too large, the line at which it passes the limit.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _read_regular_file(file: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file.

    Opened without blocking (a FIFO with no writer would otherwise hang the open), then
    refused unless it is a regular file; a file larger than ``limit`` is refused without being
    read whole (``/dev/zero``, a sparse file of a GiB).

    :raise _FileProblem: not a regular file, or larger than ``limit``.
    :raise OSError: it cannot be opened or read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(file, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            mode = status.st_mode
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
            raise _FileProblem(f"is {kind}, not a regular file")
        if status.st_size > limit:
            raise _FileProblem(f"is larger than {_size(limit)}", _lines_in(fd, limit))
        data = bytearray()
        while len(data) <= limit:  # st_size is a hint: a file may grow, /proc says 0
            want = max(status.st_size - len(data) + 1, 64 * 1024)
            chunk = os.read(fd, min(limit + 1 - len(data), want, 1 << 20))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _FileProblem(f"is larger than {_size(limit)}", data.count(b"\n", 0, limit) + 1)
    return bytes(data)


def _lines_in(fd: int, limit: int) -> int:
    """The line the first ``limit`` bytes of ``fd`` end on, read a MiB at a time."""
    os.lseek(fd, 0, os.SEEK_SET)
    lines, left = 1, limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        lines += chunk.count(b"\n")
        left -= len(chunk)
    return lines


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document that remembers where each value stood, so that any error about a
    value can name its file, line and path. Plugins use it for their own YAML files too.

    Reading is bounded: at most :data:`MAX_YAML_BYTES`, collections nested at most
    :data:`MAX_DEPTH` deep, at most :data:`MAX_ALIAS_VALUES` values added by aliases, integers
    of at most :data:`MAX_INT_DIGITS` digits, and no key twice in a mapping. Anything else is a
    :class:`ConfigError` naming the file, the line and what was expected.
    """

    data: Any = field(repr=False)
    source: str | None = None
    lines: Mapping[Path_, int] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, text: str, *, source: str | None = None) -> YamlDocument:
        """Parse YAML text the way ``safe_load`` does, once, with libyaml when PyYAML has it;
        malformed or unbounded YAML is a :class:`ConfigError`."""
        with _collector_paused():
            return cls._parse(text, source)

    @classmethod
    def _parse(cls, text: str, source: str | None) -> YamlDocument:
        if len(text) > MAX_YAML_BYTES:
            raise ConfigError(
                f"the text is longer than {_size(MAX_YAML_BYTES)}; expected a YAML document of "
                f"at most {_size(MAX_YAML_BYTES)}",
                line=text.count("\n", 0, MAX_YAML_BYTES) + 1,
                source=source,
            )
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return cls(None, source, {})
            _check_graph(node)
            lines = _line_map(node)
            data = loader.construct_document(node)
        except _TreeProblem as exc:
            raise ConfigError(exc.message, line=exc.line, source=source) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            if "nesting depth" in problem:  # libyaml's own limit, far above ours
                problem += f"; expected collections nested at most {MAX_DEPTH} deep"
            raise ConfigError(
                f"malformed YAML: {problem}"
                + (f" (column {mark.column + 1})" if mark is not None else ""),
                line=mark.line + 1 if mark is not None else None,
                source=source,
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"malformed YAML: {exc}", source=source) from None
        except RecursionError:  # the pure-Python composer, without libyaml's depth limit
            mark = loader.get_mark() if hasattr(loader, "get_mark") else None
            raise ConfigError(
                f"collections nest too deeply; expected collections nested at most {MAX_DEPTH} "
                "deep",
                line=mark.line + 1 if mark is not None else None,
                source=source,
            ) from None
        finally:
            loader.dispose()
        return cls(data, source, lines)

    @classmethod
    def read(
        cls, path: str | os.PathLike[str], *, what: str = "configuration file"
    ) -> YamlDocument:
        """Read and parse a YAML file: a regular file of at most :data:`MAX_YAML_BYTES`, UTF-8;
        anything else is a :class:`ConfigError`."""
        file = Path(path).expanduser()
        name = str(file)
        try:
            data = _read_regular_file(file, MAX_YAML_BYTES)
        except FileNotFoundError:
            raise ConfigError(f"{what} {name!r} does not exist") from None
        except _FileProblem as exc:
            raise ConfigError(
                f"{what} {exc}; expected a regular file of at most {_size(MAX_YAML_BYTES)}",
                line=exc.line,
                source=name,
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - data.rfind(b"\n", 0, exc.start)
            raise ConfigError(
                f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
                "expected UTF-8",
                line=line,
                source=name,
            ) from None
        return cls.parse(text, source=name)

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
            raise _validation_error(exc, base, self.line_of, self.source, model) from None

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
    with _collector_paused():
        return _validated_config(doc, env, base_dir)


def _validated_config(
    doc: YamlDocument, env: Mapping[str, str] | None, base_dir: Path | None
) -> Config:
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
