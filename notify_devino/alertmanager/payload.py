"""The body Alertmanager's webhook receiver posts, version 4, as typed values.

Alertmanager builds it from its template data (``template.Data``: receiver, status, alerts,
group/common labels, common annotations, external URL) plus three fields of the webhook itself
(``version``, ``groupKey``, ``truncatedAlerts``). Every release from 0.25 (Debian 12's) to the
latest sends version ``"4"``; later releases added fields without changing the version:

- ``notification_reason`` (why this notification goes out: ``first notification``, ``new alerts
  added``, ``some alerts resolved``, ``all alerts resolved``, ``repeat interval elapsed``);
- ``routeLabels`` (labels the matching route gave the group).

Both are optional here, as is ``truncatedAlerts`` (the alerts left out by the receiver's
``max_alerts``). Fields this model does not know are ignored, so a newer Alertmanager keeps
working. An alert that has not ended carries Go's zero time in ``endsAt``
(``0001-01-01T00:00:00Z``); it is read as None.

A body that is not JSON, not an object, not version 4 or breaks a field's type is a
:class:`PayloadError` naming each bad field by its path (``alerts[2].startsAt``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..errors import NotifyError

SUPPORTED_VERSION = "4"

_GO_ZERO_YEAR = 1


class PayloadError(NotifyError, ValueError):
    """A webhook body that can never be accepted, whatever is retried.

    :ivar problems: (field path, what is wrong) pairs; the path is ``""`` for the body as a whole.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        text = "; ".join(f"{path}: {what}" if path else what for path, what in self.problems)
        super().__init__(f"not an Alertmanager webhook payload (version 4): {text}")


def _null_is_empty(value: object) -> object:
    return {} if value is None else value


def _zero_time_is_none(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("0001-01-01T"):
        return None
    return value


LabelSet = Annotated[dict[str, str], BeforeValidator(_null_is_empty)]
"""Label or annotation names to values (a Go ``KV``; ``null`` reads as empty)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Alert(_Model):
    """One alert of the group, as Alertmanager's templates see it."""

    status: Literal["firing", "resolved"]
    labels: LabelSet
    annotations: LabelSet = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: Annotated[datetime | None, BeforeValidator(_zero_time_is_none)] = Field(
        default=None, alias="endsAt"
    )
    """None while the alert has no end (Go's zero time on the wire)."""
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1)
    """Alertmanager's hash of the labels: the same alert has the same fingerprint."""

    @property
    def name(self) -> str:
        """The ``alertname`` label, or ``""``."""
        return self.labels.get("alertname", "")

    @property
    def firing(self) -> bool:
        return self.status == "firing"


class WebhookMessage(_Model):
    """One notification of one alert group for one receiver (webhook payload version 4)."""

    version: str
    group_key: str = Field(alias="groupKey")
    """Identifies the group within Alertmanager's routing tree (``{}/{team="db"}:{alertname=...}``);
    the same group keeps its key across notifications."""
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    """Alerts the receiver's ``max_alerts`` left out of ``alerts``."""
    status: Literal["firing", "resolved"]
    """``firing`` when at least one alert of the group fires, else ``resolved``."""
    receiver: str
    """The receiver's name in Alertmanager's configuration (regexp-quoted by Alertmanager:
    ``team\\.db`` for ``team.db``)."""
    group_labels: LabelSet = Field(default_factory=dict, alias="groupLabels")
    common_labels: LabelSet = Field(default_factory=dict, alias="commonLabels")
    common_annotations: LabelSet = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: tuple[Alert, ...]
    notification_reason: str | None = None
    """Why Alertmanager notifies now (newer releases); None from older ones."""
    route_labels: LabelSet = Field(default_factory=dict, alias="routeLabels")
    """Labels of the route that matched (newer releases); empty from older ones."""

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")

    def dedup_key_parts(self) -> tuple[str, str, str, tuple[tuple[str, str, str], ...]]:
        """What makes two deliveries the same notification: the receiver, the group, its
        status, and each alert's (fingerprint, status, start), sorted. A retry and the other
        member of a highly available pair send the same parts; new alerts in the group, a
        resolution and a new firing of an alert that had resolved do not."""
        alerts = sorted(
            (a.fingerprint, a.status, a.starts_at.astimezone(UTC).isoformat()) for a in self.alerts
        )
        return (self.receiver, self.group_key, self.status, tuple(alerts))


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required but missing"
    message = str(error["msg"])
    value = error.get("input")
    if kind.startswith(("literal_", "string_", "int_", "datetime_", "dict_", "tuple_", "greater")):
        shown = json.dumps(value, default=str) if not isinstance(value, dict | list) else None
        if shown is not None and len(shown) <= 60:
            return f"{message} (got {shown})"
    return message


def parse_payload(body: bytes | str | Mapping[str, Any]) -> WebhookMessage:
    """The webhook message in ``body`` (the raw request body, or JSON already decoded).

    :raises PayloadError: the body is not JSON, not an object, not version 4, or a field is
        missing or of the wrong type; every problem names its field.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError([("", "the body is not UTF-8 text")]) from None
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise PayloadError(
                [("", f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")]
            ) from None
    else:
        data = body
    if not isinstance(data, Mapping):
        raise PayloadError([("", f"expected a JSON object, got {type(data).__name__}")])
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        got = "no version" if version is None else f"version {json.dumps(version)}"
        raise PayloadError(
            [("version", f'got {got}; this receiver reads version "{SUPPORTED_VERSION}"')]
        )
    try:
        return WebhookMessage.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(
            [(_where(e["loc"]), _describe(e)) for e in exc.errors(include_url=False)]
        ) from None


__all__ = ["SUPPORTED_VERSION", "Alert", "PayloadError", "WebhookMessage", "parse_payload"]
