"""The PostgreSQL engine: one outbox shared by every ``serve`` instance that names it.

::

    service:
      store: postgresql://notify:${PGPASSWORD}@db.example.org:5432/notify

- asyncpg, one pool per store (``?pool_size=N`` in the URL, default 10); every method is one
  transaction, committed before it returns (the server's ``synchronous_commit`` decides the
  durability: keep it ``on``).
- **Claims** take rows with ``FOR UPDATE SKIP LOCKED``: instances claiming at once get disjoint
  rows without waiting on each other. A claim is a **lease** in the database's clock; the
  workers' heartbeat extends it, and :meth:`recover` (run by every instance, at start and
  then periodically) takes back rows whose lease expired, that is, whose holder died.
- **Wake-ups**: a commit that makes work due sends ``NOTIFY notify_devino_work``; each store
  listens on a connection of its own and calls its :meth:`subscribe` listeners, so an idle
  worker on another instance starts at once instead of at its next poll.
- **The database's clock** (``now()``, ``clock_timestamp()``) for everything shared: leases,
  due times left to the store, the singletons' leases, the rate slots.
- **Migrations**: ``migrations/postgresql/NNNN_name.sql``, recorded in ``schema_version``,
  applied under an advisory lock, so two instances starting at once do not race.
- **Singletons** (:meth:`lead`): a row per name in ``leaders`` with an owner and an expiry.
- **Rate slots** (:meth:`rate_limiters`): one request limit per provider account across every
  instance, held in ``rate_slots`` (see :class:`SharedLimiter`).

The URL's password is never logged or shown: :attr:`url` has it masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from ...errors import ConfigError
from ...limits import ANNOUNCE_LEAD_SECONDS, LimiterFactory
from .. import states
from ..states import ACTIVE, FINAL, SendPolicy, State
from .base import (
    AlertCode,
    Applied,
    Change,
    Delivery,
    Depth,
    Inbound,
    InboundRecord,
    NewDelivery,
    NewNotification,
    NoFreeCode,
    Recovery,
    Store,
    StoredNotification,
    StoreError,
    StoreFull,
    StoreUnavailable,
    SubmitKey,
    SubmitOutcome,
    SubmitResult,
    Transition,
    Work,
)

try:
    import asyncpg
except ImportError:  # pragma: no cover - checked when a postgresql:// store is asked for
    asyncpg = None

log = structlog.get_logger(__name__)

WORK_CHANNEL = "notify_devino_work"
"""The ``LISTEN``/``NOTIFY`` channel; the payload is a :class:`Work` value."""

MIGRATION_LOCK = 0x6E6F746966790001
"""The advisory lock taken while migrating ("notify" and 1)."""
INBOX_LOCK = 0x6E6F746966790002
"""Taken by every inbox write, so sequence numbers commit in their order."""
ALERT_LOCK = 0x6E6F746966790003
"""Taken while an alert code is chosen, so two instances never choose one code at once."""

SUBMIT_BATCH = 500
"""Submits committed in one transaction at most."""

LISTEN_RETRY_SECONDS = (0.5, 30.0)
"""The wake-up listener's reconnection delay: first, and at most (doubling in between)."""

_ACTIVE = [s.value for s in ACTIVE]
_FINAL = [s.value for s in FINAL]

