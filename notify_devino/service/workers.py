"""The workers inside ``notify-devino serve``: they drain the outbox through the dispatcher.

- **sender**: claims as many due deliveries as its free request slots can take; puts those
  with one text for one channel into one send of up to the channel type's ``batch_size``
  recipients (a chunk for which no slot is left goes back to the queue at once), sends through
  :meth:`Dispatcher.send` (so the channel's rate limit and retry policy apply, and
  ``notify_after_send`` observers hear of it), and stores each recipient's outcome and message
  IDs. A chunk is committed ``sending`` *before* its request leaves, and no sooner: when the
  channel announces the departure (:mod:`notify_devino.departure`: the Devino channel does,
  as its rate-limit slot nears), else just before the send is called. A chunk still waiting
  for its slot, or for the retry of an attempt refused unprocessed, is ``claimed``, and a
  crash then queues it again. A failed or unknown outcome moves a contact to the route's next
  channel.
- **follower**: reads the status of accepted messages (``notify_status_changed`` observers hear
  of each change), backing off from ``status.poll_interval_seconds`` as a message ages, until it
  is final; when a route's ``fallback_after_seconds`` runs out first, the delivery is ``late``
  and the next channel is tried. The timers are ``due_at``/``fallback_at`` in the store, so they
  survive a restart.
- **inbox reader**: reads inbound messages from the stored read position on, stores each once
  and moves the position in the same commit; ``notify_inbound_message`` observers hear of each
  new message once.

:meth:`Service.start` first recovers what a crashed run left (see
:meth:`Store.recover <notify_devino.service.store.Store.recover>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from .. import routing
from ..config import Config
from ..departure import on_departure
from ..dispatcher import Dispatcher
from ..errors import ConfigError, DepartureRefused, InvalidInputError, UnsupportedOperationError
from ..hookspecs import ChannelType
from ..streaming import DEFAULT_BATCH_SIZE
from ..types import DeliveryState, InboundMessage, MessageStatus, Notification, SendOutcome, utc_now
from .metrics import ServiceMetrics, observe_many
from .outbox import Outbox, first_step
from .settings import ServiceSettings
from .states import NEEDS_NEXT_STEP, State
from .store import Change, Delivery, Inbound, NewDelivery, Store, Work

log = structlog.get_logger(__name__)

STATUS_CHUNK = 100
YIELD_TO_SENDER_SECONDS = 30.0
"""How long the follower holds back, at most, while the sender has work: the provider's
request budget (Devino: 10 requests/s per account) goes to sends first, a burst's status reads
come after it (or after this long, if the sends never stop)."""
MAINTENANCE_SECONDS = 60.0
"""How often expired idempotency keys are purged and the balances read."""
LEADER_LEASE_SECONDS = 5.0
"""How long a singleton's holder (the inbox reader of a channel) keeps it without renewing:
a stopped or dead instance's singleton moves to another within about this long."""


