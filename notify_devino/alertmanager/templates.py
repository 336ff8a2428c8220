"""SMS texts for alert groups: Jinja2 templates with a segment budget.

Templates run in Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` with
:class:`~jinja2.StrictUndefined` (a name the template does not get is an error, not an empty
string), ``trim_blocks`` and ``lstrip_blocks``. After rendering, blank lines are dropped and each
line's trailing blanks trimmed, so a template can be laid out freely.

The variables a template gets:

========================= ==============================================================
``status``                ``firing`` or ``resolved`` (the group's)
``title``                 the group labels' values, alertname first, and the common
                          severity: ``DiskFull critical``
``alerts``                the alerts shown, each with ``name``, ``status``, ``labels``,
                          ``annotations``, ``summary`` (the ``summary`` annotation, else
                          ``description``, else ""), ``telling`` (up to 3 label values that
                          tell it from the others: instance, pod, host, ...), ``starts_at``,
                          ``ends_at``, ``fingerprint``, ``generator_url``
``firing_count``          firing alerts in the group (including those not shown)
``resolved_count``        resolved alerts in the group
``more``                  alerts not shown: left out for the budget, or by Alertmanager's
                          ``max_alerts`` (``truncatedAlerts``)
``ack_code``              the code to reply with to acknowledge, or None
``receiver``, ``route``, ``group_key``, ``external_url``, ``notification_reason``,
``group_labels``, ``common_labels``, ``common_annotations``, ``route_labels``
========================= ==============================================================

The **budget** (``max_segments``) is met by showing fewer alerts: the most that fit are
shown and ``+N more`` says how many were not. A group whose first line alone does not fit
loses its middle lines, then the words at the end of its first line, never part of a word.
Segments are counted by the channel (:meth:`Dispatcher.estimate
<notify_devino.dispatcher.Dispatcher.estimate>`), so the budget is in the channel's own parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from ..errors import NotifyError
from ..types import Estimate
from .payload import Alert, WebhookMessage

Estimator = Callable[[str], Awaitable[Estimate]]
"""Counts a text's segments on the channel it will go over (``Dispatcher.estimate``)."""

DEFAULT_TEMPLATE = """\
{% if status == "firing" %}FIRING{% if firing_count > 1 %} {{ firing_count }}{% endif %}
{%- if resolved_count %} ({{ resolved_count }} resolved){% endif %}
{%- else %}RESOLVED{% if resolved_count > 1 %} {{ resolved_count }}{% endif %}{% endif %}
{{- ": " }}{{ title }}
{% for alert in alerts %}
{{ alert.telling | join(" ") }}{% if alert.telling and alert.summary %}: {% endif %}
{{- alert.summary }}
{% endfor %}
{% if more %}+{{ more }} more
{% endif %}
{% if ack_code %}Reply {{ ack_code }} to ack{% endif %}
"""

TELLING_LABELS = (
    "instance",
    "pod",
    "host",
    "hostname",
    "node",
    "container",
    "device",
    "mountpoint",
    "service",
    "job",
    "namespace",
    "cluster",
    "env",
)
"""Labels that tell alerts of one group apart, most telling first."""

MAX_TELLING = 3


class TemplateError(NotifyError, ValueError):
    """A template that cannot be compiled or rendered; the message says where and why."""


_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya", "і": "i", "ї": "yi", "є": "ye", "ґ": "g",
    "—": "-", "–": "-", "‒": "-", "−": "-", "«": '"', "»": '"', "„": '"', "“": '"',
    "”": '"', "‘": "'", "’": "'", "‚": "'", "…": "...", "\u00a0": " ", "\u202f": " ",
    "№": "No", "•": "*", "×": "x",
}  # fmt: skip


