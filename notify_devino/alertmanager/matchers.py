"""Label matchers as Alertmanager writes and parses them: ``severity="critical"``,
``team=~"db|infra"``, ``env!="dev"``, ``instance!~"test-.*"``.

The grammar is that of Alertmanager's classic parser (``pkg/labels``), which every release
since 0.22 reads, and which the newer UTF-8 parser falls back to:

- a matcher is a label name (``[a-zA-Z_:][a-zA-Z0-9_:]*``), an operator (``=``, ``!=``, ``=~``,
  ``!~``) and a value, with any blanks around each;
- the value may be in double quotes; inside it ``\\"`` is a quote, ``\\n`` a line feed and
  ``\\\\`` a backslash; any other backslash is a literal backslash; an unescaped ``"`` inside
  the value is an error;
- a list is comma-separated, optionally in ``{...}``, commas inside quotes are part of the value,
  and one trailing comma is allowed: ``{severity="critical", team=~"db|infra",}``;
- a regular expression is anchored at both ends (``db`` does not match ``db-1``), and a label
  the alert does not have has the empty value (so ``team!="db"`` matches an alert with no team).

Regular expressions are Python's, which read every RE2 expression Alertmanager's users write
for labels; RE2's ``\\pL``-style classes are not available.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..errors import NotifyError

if TYPE_CHECKING:
    from ..config import Config

Operator = Literal["=", "!=", "=~", "!~"]

_BLANK = "[ \t\n\f\r]"
_MATCHER = re.compile(
    rf"{_BLANK}*([a-zA-Z_:][a-zA-Z0-9_:]*){_BLANK}*(=~|=|!=|!~){_BLANK}*(.*?){_BLANK}*",
    re.DOTALL,
)


class MatcherError(NotifyError, ValueError):
    """A matcher that Alertmanager would refuse too; the message quotes it and says why."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. ``Matcher.parse('team=~"db|infra"')``."""

    name: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                compiled = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise MatcherError(
                    f"{self.name}{self.op}{_quote(self.value)}: not a regular expression "
                    f"({exc.msg})"
                ) from None
            object.__setattr__(self, "_regex", compiled)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """One matcher; see the module's grammar."""
        found = _MATCHER.fullmatch(text)
        if found is None:
            raise MatcherError(
                f"bad matcher {text!r}: expected a label name, one of = != =~ !~, and a value "
                '(severity="critical")'
            )
        name, op, raw = found.group(1), found.group(2), found.group(3)
        return cls(name, op, _unescape(raw, text), None)  # type: ignore[arg-type]

    def matches_value(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if self.op == "=~" else not hit

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label set matches; a missing label has the empty value."""
        return self.matches_value(labels.get(self.name, ""))

    def to_api(self) -> dict[str, object]:
        """The matcher as Alertmanager's API v2 writes it in a silence."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in ("=~", "!~"),
            "isEqual": self.op in ("=", "=~"),
        }

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{escaped}"'


def _unescape(raw: str, text: str) -> str:
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for index, char in enumerate(raw):
        if escaped:
            escaped = False
            if char == "n":
                out.append("\n")
            elif char in '"\\':
                out.append(char)
            else:  # a spurious escape is a literal backslash
                out.append("\\" + char)
            continue
        if char == "\\":
            if index < last:
                escaped = True
            else:
                out.append("\\")
        elif char == '"':
            if not quoted or index < last:
                raise MatcherError(
                    f'bad matcher {text!r}: the value has an unescaped double quote (write \\")'
                )
            quoted = False
        else:
            out.append(char)
    if quoted:
        raise MatcherError(f"bad matcher {text!r}: the value's closing double quote is missing")
    return "".join(out)


def parse_matchers(text: str) -> list[Matcher]:
    """A comma-separated list of matchers, optionally in braces (``{a="1", b=~"2|3"}``)."""
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for char in text:
        if char == ",":
            if not inside:
                tokens.append("".join(token))
                token = []
                continue
        elif char == '"':
            if not escaped:
                inside = not inside
            else:
                escaped = False
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return [Matcher.parse(t) for t in tokens]


def parse_matcher_lines(lines: Iterable[str]) -> tuple[Matcher, ...]:
    """A route's ``matchers:`` list: each entry is one matcher or several, comma-separated, as
    in Alertmanager's own configuration."""
    return tuple(m for line in lines for m in parse_matchers(line))


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches the label set (an empty list matches every set)."""
    return all(m.matches(labels) for m in matchers)


def equality_matchers(labels: Mapping[str, str]) -> list[Matcher]:
    """One ``name="value"`` matcher per label, by name: what a silence for exactly this alert
    holds."""
    return [Matcher(name, "=", value) for name, value in sorted(labels.items()) if value]


def route_for_labels(config: Config, labels: Mapping[str, str]) -> str | None:
    """The first route, in file order, that takes an alert group with these labels (its common
    labels): a route with ``matchers:`` when they all match; a route with ``match:`` alone when
    its severity list holds the ``severity`` label (tags are not alert labels, so a route that
    asks for tags takes no alert). None when no route takes it.
    """
    for name, route in config.routes.items():
        if route.matchers:
            if matches_all(parse_matcher_lines(route.matchers), labels) and (
                route.match is None or route.match.matches(labels.get("severity"), ())
            ):
                return name
        elif route.match is not None and route.match.matches(labels.get("severity"), ()):
            return name
    return None


__all__ = [
    "Matcher",
    "MatcherError",
    "equality_matchers",
    "matches_all",
    "parse_matcher_lines",
    "parse_matchers",
    "route_for_labels",
]