def _duration(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class _Departure:
    """A claimed chunk's record of its requests leaving.

    Each announcement (:func:`~notify_devino.departure.departing`) counts a request that may be
    out; each give-back (:func:`~notify_devino.departure.returned`) uncounts one refused
    unprocessed. The rows are committed ``sending`` when the count leaves 0 and ``claimed``
    again when it comes back to 0, so a request that may have been processed, or another of
    the chunk still out, keeps them ``sending``. After a refused commit every later
    announcement is refused too, so no request of the chunk leaves unrecorded."""

    def __init__(self, service: Service, rows: Sequence[Delivery]) -> None:
        self._service = service
        self._rows = rows
        self._lock = asyncio.Lock()
        self._out = 0
        self.done = False
        """The rows are ``sending`` (else ``claimed``)."""
        self._refused: DepartureRefused | None = None
        self._requeued = False

    @property
    def state(self) -> State:
        return State.SENDING if self.done else State.CLAIMED

    @property
    def unsent(self) -> Sequence[Delivery]:
        """The rows still ``claimed`` by this process."""
        return () if self.done or self._requeued else self._rows

    async def _move(
        self,
        expect: State,
        to: State,
        detail: str | None = None,
        rows: Sequence[Delivery] | None = None,
    ) -> Any:
        service = self._service
        return await service.store.apply(
            [
                Change(
                    r.id,
                    expect=expect,
                    to=to,
                    detail=detail,
                    due_at=utc_now() if to is State.QUEUED else None,
                )
                for r in (self._rows if rows is None else rows)
            ],
            owner=service.owner,
            returning=False,
            urgent=True,  # the request waits for it, and its rate-limit slot nears
        )

    async def __call__(self) -> None:
        async with self._lock:  # one commit, however many requests announce at once
            if self._refused is not None:
                raise self._refused
            if self.done:
                self._out += 1
                return
            try:
                applied = await self._move(State.CLAIMED, State.SENDING)
            except Exception as exc:
                self._refused = DepartureRefused(
                    f"the outbox could not record the send: {type(exc).__name__}: {exc}"
                )
                raise self._refused from exc
            if applied.skipped:  # another worker took some (a lease that ran out): send none
                skipped = set(applied.skipped)
                self._requeued = True
                taken = [r for r in self._rows if r.id not in skipped]
                await self._move(State.SENDING, State.QUEUED, "released: not sent", taken)
                self._refused = DepartureRefused(
                    f"{len(skipped)} of the {len(self._rows)} deliveries are no longer this "
                    "worker's to send"
                )
                raise self._refused
            self.done = True
            self._out = 1

    async def give_back(self) -> None:
        """A request announced was refused unprocessed: if none other may be out, the rows
        wait ``claimed`` for the retry (a crash then sends them again instead of marking them
        unknown). If the commit fails they stay ``sending``, which is only cautious."""
        async with self._lock:
            if not self.done or self._out <= 0:
                return
            self._out -= 1
            if self._out:
                return
            try:
                await self._move(
                    State.SENDING, State.CLAIMED, "refused unprocessed: waiting for the retry"
                )
            except Exception as exc:
                log.warning("send_give_back_failed", error=f"{type(exc).__name__}: {exc}")
                self._out = 1
                return
            self.done = False


class Service:
    """The outbox and its workers over one store and one started dispatcher.

    :param owner: this instance's lease owner name (default: a new unique one).
    """

    def __init__(
        self,
        config: Config,
        settings: ServiceSettings,
        store: Store,
        dispatcher: Dispatcher,
        *,
        metrics: ServiceMetrics | None = None,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self.metrics = metrics or ServiceMetrics(config.channels, config.routes)
        self.owner = owner or f"serve-{uuid.uuid4().hex[:12]}"
        self.outbox = Outbox(
            store,
            config,
            key_ttl=timedelta(hours=settings.idempotency_key_hours),
            max_active=settings.limits.outbox_max_depth,
            on_submit=self._submitted,
        )
        known = dispatcher.plugins.channel_types()
        self.types: dict[str, ChannelType] = {
            name: known[channel.type]
            for name, channel in config.channels.items()
            if channel.type in known
        }
        self.operations: dict[str, frozenset[str]] = {
            name: dispatcher.plugins.channel_hooks(config.channels[name].type).operations
            for name in self.types
        }
        """The operations each channel answers (send, status, inbox, balance, ...)."""
        self._wake = asyncio.Event()
        self._follow_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}
        """Requests under way, by channel."""
        self._held: set[int] = set()
        self._woken = False
        self._due_since_claim: dict[str, int] = {}
        """Deliveries due now that this process queued since the sender last claimed, by
        channel."""
        self._backlog = False
        self._send_idle = asyncio.Event()
        self._send_idle.set()
        self.halted: set[str] = set()
        """Alert groups (``metadata["alert_key"]``) whose routes stop: acknowledged alerts."""
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a crashed run left, then start the workers."""
        await self._recover()
        self.store.subscribe(self._heard)
        self._spawn(self._sender_loop, "sender")
        for name, operations in self.operations.items():
            if "status" in operations:
                self._spawn(functools.partial(self._follower_loop, name), f"follower-{name}")
        self._spawn(self._heartbeat_loop, "heartbeat")
        self._spawn(self._maintenance_loop, "maintenance")
        if not self.store.exclusive:  # other instances may die holding leases
            self._spawn(self._recovery_loop, "recovery")
        for name, operations in self.operations.items():
            if "inbox" in operations:
                self._spawn(functools.partial(self._inbox_loop, name), f"inbox-{name}")
        self.started = True
        log.info("workers_started", owner=self.owner, channels=sorted(self.types))

    def _heard(self, work: Work) -> None:
        """Another instance made work due (a shared store told us)."""
        (self._wake if work is Work.SEND else self._follow_wake).set()

    async def _recovery_loop(self) -> None:
        """Take back, every third of a lease, what instances that died were holding."""
        while True:
            await asyncio.sleep(self.settings.workers.lease_seconds / 3)
            try:
                await self._recover()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("recovery_failed", error=f"{type(exc).__name__}: {exc}")

    async def _recover(self) -> None:
        recovery = await self.store.recover(owner=self.owner, policy=self.settings.send_policy)
        if recovery.requeued or recovery.unknown or recovery.resent or recovery.followed:
            log.warning(
                "outbox_recovered",
                requeued=len(recovery.requeued),
                unknown=len(recovery.unknown),
                resent=len(recovery.resent),
                followed=len(recovery.followed),
                policy=self.settings.send_policy.value,
            )
            for reason, ids in (("recovered", recovery.requeued), ("resent", recovery.resent)):
                if ids:
                    for d in await self._deliveries(ids):
                        if self.metrics.channel_known(d.channel):
                            self.metrics.retries.labels(d.channel, reason).inc()
            if recovery.unknown:
                for d in await self._deliveries(recovery.unknown):
                    self._count_outcome(d, State.UNKNOWN)
                    await self._after_final(d, State.UNKNOWN)
            if recovery.requeued or recovery.resent:
                self._wake.set()
            if recovery.followed:
                self._follow_wake.set()

    async def _deliveries(self, ids: Sequence[int]) -> list[Delivery]:
        return await self.store.list_deliveries(ids=ids, limit=len(ids))

    def _spawn(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._tasks.append(asyncio.create_task(self._guard(loop, name), name=name))

    async def _guard(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run a worker loop; when it fails (the store cannot commit, say), log it and start it
        again after a pause, so one bad moment does not stop the service sending."""
        pause = 0.5
        while not self._stopping.is_set():
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker_failed", worker=name, restart_in_s=pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                pause = min(pause * 2, 30.0)

    async def stop(self) -> None:
        """Stop claiming, let sends under way finish (up to the shutdown grace), and leave the
        rest in the store for the next start."""
        self._stopping.set()
        self._send_idle.set()
        self._wake.set()
        self._follow_wake.set()
        if self._sends:
            _, pending = await asyncio.wait(
                set(self._sends), timeout=self.settings.workers.shutdown_grace_seconds
            )
            for task in pending:  # still waiting on the provider: left 'sending' for recovery
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        log.info("workers_stopped", owner=self.owner)

    def _submitted(self, deliveries: Sequence[NewDelivery]) -> None:
        """A notification was committed (from the API, Alertmanager or an embedder): count it
        by its route, and wake the sender."""
        self.metrics.count_submitted(deliveries[0].payload.get("route") if deliveries else None)
        self.wake(deliveries)

    def wake(self, deliveries: Sequence[NewDelivery] = ()) -> None:
        """Tell the sender there is new work (the outbox calls it after a commit, with the
        deliveries it queued: those due now count towards a full batch, which ends a linger)."""
        if deliveries:
            now = utc_now()
            due = self._due_since_claim
            for delivery in deliveries:
                if delivery.due_at <= now:
                    due[delivery.channel] = due.get(delivery.channel, 0) + 1
        self._wake.set()

    def _full_batch_due(self) -> bool:
        """Enough came since the last claim to fill a provider request of some channel:
        waiting longer would merge nothing more into it."""
        return any(n >= self._batch_size(c) for c, n in self._due_since_claim.items())

    async def _sleep(self, event: asyncio.Event, work: Work) -> None:
        timeout = self.settings.workers.idle_poll_seconds
        due = await self.store.next_due(work)
        if due is not None:
            timeout = min(timeout, max(0.0, _duration(utc_now(), due)))
        self._woken = False
        try:
            await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.005))
            self._woken = event is self._wake
        except TimeoutError:
            pass
        event.clear()

    async def _linger(self) -> None:
        """Wait while notifications keep coming (see ``linger_seconds``), until a full batch
        is due."""
        workers = self.settings.workers
        loop = asyncio.get_running_loop()
        until = loop.time() + workers.max_linger_seconds
        while not self._stopping.is_set():
            left = until - loop.time()
            if left <= 0 or workers.linger_seconds <= 0 or self._full_batch_due():
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(workers.linger_seconds, left))
            except TimeoutError:
                return

    # -- sender ------------------------------------------------------------------------------

    def _batch_size(self, channel: str) -> int:
        spec = self.types.get(channel)
        return (spec.batch_size if spec else None) or DEFAULT_BATCH_SIZE

    def _room(self, channel: str) -> int:
        """Requests this channel may start now (``max_in_flight`` under way at most; a channel
        the configuration no longer names, one)."""
        most = self.settings.workers.max_in_flight if channel in self.config.channels else 1
        return most - self._in_flight.get(channel, 0)

    def _announces(self, channel: str) -> bool:
        spec = self.types.get(channel)
        return spec is not None and spec.announces_departure

    async def _sender_loop(self) -> None:
        """Claim what the free request slots can take, start a send for each chunk (it goes
        ``sending`` when its request leaves: see :class:`_Departure`), and put back the chunks
        a claim brought beyond the slots."""
        workers = self.settings.workers
        while not self._stopping.is_set():
            room = {c: self._room(c) for c in self.config.channels}
            if not any(n > 0 for n in room.values()):
                await asyncio.wait(set(self._sends), return_when=asyncio.FIRST_COMPLETED)
                continue
            open_channels = [c for c, n in room.items() if n > 0]
            limit = min(
                workers.claim_batch, sum(room[c] * self._batch_size(c) for c in open_channels)
            )
            self._wake.clear()
            self._due_since_claim.clear()
            rows = await self.store.claim(
                Work.SEND,
                owner=self.owner,
                lease_seconds=workers.lease_seconds,
                limit=limit,
                # A channel with no room waits; all open: any row (one of a channel the
                # configuration no longer names is sent and fails, not left queued).
                channels=None if len(open_channels) == len(room) else open_channels,
            )
            if not rows and len(open_channels) < len(room):
                # What is due may be for a channel with no room: wait for a request to end
                # (the backlog stays, so the follower keeps yielding), then look again.
                if self._sends:
                    await asyncio.wait(
                        set(self._sends),
                        timeout=workers.idle_poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                continue
            if not rows:
                self._backlog = False
                if not self._sends:
                    self._send_idle.set()
                await self._sleep(self._wake, Work.SEND)
                if self._wake.is_set() or self._woken:
                    await self._linger()
                continue
            self._backlog = True
            self._send_idle.clear()
            self._held.update(r.id for r in rows)
            back: list[Delivery] = []
            for chunk in self._chunks(rows):
                channel = chunk[0].channel
                if self._stopping.is_set() or self._room(channel) <= 0:
                    back += chunk
                    continue
                self._in_flight[channel] = self._in_flight.get(channel, 0) + 1
                task = asyncio.create_task(self._send_chunk(chunk))
                self._sends.add(task)
                task.add_done_callback(self._send_done)
            if back:
                stopping = self._stopping.is_set()
                await self._release(back, "released on stop" if stopping else "released: no slot")
            elif len(rows) < limit:
                # The claim took all that was due: what comes next is a burst still arriving
                # (claimed at once, each would be a request of a few recipients), so it
                # lingers as it does when woken from idle.
                await self._linger()

    def _send_done(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        if not self._sends and not self._backlog:
            self._send_idle.set()

    async def _yield_to_sender(self) -> None:
        """Wait while the sender has deliveries due or requests under way (at most
        ``YIELD_TO_SENDER_SECONDS``), so reads do not take the sends' request budget."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._send_idle.wait(), YIELD_TO_SENDER_SECONDS)

    def _chunks(self, rows: Sequence[Delivery]) -> list[list[Delivery]]:
        """Rows with one group key, in order, cut at the batch size; an address at most once
        per chunk (a number given twice in one request would be sent once)."""
        groups: dict[tuple[str, str], list[tuple[list[Delivery], set[str]]]] = {}
        # By group, the first chunk that is not full: the ones before it never take another
        # row, so a claim of 10,000 does not look through them for each.
        first_open: dict[tuple[str, str], int] = {}
        out: list[list[Delivery]] = []
        for row in rows:
            group = (row.channel, row.group_key)
            chunks = groups.setdefault(group, [])
            size = self._batch_size(row.channel)
            start = first_open.get(group, 0)
            for chunk, addresses in itertools.islice(chunks, start, None):
                if len(chunk) < size and row.address not in addresses:
                    chunk.append(row)
                    addresses.add(row.address)
                    break
            else:
                chunk = [row]
                chunks.append((chunk, {row.address}))
                out.append(chunk)
            while start < len(chunks) and len(chunks[start][0]) >= size:
                start += 1
            first_open[group] = start
        return out

    async def _release(self, rows: Sequence[Delivery], detail: str) -> None:
        """Give rows this process claimed to send, and did not send, back to the queue."""
        if rows:
            now = utc_now()
            await self.store.apply(
                [
                    Change(r.id, expect=r.state, to=State.QUEUED, detail=detail, due_at=now)
                    for r in rows
                ],
                owner=self.owner,
                returning=False,
            )
            self._held.difference_update(r.id for r in rows)
            self._wake.set()

    async def _send_chunk(self, rows: list[Delivery]) -> None:
        try:
            await self._send(rows)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("send_failed_to_record", deliveries=[r.id for r in rows])
        finally:
            self._in_flight[rows[0].channel] -= 1
            self._held.difference_update(r.id for r in rows)

    async def _send(self, rows: list[Delivery]) -> None:
        """Send one chunk (``claimed``) and record each recipient's outcome."""
        channel = rows[0].channel
        departure = _Departure(self, rows)
        payload = rows[0].payload
        notification_ids = {r.notification_id for r in rows}
        metadata = dict(payload.get("metadata") or {})
        if len(notification_ids) > 1:  # one request for many: no one id to give
            metadata.pop(routing.NOTIFICATION_ID_KEY, None)
        else:
            metadata[routing.NOTIFICATION_ID_KEY] = rows[0].notification_id
        started = utc_now()
        addresses = [r.address for r in rows]
        answers: list[tuple[SendOutcome, Sequence[str], Exception | None]]
        try:
            local = payload.get("local_send_at")
            validity = payload.get("validity_seconds")
            notification = Notification(
                text=payload["text"],
                recipients=tuple(addresses),
                sender=payload.get("sender"),
                channel=channel,
                send_at=datetime.fromisoformat(local) if local else None,
                recipient_local_time=bool(local),
                validity=timedelta(seconds=validity) if validity else None,
                metadata=metadata,
            )
            if self._announces(channel):
                listening = on_departure(departure, departure.give_back)
            else:  # the channel does not say when its request leaves: it is leaving now
                await departure()
                listening = on_departure(departure)
            with listening:
                result = await self.dispatcher.send(notification)
        except DepartureRefused as exc:
            # Nothing left: the rows go back to the queue (if the store cannot take that
            # either, their lease runs out and recovery does).
            log.warning("send_not_recorded", channel=channel, recipients=len(rows), error=str(exc))
            with contextlib.suppress(Exception):
                await self._release(departure.unsent, "released: the send was not recorded")
            return
        except (InvalidInputError, UnsupportedOperationError, ConfigError, ValueError) as exc:
            # Refused as a whole before any request (a text too long, a bad sender).
            answers = [(SendOutcome.FAILED, (), exc) for _ in rows]
            outcome = "refused"
        except asyncio.CancelledError:
            raise  # left 'claimed' or 'sending': recovery decides, by the send policy
        except Exception as exc:  # a plugin broke the hook's contract: it may have sent
            log.exception("send_crashed", channel=channel, recipients=len(rows))
            answers = [(SendOutcome.UNKNOWN, (), exc) for _ in rows]
            outcome = "unknown"
        else:
            answers = [(a.outcome, a.message_ids, a.error) for a in result.recipients]
            if len(answers) != len(rows):  # the plugin broke the contract: it may have sent
                log.error(
                    "send_results_mismatch",
                    channel=channel,
                    results=len(answers),
                    recipients=len(rows),
                )
                error = RuntimeError(f"{len(answers)} results for {len(rows)} recipients")
                answers = [(SendOutcome.UNKNOWN, (), error) for _ in rows]
            outcome = self._request_outcome([a[0] for a in answers])
        if not departure.done and any(a[0] is not SendOutcome.FAILED for a in answers):
            # Something may have left although the channel never announced it (a plugin that
            # declares announces_departure and forgot one request): record the truth late.
            log.error("send_not_announced", channel=channel, recipients=len(rows))
            await departure()
        now = utc_now()
        self.metrics.requests.labels(channel, outcome).inc()
        self.metrics.request_recipients.labels(channel).inc(len(rows))
        self.metrics.send_duration.labels(channel).observe(_duration(started, now))
        await self._record_sends(rows, answers, now, departure.state)

    @staticmethod
    def _request_outcome(outcomes: Sequence[SendOutcome]) -> str:
        if all(o is SendOutcome.ACCEPTED for o in outcomes):
            return "accepted"
        if any(o is SendOutcome.ACCEPTED for o in outcomes):
            return "partial"
        if any(o is SendOutcome.UNKNOWN for o in outcomes):
            return "unknown"
        return "failed"

    async def _record_sends(
        self,
        rows: Sequence[Delivery],
        answers: Sequence[tuple[SendOutcome, Sequence[str], Exception | None]],
        now: datetime,
        current: State,
    ) -> None:
        """Store each row's outcome. :param current: the rows' state (``sending``, or
        ``claimed`` if nothing left: then every outcome is failed)."""
        changes: list[Change] = []
        create: list[tuple[str, NewDelivery]] = []
        finals: list[tuple[Delivery, State]] = []
        channel = rows[0].channel  # one chunk is one channel's
        to_accepted = self.metrics.to_accepted.labels(channel)
        follows = "status" in self.operations.get(channel, frozenset())
        poll_at = now + timedelta(seconds=self.config.status.poll_interval_seconds)
        accepted: dict[str | None, int] = {}  # by route: one chunk may carry several routes
        waited: dict[datetime, int] = {}  # by creation time: a notification's rows share one
        for row, (outcome, message_ids, error) in zip(rows, answers, strict=True):
            if outcome is SendOutcome.ACCEPTED:
                fallback_at = None
                after = row.payload.get("fallback_after") if follows else None
                if after and self._next_step(row) is not None:
                    fallback_at = now + timedelta(seconds=float(after))
                due = None
                if follows:
                    due = poll_at if fallback_at is None else min(poll_at, fallback_at)
                changes.append(
                    Change(
                        row.id,
                        expect=current,
                        to=State.ACCEPTED,
                        message_ids=list(message_ids),
                        due_at=due,
                        fallback_at=fallback_at,
                    )
                )
                waited[row.created_at] = waited.get(row.created_at, 0) + 1
                route = row.payload.get("route")
                accepted[route] = accepted.get(route, 0) + 1
            else:
                text = None if error is None else f"{type(error).__name__}: {error}"
                state = State.FAILED if outcome is SendOutcome.FAILED else State.UNKNOWN
                changes.append(
                    Change(
                        row.id,
                        expect=current,
                        to=state,
                        error=text,
                        message_ids=list(message_ids),
                    )
                )
                finals.append((row, state))
                step = self._next_delivery(row, now)
                if step is not None:
                    create.append((row.notification_id, step))
        await self.store.apply(changes, owner=self.owner, create=create, returning=False)
        observe_many(to_accepted, ((_duration(t, now), n) for t, n in waited.items()))
        if accepted and self.metrics.channel_known(channel):
            for route, count in accepted.items():
                label = self.metrics.route_label(route)
                self.metrics.deliveries.labels(channel, label, State.ACCEPTED.value).inc(count)
            self.metrics.last_success.labels(channel).set(now.timestamp())
        for row, state in finals:
            self._count_outcome(row, state)
        if create:
            self.wake()
        if any(c.to is State.ACCEPTED and c.due_at is not None for c in changes):
            self._follow_wake.set()

    def _count_outcome(self, row: Delivery, state: State) -> None:
        if self.metrics.channel_known(row.channel):
            route = self.metrics.route_label(row.payload.get("route"))
            self.metrics.deliveries.labels(row.channel, route, state.value).inc()

    async def _after_final(self, row: Delivery, state: State) -> None:
        """A delivery that ended without a sender seeing it (recovery): the route goes on."""
        if state in NEEDS_NEXT_STEP:
            step = self._next_delivery(row, utc_now())
            if step is not None:
                await self.store.apply([], create=[(row.notification_id, step)])

    def _next_step(self, row: Delivery) -> tuple[int, str, str] | None:
        if (row.payload.get("metadata") or {}).get("alert_key") in self.halted:
            return None  # acknowledged: no fallback, no next channel
        channels = row.payload.get("channels") or []
        if row.contact is None or row.step + 1 >= len(channels):
            return None
        return first_step(self.config, row.contact, channels, row.step + 1)

    def _next_delivery(self, row: Delivery, now: datetime) -> NewDelivery | None:
        step = self._next_step(row)
        if step is None:
            return None
        index, channel, address = step
        from .outbox import group_key

        log.info(
            "route_next_step",
            notification_id=row.notification_id,
            contact=row.contact,
            channel=channel,
            after=row.channel,
        )
        return NewDelivery(
            channel, address, now, group_key(channel, row.payload), row.payload, row.contact, index
        )

    async def _heartbeat_loop(self) -> None:
        lease = self.settings.workers.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            if self._held:
                await self.store.extend_leases(self.owner, sorted(self._held), lease)

    # -- follower ----------------------------------------------------------------------------

    async def _follower_loop(self, channel: str) -> None:
        """Follow one channel's accepted messages, reading at most ``status_reads_per_second``
        message IDs a second."""
        workers = self.settings.workers
        rate = workers.status_reads_per_second
        chunk = max(1, min(STATUS_CHUNK, int(rate)))
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            await self._yield_to_sender()
            self._follow_wake.clear()
            rows = await self.store.claim(
                Work.FOLLOW,
                owner=self.owner,
                lease_seconds=workers.lease_seconds,
                limit=chunk,
                channels=[channel],
            )
            if not rows:
                await self._sleep(self._follow_wake, Work.FOLLOW)
                continue
            started = loop.time()
            await self._follow(channel, rows)
            spent = sum(max(1, len(r.message_ids)) for r in rows) / rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), max(0.0, spent - (loop.time() - started))
                )

    async def _follow(self, channel: str, rows: Sequence[Delivery]) -> None:
        ids = [i for r in rows for i in r.message_ids]
        latest: dict[str, MessageStatus] = {}
        ok = True
        if ids:
            try:
                for status in await self.dispatcher.status(ids, channel=channel):
                    latest[status.message_id] = status
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ok = False
                log.warning(
                    "status_poll_failed", channel=channel, error=f"{type(exc).__name__}: {exc}"
                )
        self.metrics.status_polls.labels(channel, "ok" if ok else "error").inc()
        now = utc_now()
        changes: list[Change] = []
        create: list[tuple[str, NewDelivery]] = []
        finals: list[tuple[Delivery, State]] = []
        workers = self.settings.workers
        for row in rows:
            statuses = [latest[i] for i in row.message_ids if i in latest]
            final = (
                self._final_state(statuses)
                if ok and statuses and len(statuses) == len(row.message_ids)
                else None
            )
            provider = ",".join(sorted({s.name or s.state.value for s in statuses})) or None
            if final is not None:
                changes.append(
                    Change(row.id, expect=State.ACCEPTED, to=final, provider_state=provider)
                )
                finals.append((row, final))
                if final is State.DELIVERED:
                    self.metrics.to_delivered.labels(row.channel).observe(
                        _duration(row.created_at, now)
                    )
                elif final in NEEDS_NEXT_STEP:
                    step = self._next_delivery(row, now)
                    if step is not None:
                        create.append((row.notification_id, step))
                continue
            if row.fallback_at is not None and now >= row.fallback_at:
                changes.append(
                    Change(
                        row.id,
                        expect=State.ACCEPTED,
                        to=State.LATE,
                        provider_state=provider,
                        detail="not delivered within the route's fallback time",
                    )
                )
                finals.append((row, State.LATE))
                step = self._next_delivery(row, now)
                if step is not None:
                    create.append((row.notification_id, step))
                continue
            accepted_at = row.accepted_at or row.created_at
            age = _duration(accepted_at, now)
            if age > workers.follow_for_seconds:
                changes.append(
                    Change(
                        row.id,
                        expect=State.ACCEPTED,
                        provider_state=provider,
                        due_at=None,
                        error="no final state: no longer followed",
                    )
                )
                continue
            interval = min(
                workers.status_max_interval_seconds,
                max(self.config.status.poll_interval_seconds, age / 4),
            )
            due = now + timedelta(seconds=interval)
            if row.fallback_at is not None:
                due = min(due, row.fallback_at)
            changes.append(
                Change(row.id, expect=State.ACCEPTED, provider_state=provider, due_at=due)
            )
        await self.store.apply(changes, owner=self.owner, create=create, returning=False)
        for row, state in finals:
            self._count_outcome(row, state)
        if create:
            self.wake()

    @staticmethod
    def _final_state(statuses: Sequence[MessageStatus]) -> State | None:
        if not all(s.final for s in statuses):
            return None
        if all(s.state is DeliveryState.DELIVERED for s in statuses):
            return State.DELIVERED
        if any(s.state is DeliveryState.EXPIRED for s in statuses):
            return State.EXPIRED
        return State.UNDELIVERED

    # -- inbox -------------------------------------------------------------------------------

    async def _inbox_loop(self, channel: str) -> None:
        """Read the inbox every ``inbox_interval_seconds``, on one instance at a time: the one
        holding the store's lease of ``inbox:<channel>`` (renewed every third of
        :data:`LEADER_LEASE_SECONDS`); when it dies, another takes over from the stored
        read position once the lease runs out."""
        workers = self.settings.workers
        name = f"inbox:{channel}"
        loop = asyncio.get_running_loop()
        leading = False
        next_read = loop.time()
        try:
            while not self._stopping.is_set():
                try:
                    now_leading = await self.store.lead(name, self.owner, LEADER_LEASE_SECONDS)
                    if now_leading != leading:
                        log.info(
                            "inbox_leader" if now_leading else "inbox_follower", channel=channel
                        )
                    leading = now_leading
                    renew_by = loop.time() + LEADER_LEASE_SECONDS / 3
                    if leading and loop.time() >= next_read:
                        # A read takes one of the account's request slots for a second, and
                        # the budget goes to sends first: while this channel has sends under
                        # way the read waits for them, at most one more interval, so a reply
                        # is still read within two intervals.
                        deadline = next_read + workers.inbox_interval_seconds
                        while self._in_flight.get(channel, 0) and loop.time() < deadline:
                            if self._stopping.is_set() or loop.time() >= renew_by:
                                break  # stopping, or the lease to renew first (then wait on)
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._stopping.wait(), 0.05)
                        else:
                            next_read = loop.time() + workers.inbox_interval_seconds
                            await self.read_inbox(channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "inbox_read_failed", channel=channel, error=f"{type(exc).__name__}: {exc}"
                    )
                wait = max(0.0, next_read - loop.time()) if leading else LEADER_LEASE_SECONDS / 3
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), min(wait, LEADER_LEASE_SECONDS / 3)
                    )
        finally:
            if leading:
                with contextlib.suppress(Exception):
                    await self.store.resign(name, self.owner)

    async def read_inbox(self, channel: str) -> int:
        """Read one window of inbound messages; :return: how many were new."""
        workers = self.settings.workers
        now = utc_now()
        until = now - timedelta(seconds=1)
        position = await self.store.inbox_position(channel)
        start = (
            position
            if position is not None
            else now - timedelta(seconds=workers.inbox_lookback_seconds)
        )
        since = start - timedelta(seconds=workers.inbox_overlap_seconds)
        target = self.dispatcher.channel(channel)
        # The channel's own hook, not Dispatcher.inbox: observers hear only of the messages not
        # stored before (the windows overlap on purpose).
        hooks = self.dispatcher.plugins.channel_hooks(self.config.channels[channel].type)
        messages = list(await hooks.inbox(target, since, until))
        new = await self.store.record_inbox(
            channel,
            [
                Inbound(m.channel, m.sender, m.recipient, m.text, m.received_at)
                for m in messages
                if m.received_at <= until
            ],
            until,
        )
        for record in new:
            self.metrics.inbound.labels(channel).inc()
            log.info("inbound_message_stored", channel=channel, seq=record.seq)
            self.dispatcher.plugins.inbound_message(
                InboundMessage(
                    record.channel, record.sender, record.recipient, record.text, record.received_at
                )
            )
        return len(new)

    # -- maintenance -------------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                purged = await self.store.purge_keys()
                if purged:
                    log.info("idempotency_keys_purged", count=purged)
                for name, operations in self.operations.items():
                    if "balance" in operations:
                        # A read takes one of the account's request slots for a second: in
                        # the middle of a bulk send it would put a send a whole cycle later.
                        await self._yield_to_sender()
                        if self._stopping.is_set():
                            # stop() sets the sender idle before it cancels this task, and
                            # on Python 3.11 a wait_for whose wait ends as it is cancelled
                            # may swallow the cancel: no new request once stopping.
                            return
                        balance = await self.dispatcher.balance(channel=name)
                        self.metrics.balance.labels(name).set(float(balance.amount))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("maintenance_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(MAINTENANCE_SECONDS)


__all__ = ["Service"]