_DELIVERY_COLUMNS = (
    "id, notification_id, channel, address, contact, step, state, due_at, group_key, payload, "
    "created_at, updated_at, attempts, message_ids, provider_state, error, lease_owner, "
    "lease_expires_at, accepted_at, fallback_at, final_at"
)
_D_COLUMNS = ", ".join(f"d.{c.strip()}" for c in _DELIVERY_COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class _Submit:
    notification: NewNotification
    deliveries: tuple[NewDelivery, ...]
    key: SubmitKey | None
    response: Mapping[str, Any] | None
    max_active: int | None


def migrations() -> list[tuple[int, str, str]]:
    """The PostgreSQL migrations, in order: (version, name, SQL)."""
    folder = resources.files(__package__).joinpath("migrations", "postgresql")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def _delivery(row: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        notification_id=row["notification_id"],
        channel=row["channel"],
        address=row["address"],
        contact=row["contact"],
        step=row["step"],
        state=State(row["state"]),
        due_at=row["due_at"],
        group_key=row["group_key"],
        payload=row["payload"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        attempts=row["attempts"],
        message_ids=tuple(row["message_ids"]),
        provider_state=row["provider_state"],
        error=row["error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        accepted_at=row["accepted_at"],
        fallback_at=row["fallback_at"],
        final_at=row["final_at"],
    )


def _inbound(row: Mapping[str, Any]) -> InboundRecord:
    return InboundRecord(
        seq=row["seq"],
        channel=row["channel"],
        sender=row["sender"],
        recipient=row["recipient"],
        text=row["text"],
        received_at=row["received_at"],
        stored_at=row["stored_at"],
    )


def masked(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _split_options(url: str) -> tuple[str, dict[str, str]]:
    """The DSN for asyncpg and the store's own options (taken out of the query string)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("pool_size",)}
    rest = [(k, v) for k, v in query if k not in ours]
    scheme = "postgresql" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, query=urlencode(rest))), ours


async def _init_connection(conn: Any) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PostgresStore(Store):
    """The store in a PostgreSQL database. See the module docstring.

    :param url: ``postgresql://user:password@host:port/database`` (libpq's query parameters,
        such as ``sslmode``, and ``pool_size``).
    :param pool_size: connections at most (the URL's ``pool_size`` wins).
    :param recover_interval: how often :meth:`recover` may be run again by the workers
        (informational for operators; the workers decide).
    """

    exclusive = False

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        if asyncpg is None:
            raise ConfigError(
                "the store URL names PostgreSQL, and asyncpg is not installed: "
                "pip install 'notify-devino[postgresql]'"
            )
        self._dsn, options = _split_options(url)
        self.url = masked(url)
        try:
            self.pool_size = int(options.get("pool_size", pool_size))
        except ValueError:
            raise ConfigError(
                f"the store URL {self.url!r} has pool_size={options['pool_size']!r}: "
                "expected a whole number of connections, at least 2"
            ) from None
        if self.pool_size < 2:
            raise ConfigError(
                f"the store URL {self.url!r} asks for {self.pool_size} connections: "
                "the PostgreSQL store needs at least 2"
            )
        self._pool: Any = None
        self._listener: Any = None
        self._listeners: list[Callable[[Work], None]] = []
        self._limiters: dict[str, SharedLimiter] = {}
        self._pending: list[tuple[_Submit, asyncio.Future[SubmitResult]]] = []
        self._listening: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """A connection in a transaction; database failures become :class:`StoreUnavailable`."""
        if self._pool is None:
            raise StoreError(f"the store {self.url} is not open")
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InsufficientResourcesError,
            asyncpg.OperatorInterventionError,
            asyncpg.ReadOnlySQLTransactionError,
            asyncpg.InterfaceError,
        ) as exc:
            raise StoreUnavailable(
                f"the store {self.url} cannot commit: {type(exc).__name__}: {exc}"
            ) from exc

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[Any]:
        async with self._tx() as conn:
            yield conn

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            raise StoreError(f"the store {self.url} is already open")
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self.pool_size,
                init=_init_connection,
                command_timeout=60,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._pool = None
            detail = str(exc).replace(self._dsn, self.url)
            raise StoreUnavailable(f"cannot open the store {self.url}: {detail}") from None
        try:
            if self.readonly:
                await self.schema_version()
            else:
                await self._migrate()
        except BaseException:
            await self.aclose()
            raise
        log.info("store_opened", store=self.url)

    async def _migrate(self) -> None:
        known = migrations()
        latest = known[-1][0] if known else 0
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                current = await conn.fetchval(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version"
                )
                if current > latest:
                    raise StoreError(
                        f"the store {self.url} has schema version {current}, newer than this "
                        f"notify-devino knows ({latest}): upgrade notify-devino"
                    )
                for version, name, sql in known:
                    if version <= current:
                        continue
                    try:
                        async with conn.transaction():
                            await conn.execute(sql)
                            await conn.execute(
                                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                                version,
                                name,
                            )
                    except asyncpg.PostgresError as exc:
                        raise StoreError(
                            f"the store {self.url}: migration {version} ({name}) failed and was "
                            f"rolled back: {type(exc).__name__}: {exc}"
                        ) from exc
                    log.info("store_migrated", store=self.url, version=version, name=name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def aclose(self) -> None:
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        for limiter in self._limiters.values():
            await limiter.aclose()
        self._limiters.clear()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listening
            self._listening = None
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=5)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, Exception):
                pool.terminate()

    async def schema_version(self) -> int:
        async with self._read() as conn:
            try:
                return int(await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0)
            except asyncpg.UndefinedTableError:
                raise StoreUnavailable(f"there is no store at {self.url} (no schema)") from None

    async def now(self) -> datetime:
        async with self._read() as conn:
            moment: datetime = await conn.fetchval("SELECT clock_timestamp()")
            return moment

    async def check_writable(self) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO writable_check (id, at) VALUES (1, now()) "
                "ON CONFLICT (id) DO UPDATE SET at = excluded.at"
            )

    # -- wake-ups ----------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Work], None]) -> None:
        self._listeners.append(listener)
        if self._listening is None and self._pool is not None:
            self._listening = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        """Hold a connection that LISTENs for the other instances' wake-ups. When it drops (a
        server restart, a terminated backend), connect again with backoff, and then wake every
        listener once: a wake-up may have come while nobody listened."""
        delay = LISTEN_RETRY_SECONDS[0]
        resumed = False

        def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            with contextlib.suppress(ValueError):
                self._wake_all(Work(payload))

        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(WORK_CHANNEL, heard)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning(
                    "store_listen_failed", store=self.url, error=type(exc).__name__, retry_in=delay
                )
                if conn is not None:
                    conn.terminate()
                await asyncio.sleep(delay)
                delay = min(delay * 2, LISTEN_RETRY_SECONDS[1])
                continue
            self._listener = conn
            delay = LISTEN_RETRY_SECONDS[0]
            if resumed:
                log.info("store_listen_resumed", store=self.url)
                for work in Work:
                    self._wake_all(work)
            resumed = True
            await lost.wait()
            self._listener = None
            log.warning("store_listen_lost", store=self.url, retry_in=delay)
            await asyncio.sleep(delay)

    def _wake_all(self, work: Work) -> None:
        for listener in list(self._listeners):
            listener(work)

    @staticmethod
    async def _notify(conn: Any, work: Work) -> None:
        await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, work.value)

    # -- intake ------------------------------------------------------------------------------

    async def submit(
        self,
        notification: NewNotification,
        deliveries: Sequence[NewDelivery],
        *,
        key: SubmitKey | None = None,
        response: Mapping[str, Any] | None = None,
        max_active: int | None = None,
    ) -> SubmitResult:
        # Submits that arrive while a commit is under way are committed together in the next
        # transaction (a keyed one in a savepoint of its own): one commit, one WAL flush, for
        # many accepts. A batch that fails as a whole is retried one submit at a time, so one
        # bad submit fails alone.
        future: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
        self._pending.append(
            (_Submit(notification, tuple(deliveries), key, response, max_active), future)
        )
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        batch: list[tuple[_Submit, asyncio.Future[SubmitResult]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[:SUBMIT_BATCH], self._pending[SUBMIT_BATCH:]
                groups = [batch] if len(batch) == 1 else [batch, *([one] for one in batch)]
                for attempt, group in enumerate(groups):
                    try:
                        results = await self._submit_many([s for s, _ in group])
                    except Exception as exc:
                        if attempt == 0 and len(batch) > 1:
                            continue  # one at a time, so only the bad one fails
                        for _, future in group:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    for (_, future), result in zip(group, results, strict=True):
                        if future.done():
                            continue
                        if isinstance(result, BaseException):
                            future.set_exception(result)
                        else:
                            future.set_result(result)
                    if attempt == 0:
                        break
        except BaseException as exc:
            for _, future in [*batch, *self._pending]:
                if not future.done():
                    future.set_exception(StoreUnavailable(f"the store {self.url}: {exc!r}"))
            self._pending.clear()
            raise
        finally:
            self._flushing = None

    async def _submit_many(self, batch: Sequence[_Submit]) -> list[SubmitResult | Exception]:
        results: list[SubmitResult | Exception] = []
        created: list[_Submit] = []
        async with self._tx() as conn:
            active: int | None = None
            if any(s.max_active is not None for s in batch):
                active = int(
                    await conn.fetchval(
                        "SELECT COUNT(*) FROM deliveries WHERE state = ANY($1::text[])", _ACTIVE
                    )
                )
            for submit in batch:
                if submit.max_active is not None:
                    assert active is not None
                    full = active + len(submit.deliveries) > submit.max_active and active > 0
                else:
                    full = False
                if submit.key is None:
                    if full:
                        results.append(self._full(active, submit.max_active))
                        continue
                    results.append(
                        SubmitResult(SubmitOutcome.CREATED, submit.notification.id, submit.response)
                    )
                else:
                    result = await self._take_key(conn, submit, full, active)
                    results.append(result)
                    if not isinstance(result, SubmitResult) or (
                        result.outcome is not SubmitOutcome.CREATED
                    ):
                        continue
                created.append(submit)
                if active is not None:
                    active += len(submit.deliveries)
            if created:
                await conn.execute(
                    "INSERT INTO notifications (id, text, request, route, created_at) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], "
                    "$5::timestamptz[])",
                    [c.notification.id for c in created],
                    [c.notification.text for c in created],
                    [dict(c.notification.request) for c in created],
                    [c.notification.route for c in created],
                    [c.notification.created_at for c in created],
                )
                rows = [(c.notification.id, d) for c in created for d in c.deliveries]
                await self._insert_deliveries(conn, rows, None)
                if rows:
                    await self._notify(conn, Work.SEND)
        return results

    def _full(self, active: int | None, max_active: int | None) -> StoreFull:
        return StoreFull(f"the outbox holds {active} unsent deliveries (at most {max_active})")

    async def _take_key(
        self, conn: Any, submit: _Submit, full: bool, active: int | None
    ) -> SubmitResult | Exception:
        """Store the submit's key (created), or answer a replay or conflict from the stored
        one; a full outbox refuses a new one and keeps nothing (a savepoint)."""
        key = submit.key
        assert key is not None
        savepoint = conn.transaction()
        await savepoint.start()
        won = await conn.fetchval(
            "INSERT INTO submit_keys (scope, key, request_hash, notification_id, "
            "response, expires_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, "
            "notification_id = excluded.notification_id, response = excluded.response, "
            "expires_at = excluded.expires_at WHERE submit_keys.expires_at <= now() "
            "RETURNING 1",
            key.scope,
            key.key,
            key.request_hash,
            submit.notification.id,
            None if submit.response is None else dict(submit.response),
            key.expires_at,
        )
        if won is not None:
            if full:
                await savepoint.rollback()
                return self._full(active, submit.max_active)
            await savepoint.commit()
            return SubmitResult(SubmitOutcome.CREATED, submit.notification.id, submit.response)
        await savepoint.commit()
        row = await conn.fetchrow(
            "SELECT request_hash, notification_id, response FROM submit_keys "
            "WHERE scope = $1 AND key = $2",
            key.scope,
            key.key,
        )
        same = key.request_hash is None or row["request_hash"] == key.request_hash
        return SubmitResult(
            SubmitOutcome.REPLAY if same else SubmitOutcome.CONFLICT,
            row["notification_id"],
            row["response"],
        )

    @staticmethod
    async def _insert_deliveries(
        conn: Any, rows: Sequence[tuple[str, NewDelivery]], now: datetime | None
    ) -> list[int]:
        if not rows:
            return []
        ids: list[int] = [
            r["id"]
            for r in await conn.fetch(
                "WITH new AS (INSERT INTO deliveries (notification_id, channel, address, contact, "
                "step, state, due_at, group_key, payload, created_at, updated_at) "
                "SELECT n, c, a, ct, s, 'queued', du, g, p, COALESCE($10, now()), "
                "COALESCE($10, now()) FROM unnest($1::text[], $2::text[], $3::text[], "
                "$4::text[], $5::int[], $6::timestamptz[], $7::text[], $8::jsonb[], $9::int[]) "
                "AS t(n, c, a, ct, s, du, g, p, o) ORDER BY o RETURNING id, created_at), "
                "tr AS (INSERT INTO transitions (delivery_id, from_state, to_state, at) "
                "SELECT id, NULL, 'queued', created_at FROM new) "
                "SELECT id FROM new ORDER BY id",
                [n for n, _ in rows],
                [d.channel for _, d in rows],
                [d.address for _, d in rows],
                [d.contact for _, d in rows],
                [d.step for _, d in rows],
                [d.due_at for _, d in rows],
                [d.group_key for _, d in rows],
                [dict(d.payload) for _, d in rows],
                list(range(len(rows))),
                now,
            )
        ]
        return ids

    async def get_notification(self, notification_id: str) -> StoredNotification | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                "SELECT id, text, request, route, created_at FROM notifications WHERE id = $1",
                notification_id,
            )
            if row is None:
                return None
            deliveries = tuple(
                _delivery(r)
                for r in await conn.fetch(
                    f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = $1 "
                    "ORDER BY id",
                    notification_id,
                )
            )
            transitions = tuple(
                Transition(
                    delivery_id=t["delivery_id"],
                    from_state=None if t["from_state"] is None else State(t["from_state"]),
                    to_state=State(t["to_state"]),
                    at=t["at"],
                    detail=t["detail"],
                )
                for t in await conn.fetch(
                    "SELECT t.delivery_id, t.from_state, t.to_state, t.at, t.detail "
                    "FROM transitions t JOIN deliveries d ON d.id = t.delivery_id "
                    "WHERE d.notification_id = $1 ORDER BY t.id",
                    notification_id,
                )
            )
        return StoredNotification(
            id=row["id"],
            text=row["text"],
            request=row["request"],
            route=row["route"],
            created_at=row["created_at"],
            deliveries=deliveries,
            transitions=transitions,
        )

    async def list_deliveries(
        self,
        *,
        states: Sequence[State] | None = None,
        notification_id: str | None = None,
        limit: int = 100,
        ids: Sequence[int] | None = None,
    ) -> list[Delivery]:
        where: list[str] = []
        args: list[Any] = []
        if ids is not None:
            args.append(list(ids))
            where.append(f"id = ANY(${len(args)}::bigint[])")
        if states is not None:
            args.append([s.value for s in states])
            where.append(f"state = ANY(${len(args)}::text[])")
        if notification_id is not None:
            args.append(notification_id)
            where.append(f"notification_id = ${len(args)}")
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        args.append(limit)
        sql += f" ORDER BY id LIMIT ${len(args)}"
        async with self._read() as conn:
            return [_delivery(r) for r in await conn.fetch(sql, *args)]

    # -- workers -----------------------------------------------------------------------------

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
        state = State.QUEUED if work is Work.SEND else State.ACCEPTED
        channel_filter = "" if channels is None else "AND channel = ANY($6::text[])"
        if work is Work.SEND:
            update = (
                "state = 'claimed', attempts = attempts + 1, lease_owner = $3, "
                "lease_expires_at = at.t + $4 * interval '1 second', updated_at = at.t"
            )
            record = (
                ", tr AS (INSERT INTO transitions (delivery_id, from_state, to_state, at) "
                "SELECT id, 'queued', 'claimed', updated_at FROM taken ORDER BY id)"
            )
        else:
            update = "lease_owner = $3, lease_expires_at = at.t + $4 * interval '1 second'"
            record = ""
        sql = (
            "WITH at AS (SELECT COALESCE($2::timestamptz, now()) AS t), "
            "picked AS (SELECT id FROM deliveries, at WHERE state = $1 AND due_at IS NOT NULL "
            "AND due_at <= at.t AND (lease_expires_at IS NULL OR lease_expires_at <= at.t) "
            f"{channel_filter} ORDER BY due_at, id LIMIT $5 FOR UPDATE OF deliveries SKIP LOCKED), "
            f"taken AS (UPDATE deliveries d SET {update} FROM picked, at WHERE d.id = picked.id "
            f"RETURNING {_D_COLUMNS}){record} "
            "SELECT * FROM taken ORDER BY due_at, id"
        )
        args: list[Any] = [state.value, now, owner, lease_seconds, limit]
        if channels is not None:
            args.append(list(channels))
        async with self._tx() as conn:
            return [_delivery(r) for r in await conn.fetch(sql, *args)]

    async def extend_leases(
        self, owner: str, delivery_ids: Sequence[int], lease_seconds: float
    ) -> int:
        if not delivery_ids:
            return 0
        async with self._tx() as conn:
            status = await conn.execute(
                "UPDATE deliveries SET lease_expires_at = clock_timestamp() + "
                "$3 * interval '1 second' WHERE lease_owner = $1 AND id = ANY($2::bigint[])",
                owner,
                list(delivery_ids),
                lease_seconds,
            )
        return int(status.rsplit(" ", 1)[1])

    _UPDATE = (
        "UPDATE deliveries SET updated_at = $2, "
        "state = COALESCE($3, state), "
        "accepted_at = CASE WHEN $3 = 'accepted' THEN $2 ELSE accepted_at END, "
        "final_at = CASE WHEN $3 = ANY($13::text[]) THEN $2 ELSE final_at END, "
        "message_ids = COALESCE($4, message_ids), "
        "provider_state = COALESCE($5, provider_state), "
        "error = COALESCE($6, error), "
        "due_at = CASE WHEN $7 THEN $8 WHEN $9 THEN NULL ELSE due_at END, "
        "fallback_at = CASE WHEN $10 THEN $11 ELSE fallback_at END, "
        "lease_owner = CASE WHEN $12 THEN NULL ELSE lease_owner END, "
        "lease_expires_at = CASE WHEN $12 THEN NULL ELSE lease_expires_at END "
        "WHERE id = $1"
    )

    @staticmethod
    def _update_args(change: Change, at: datetime) -> tuple[Any, ...]:
        target = change.to if change.to is not None else change.expect
        moves = change.to is not None and change.to is not change.expect
        return (
            change.delivery_id,
            at,
            change.to.value if moves and change.to is not None else None,
            None if change.message_ids is None else list(change.message_ids),
            change.provider_state,
            change.error,
            change.sets_due_at,
            change.due_at if change.sets_due_at else None,
            target in FINAL,
            change.sets_fallback_at,
            change.fallback_at if change.sets_fallback_at else None,
            change.release or target in FINAL,
            _FINAL,
        )

    async def _apply_changes(self, conn: Any, changes: Sequence[Change], at: datetime) -> None:
        if not changes:
            return
        await conn.executemany(self._UPDATE, [self._update_args(c, at) for c in changes])
        moved = [c for c in changes if c.to is not None and c.to is not c.expect]
        if moved:
            await conn.execute(
                "INSERT INTO transitions (delivery_id, from_state, to_state, at, detail) "
                "SELECT i, f, t, $4, d FROM unnest($1::bigint[], $2::text[], $3::text[], "
                "$5::text[], $6::int[]) AS u(i, f, t, d, o) ORDER BY o",
                [c.delivery_id for c in moved],
                [c.expect.value for c in moved],
                [c.to.value for c in moved if c.to is not None],
                at,
                [c.detail for c in moved],
                list(range(len(moved))),
            )

    async def _read_deliveries(self, conn: Any, ids: Sequence[int]) -> list[Delivery]:
        if not ids:
            return []
        rows = {
            r["id"]: _delivery(r)
            for r in await conn.fetch(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ANY($1::bigint[])",
                list(ids),
            )
        }
        return [rows[i] for i in ids]

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
        async with self._tx() as conn:
            at: datetime = now or await conn.fetchval("SELECT now()")
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT id, state, lease_owner, lease_expires_at FROM deliveries "
                    "WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                    [c.delivery_id for c in changes],
                )
            }
            applying: list[Change] = []
            skipped: list[int] = []
            for change in changes:
                row = rows.get(change.delivery_id)
                if row is None or row["state"] != change.expect.value:
                    skipped.append(change.delivery_id)
                    continue
                holder, expires = row["lease_owner"], row["lease_expires_at"]
                if holder is not None and holder != owner and expires is not None and expires > at:
                    skipped.append(change.delivery_id)
                    continue
                if change.to is not None and change.to is not change.expect:
                    states.check(change.delivery_id, change.expect, change.to)
                applying.append(change)
            await self._apply_changes(conn, applying, at)
            created = await self._insert_deliveries(conn, create, at)
            if created or any(c.sets_due_at and c.due_at is not None for c in applying):
                if created:
                    await self._notify(conn, Work.SEND)
                if any(
                    c.sets_due_at and c.due_at is not None and (c.to or c.expect) is State.ACCEPTED
                    for c in applying
                ):
                    await self._notify(conn, Work.FOLLOW)
            changed = [c.delivery_id for c in applying] if returning else []
            return Applied(
                changed=tuple(await self._read_deliveries(conn, changed)),
                created=tuple(await self._read_deliveries(conn, created)),
                skipped=tuple(skipped),
            )

    async def recover(
        self, *, owner: str, policy: SendPolicy, now: datetime | None = None
    ) -> Recovery:
        async with self._tx() as conn:
            at: datetime = now or await conn.fetchval("SELECT now()")
            rows = await conn.fetch(
                "SELECT id, state FROM deliveries WHERE state IN ('claimed', 'sending', "
                "'accepted') AND ((lease_owner IS NOT NULL AND lease_owner <> $1 "
                "AND lease_expires_at <= $2) OR (lease_owner IS NULL AND state IN "
                "('claimed', 'sending'))) ORDER BY id FOR UPDATE SKIP LOCKED",
                owner,
                at,
            )
            requeued: list[int] = []
            unknown: list[int] = []
            resent: list[int] = []
            followed: list[int] = []
            changes: list[Change] = []
            for row in rows:
                state = State(row["state"])
                if state is State.CLAIMED:
                    target, bucket, detail = State.QUEUED, requeued, "recovered: never sent"
                elif state is State.SENDING and policy is SendPolicy.AT_LEAST_ONCE:
                    target, bucket, detail = State.QUEUED, resent, "recovered: resent"
                elif state is State.SENDING:
                    target, bucket = State.UNKNOWN, unknown
                    detail = "recovered: the request may have reached the provider"
                else:
                    followed.append(row["id"])
                    continue
                changes.append(
                    Change(
                        row["id"],
                        expect=state,
                        to=target,
                        detail=detail,
                        due_at=at if target is State.QUEUED else None,
                        error=detail if target is State.UNKNOWN else None,
                    )
                )
                bucket.append(row["id"])
            await self._apply_changes(conn, changes, at)
            if followed:
                await conn.execute(
                    "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE id = ANY($1::bigint[])",
                    followed,
                )
                await self._notify(conn, Work.FOLLOW)
            if requeued or resent:
                await self._notify(conn, Work.SEND)
        return Recovery(tuple(requeued), tuple(unknown), tuple(resent), tuple(followed))

    async def next_due(self, work: Work) -> datetime | None:
        state = State.QUEUED if work is Work.SEND else State.ACCEPTED
        async with self._read() as conn:
            moment: datetime | None = await conn.fetchval(
                "SELECT MIN(due_at) FROM deliveries WHERE state = $1 AND due_at IS NOT NULL "
                "AND lease_owner IS NULL",
                state.value,
            )
            return moment

    # -- observability -----------------------------------------------------------------------

    async def depth(self, now: datetime | None = None) -> list[Depth]:
        async with self._read() as conn:
            return [
                Depth(State(r[0]), r[1], r[2], r[3])
                for r in await conn.fetch(
                    "SELECT state, channel, COUNT(*), MIN(created_at) FROM deliveries "
                    "GROUP BY state, channel ORDER BY state, channel"
                )
            ]

    async def active_count(self) -> int:
        async with self._read() as conn:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM deliveries WHERE state = ANY($1::text[])", _ACTIVE
                )
            )

    async def purge_keys(self, now: datetime | None = None) -> int:
        async with self._tx() as conn:
            status = await conn.execute(
                "DELETE FROM submit_keys WHERE expires_at <= COALESCE($1, now())", now
            )
        return int(status.rsplit(" ", 1)[1])

    # -- inbox -------------------------------------------------------------------------------

    async def inbox_position(self, channel: str) -> datetime | None:
        async with self._read() as conn:
            moment: datetime | None = await conn.fetchval(
                "SELECT position FROM inbox_positions WHERE channel = $1", channel
            )
            return moment

    async def record_inbox(
        self, channel: str, messages: Sequence[Inbound], position: datetime
    ) -> list[InboundRecord]:
        async with self._tx() as conn:
            # One inbox writer at a time: sequence numbers then commit in their order, so a
            # reader paging with ``after`` never skips one committed late.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", INBOX_LOCK)
            new: list[InboundRecord] = []
            for m in messages:
                row = await conn.fetchrow(
                    "INSERT INTO inbox (channel, sender, recipient, text, received_at, stored_at) "
                    "VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT DO NOTHING "
                    "RETURNING seq, channel, sender, recipient, text, received_at, stored_at",
                    m.channel,
                    m.sender,
                    m.recipient,
                    m.text,
                    m.received_at,
                )
                if row is not None:
                    new.append(_inbound(row))
            await conn.execute(
                "INSERT INTO inbox_positions (channel, position) VALUES ($1, $2) "
                "ON CONFLICT (channel) DO UPDATE SET position = "
                "GREATEST(inbox_positions.position, excluded.position)",
                channel,
                position,
            )
        return new

    async def inbox(self, *, after: int = 0, limit: int = 100) -> list[InboundRecord]:
        async with self._read() as conn:
            return [
                _inbound(r)
                for r in await conn.fetch(
                    "SELECT seq, channel, sender, recipient, text, received_at, stored_at "
                    "FROM inbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                    after,
                    limit,
                )
            ]

    # -- alert acknowledgement codes ---------------------------------------------------------

    _CODE_COLUMNS = (
        "alert_key, address, code, contact, labels, opened_at, acked_at, acked_by, silence_id, "
        "closed_at"
    )

    @staticmethod
    def _code(row: Mapping[str, Any]) -> AlertCode:
        return AlertCode(
            alert_key=row["alert_key"],
            address=row["address"],
            code=row["code"],
            labels=row["labels"],
            opened_at=row["opened_at"],
            contact=row["contact"],
            acked_at=row["acked_at"],
            acked_by=row["acked_by"],
            silence_id=row["silence_id"],
            closed_at=row["closed_at"],
        )

    async def _codes(self, conn: Any, where: str, *args: Any) -> list[AlertCode]:
        return [
            self._code(r)
            for r in await conn.fetch(
                f"SELECT {self._CODE_COLUMNS} FROM alert_codes WHERE {where} "
                "ORDER BY opened_at, seq",
                *args,
            )
        ]

    async def open_alert_code(
        self,
        alert_key: str,
        recipients: Mapping[str, str | None],
        labels: Mapping[str, str],
        *,
        digits: int = 4,
        now: datetime | None = None,
    ) -> str:
        addresses = list(recipients)
        if not addresses:
            raise ValueError("an alert code needs at least one recipient")
        async with self._tx() as conn:
            # Instances opening codes at once would pick among the same free ones: one at a time.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ALERT_LOCK)
            at: datetime = now or await conn.fetchval("SELECT now()")
            used = {
                r["code"]
                for r in await conn.fetch(
                    "SELECT code FROM alert_codes WHERE closed_at IS NULL AND alert_key <> $1 "
                    "AND address = ANY($2::text[])",
                    alert_key,
                    addresses,
                )
            }
            mine = [
                r["code"]
                for r in await conn.fetch(
                    "SELECT code FROM alert_codes WHERE alert_key = $1 AND closed_at IS NULL "
                    "ORDER BY seq",
                    alert_key,
                )
            ]
            code = next((c for c in mine if c not in used), None)
            if code is None:
                space = 10**digits
                start = secrets.randbelow(space)
                floor = 10 ** (digits - 1)
                for step in range(space):
                    candidate = (start + step) % space
                    if candidate >= floor and str(candidate) not in used:
                        code = str(candidate)
                        break
                else:
                    raise NoFreeCode(
                        f"no {digits}-digit acknowledgement code is free for "
                        f"{len(addresses)} recipient(s)"
                    )
            # A closed row of this group is opened again (a group that fires again).
            await conn.execute(
                "UPDATE alert_codes SET code = $1, labels = $2, "
                "opened_at = CASE WHEN closed_at IS NULL THEN opened_at ELSE $3 END, "
                "acked_at = CASE WHEN closed_at IS NULL THEN acked_at END, "
                "acked_by = CASE WHEN closed_at IS NULL THEN acked_by END, "
                "silence_id = CASE WHEN closed_at IS NULL THEN silence_id END, "
                "closed_at = NULL WHERE alert_key = $4",
                code,
                dict(labels),
                at,
                alert_key,
            )
            await conn.executemany(
                "INSERT INTO alert_codes (alert_key, address, code, contact, labels, opened_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (alert_key, address) DO UPDATE SET contact = excluded.contact",
                [
                    (alert_key, address, code, contact, dict(labels), at)
                    for address, contact in recipients.items()
                ],
            )
        return code

    async def open_alert_codes(self, address: str) -> list[AlertCode]:
        async with self._read() as conn:
            return await self._codes(conn, "address = $1 AND closed_at IS NULL", address)

    async def alert_codes(self, alert_key: str) -> list[AlertCode]:
        async with self._read() as conn:
            return await self._codes(conn, "alert_key = $1", alert_key)

    async def acknowledge_alert(
        self, alert_key: str, by: str, now: datetime | None = None
    ) -> tuple[bool, list[AlertCode]]:
        async with self._tx() as conn:
            status = await conn.execute(
                "UPDATE alert_codes SET acked_at = COALESCE($1, now()), acked_by = $2 "
                "WHERE alert_key = $3 AND closed_at IS NULL AND acked_at IS NULL",
                now,
                by,
                alert_key,
            )
            rows = await self._codes(conn, "alert_key = $1", alert_key)
        return int(status.rsplit(" ", 1)[1]) > 0, rows

    async def set_alert_silence(self, alert_key: str, silence_id: str | None) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE alert_codes SET silence_id = $1 WHERE alert_key = $2",
                silence_id,
                alert_key,
            )

    async def close_alert(self, alert_key: str, now: datetime | None = None) -> list[AlertCode]:
        async with self._tx() as conn:
            rows = await conn.fetch(
                "UPDATE alert_codes SET closed_at = COALESCE($1, now()) WHERE alert_key = $2 "
                f"AND closed_at IS NULL RETURNING seq, {self._CODE_COLUMNS}",
                now,
                alert_key,
            )
        ordered = sorted(rows, key=lambda r: (r["opened_at"], r["seq"]))
        return [self._code(r) for r in ordered]

    async def acknowledged_alert_keys(self) -> set[str]:
        async with self._read() as conn:
            return {
                r[0]
                for r in await conn.fetch(
                    "SELECT DISTINCT alert_key FROM alert_codes "
                    "WHERE closed_at IS NULL AND acked_at IS NOT NULL"
                )
            }

    async def cursor(self, name: str) -> int:
        async with self._read() as conn:
            value = await conn.fetchval("SELECT value FROM cursors WHERE name = $1", name)
        return int(value) if value is not None else 0

    async def set_cursor(self, name: str, value: int) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) "
                "DO UPDATE SET value = GREATEST(cursors.value, excluded.value)",
                name,
                value,
            )

    # -- singletons --------------------------------------------------------------------------

    async def lead(self, name: str, owner: str, lease_seconds: float) -> bool:
        async with self._tx() as conn:
            holder = await conn.fetchval(
                "INSERT INTO leaders (name, owner, expires_at) VALUES "
                "($1, $2, clock_timestamp() + $3 * interval '1 second') "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE leaders.owner = excluded.owner OR leaders.expires_at <= clock_timestamp() "
                "RETURNING owner",
                name,
                owner,
                lease_seconds,
            )
        return bool(holder == owner)

    async def resign(self, name: str, owner: str) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM leaders WHERE name = $1 AND owner = $2", name, owner)

    # -- rate limits -------------------------------------------------------------------------

    def rate_limiters(self, owner: str) -> LimiterFactory:
        def factory(account: str, requests_per_second: float) -> SharedLimiter:
            limiter = self._limiters.get(account)
            if limiter is None:
                limiter = self._limiters[account] = SharedLimiter(
                    self, account, requests_per_second, owner=owner
                )
            else:
                limiter.tighten(requests_per_second)
            return limiter

        return factory


def _lock_key(account: str) -> int:
    """An advisory lock key of the account (a signed 64-bit integer)."""
    digest = hashlib.blake2b(account.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SharedLimiter:
    """The request limit of one provider account across every instance of one database.

    The in-process limiter's rule (``notify_devino_soap.ratelimit``), held in ``rate_slots``
    and counted on the database's clock: a request holds a slot from the moment it is let go
    (``granted_at``) until one window after it ended (``ended_at``, stamped when the request
    says its answer began, or when it failed), so the provider never sees more than the limit
    arrive in any window, whatever the latency and the number of instances. Grants of one
    account are serialised by an advisory lock. A slot whose holder died before it ended is
    counted until its lease expires (``lease_seconds``, renewed while the request runs).

    Waiters in this process queue in order; only the first asks the database.
    """

    def __init__(
        self,
        store: PostgresStore,
        account: str,
        requests_per_second: float,
        *,
        owner: str,
        lease_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.account = account
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.max_requests, self.window = _shape(requests_per_second)
        self._key = _lock_key(account)
        self._queue = asyncio.Lock()
        self._in_flight: set[int] = set()
        self._heartbeat: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<SharedLimiter {self.account!r} {self.max_requests} per {self.window:g} s>"

    def tighten(self, requests_per_second: float) -> None:
        requests, window = _shape(requests_per_second)
        if requests * self.window < self.max_requests * window:
            self.max_requests, self.window = requests, window

    def slot(self, *, before: Callable[[], Awaitable[None]] | None = None) -> SharedSlot:
        """See :class:`~notify_devino.limits.RateLimiter`: ``before`` runs once the database
        says the next slot is at most ``ANNOUNCE_LEAD_SECONDS`` away, or just after a slot
        that was free at once is taken."""
        return SharedSlot(self, before)

    async def counted(self) -> int:
        """Slots of the account counted now, by every instance."""
        async with self.store._read() as conn:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM rate_slots WHERE account = $1 AND "
                    "(ended_at > clock_timestamp() - $2 * interval '1 second' OR "
                    "(ended_at IS NULL AND lease_expires_at > clock_timestamp()))",
                    self.account,
                    self.window,
                )
            )

    async def _take(self) -> int | float:
        """A slot's ID, or the seconds to wait before asking again."""
        async with self.store._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._key)
            await conn.execute(
                "DELETE FROM rate_slots WHERE account = $1 AND "
                "(ended_at <= clock_timestamp() - $2 * interval '1 second' OR "
                "(ended_at IS NULL AND lease_expires_at <= clock_timestamp()))",
                self.account,
                self.window,
            )
            row = await conn.fetchrow(
                "SELECT COUNT(*) AS n, EXTRACT(EPOCH FROM MIN(ended_at) + $2 * interval "
                "'1 second' - clock_timestamp()) AS wait FROM rate_slots WHERE account = $1",
                self.account,
                self.window,
            )
            if row["n"] >= self.max_requests:
                wait = row["wait"]
                return 0.05 if wait is None else max(0.001, float(wait))
            slot_id: int = await conn.fetchval(
                "INSERT INTO rate_slots (account, owner, granted_at, lease_expires_at) "
                "VALUES ($1, $2, clock_timestamp(), clock_timestamp() + $3 * interval '1 second') "
                "RETURNING id",
                self.account,
                self.owner,
                self.lease_seconds,
            )
            return slot_id

    async def acquire(self, before: Callable[[], Awaitable[None]] | None = None) -> int:
        async with self._queue:
            while True:
                got = await self._take()
                if isinstance(got, int):
                    self._in_flight.add(got)
                    if self._heartbeat is None or self._heartbeat.done():
                        self._heartbeat = asyncio.create_task(self._beat())
                    if before is not None:
                        try:
                            await before()
                        except BaseException:
                            await asyncio.shield(self.release(got, 0.0))
                            raise
                    return got
                if before is not None and got <= ANNOUNCE_LEAD_SECONDS:
                    announce, before = before, None
                    await announce()
                    continue
                await asyncio.sleep(got)

    async def release(self, slot_id: int, ended_ago: float) -> None:
        """End a slot: counted until one window after ``ended_ago`` seconds before now."""
        self._in_flight.discard(slot_id)
        async with self.store._tx() as conn:
            await conn.execute(
                "UPDATE rate_slots SET ended_at = clock_timestamp() - $2 * interval '1 second' "
                "WHERE id = $1",
                slot_id,
                max(0.0, ended_ago),
            )

    async def _beat(self) -> None:
        while self._in_flight:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(StoreError):
                async with self.store._tx() as conn:
                    await conn.execute(
                        "UPDATE rate_slots SET lease_expires_at = clock_timestamp() + "
                        "$2 * interval '1 second' WHERE id = ANY($1::bigint[]) "
                        "AND ended_at IS NULL",
                        sorted(self._in_flight),
                        self.lease_seconds,
                    )

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat


class SharedSlot:
    """One request's hold on a :class:`SharedLimiter` (``async with limiter.slot() as slot``).

    The end is measured on this process's monotonic clock and stamped as "so long ago" on the
    database's, so the round trip of the release does not lengthen the count by much, and
    never shortens it."""

    __slots__ = ("_before", "_id", "_limiter", "answered_at")

    def __init__(
        self, limiter: SharedLimiter, before: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._limiter = limiter
        self._before = before
        self._id: int | None = None
        self.answered_at: float | None = None

    async def __aenter__(self) -> SharedSlot:
        self._id = await self._limiter.acquire(self._before)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ended = self.answered_at if self.answered_at is not None else time.monotonic()
        if self._id is not None:
            slot_id, self._id = self._id, None
            # Shielded: a cancelled request still ends its slot (else it counts until its
            # lease expires, which is safe but slow).
            await asyncio.shield(self._limiter.release(slot_id, time.monotonic() - ended))

    def answered(self) -> None:
        if self.answered_at is None:
            self.answered_at = time.monotonic()


def _shape(requests_per_second: float) -> tuple[int, float]:
    if not requests_per_second > 0 or math.isinf(requests_per_second):
        raise ValueError(f"rate must be a positive number, not {requests_per_second!r}")
    if requests_per_second >= 1:
        return math.floor(requests_per_second), 1.0
    return 1, 1.0 / requests_per_second


__all__ = ["PostgresStore", "SharedLimiter", "masked", "migrations"]