def transliterate(text: str) -> str:
    """Cyrillic letters in Latin ones and typographic marks in plain ones, so that a Russian
    text travels in GSM-7 (160 characters a part instead of 70)."""
    out = []
    for char in text:
        lower = char.lower()
        latin = _TRANSLIT.get(lower)
        if latin is None:
            out.append(char)
        elif char != lower and latin:
            out.append(latin[0].upper() + latin[1:])
        else:
            out.append(latin)
    return "".join(out)


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    """A text that meets its budget, or comes as close as it can.

    :ivar text: the SMS text.
    :ivar estimate: what the channel says it takes.
    :ivar shown: alerts listed in it.
    :ivar more: alerts left out (the ``+N more``).
    :ivar fits: whether it is within ``max_segments``.
    :ivar warnings: the channel's warnings (a character forcing UCS-2), and ours.
    """

    text: str
    estimate: Estimate
    shown: int
    more: int
    max_segments: int
    fits: bool
    warnings: tuple[str, ...]


def _summary(alert: Alert) -> str:
    text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return " ".join(text.split())


def _telling(alert: Alert, skip: frozenset[str]) -> list[str]:
    found = [alert.labels[n] for n in TELLING_LABELS if n not in skip and alert.labels.get(n)]
    return found[:MAX_TELLING]


def _title(message: WebhookMessage) -> str:
    labels = message.group_labels
    names = sorted(labels, key=lambda n: (n != "alertname", n))
    parts = [labels[n] for n in names if labels[n]]
    severity = message.common_labels.get("severity")
    if severity and "severity" not in labels:
        parts.append(severity)
    if not parts and message.alerts:
        parts.append(message.alerts[0].name)
    return " ".join(parts)


def _alert_view(alert: Alert, skip: frozenset[str]) -> dict[str, Any]:
    return {
        "name": alert.name,
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "summary": _summary(alert),
        "telling": _telling(alert, skip),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
    }


def _tidy(text: str) -> str:
    lines = (line.rstrip() for line in text.splitlines())
    return "\n".join(line for line in lines if line.strip())


