"""The ``alertmanager:`` section of the configuration.

::

    alertmanager:
      to: [oncall]                    # who gets an alert group's SMS (contacts and groups)
      dedup_window_seconds: 600       # retries and HA duplicates within it are one notification
      max_segments: 2                 # the SMS budget of one notification
      bearer_token: ${AM_TOKEN}       # what Alertmanager's http_config.authorization sends
      basic_auth: {username: am, password_file: /run/secrets/am}
      routes:                         # per route of routes: (the route's name)
        db: {to: [dba], max_segments: 3, transliterate: true}
      ack:
        code_digits: 4
      silence:                        # an ack silences the alert in Alertmanager
        url: http://127.0.0.1:9093
        duration_seconds: 3600

Every field has a default; an absent section is all defaults (no auth of its own, no silences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..logconfig import register_secret


def _register(*secrets: SecretStr | None) -> None:
    """Every secret of the section is redacted from log lines and error texts."""
    for secret in secrets:
        if secret is not None and secret.get_secret_value():
            register_secret(secret.get_secret_value())


def _read_secret(data: Any, field: str) -> Any:
    """``<field>_file: PATH`` gives ``<field>`` from a file (its first line's end trimmed)."""
    if not isinstance(data, dict) or f"{field}_file" not in data:
        return data
    data = dict(data)
    if field in data:
        raise ValueError(f"give {field} or {field}_file, not both")
    path = Path(str(data.pop(f"{field}_file"))).expanduser()
    try:
        data[field] = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read {field}_file {str(path)!r}: {exc.strerror}") from None
    return data


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1)
    password: SecretStr

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, data: Any) -> Any:
        return _read_secret(data, "password")

    @model_validator(mode="after")
    def _redacted(self) -> BasicAuth:
        _register(self.password)
        return self


class RouteTemplate(BaseModel):
    """How one route's alert SMS is written and who gets it."""

    model_config = ConfigDict(extra="forbid")

    to: list[str] | None = None
    """Contacts and groups; None takes the section's ``to``."""
    template: str | None = None
    """A Jinja2 template (sandboxed, undefined names are errors); None takes the default."""
    max_segments: int | None = Field(default=None, ge=1, le=10)
    transliterate: bool | None = None
    """Write Cyrillic and typographic characters in GSM-7 letters (three times the room)."""


class AckSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Put a code in every firing SMS and read replies to it."""
    code_digits: int = Field(default=4, ge=3, le=6)
    confirm: bool = True
    """Answer an ack with a confirmation SMS (and an unknown code with a short reply)."""


class SilenceSettings(BaseModel):
    """An ack creates a silence in Alertmanager through its API v2, expired when the alert
    resolves."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    """Alertmanager's base URL (``http://127.0.0.1:9093``); None creates no silences."""
    duration_seconds: float = Field(default=4 * 3600, gt=0)
    comment: str = "acknowledged by SMS reply"
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    timeout_seconds: float = Field(default=10, gt=0)
    check_interval_seconds: float = Field(default=30, gt=0)
    """How often the sink asks Alertmanager whether a silenced alert resolved (Alertmanager
    notifies no resolution of a silenced alert)."""

    @model_validator(mode="before")
    @classmethod
    def _token_file(cls, data: Any) -> Any:
        return _read_secret(data, "bearer_token")


class AlertmanagerSettings(BaseModel):
    """See the module docstring."""

    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(default_factory=list)
    dedup_window_seconds: float = Field(default=600, gt=0)
    """Longer than Alertmanager takes to retry (a retry runs until the next group_interval),
    shorter than the shortest repeat_interval (a repeat is a new notification)."""
    max_segments: int = Field(default=2, ge=1, le=10)
    transliterate: bool = False
    template: str | None = None
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    routes: dict[str, RouteTemplate] = Field(default_factory=dict)
    ack: AckSettings = Field(default_factory=AckSettings)
    silence: SilenceSettings = Field(default_factory=SilenceSettings)

    @model_validator(mode="before")
    @classmethod
    def _token_file(cls, data: Any) -> Any:
        return _read_secret(data, "bearer_token")

    @model_validator(mode="after")
    def _redacted(self) -> AlertmanagerSettings:
        _register(self.bearer_token, self.silence.bearer_token)
        return self

    def route(self, name: str | None) -> RouteTemplate:
        """The effective settings of route ``name`` (None: no route), defaults filled in."""
        own = self.routes.get(name or "", RouteTemplate())
        return RouteTemplate(
            to=own.to if own.to is not None else list(self.to),
            template=own.template if own.template is not None else self.template,
            max_segments=own.max_segments or self.max_segments,
            transliterate=(
                own.transliterate if own.transliterate is not None else self.transliterate
            ),
        )


__all__ = [
    "AckSettings",
    "AlertmanagerSettings",
    "BasicAuth",
    "RouteTemplate",
    "SilenceSettings",
]
