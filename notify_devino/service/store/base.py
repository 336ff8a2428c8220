"""The store interface: what the service keeps, and every way it may change it.

Nothing above this module knows which engine it has. Every method is a coroutine and one
atomic step: it either happened (committed, durable) or it did not. An engine passes the
contract suite in ``tests/service/test_store_contract.py``.

The model, in words:

- a **notification** is what a caller asked for (its text, who to, how); it is stored once and
  never changes;
- a **delivery** is one recipient of it on one channel (a route's next channel is a new
  delivery with ``step`` one higher); it moves through the state machine of
  :mod:`notify_devino.service.states`, and every move is kept as a **transition** with its time;
- a **lease** is how a worker holds deliveries while it works on them: ``claim`` gives the
  caller (``owner``) the rows until ``lease_expires_at``; a worker that dies loses them when the
  lease expires (``recover``). Engines shared between processes claim with ``SKIP LOCKED`` or
  its like; a single-process engine says so with ``exclusive = True``, and then every lease
  not held by the caller of ``recover`` is dead;
- a **key** (idempotency key, or any deduplication key with a window) maps to the notification
  it created, until it expires;
- the **inbox** is every inbound message read, once, in the order stored, with a read position
  per channel.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ...errors import NotifyError
from ...limits import LimiterFactory
from ..states import SendPolicy, State


class StoreError(NotifyError):
    """The store could not do what was asked."""


class StoreLocked(StoreError):
    """Another process has the store open as its writer."""


class StoreUnavailable(StoreError):
    """The store cannot commit now (disk full, database down); try again later."""


class StoreFull(StoreError):
    """The outbox holds as many unsent deliveries as it may (``max_active``)."""


class NoFreeCode(StoreError):
    """No acknowledgement code of the asked length is free for every recipient."""


class Work(enum.StrEnum):
    """What a worker claims deliveries for."""

    SEND = "send"
    """Queued deliveries that are due: they become ``claimed``."""
    FOLLOW = "follow"
    """Accepted deliveries whose next look is due (a status poll, a route's fallback timer):
    they stay ``accepted``, leased to the caller."""


# NewDelivery, Delivery and Change are not frozen: a bulk send makes one of each per recipient,
# and a frozen dataclass's __init__ (object.__setattr__ per field) costs eight times as much.
# Nothing changes them after they are made.
@dataclass(slots=True)
class NewDelivery:
    """A delivery to create.

    :param channel: the configured channel name.
    :param address: the recipient's address on that channel.
    :param due_at: when it may be sent (aware).
    :param group_key: deliveries with the same key that are due together may share one
        provider request (same channel, text, sender and options).
    :param payload: what the sender needs (JSON-able): text, sender, options, the route.
    :param contact: the contact's name, when it was addressed by contact or group.
    :param step: its position on the route (0 for the first channel).
    """

    channel: str
    address: str
    due_at: datetime
    group_key: str
    payload: Mapping[str, Any]
    contact: str | None = None
    step: int = 0


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A notification to create.

    :param id: its ID (chosen by the caller, so a response can name it before the commit).
    :param request: the request as accepted (JSON-able), kept for ``GET``.
    """

    id: str
    text: str
    request: Mapping[str, Any]
    created_at: datetime
    route: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitKey:
    """A key that makes a submit happen at most once while it lasts.

    :param scope: the key's namespace (``idempotency``, ``alertmanager``, ...).
    :param key: the caller's key.
    :param request_hash: a hash of the request: the same key with another hash is a conflict.
        None makes it a plain deduplication key: any request under it is the first one.
    :param expires_at: when the key is forgotten and may create a new notification.
    """

    scope: str
    key: str
    request_hash: str | None
    expires_at: datetime


class SubmitOutcome(enum.StrEnum):
    CREATED = "created"
    REPLAY = "replay"
    """The key was known with the same hash (or as a deduplication key): nothing was created."""
    CONFLICT = "conflict"
    """The key was known with another request hash: nothing was created."""


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :meth:`Store.submit` did.

    :param notification_id: the notification created, or the one the key first created.
    :param response: the response stored with the key the first time (replay, conflict), or
        the one given now (created).
    """

    outcome: SubmitOutcome
    notification_id: str
    response: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Delivery:
    """A stored delivery (see the module's docstring)."""

    id: int
    notification_id: str
    channel: str
    address: str
    contact: str | None
    step: int
    state: State
    due_at: datetime | None
    group_key: str
    payload: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    message_ids: tuple[str, ...] = ()
    provider_state: str | None = None
    error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    accepted_at: datetime | None = None
    fallback_at: datetime | None = None
    final_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One stored change of a delivery's state."""

    delivery_id: int
    from_state: State | None
    to_state: State
    at: datetime
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class StoredNotification:
    """A notification with every delivery (every recipient on every channel tried) and every
    transition, oldest first."""

    id: str
    text: str
    request: Mapping[str, Any]
    route: str | None
    created_at: datetime
    deliveries: tuple[Delivery, ...]
    transitions: tuple[Transition, ...]


_UNSET: Any = object()


@dataclass(slots=True)
class Change:
    """A change to one delivery, applied only if it is still in ``expect`` (compare and set).

    :param to: the new state; None changes fields only (a status poll with no news).
    :param due_at: the next time a worker should look at it (None: never).
    :param release: drop the lease (the work is done).
    Fields left at their default are not changed.
    """

    delivery_id: int
    expect: State
    to: State | None = None
    detail: str | None = None
    message_ids: Sequence[str] | None = None
    provider_state: str | None = None
    error: str | None = None
    due_at: datetime | None = _UNSET
    fallback_at: datetime | None = _UNSET
    release: bool = True

    @property
    def sets_due_at(self) -> bool:
        return self.due_at is not _UNSET

    @property
    def sets_fallback_at(self) -> bool:
        return self.fallback_at is not _UNSET


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`Store.recover` did: delivery IDs by what became of them."""

    requeued: tuple[int, ...] = ()
    """Claimed, never started sending: back to the queue."""
    unknown: tuple[int, ...] = ()
    """Were sending, no answer, ``at_most_once``: unknown, never resent."""
    resent: tuple[int, ...] = ()
    """Were sending, no answer, ``at_least_once``: queued again."""
    followed: tuple[int, ...] = ()
    """Accepted, their follow lease dropped: followed on."""


@dataclass(frozen=True, slots=True)
class Depth:
    """How many deliveries are in one state on one channel, and the oldest one's creation."""

    state: State
    channel: str
    count: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """A stored inbound message. ``seq`` is its cursor: strictly increasing in storing order."""

    seq: int
    channel: str
    sender: str
    recipient: str
    text: str
    received_at: datetime
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound message to store (deduplicated on all its fields)."""

    channel: str
    sender: str
    recipient: str
    text: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`Store.apply` did: the deliveries changed, as they are now, and those created."""

    changed: tuple[Delivery, ...] = ()
    created: tuple[Delivery, ...] = ()
    skipped: tuple[int, ...] = field(default=())
    """IDs not changed: no longer in ``expect``, or leased to another owner."""


@dataclass(frozen=True, slots=True)
class AlertCode:
    """The acknowledgement code of one open alert group for one recipient's address.

    A code is unique among the open alerts of its address, and free again once the alert is
    closed (resolved). Every recipient of one notification has the same code.

    :param alert_key: the alert group (the Alertmanager receiver and group key, hashed).
    :param address: the recipient's address on the channel replies come back on (a phone).
    :param labels: the labels a silence for this alert matches on.
    :param acked_by: who acknowledged it (a contact's name, else the address that replied).
    :param silence_id: the Alertmanager silence the ack created, once created.
    """

    alert_key: str
    address: str
    code: str
    labels: Mapping[str, str]
    opened_at: datetime
    contact: str | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    silence_id: str | None = None
    closed_at: datetime | None = None


class Store(abc.ABC):
    """The durable state of the service. See the module docstring for the model.

    Times passed as ``now`` are aware datetimes; None means the store's own clock (the
    database's, for a shared engine).
    """

    url: str
    """Where it is, with no password in it (for logs and errors)."""

    exclusive: bool = False
    """True when only one process may have the store open (it holds a lock): every lease not
    held by the caller of :meth:`recover` is then dead."""

    readonly: bool = False
    """Set before :meth:`open` to only read (``notify-devino queue`` beside a running
    ``serve``): no lock, no migrations; an engine may refuse writes."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, take the engine's lock if it has one, run pending migrations.

        :raises StoreLocked: another process has it open as its writer.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release everything. Idempotent."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The version of the schema, after :meth:`open`'s migrations."""

    @abc.abstractmethod
    async def now(self) -> datetime:
        """The store's clock."""

    @abc.abstractmethod
    async def check_writable(self) -> None:
        """Commit a no-op write. :raises StoreUnavailable: it cannot commit."""

    # -- intake ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def submit(
        self,
        notification: NewNotification,
        deliveries: Sequence[NewDelivery],
        *,
        key: SubmitKey | None = None,
        response: Mapping[str, Any] | None = None,
        max_active: int | None = None,
    ) -> SubmitResult:
        """Create a notification and its first deliveries, all or nothing.

        With ``key``: if an unexpired key of that scope and name exists, nothing is created and
        the result is a replay (same hash, or a deduplication key) or a conflict (another hash),
        carrying the first ``response``. Otherwise the key is stored with ``response``.
        Expired keys are as if absent.

        :param max_active: refuse with :class:`StoreFull` when at least this many deliveries
            are queued, claimed or sending (checked in the same transaction).
        """

    @abc.abstractmethod
    async def get_notification(self, notification_id: str) -> StoredNotification | None:
        """The notification with every delivery and transition, or None."""

    @abc.abstractmethod
    async def list_deliveries(
        self,
        *,
        states: Sequence[State] | None = None,
        notification_id: str | None = None,
        limit: int = 100,
        ids: Sequence[int] | None = None,
    ) -> list[Delivery]:
        """Deliveries, oldest first, optionally only in some states, of one notification, or
        with these IDs."""

    # -- workers -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(
        self,
        work: Work,
        *,
        owner: str,
        lease_seconds: float,
        limit: int,
        channels: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries to ``owner`` for ``work``, earliest due first.

        A delivery is due when its ``due_at`` has come and no live lease holds it. ``SEND``
        moves them to ``claimed`` (a transition is stored). Two callers never get one row.
        """

    @abc.abstractmethod
    async def extend_leases(
        self, owner: str, delivery_ids: Sequence[int], lease_seconds: float
    ) -> int:
        """Extend the leases ``owner`` holds on these rows (a heartbeat). :return: rows extended."""

    @abc.abstractmethod
    async def apply(
        self,
        changes: Sequence[Change],
        *,
        owner: str | None = None,
        create: Sequence[tuple[str, NewDelivery]] = (),
        now: datetime | None = None,
        returning: bool = True,
        urgent: bool = False,
    ) -> Applied:
        """Apply changes and create deliveries (``(notification_id, delivery)``), all in one
        transaction. A change whose row is no longer in ``expect``, or is leased to someone
        other than ``owner``, is skipped (reported in ``skipped``).

        :param returning: False when the caller does not need the changed rows back: the
            engine may leave ``changed`` empty (it saves reading them). ``skipped`` is always
            reported, so the caller knows which of its changes took.
        :param urgent: a request waits on this commit (a send that is leaving): an engine
            that does its work in turn does this before the work not yet started.

        :raises TransitionError: a change the state machine does not allow; nothing applied.
        """

    @abc.abstractmethod
    async def recover(
        self, *, owner: str, policy: SendPolicy, now: datetime | None = None
    ) -> Recovery:
        """Take back deliveries whose holder died: leases expired, or (``exclusive`` stores)
        every lease not held by ``owner``. Claimed -> queued; sending -> unknown
        (``AT_MOST_ONCE``) or queued (``AT_LEAST_ONCE``); accepted -> lease dropped."""

    @abc.abstractmethod
    async def next_due(self, work: Work) -> datetime | None:
        """When the earliest unleased delivery for ``work`` falls due (None: none waits)."""

    # -- observability -----------------------------------------------------------------------

    @abc.abstractmethod
    async def depth(self, now: datetime | None = None) -> list[Depth]:
        """Counts of deliveries by state and channel, with the oldest of each (every state
        that has rows)."""

    @abc.abstractmethod
    async def active_count(self) -> int:
        """Deliveries queued, claimed or sending."""

    # -- keys --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def purge_keys(self, now: datetime | None = None) -> int:
        """Forget expired keys. :return: how many."""

    # -- inbox -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def inbox_position(self, channel: str) -> datetime | None:
        """The channel's stored read position: inbound messages up to it were read."""

    @abc.abstractmethod
    async def record_inbox(
        self, channel: str, messages: Sequence[Inbound], position: datetime
    ) -> list[InboundRecord]:
        """Store the messages not stored before and move the read position, in one
        transaction. :return: the messages that were new, in storing order."""

    @abc.abstractmethod
    async def inbox(self, *, after: int = 0, limit: int = 100) -> list[InboundRecord]:
        """Stored inbound messages with ``seq > after``, in order."""

    # -- alert acknowledgement codes ---------------------------------------------------------

    @abc.abstractmethod
    async def open_alert_code(
        self,
        alert_key: str,
        recipients: Mapping[str, str | None],
        labels: Mapping[str, str],
        *,
        digits: int = 4,
        now: datetime | None = None,
    ) -> str:
        """The code of an alert group for its recipients (address -> contact name), in one
        transaction: the group's open code when it has one and it is free for every recipient,
        else a new one free among the open alerts of every recipient (the old rows of the group
        take it too). Rows are created for recipients that had none; ``labels`` are updated.

        :raises NoFreeCode: no code of ``digits`` digits is free for all recipients.
        """

    @abc.abstractmethod
    async def open_alert_codes(self, address: str) -> list[AlertCode]:
        """The open (not closed) alert codes of an address, oldest first."""

    @abc.abstractmethod
    async def alert_codes(self, alert_key: str) -> list[AlertCode]:
        """Every row of an alert group, open or closed, oldest first."""

    @abc.abstractmethod
    async def acknowledge_alert(
        self, alert_key: str, by: str, now: datetime | None = None
    ) -> tuple[bool, list[AlertCode]]:
        """Mark an open alert group acknowledged (every recipient's row).

        :return: whether this call acknowledged it (False: it was already, or it is closed),
            and the group's rows as they are now.
        """

    @abc.abstractmethod
    async def set_alert_silence(self, alert_key: str, silence_id: str | None) -> None:
        """Remember (or forget, with None) the silence an acknowledgement created."""

    @abc.abstractmethod
    async def close_alert(self, alert_key: str, now: datetime | None = None) -> list[AlertCode]:
        """Close an alert group (it resolved): its codes are free again.

        :return: the rows it closed now (none when it was closed or unknown).
        """

    @abc.abstractmethod
    async def acknowledged_alert_keys(self) -> set[str]:
        """The open alert groups that are acknowledged."""

    @abc.abstractmethod
    async def cursor(self, name: str) -> int:
        """A named read position of the caller's (0 when never set)."""

    @abc.abstractmethod
    async def set_cursor(self, name: str, value: int) -> None:
        """Store a named read position (it never moves back)."""

    # -- shared between processes (defaults for an ``exclusive`` store) ---------------------

    def subscribe(self, listener: Callable[[Work], None]) -> None:  # noqa: B027 - a default
        """Call ``listener`` (in the event loop) when another process may have made work due.
        An exclusive store has no other process: the default never calls it."""

    async def lead(self, name: str, owner: str, lease_seconds: float) -> bool:
        """Take or keep the lease of the singleton ``name`` (work that must run in one process
        at a time, such as reading a channel's inbox) for ``lease_seconds``; :return: whether
        ``owner`` holds it now. Call it again well within the lease to keep it. An exclusive
        store has one process: the default says yes."""
        return True

    async def resign(self, name: str, owner: str) -> None:  # noqa: B027 - a default
        """Give up the singleton ``name`` if ``owner`` holds it (a graceful stop)."""

    def rate_limiters(self, owner: str) -> LimiterFactory | None:
        """Rate limiters of provider accounts shared by every process of this store (see
        :mod:`notify_devino.limits`), or None: the channels keep their own (an exclusive
        store has one process, whose limiters see every request)."""
        return None


__all__ = [
    "AlertCode",
    "Applied",
    "Change",
    "Delivery",
    "Depth",
    "Inbound",
    "InboundRecord",
    "NewDelivery",
    "NewNotification",
    "NoFreeCode",
    "Recovery",
    "Store",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreUnavailable",
    "StoredNotification",
    "SubmitKey",
    "SubmitOutcome",
    "SubmitResult",
    "Transition",
    "Work",
]
