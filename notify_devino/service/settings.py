"""The ``service:`` section of the configuration: what ``notify-devino serve`` listens on,
where it keeps its state, who may call it and how much it holds.

::

    service:
      listen: {host: 0.0.0.0, port: 8080}
      store: sqlite:///var/lib/notify-devino/outbox.db
      send_policy: at_most_once          # or at_least_once
      tokens:
        - name: alertmanager
          token: ${NOTIFY_TOKEN_ALERTMANAGER}
          scopes: [send]
        - name: ops
          token_file: /run/secrets/notify-ops
          scopes: [send, read, admin]
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, model_validator

from .states import SendPolicy


class Scope(enum.StrEnum):
    SEND = "send"
    """Post notifications (and estimates)."""
    READ = "read"
    """Read notifications, channels and the inbox."""
    ADMIN = "admin"
    """Everything (the metrics and the outbox's state included)."""


class TokenSettings(BaseModel):
    """One bearer token and what it may do. Give ``token`` (``${ENV}`` works) or ``token_file``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="who holds it (logged; the token never is)")
    token: SecretStr | None = None
    token_file: Path | None = None
    scopes: list[Scope] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> TokenSettings:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give token or token_file, exactly one")
        if self.token_file is not None:
            path = self.token_file.expanduser()
            if not path.is_absolute():
                path = _base_dir(info) / path
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read token_file {str(path)!r}: {exc.strerror}") from None
            self.token = SecretStr(text)
        assert self.token is not None
        if len(self.token.get_secret_value()) < 16:
            raise ValueError("a token must be at least 16 characters long")
        return self


def _base_dir(info: ValidationInfo) -> Path:
    doc: Any = (info.context or {}).get("yaml")
    source = getattr(doc, "source", None)
    return Path(source).expanduser().resolve().parent if source else Path.cwd()


class ListenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LimitSettings(BaseModel):
    """Request limits and backpressure."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    """The largest request body accepted (413 above)."""
    max_header_bytes: int = Field(default=8190, gt=0)
    """The longest request line or header field accepted."""
    max_recipients: int = Field(default=10_000, gt=0)
    """The most recipients one notification may name."""
    outbox_max_depth: int = Field(default=1_000_000, gt=0)
    """Deliveries queued, claimed or sending at most; past it the API answers 503."""
    retry_after_seconds: int = Field(default=5, gt=0)
    """The ``Retry-After`` of a 503."""


class WorkerSettings(BaseModel):
    """How the workers inside ``serve`` drain the outbox."""

    model_config = ConfigDict(extra="forbid")

    lease_seconds: float = Field(default=60.0, gt=0)
    claim_batch: int = Field(default=4000, gt=0)
    """Deliveries claimed at once (grouped into provider requests by the channel's batch size).
    A claim is one round on the store, which also commits submits and answers: four Devino
    requests' worth per claim keeps an account's 10 requests/s fed during a bulk send."""
    max_in_flight: int = Field(default=16, gt=0)
    """Provider requests under way at once, per channel (the channel's rate limit paces them)."""
    linger_seconds: float = Field(default=0.1, ge=0)
    max_linger_seconds: float = Field(default=1.0, ge=0)
    """Woken from idle by new notifications, or after a claim that took all that was due, the
    sender waits until none has come for ``linger_seconds`` (at most ``max_linger_seconds``)
    before it claims, so a burst of one text goes out in as few provider requests as the batch
    size allows. It stops waiting as soon as a channel's full batch is due: waiting longer
    would merge nothing into it."""
    idle_poll_seconds: float = Field(default=1.0, gt=0)
    """How often an idle worker looks at the store (a submit in this process wakes it at once)."""
    status_max_interval_seconds: float = Field(default=300.0, gt=0)
    """Status polls back off from ``status.poll_interval_seconds`` up to this."""
    status_reads_per_second: float = Field(default=2.0, gt=0)
    """Message IDs the follower reads the status of, per second and channel, at most. A
    provider may answer one ID per request under one rate limit shared with sends (Devino:
    10 requests/s); this keeps following from taking the sender's budget."""
    follow_for_seconds: float = Field(default=3 * 86400.0, gt=0)
    """An accepted message not final after this long is no longer followed."""
    inbox_interval_seconds: float = Field(default=5.0, gt=0)
    """How often the inbox is read. While the channel has sends under way a read waits for
    them, at most one more interval (the sends come first in the account's request budget)."""
    inbox_lookback_seconds: float = Field(default=3600.0, gt=0)
    """On the first start, inbound messages this far back are read."""
    inbox_overlap_seconds: float = Field(default=60.0, ge=0)
    """Each read starts this far before the stored position (duplicates are dropped), so a
    message the provider stamps late is not missed."""
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    """On SIGTERM, how long requests under way may take to finish."""


class ServiceSettings(BaseModel):
    """The ``service:`` section."""

    model_config = ConfigDict(extra="forbid")

    listen: ListenSettings = Field(default_factory=ListenSettings)
    store: str = Field(default="sqlite:///./notify-devino-outbox.db", repr=False)
    """Where the outbox is: ``sqlite:///absolute/path.db``, ``sqlite:///./relative.db``,
    ``postgresql://user:password@host/database`` (not in the repr: it may hold a password)."""
    store_file: Path | None = Field(default=None, repr=False)
    """A file holding ``store`` (a DSN with its password, as a secret), instead of it."""
    tokens: list[TokenSettings] = Field(default_factory=list)
    """Bearer tokens; none configured means no authentication (only sensible on loopback)."""
    auth: bool = True
    """False turns authentication off (the embedded demo setup does)."""
    send_policy: SendPolicy = SendPolicy.AT_MOST_ONCE
    idempotency_key_hours: float = Field(default=24.0, gt=0)
    """How long an ``Idempotency-Key`` is remembered."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)

    @model_validator(mode="after")
    def _store_from_file(self, info: ValidationInfo) -> ServiceSettings:
        if self.store_file is None:
            return self
        if "store" in self.model_fields_set:
            raise ValueError("give store or store_file, not both")
        path = self.store_file.expanduser()
        if not path.is_absolute():
            path = _base_dir(info) / path
        try:
            self.store = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read store_file {str(path)!r}: {exc.strerror}") from None
        if not self.store:
            raise ValueError(f"store_file {str(path)!r} is empty: expected the store's URL")
        return self

    @model_validator(mode="after")
    def _unique_token_names(self) -> ServiceSettings:
        names = [t.name for t in self.tokens]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"token names must be unique: {', '.join(duplicates)}")
        return self


__all__ = [
    "LimitSettings",
    "ListenSettings",
    "Scope",
    "ServiceSettings",
    "TokenSettings",
    "WorkerSettings",
]
