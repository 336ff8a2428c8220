"""The outbox for code that embeds notify-devino: the service's durability without HTTP.

::

    async with open_store("sqlite:///var/lib/app/outbox.db") as store:
        outbox = Outbox(store, config)
        queued = await outbox.submit(NotificationRequest(text="Disk full", to=["oncall"]))

A submit returns once the notification is committed; the workers of
:mod:`notify_devino.service.workers` (inside ``notify-devino serve``, or started by the
embedder) send it, follow it and fall back along its route. The HTTP API calls this same
object.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    model_validator,
)

from .. import routing
from ..config import Config
from ..errors import InvalidInputError, NotifyError
from ..types import utc_now
from .store import NewDelivery, NewNotification, Store, SubmitKey, SubmitOutcome

IDEMPOTENCY_SCOPE = "idempotency"


Name = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=r"\S")]
"""A non-blank string: a name, an address, a tag."""


def _iso_text(value: object) -> object:
    if isinstance(value, str | datetime):
        return value
    raise ValueError("expected an ISO 8601 date-time string, such as 2026-12-01T09:00:00+03:00")


_NAIVE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"
_RULES: dict[str, Any] = {
    # What the validator below checks, in JSON Schema, so the OpenAPI document says it too.
    "oneOf": [
        {
            "required": ["to"],
            "properties": {"to": {"minItems": 1}, "addresses": {"maxItems": 0}},
            "anyOf": [
                {"not": {"required": ["channel"]}},
                {"properties": {"channel": {"type": "null"}}},
                {"not": {"required": ["route"]}},
                {"properties": {"route": {"type": "null"}}},
            ],
        },
        {
            "required": ["addresses"],
            "properties": {
                "addresses": {"minItems": 1},
                "to": {"maxItems": 0},
                "route": {"type": "null"},
            },
        },
    ],
    "if": {
        "required": ["recipient_local_time"],
        "properties": {"recipient_local_time": {"const": True}},
    },
    "then": {
        "required": ["send_at"],
        "properties": {"send_at": {"type": "string", "pattern": _NAIVE_TIME}},
    },
}


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
"""``json.dumps(value, sort_keys=True, ensure_ascii=False)``, without building an encoder per
call. Request digests are kept with idempotency keys: this text must not change."""


class NotificationRequest(BaseModel):
    """What a caller asks the service to send (the body of ``POST /v1/notifications``).

    Name people (``to``: contacts and groups of the configuration, sent along a route) or give
    ``addresses`` on one channel.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_RULES)

    text: StrictStr = Field(min_length=1, max_length=20_000)
    to: list[Name] = Field(default_factory=list, max_length=10_000)
    """Contact and group names; the route (``route``, else the first that matches
    ``severity`` and ``tags``) says which channels, in order."""
    addresses: list[Name] = Field(default_factory=list, max_length=10_000)
    """Addresses on ``channel`` (or the default channel): phone numbers for SMS."""
    channel: Name | None = None
    route: Name | None = None
    severity: Name | None = None
    tags: list[Name] = Field(default_factory=list, max_length=100)
    sender: Name | None = None
    send_at: Annotated[datetime, BeforeValidator(_iso_text)] | None = None
    """When to send: an aware time is held in the outbox until then; a naive one, with
    ``recipient_local_time``, is each recipient's local time (the provider holds it)."""
    recipient_local_time: StrictBool = False
    validity_seconds: StrictFloat | None = Field(default=None, gt=0, le=30 * 86400)
    metadata: dict[Name, Annotated[StrictStr, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=50
    )

    @model_validator(mode="after")
    def _coherent(self) -> NotificationRequest:
        if bool(self.to) == bool(self.addresses):
            raise ValueError(
                "give recipients as 'to' (contacts, groups) or 'addresses', one of them"
            )
        if self.route is not None and not self.to:
            raise ValueError("'route' needs 'to' (contacts or groups): addresses go on one channel")
        if self.route is not None and self.channel is not None:
            raise ValueError("give 'channel' or 'route', not both")
        if self.recipient_local_time:
            if self.send_at is None or self.send_at.tzinfo is not None:
                raise ValueError("recipient_local_time needs send_at as a time without a zone")
        elif self.send_at is not None and self.send_at.tzinfo is None:
            raise ValueError(
                "send_at needs a time zone (or recipient_local_time: true for local time)"
            )
        return self

    def digest(self, dumped: Mapping[str, Any] | None = None) -> str:
        """A hash of the request's meaning (the same request in another key order hashes alike).

        :param dumped: ``self.model_dump(mode="json")``, if the caller has it already.
        """
        if dumped is None:
            dumped = self.model_dump(mode="json")
        return hashlib.sha256(_CANONICAL.encode(dumped).encode()).hexdigest()


class IdempotencyConflict(NotifyError):
    """The idempotency key was used before with another request."""

    def __init__(self, key: str, notification_id: str) -> None:
        super().__init__(
            f"the Idempotency-Key {key!r} was used for another request (notification "
            f"{notification_id}); use a new key for a new request"
        )
        self.key, self.notification_id = key, notification_id


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit did. ``response`` is what the first submit answered (the API's body)."""

    notification_id: str
    replayed: bool
    response: Mapping[str, Any]


class _RandomPool(threading.local):
    """Bytes from ``os.urandom``, read 4 KiB at a time, for each thread its own: one system
    call per 409 ids instead of one each (the call releases the GIL, and on a busy server the
    event loop then waits for the store thread to give it back). A forked child reads anew,
    so parent and child never share bits."""

    def __init__(self) -> None:
        self.empty()

    def empty(self) -> None:
        self.data = b""
        self.at = 0


_RANDOM = _RandomPool()
_RANDOM_READ = 4096
os.register_at_fork(after_in_child=_RANDOM.empty)


def _random_10_bytes() -> bytes:
    pool = _RANDOM
    at = pool.at
    if at + 10 > len(pool.data):
        pool.data, at = os.urandom(_RANDOM_READ), 0
    pool.at = at + 10
    return pool.data[at : at + 10]


def new_notification_id() -> str:
    """A UUID of version 7 (RFC 9562): the time in milliseconds, then 74 random bits (from
    the system's CSPRNG, as the RFC advises).

    Ids made one after another sort together, so each commit adds its notifications at the
    end of the store's indexes; a random id lands on a page of its own per row, and with a
    backlog of 10,000 rows that doubled the work of an intake commit.

    Made as text: 12 hex digits of the time, then 20 of random bytes, of which the first
    gives way to the version (7) and the fifth keeps two bits beside the variant; as
    ``str(uuid.UUID(...))`` would write it, in two thirds of the time."""
    h = ((time.time_ns() // 1_000_000).to_bytes(6, "big") + _random_10_bytes()).hex()
    variant = "89ab"[int(h[16], 16) & 3]  # 0b10, then two of the digit's random bits
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


_NOT_SHARED = ("route", "channels", "fallback_after")
_NOT_IN_VALUES = frozenset((*_NOT_SHARED, "metadata"))
_GROUP_KEYS: dict[tuple[Any, ...], str] = {}
_GROUP_KEYS_KEPT = 4096


def group_key(channel: str, payload: Mapping[str, Any]) -> str:
    """Deliveries with equal keys can share one provider request.

    Alerts repeat their texts, so up to ``_GROUP_KEYS_KEPT`` keys are kept by the payload's
    values (when they are all hashable: strings, numbers, a flat metadata), all forgotten
    when that many are kept. The values are taken in the payload's own order (``plan``
    builds every payload in one order): the same payload in another order is another entry,
    with the same key."""
    metadata = payload.get("metadata") or {}
    try:
        values = (
            channel,
            *[(k, v) for k, v in payload.items() if k not in _NOT_IN_VALUES],
            tuple(sorted(metadata.items())) if metadata else (),
        )
        known = _GROUP_KEYS.get(values)
    except TypeError:  # a value that cannot be hashed (or compared): no shortcut
        values, known = None, None
    if known is not None:
        return known
    shared = {k: v for k, v in payload.items() if k not in _NOT_SHARED}
    shared["metadata"] = {k: v for k, v in metadata.items() if k != routing.NOTIFICATION_ID_KEY}
    canonical = json.dumps([channel, shared], sort_keys=True, ensure_ascii=False)
    key = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    if values is not None:
        if len(_GROUP_KEYS) >= _GROUP_KEYS_KEPT:
            _GROUP_KEYS.clear()
        _GROUP_KEYS[values] = key
    return key


def plan(
    config: Config, request: NotificationRequest, now: datetime
) -> tuple[str | None, list[NewDelivery]]:
    """The route taken and the first deliveries of a request.

    :raises InvalidInputError: a name, channel or route that is not configured, or a contact
        with no address on any channel of the route.
    """
    due = now
    if request.send_at is not None and not request.recipient_local_time:
        due = max(now, request.send_at)
    # Not the notification's id: the row has it, and the sender adds it. Without it, the
    # payloads of one text to many recipients are one string, decoded once per claim.
    metadata = (
        {k: v for k, v in request.metadata.items() if k != routing.NOTIFICATION_ID_KEY}
        if request.metadata
        else {}
    )
    if request.severity:
        metadata["severity"] = request.severity
    payload: dict[str, Any] = {
        "text": request.text,
        "sender": request.sender,
        "local_send_at": request.send_at.isoformat()
        if request.recipient_local_time and request.send_at
        else None,
        "validity_seconds": request.validity_seconds,
        "metadata": metadata,
    }
    if request.addresses:
        channel = request.channel or config.default_channel
        _check_channel(config, channel)
        assert channel is not None
        key = group_key(channel, payload)
        addresses = list(dict.fromkeys([a.strip() for a in request.addresses]))
        shared = {**payload, "channels": [channel]}  # one object: the store writes it once
        return None, [NewDelivery(channel, address, due, key, shared) for address in addresses]
    try:
        contacts = routing.resolve_contacts(config, request.to)
    except ValueError as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(str(exc), field="to") from None
    if request.channel is not None:
        _check_channel(config, request.channel)
        route = routing.RoutePlan(None, (request.channel,), None)
    else:
        route = routing.select_route(
            config, severity=request.severity, tags=request.tags, route=request.route
        )
    payload = {
        **payload,
        "route": route.name,
        "channels": list(route.channels),
        "fallback_after": route.fallback_after,
    }
    deliveries = []
    keys: dict[str, str] = {}  # by channel: every contact shares the payload
    for contact in contacts:
        step = first_step(config, contact, route.channels, 0)
        if step is None:
            raise InvalidInputError(
                f"contact {contact!r} has no address on any channel of the route "
                f"({', '.join(route.channels)})",
                field="to",
                value=contact,
                expected="a contact with an address on one of " + ", ".join(route.channels),
            )
        index, channel, address = step
        deliveries.append(
            NewDelivery(
                channel,
                address,
                due,
                keys.get(channel) or keys.setdefault(channel, group_key(channel, payload)),
                payload,
                contact,
                index,
            )
        )
    return route.name, deliveries


def first_step(
    config: Config, contact: str, channels: list[str] | tuple[str, ...], start: int
) -> tuple[int, str, str] | None:
    """The first channel from ``start`` on that the contact has an address for."""
    addresses = config.contacts.get(contact, {})
    for index in range(start, len(channels)):
        address = addresses.get(channels[index])
        if address:
            return index, channels[index], str(address)
    return None


def _check_channel(config: Config, channel: str | None) -> None:
    if channel is None:
        raise InvalidInputError(
            "no channel given and no default channel configured",
            field="channel",
            expected="one of " + ", ".join(config.channels),
        )
    if channel not in config.channels:
        raise InvalidInputError(
            f"no channel named {channel!r}",
            field="channel",
            value=channel,
            expected="one of " + ", ".join(config.channels),
        )


class Outbox:
    """Durable intake: :meth:`submit` returns once the notification is committed.

    :param store: an open store.
    :param config: the configuration (channels, contacts, groups, routes).
    :param key_ttl: how long an idempotency key is remembered.
    :param max_active: refuse (:class:`~notify_devino.service.store.StoreFull`) past this many
        unsent deliveries.
    :param on_submit: called after each commit that created something, with the deliveries it
        queued (wakes the sender).
    """

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        key_ttl: timedelta = timedelta(hours=24),
        max_active: int | None = None,
        on_submit: Callable[[Sequence[NewDelivery]], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.key_ttl = key_ttl
        self.max_active = max_active
        self._listeners: list[Callable[[Sequence[NewDelivery]], None]] = (
            [on_submit] if on_submit else []
        )

    def add_listener(self, listener: Callable[[Sequence[NewDelivery]], None]) -> None:
        self._listeners.append(listener)

    async def submit(
        self,
        request: NotificationRequest,
        *,
        idempotency_key: str | None = None,
        dedup: SubmitKey | None = None,
    ) -> Submitted:
        """Commit a notification; see the class docstring.

        :param idempotency_key: a repeat with the same request answers the first response
            (``replayed``); with another request it raises :class:`IdempotencyConflict`.
        :param dedup: a deduplication key of the caller's own (the Alertmanager receiver's):
            while it lasts, any request under it is the first one.
        :raises InvalidInputError: the request names something not configured.
        :raises StoreFull: the outbox is full. :raises StoreUnavailable: it cannot commit.
        """
        if idempotency_key is not None and dedup is not None:
            raise ValueError("give idempotency_key or dedup, not both")
        now = utc_now()
        notification_id = new_notification_id()
        route, deliveries = plan(self.config, request, now)
        response = {
            "id": notification_id,
            "state": "queued",
            "route": route,
            "deliveries": len(deliveries),
            "created_at": now.isoformat(),
        }
        dumped = request.model_dump(mode="json")
        key = dedup
        if idempotency_key is not None:
            key = SubmitKey(
                IDEMPOTENCY_SCOPE, idempotency_key, request.digest(dumped), now + self.key_ttl
            )
        result = await self.store.submit(
            NewNotification(
                id=notification_id,
                text=request.text,
                request=dumped,
                created_at=now,
                route=route,
            ),
            deliveries,
            key=key,
            response=response,
            max_active=self.max_active,
        )
        if result.outcome is SubmitOutcome.CONFLICT:
            raise IdempotencyConflict(key.key if key else "", result.notification_id)
        if result.outcome is SubmitOutcome.CREATED:
            for listener in self._listeners:
                listener(deliveries)
        return Submitted(
            result.notification_id,
            result.outcome is SubmitOutcome.REPLAY,
            result.response or {"id": result.notification_id},
        )


__all__ = [
    "IDEMPOTENCY_SCOPE",
    "IdempotencyConflict",
    "NotificationRequest",
    "Outbox",
    "Submitted",
    "first_step",
    "group_key",
    "new_notification_id",
    "plan",
]