class AlertTemplate:
    """A compiled template with its budget.

    :param source: Jinja2 template text; None is :data:`DEFAULT_TEMPLATE`.
    :param max_segments: the most SMS parts one notification may take.
    :param transliterate: pass the text through :func:`transliterate` before counting.
    :param name: names the template in errors (the route's name).
    :raises TemplateError: the source does not compile.
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        max_segments: int = 2,
        transliterate: bool = False,
        name: str = "default",
    ) -> None:
        if max_segments < 1:
            raise ValueError("max_segments must be at least 1")
        self.name = name
        self.max_segments = max_segments
        self.transliterate = transliterate
        try:
            self._template = _environment().from_string(source or DEFAULT_TEMPLATE)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template of {name}: line {exc.lineno}: {exc.message}") from None

    @staticmethod
    def candidates(message: WebhookMessage) -> tuple[Alert, ...]:
        """The alerts the text may list, in order: the firing ones of a firing group (the
        resolved ones are counted in the first line), every one of a resolved group."""
        return message.firing if message.status == "firing" else message.alerts

    def context(
        self,
        message: WebhookMessage,
        shown: Sequence[Alert],
        *,
        more: int,
        ack_code: str | None = None,
        route: str | None = None,
    ) -> dict[str, Any]:
        candidates = self.candidates(message)
        skip = frozenset(message.group_labels)
        if len(candidates) > 1:
            common = {n for n in TELLING_LABELS if len({a.labels.get(n) for a in candidates}) == 1}
            skip |= common
        return {
            "status": message.status,
            "title": _title(message),
            "alerts": [_alert_view(a, skip) for a in shown],
            "firing_count": len(message.firing),
            "resolved_count": len(message.resolved),
            "more": more,
            "ack_code": ack_code,
            "receiver": message.receiver,
            "route": route,
            "group_key": message.group_key,
            "external_url": message.external_url,
            "notification_reason": message.notification_reason,
            "group_labels": dict(message.group_labels),
            "common_labels": dict(message.common_labels),
            "common_annotations": dict(message.common_annotations),
            "route_labels": dict(message.route_labels),
        }

    def text(
        self,
        message: WebhookMessage,
        shown: int | None = None,
        *,
        ack_code: str | None = None,
        route: str | None = None,
    ) -> str:
        """The text listing the first ``shown`` alerts (None: all), before any budget.

        :raises TemplateError: the template uses a name it does not get, or fails.
        """
        candidates = self.candidates(message)
        count = len(candidates) if shown is None else max(0, min(shown, len(candidates)))
        more = len(candidates) - count + message.truncated_alerts
        context = self.context(
            message, candidates[:count], more=more, ack_code=ack_code, route=route
        )
        try:
            text = _tidy(self._template.render(context))
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"template of {self.name}: {exc.message}; the variables are "
                + ", ".join(sorted(context))
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template of {self.name}: {exc}") from None
        return transliterate(text) if self.transliterate else text

    async def render(
        self,
        message: WebhookMessage,
        estimate: Estimator,
        *,
        ack_code: str | None = None,
        route: str | None = None,
    ) -> Rendered:
        """The text for ``message`` within the budget, as the channel counts it."""
        total = len(self.candidates(message))

        async def try_(count: int) -> tuple[str, Estimate]:
            text = self.text(message, count, ack_code=ack_code, route=route)
            return text, await estimate(text)

        best_text, best = await try_(total)
        shown = total
        if best.segments > self.max_segments:
            low, high = 0, total - 1  # the most alerts that fit lies in [low, high]
            found: tuple[str, Estimate, int] | None = None
            while low <= high:
                middle = (low + high) // 2
                text, counted = await try_(middle)
                if counted.segments <= self.max_segments:
                    found = (text, counted, middle)
                    low = middle + 1
                else:
                    high = middle - 1
            if found is not None:
                best_text, best, shown = found
            else:
                shown = 0
                best_text, best = await self._shorten(*(await try_(0)), estimate)
        more = total - shown + message.truncated_alerts
        warnings = list(best.warnings)
        if not self.transliterate and best.encoding == "UCS-2":
            plain = transliterate(best_text)
            counted = await estimate(plain)
            if counted.encoding != "UCS-2":
                warnings.append(
                    f"with transliterate: true this text takes {counted.segments} "
                    f"part(s) in {counted.encoding} instead of {best.segments} in UCS-2"
                )
        fits = best.segments <= self.max_segments
        if not fits:
            warnings.append(
                f"the text takes {best.segments} parts, over the budget of {self.max_segments}"
            )
        return Rendered(
            best_text, best, shown, more, self.max_segments, fits, tuple(dict.fromkeys(warnings))
        )

    async def _shorten(
        self, text: str, counted: Estimate, estimate: Estimator
    ) -> tuple[str, Estimate]:
        """Drop middle lines, then words at the end of the first line, until it fits. The
        first line and the last (the ack line, the ``+N more``) are kept as long as they can."""
        lines = text.split("\n")
        while counted.segments > self.max_segments and len(lines) > 2:
            del lines[-2]
            text = "\n".join(lines)
            counted = await estimate(text)
        words = lines[0].split(" ")
        while counted.segments > self.max_segments and len(words) > 1:
            words.pop()
            lines[0] = " ".join(words) + " ..."
            text = "\n".join(lines)
            counted = await estimate(text)
        return text, counted


def sample_message() -> WebhookMessage:
    """A firing group of two alerts, to check a template against before it is needed."""
    from .payload import parse_payload

    def one(instance: str, fingerprint: str) -> Mapping[str, Any]:
        return {
            "status": "firing",
            "labels": {"alertname": "Sample", "instance": instance, "severity": "critical"},
            "annotations": {"summary": "a sample alert"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": fingerprint,
        }

    return parse_payload(
        {
            "version": "4",
            "groupKey": '{}:{alertname="Sample"}',
            "status": "firing",
            "receiver": "sample",
            "groupLabels": {"alertname": "Sample"},
            "commonLabels": {"alertname": "Sample", "severity": "critical"},
            "commonAnnotations": {"summary": "a sample alert"},
            "externalURL": "",
            "alerts": [one("a:9100", "01"), one("b:9100", "02")],
        }
    )


def check_template(template: AlertTemplate) -> None:
    """Render the sample group once: an undefined name fails now, not at 3 a.m."""
    template.text(sample_message(), ack_code="0000", route="sample")


__all__ = [
    "DEFAULT_TEMPLATE",
    "AlertTemplate",
    "Estimator",
    "Rendered",
    "TemplateError",
    "check_template",
    "sample_message",
    "transliterate",
]
