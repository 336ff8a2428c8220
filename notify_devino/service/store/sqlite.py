"""The SQLite engine: the embedded store, one file, one writer process.

- Every statement runs on one dedicated thread (a single-thread executor) that owns the one
  connection: SQLite has one writer anyway, and the event loop never blocks on the disk.
- WAL journal and ``synchronous=FULL``: a commit that returned survives a power cut.
- An exclusive ``flock`` on ``<file>.lock`` while open: a second process that opens the same
  file as its store fails at once with :class:`StoreLocked` naming the file, instead of the
  two sharing a queue they each think is theirs.
- Submits that arrive while a commit is under way are committed together in the next
  transaction (each in a savepoint of its own): the fsync is shared, the durability is not.
- Versioned migrations: ``migrations/sqlite/NNNN_name.sql``, applied in order and recorded in
  ``schema_version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pydantic_core import to_json

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
    StoreLocked,
    StoreUnavailable,
    SubmitKey,
    SubmitOutcome,
    SubmitResult,
    Transition,
    Work,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
SUBMIT_BATCH_DELIVERIES = 2000
"""Deliveries committed in one group commit at most (a single larger submit is not cut)."""
_ACTIVE = tuple(s.value for s in ACTIVE)
ACTIVE_RECOUNT_SECONDS = 1.0
"""How old the intake's count of active deliveries may be (see ``SqliteStore._active_upper``)."""
_PART = 5000
"""IDs bound in one statement at most (SQLite allows 32,766 variables by default)."""
_FITS = (
    "state = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at IS NULL "
    "OR lease_expires_at <= ?)"
)
"""A row a change may apply to: in its expected state, not leased to another owner."""


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt_(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def migrations() -> list[tuple[int, str, str]]:
    """The SQLite migrations, in order: (version, name, SQL)."""
    folder = resources.files(__package__).joinpath("migrations", "sqlite")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def _statements(sql: str) -> Iterator[str]:
    """The statements of a migration script, whole (a ``;`` in a comment does not split)."""
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise StoreError(f"an incomplete statement ends a migration: {buffer.strip()[:60]!r}")


_DELIVERY_COLUMNS = (
    "id, notification_id, channel, address, contact, step, state, due_at, group_key, payload, "
    "created_at, updated_at, attempts, message_ids, provider_state, error, lease_owner, "
    "lease_expires_at, accepted_at, fallback_at, final_at"
)


def _dumps(value: Any) -> str:
    """``value`` as JSON, for the store's own columns (read back only by ``json.loads``).

    pydantic-core's encoder writes a small document in a quarter of the time ``json.dumps``
    takes, and each submit has three (its payload, request and response) on the store's one
    thread, each accepted send its message IDs. ``json.dumps`` is the fallback for what that
    encoder refuses (a lone surrogate: the API refuses one, but the store's interface takes
    any JSON value), so every value ``json.dumps`` takes is still taken."""
    try:
        return to_json(value).decode()
    except ValueError:  # pydantic_core.PydanticSerializationError
        return json.dumps(value)


def _update_of(change: Change, at: float) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE for one change and its arguments. Changes that set the same fields share the
    statement, so many of them are one ``executemany``."""
    sets = ["updated_at = ?"]
    args: list[Any] = [at]
    target = change.to if change.to is not None else change.expect
    if change.to is not None and change.to is not change.expect:
        sets.append("state = ?")
        args.append(change.to.value)
        if change.to is State.ACCEPTED:
            sets.append("accepted_at = ?")
            args.append(at)
        if change.to in FINAL:
            sets.append("final_at = ?")
            args.append(at)
    if change.message_ids is not None:
        sets.append("message_ids = ?")
        args.append(_dumps(list(change.message_ids)))
    if change.provider_state is not None:
        sets.append("provider_state = ?")
        args.append(change.provider_state)
    if change.error is not None:
        sets.append("error = ?")
        args.append(change.error)
    if change.sets_due_at:
        sets.append("due_at = ?")
        args.append(_ts(change.due_at))
    elif target in FINAL:
        sets.append("due_at = NULL")
    if change.sets_fallback_at:
        sets.append("fallback_at = ?")
        args.append(_ts(change.fallback_at))
    if change.release or target in FINAL:
        sets.append("lease_owner = NULL, lease_expires_at = NULL")
    args.append(change.delivery_id)
    return f"UPDATE deliveries SET {', '.join(sets)} WHERE id = ?", tuple(args)


def _is_simple(change: Change) -> bool:
    """A move with no fields of its own (many such rows take one UPDATE)."""
    return (
        change.to is not None
        and change.to is not change.expect
        and change.message_ids is None
        and change.provider_state is None
        and change.error is None
        and not change.sets_due_at
        and not change.sets_fallback_at
    )


def _move_sets(to: State, release: bool, at: float) -> tuple[str, list[Any]]:
    """The SET clause and its arguments of a move with no fields of its own."""
    sets = ["state = ?", "updated_at = ?"]
    args: list[Any] = [to.value, at]
    if to is State.ACCEPTED:
        sets.append("accepted_at = ?")
        args.append(at)
    if to in FINAL:
        sets.append("final_at = ?, due_at = NULL")
        args.append(at)
    if release or to in FINAL:
        sets.append("lease_owner = NULL, lease_expires_at = NULL")
    return ", ".join(sets), args


_STATES = {s.value: s for s in State}


def _delivery(
    row: sqlite3.Row | tuple[Any, ...],
    payloads: dict[str, Any] | None = None,
    stamps: dict[float, datetime] | None = None,
) -> Delivery:
    """A row of ``_DELIVERY_COLUMNS`` as a record; ``payloads`` shares one decoded payload among
    rows that have the same one (the recipients of one notification), ``stamps`` one datetime
    among rows with the same time (a notification's recipients were created together)."""
    text = row[9]
    if payloads is None:
        payload = json.loads(text)
    else:
        payload = payloads.get(text)
        if payload is None:
            payload = payloads[text] = json.loads(text)
    if stamps is None:
        stamps = {}

    def at(value: float | None) -> datetime | None:
        if value is None:
            return None
        moment = stamps.get(value)
        if moment is None:
            moment = stamps[value] = datetime.fromtimestamp(value, UTC)
        return moment

    ids = row[13]
    created, updated = at(row[10]), at(row[11])
    assert created is not None
    assert updated is not None
    return Delivery(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        _STATES[row[6]],
        at(row[7]),
        row[8],
        payload,
        created,
        updated,
        row[12],
        () if ids == "[]" else tuple(json.loads(ids)),
        row[14],
        row[15],
        row[16],
        at(row[17]),
        at(row[18]),
        at(row[19]),
        at(row[20]),
    )


_INSERT_DELIVERY = (
    "INSERT INTO deliveries (notification_id, channel, address, contact, step, state, "
    "due_at, group_key, payload, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)"
)


def _delivery_row(
    notification_id: str, d: NewDelivery, payload: str, now: float
) -> tuple[Any, ...]:
    """The arguments of ``_INSERT_DELIVERY`` for one new delivery (``payload`` encoded)."""
    return (
        notification_id,
        d.channel,
        d.address,
        d.contact,
        d.step,
        d.due_at.timestamp(),
        d.group_key,
        payload,
        now,
        now,
    )


def _encoded(deliveries: Sequence[NewDelivery]) -> Iterator[tuple[NewDelivery, str]]:
    """Each delivery with its payload as JSON; the recipients of a notification share one
    payload object, encoded once."""
    texts: dict[int, str] = {}
    for d in deliveries:
        text = texts.get(id(d.payload))
        if text is None:
            text = texts[id(d.payload)] = _dumps(d.payload)
        yield d, text


_UPSERT_KEY = (
    "INSERT INTO submit_keys (scope, key, request_hash, notification_id, response, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET "
    "request_hash = excluded.request_hash, notification_id = excluded.notification_id, "
    "response = excluded.response, expires_at = excluded.expires_at"
)
_INSERT_NOTIFICATION = (
    "INSERT INTO notifications (id, text, request, route, created_at) VALUES (?, ?, ?, ?, ?)"
)


def _key_row(
    key: SubmitKey, notification_id: str, response: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    """The arguments of ``_UPSERT_KEY`` (an expired key of the same name is replaced)."""
    return (
        key.scope,
        key.key,
        key.request_hash,
        notification_id,
        None if response is None else _dumps(response),
        key.expires_at.timestamp(),
    )


def _notification_row(notification: NewNotification) -> tuple[Any, ...]:
    return (
        notification.id,
        notification.text,
        _dumps(notification.request),
        notification.route,
        notification.created_at.timestamp(),
    )


def _answer(key: SubmitKey, stored: tuple[str | None, str, Any]) -> SubmitResult:
    """A submit under a key already stored (its hash, notification and response): a replay
    of the first response, or a conflict if the request is another."""
    hash_, notification_id, response = stored
    same = key.request_hash is None or hash_ == key.request_hash
    return SubmitResult(
        SubmitOutcome.REPLAY if same else SubmitOutcome.CONFLICT, notification_id, response
    )


class _ActiveCheck:
    """The outbox's bound (``max_active``) through one group commit: the store's estimate of
    its active deliveries (:meth:`SqliteStore._active_upper`), counted exactly near the bound,
    raised by each submit the batch admits.

    :param written: whether an admitted submit's rows are written before the next is checked
        (a savepoint per submit), so an exact count already holds them.
    """

    def __init__(self, store: SqliteStore, *, written: bool) -> None:
        self.store, self.written = store, written
        self.active: int | None = None
        self.exact = False
        self.created = 0

    def admit(self, count: int, max_active: int | None) -> None:
        """Count ``count`` more deliveries, or raise :class:`StoreFull` (counting nothing)."""
        if max_active is not None:
            if self.active is None:
                self.active = self.store._active_upper() + self.created
            if self.active + count > max_active and not self.exact:
                # Near the bound the estimate is not enough: count. The stored figure leaves
                # out this batch's creates (the store adds them after the commit).
                counted = self.store._active_sync()
                self.store._active = (time.monotonic(), counted - self.created * self.written)
                self.active = counted + self.created * (not self.written)
                self.exact = True
            if self.active + count > max_active and self.active > 0:
                raise StoreFull(
                    f"the outbox holds {self.active} unsent deliveries (at most {max_active})"
                )
        self.created += count
        if self.active is not None:
            self.active += count

    def retract(self, count: int) -> None:
        """An admitted submit was rolled back."""
        self.created -= count
        if self.active is not None:
            self.active -= count


class _StoreThread(Executor):
    """The one thread that holds a store's SQLite connection. Jobs run in turn, except that
    an urgent one (a request waits on it: the commit that a send is leaving) runs before every
    job not yet started: behind a burst's intake and claims it would otherwise wait a few
    hundred milliseconds, and the request's rate-limit slot with it."""

    def __init__(self) -> None:
        self._jobs: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._urgent: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="notify-devino-store", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self.submit_job(lambda: fn(*args, **kwargs), ())

    def submit_job(
        self, fn: Callable[..., T], args: tuple[Any, ...], *, urgent: bool = False
    ) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the store's thread is shut down")
            (self._urgent if urgent else self._jobs).append((future, fn, args))
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._urgent and not self._jobs and not self._closed:
                    self._ready.wait()
                if self._urgent:
                    future, fn, args = self._urgent.popleft()
                elif self._jobs:
                    future, fn, args = self._jobs.popleft()
                else:
                    return  # shut down, and every job is done
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._ready:
            self._closed = True
            if cancel_futures:
                for future, _, _ in (*self._urgent, *self._jobs):
                    future.cancel()
            self._ready.notify_all()
        if wait:
            self._thread.join()


class SqliteStore(Store):
    """The store in one SQLite file. See the module docstring.

    :param path: the database file; its folder is created if missing.
    """

    exclusive = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._executor: _StoreThread | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[SubmitResult]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._active: tuple[float, int] | None = None  # (monotonic time counted, upper bound)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- plumbing ----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        if self._executor is None or self._conn is None:
            raise StoreError(f"the store {self.path} is not open")
        future = self._executor.submit_job(fn, args, urgent=urgent)
        return await asyncio.wrap_future(future, loop=asyncio.get_running_loop())

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the store {self.path} cannot commit: {exc}") from exc
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise StoreUnavailable(f"the store {self.path} cannot commit: {exc}") from exc

    def _now(self, now: datetime | None) -> float:
        return time.time() if now is None else now.timestamp()

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            raise StoreError(f"the store {self.path} is already open")
        if self.readonly:
            self._executor = _StoreThread()
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._open_ro)
            except BaseException:
                await self.aclose()
                raise
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"the store {self.path} is in use by another process (it holds {lock_path}): "
                "stop that process, or give this one a store of its own"
            ) from None
        self._lock_fd = fd
        self._executor = _StoreThread()
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)
        except BaseException:
            await self.aclose()
            raise
        log.info("store_opened", store=str(self.path))

    def _open_ro(self) -> None:
        if not self.path.is_file():
            raise StoreUnavailable(f"there is no store at {self.path}")
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._conn = conn

    def _open_sync(self) -> None:
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"the store {self.path} cannot use WAL (journal mode {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate_sync()

    def _migrate_sync(self) -> None:
        db = self._db
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        known = migrations()
        latest = known[-1][0] if known else 0
        if current > latest:
            raise StoreError(
                f"the store {self.path} has schema version {current}, newer than this "
                f"notify-devino knows ({latest}): upgrade notify-devino"
            )
        for version, name, sql in known:
            if version <= current:
                continue
            with self._transaction() as tx:
                for statement in _statements(sql):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
            log.info("store_migrated", store=str(self.path), version=version, name=name)

    async def aclose(self) -> None:
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        executor, self._executor = self._executor, None
        if executor is not None:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            executor.shutdown(wait=True)
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def schema_version(self) -> int:
        def read() -> int:
            return int(self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

        return await self._run(read)

    async def now(self) -> datetime:
        return datetime.now(UTC)

    async def check_writable(self) -> None:
        def write() -> None:
            with self._transaction() as tx:
                tx.execute(
                    "INSERT INTO writable_check (id, at) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    (time.time(),),
                )

        try:
            await self._run(write)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store {self.path} cannot commit: {exc}") from exc

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
        future: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
        self._pending.append(((notification, tuple(deliveries), key, response, max_active), future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        # Not shielded: a cancelled waiter cancels only its own future, and its submit is
        # committed all the same (the group commit is a task of its own; it skips answering
        # a future already done).
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._take_batch()
                try:
                    results = await self._run(self._submit_many, [args for args, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(
                                exc if isinstance(exc, Exception) else StoreUnavailable(str(exc))
                            )
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flushing = None

    def _take_batch(self) -> list[tuple[tuple[Any, ...], asyncio.Future[SubmitResult]]]:
        """The next submits to commit together: all that wait, up to ``SUBMIT_BATCH_DELIVERIES``
        deliveries (at least one submit). Every statement waits its turn on the one thread, so
        an uncapped batch (a burst of large notifications) would hold a sender's claim back for
        as long as it takes to write."""
        count = 0
        for taken, (args, _) in enumerate(self._pending):
            count += len(args[1])
            if count > SUBMIT_BATCH_DELIVERIES and taken:
                break
        else:
            taken = len(self._pending)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    def _submit_many(self, batch: list[tuple[Any, ...]]) -> list[SubmitResult | Exception]:
        """One transaction for the batch: every submit is checked (a replayed key, a full
        outbox) before anything is written, then what passed is written with one statement
        per table for the whole batch (:meth:`_submit_together`). A write that fails is not
        expected; if one does, the whole batch is rolled back and done again with a savepoint
        per submit (:meth:`_submit_each`), so the failure is that submit's alone."""
        try:
            try:
                with self._transaction():
                    results, created = self._submit_together(batch)
            except sqlite3.Error:
                with self._transaction():
                    results, created = self._submit_each(batch)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store {self.path} cannot commit: {exc}") from exc
        self._raise_active(created)
        return results

    def _submit_together(
        self, batch: list[tuple[Any, ...]]
    ) -> tuple[list[SubmitResult | Exception], int]:
        """The batch's results, and how many deliveries it created.

        A batch is a key lookup, four ``executemany`` and one insert of the first transitions,
        whatever its size. A statement per submit and table (five a submit) cost the store
        thread 30 to 35 us of CPU a submit, this 25 to 30 (2,000 one-recipient submits, 64 at
        a time, on one CPU), and every statement lets the event loop take the GIL and waits
        to get it back."""
        db = self._db
        now = time.time()
        results: list[SubmitResult | Exception] = []
        keys: list[tuple[Any, ...]] = []
        notifications: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        # What a key answers: stored before this batch, or created by a submit earlier in it.
        known = self._stored_keys([k for _, _, k, _, _ in batch if k is not None], now)
        checker = _ActiveCheck(self, written=False)
        for notification, deliveries, key, response, max_active in batch:
            if key is not None and (key.scope, key.key) in known:
                results.append(_answer(key, known[(key.scope, key.key)]))
                continue
            try:
                mine = [
                    _delivery_row(notification.id, d, text, now) for d, text in _encoded(deliveries)
                ]
                key_row = None if key is None else _key_row(key, notification.id, response)
                notification_row = _notification_row(notification)
                checker.admit(len(deliveries), max_active)
            except Exception as exc:  # full, or a value JSON cannot encode: this one fails
                results.append(exc)
                continue
            if key_row is not None:
                assert key is not None
                known[(key.scope, key.key)] = (key.request_hash, notification.id, response)
                keys.append(key_row)
            notifications.append(notification_row)
            rows += mine
            results.append(SubmitResult(SubmitOutcome.CREATED, notification.id, response))
        if keys:
            db.executemany(_UPSERT_KEY, keys)
        if notifications:
            db.executemany(_INSERT_NOTIFICATION, notifications)
        if rows:
            (before,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()
            db.executemany(_INSERT_DELIVERY, rows)
            # Only this connection writes (the file lock), inside this transaction: every id
            # past ``before`` is one of this batch's.
            db.execute(
                "INSERT INTO transitions (delivery_id, from_state, to_state, at) "
                "SELECT id, NULL, 'queued', ? FROM deliveries WHERE id > ? ORDER BY id",
                (now, before),
            )
        return results, len(rows)

    def _stored_keys(
        self, keys: list[SubmitKey], now: float
    ) -> dict[tuple[str, str], tuple[str | None, str, Any]]:
        """The unexpired keys among ``keys``: (scope, key) -> (hash, notification, response)."""
        found: dict[tuple[str, str], tuple[str | None, str, Any]] = {}
        by_scope: dict[str, list[str]] = {}
        for k in keys:
            by_scope.setdefault(k.scope, []).append(k.key)
        for scope, names in by_scope.items():
            for start in range(0, len(names), 500):  # well under SQLite's bound on parameters
                part = names[start : start + 500]
                for row in self._db.execute(
                    "SELECT key, request_hash, notification_id, response FROM submit_keys "
                    f"WHERE scope = ? AND key IN ({','.join('?' * len(part))}) "
                    "AND expires_at > ?",
                    (scope, *part, now),
                ):
                    stored = json.loads(row[3]) if row[3] is not None else None
                    found[(scope, row[0])] = (row[1], row[2], stored)
        return found

    def _submit_each(
        self, batch: list[tuple[Any, ...]]
    ) -> tuple[list[SubmitResult | Exception], int]:
        """The batch again, a savepoint per submit: one that cannot be written fails alone."""
        db = self._db
        results: list[SubmitResult | Exception] = []
        checker = _ActiveCheck(self, written=True)
        for notification, deliveries, key, response, max_active in batch:
            db.execute("SAVEPOINT one")
            admitted = False
            try:
                now = time.time()
                result = None if key is None else self._replay(key, now)
                if result is None:
                    checker.admit(len(deliveries), max_active)
                    admitted = True
                    result = self._create(notification, deliveries, key, response, now)
            except Exception as exc:
                if not db.in_transaction:  # SQLite rolled the whole batch back: it fails
                    raise
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                if admitted:
                    checker.retract(len(deliveries))
                if isinstance(exc, sqlite3.OperationalError):  # the store cannot take it: 503
                    unavailable = StoreUnavailable(f"the store {self.path} cannot commit: {exc}")
                    unavailable.__cause__ = exc
                    exc = unavailable
                results.append(exc)
                continue
            db.execute("RELEASE one")
            results.append(result)
        return results, checker.created

    def _active_upper(self) -> int:
        """At least the number of active deliveries (queued, claimed or sending): counted at
        most ``ACTIVE_RECOUNT_SECONDS`` ago, and raised by every delivery created here since.
        A row becomes active only by being created (the state machine has no move back into
        those states) and only this process writes the file, so the figure is never below
        the truth; it is above it by what was sent meanwhile.
        A count reads one index entry per active row (9 ms for 100,000), which every group
        commit would pay with a deep backlog; near the bound the intake counts exactly."""
        now = time.monotonic()
        if self._active is None or now - self._active[0] >= ACTIVE_RECOUNT_SECONDS:
            self._active = (now, self._active_sync())
        return self._active[1]

    def _raise_active(self, created: int) -> None:
        if self._active is not None and created:
            self._active = (self._active[0], self._active[1] + created)

    def _active_sync(self) -> int:
        marks = ",".join("?" * len(_ACTIVE))
        return int(
            self._db.execute(
                f"SELECT COUNT(*) FROM deliveries WHERE state IN ({marks})", _ACTIVE
            ).fetchone()[0]
        )

    def _replay(self, key: SubmitKey, now: float) -> SubmitResult | None:
        """What an earlier submit under ``key`` answered (a replay or a conflict); ``None``
        if the key is new or expired. Reads only."""
        stored = self._stored_keys([key], now).get((key.scope, key.key))
        return None if stored is None else _answer(key, stored)

    def _create(
        self,
        notification: NewNotification,
        deliveries: Sequence[NewDelivery],
        key: SubmitKey | None,
        response: Mapping[str, Any] | None,
        now: float,
    ) -> SubmitResult:
        db = self._db
        if key is not None:
            db.execute(_UPSERT_KEY, _key_row(key, notification.id, response))
        db.execute(_INSERT_NOTIFICATION, _notification_row(notification))
        if len(deliveries) == 1:  # the usual alert: its id is at hand, no lookup by notification
            self._insert_delivery(notification.id, deliveries[0], now)
            return SubmitResult(SubmitOutcome.CREATED, notification.id, response)
        db.executemany(
            _INSERT_DELIVERY,
            [_delivery_row(notification.id, d, text, now) for d, text in _encoded(deliveries)],
        )
        db.execute(
            "INSERT INTO transitions (delivery_id, from_state, to_state, at) "
            "SELECT id, NULL, 'queued', ? FROM deliveries WHERE notification_id = ? ORDER BY id",
            (now, notification.id),
        )
        return SubmitResult(SubmitOutcome.CREATED, notification.id, response)

    def _insert_delivery(self, notification_id: str, d: NewDelivery, now: float) -> int:
        cursor = self._db.execute(
            _INSERT_DELIVERY, _delivery_row(notification_id, d, _dumps(d.payload), now)
        )
        delivery_id = cursor.lastrowid
        assert delivery_id is not None
        self._db.execute(
            "INSERT INTO transitions (delivery_id, from_state, to_state, at) "
            "VALUES (?, NULL, ?, ?)",
            (delivery_id, State.QUEUED.value, now),
        )
        return delivery_id

    async def get_notification(self, notification_id: str) -> StoredNotification | None:
        def read() -> StoredNotification | None:
            db = self._db
            row = db.execute(
                "SELECT id, text, request, route, created_at FROM notifications WHERE id = ?",
                (notification_id,),
            ).fetchone()
            if row is None:
                return None
            deliveries = tuple(
                _delivery(r)
                for r in db.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = ? "
                    "ORDER BY id",
                    (notification_id,),
                )
            )
            transitions = tuple(
                Transition(
                    delivery_id=t["delivery_id"],
                    from_state=None if t["from_state"] is None else State(t["from_state"]),
                    to_state=State(t["to_state"]),
                    at=_dt_(t["at"]),
                    detail=t["detail"],
                )
                for t in db.execute(
                    "SELECT t.delivery_id, t.from_state, t.to_state, t.at, t.detail "
                    "FROM transitions t JOIN deliveries d ON d.id = t.delivery_id "
                    "WHERE d.notification_id = ? ORDER BY t.id",
                    (notification_id,),
                )
            )
            return StoredNotification(
                id=row["id"],
                text=row["text"],
                request=json.loads(row["request"]),
                route=row["route"],
                created_at=_dt_(row["created_at"]),
                deliveries=deliveries,
                transitions=transitions,
            )

        return await self._run(read)

    async def list_deliveries(
        self,
        *,
        states: Sequence[State] | None = None,
        notification_id: str | None = None,
        limit: int = 100,
        ids: Sequence[int] | None = None,
    ) -> list[Delivery]:
        if ids is not None and not ids:
            return []
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(s.value for s in states)
        if notification_id is not None:
            where.append("notification_id = ?")
            args.append(notification_id)
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)

        def read() -> list[Delivery]:
            payloads: dict[str, Any] = {}
            stamps: dict[float, datetime] = {}
            return [_delivery(r, payloads, stamps) for r in self._db.execute(sql, args)]

        return await self._run(read)

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
        def claim() -> list[Delivery]:
            at = self._now(now)
            state = State.QUEUED if work is Work.SEND else State.ACCEPTED
            sql = (
                "SELECT id FROM deliveries WHERE state = ? AND due_at IS NOT NULL AND due_at <= ? "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
            )
            args: list[Any] = [state.value, at, at]
            if channels is not None:
                sql += f" AND channel IN ({','.join('?' * len(channels))})"
                args.extend(channels)
            sql += " ORDER BY due_at, id LIMIT ?"
            args.append(limit)
            with self._transaction() as tx:
                ids = [r[0] for r in tx.execute(sql, args)]
                if not ids:
                    return []
                marks = ",".join("?" * len(ids))
                expires = at + lease_seconds
                cursor = tx.cursor()
                cursor.row_factory = None
                if work is Work.SEND:
                    cursor.execute(
                        "UPDATE deliveries SET state = 'claimed', "
                        "attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?, "
                        "updated_at = ? "
                        f"WHERE id IN ({marks}) RETURNING {_DELIVERY_COLUMNS}",
                        (owner, expires, at, *ids),
                    )
                else:
                    cursor.execute(
                        f"UPDATE deliveries SET lease_owner = ?, lease_expires_at = ? "
                        f"WHERE id IN ({marks}) RETURNING {_DELIVERY_COLUMNS}",
                        (owner, expires, *ids),
                    )
                rows = cursor.fetchall()  # the rows as updated, read by the UPDATE itself
                rows.sort(key=lambda r: (r[7], r[0]))  # due_at, id: the order claimed in
                if work is Work.SEND:
                    self._transitions_of(ids, State.QUEUED, State.CLAIMED, at, None)
                payloads: dict[str, Any] = {}
                stamps: dict[float, datetime] = {}
                return [_delivery(r, payloads, stamps) for r in rows]

        return await self._run(claim)

    async def extend_leases(
        self, owner: str, delivery_ids: Sequence[int], lease_seconds: float
    ) -> int:
        def extend() -> int:
            if not delivery_ids:
                return 0
            marks = ",".join("?" * len(delivery_ids))
            with self._transaction() as tx:
                cursor = tx.execute(
                    f"UPDATE deliveries SET lease_expires_at = ? WHERE lease_owner = ? "
                    f"AND id IN ({marks})",
                    (time.time() + lease_seconds, owner, *delivery_ids),
                )
                return cursor.rowcount

        return await self._run(extend)

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
        def apply() -> Applied:
            at = self._now(now)
            allowed: set[tuple[State, State]] = set()
            for change in changes:  # before any write: a refused change applies nothing
                to = change.to
                if (
                    to is not None
                    and to is not change.expect
                    and (change.expect, to) not in allowed
                ):
                    states.check(change.delivery_id, change.expect, to)
                    allowed.add((change.expect, to))
            ids = [c.delivery_id for c in changes]
            with self._transaction():
                changed, skipped = self._apply_each(changes, ids, owner, at)
                created = [self._insert_delivery(nid, new, at) for nid, new in create]
                applied = Applied(
                    changed=tuple(self._read_deliveries(changed)) if returning else (),
                    created=tuple(self._read_deliveries(created)),
                    skipped=tuple(skipped),
                )
            self._raise_active(len(created))  # a route's next step is active too
            return applied

        return await self._run(apply, urgent=urgent)

    def _all_fit(self, ids: Sequence[int], expect: State, owner: str | None, at: float) -> bool:
        """Every one of ``ids`` (distinct, at most ``_PART``) is in ``expect`` and not leased to
        another owner: one aggregate step, where reading the rows is a step and a row each."""
        marks = ",".join("?" * len(ids))
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE id IN ({marks}) AND {_FITS}",
            (*ids, expect.value, owner, at),
        ).fetchone()
        return bool(count == len(ids))

    def _transitions_of(
        self, ids: Sequence[int], expect: State, to: State, at: float, detail: str | None
    ) -> None:
        """Store one move of many deliveries, one statement per ``_PART`` of them."""
        for i in range(0, len(ids), _PART):
            part = ids[i : i + _PART]
            self._db.execute(
                "INSERT INTO transitions (delivery_id, from_state, to_state, at, detail) "
                f"SELECT id, ?, ?, ?, ? FROM deliveries WHERE id IN ({','.join('?' * len(part))}) "
                "ORDER BY id",
                (expect.value, to.value, at, detail, *part),
            )

    def _apply_each(
        self, changes: Sequence[Change], ids: list[int], owner: str | None, at: float
    ) -> tuple[list[int], list[int]]:
        """Compare each change with its row, then write those that fit. When every change
        expects one state and all their rows are in it (the usual case: a chunk's answers),
        one COUNT per ``_PART`` says so and no row is read."""
        db = self._db
        expects = {c.expect for c in changes}
        if len(expects) == 1 and len(set(ids)) == len(ids):
            (expect,) = expects
            if all(
                self._all_fit(ids[i : i + _PART], expect, owner, at)
                for i in range(0, len(ids), _PART)
            ):  # the usual case (a chunk's answers): no row need be read
                return self._write_changes(changes, at), []
        current: dict[int, tuple[Any, ...]] = {}
        for i in range(0, len(ids), _PART):
            part = ids[i : i + _PART]
            cursor = db.cursor()
            cursor.row_factory = None
            for row in cursor.execute(
                "SELECT id, state, lease_owner, lease_expires_at FROM deliveries "
                f"WHERE id IN ({','.join('?' * len(part))})",
                part,
            ):
                current[row[0]] = row
        changed: list[int] = []
        skipped: list[int] = []
        fitting: list[Change] = []
        for change in changes:
            row = current.get(change.delivery_id)
            if row is None or row[1] != change.expect.value:
                skipped.append(change.delivery_id)
                continue
            holder, expires = row[2], row[3]
            if holder is not None and holder != owner and expires is not None and expires > at:
                skipped.append(change.delivery_id)
                continue
            changed.append(change.delivery_id)
            fitting.append(change)
        self._write_changes(fitting, at)
        return changed, skipped

    def _write_changes(self, changes: Sequence[Change], at: float) -> list[int]:
        """Write changes already compared: the UPDATEs grouped by shape, the transitions
        grouped by move. The IDs changed, in order."""
        db = self._db
        simple: dict[tuple[State, State, str | None, bool], list[int]] = {}
        shaped: dict[str, list[tuple[Any, ...]]] = {}
        moves: dict[tuple[State, State, str | None], list[int]] = {}
        for change in changes:
            if _is_simple(change):
                assert change.to is not None
                key = (change.expect, change.to, change.detail, change.release)
                simple.setdefault(key, []).append(change.delivery_id)
            else:
                sql, args = _update_of(change, at)
                shaped.setdefault(sql, []).append(args)
                if change.to is not None and change.to is not change.expect:
                    move = (change.expect, change.to, change.detail)
                    moves.setdefault(move, []).append(change.delivery_id)
        for sql, group_args in shaped.items():
            db.executemany(sql, group_args)
        for (expect, to, detail, release), group in simple.items():
            self._apply_many(to, release, group, at)
            moves.setdefault((expect, to, detail), []).extend(group)
        for (expect, to, detail), group in moves.items():
            self._transitions_of(group, expect, to, at, detail)
        return [c.delivery_id for c in changes]

    def _read_deliveries(self, ids: Sequence[int]) -> list[Delivery]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        payloads: dict[str, Any] = {}
        stamps: dict[float, datetime] = {}
        rows = {
            r["id"]: _delivery(r, payloads, stamps)
            for r in self._db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id IN ({marks})", list(ids)
            )
        }
        return [rows[i] for i in ids]

    def _apply_many(self, to: State, release: bool, ids: list[int], at: float) -> None:
        """One UPDATE for many rows making the same move with no fields of their own."""
        sets, args = _move_sets(to, release, at)
        for i in range(0, len(ids), _PART):
            part = ids[i : i + _PART]
            marks = ",".join("?" * len(part))
            self._db.execute(f"UPDATE deliveries SET {sets} WHERE id IN ({marks})", (*args, *part))

    def _apply_one(
        self, change: Change, owner: str | None, at: float, *, record: bool = True
    ) -> tuple[int, str, str, float, str | None] | None:
        sql, args = _update_of(change, at)
        self._db.execute(sql, args)
        if change.to is None or change.to is change.expect:
            return None
        transition = (change.delivery_id, change.expect.value, change.to.value, at, change.detail)
        if record:
            self._db.execute(
                "INSERT INTO transitions (delivery_id, from_state, to_state, at, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                transition,
            )
        return transition

    async def recover(
        self, *, owner: str, policy: SendPolicy, now: datetime | None = None
    ) -> Recovery:
        def recover() -> Recovery:
            at = self._now(now)
            with self._transaction() as tx:
                rows = tx.execute(
                    "SELECT id, state FROM deliveries WHERE lease_owner IS NOT NULL "
                    "AND lease_owner != ? AND state IN ('claimed', 'sending', 'accepted') "
                    "ORDER BY id",
                    (owner,),
                ).fetchall()
                # Rows left claimed or sending with no lease at all are a holder's too.
                rows += tx.execute(
                    "SELECT id, state FROM deliveries WHERE lease_owner IS NULL "
                    "AND state IN ('claimed', 'sending') ORDER BY id"
                ).fetchall()
                requeued: list[int] = []
                unknown: list[int] = []
                resent: list[int] = []
                followed: list[int] = []
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
                        tx.execute(
                            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL "
                            "WHERE id = ?",
                            (row["id"],),
                        )
                        followed.append(row["id"])
                        continue
                    change = Change(
                        row["id"],
                        expect=state,
                        to=target,
                        detail=detail,
                        due_at=_dt(at) if target is State.QUEUED else None,
                        error=detail if target is State.UNKNOWN else None,
                    )
                    self._apply_one(change, None, at)
                    bucket.append(row["id"])
            return Recovery(tuple(requeued), tuple(unknown), tuple(resent), tuple(followed))

        return await self._run(recover)

    async def next_due(self, work: Work) -> datetime | None:
        def read() -> datetime | None:
            state = State.QUEUED if work is Work.SEND else State.ACCEPTED
            value = self._db.execute(
                "SELECT MIN(due_at) FROM deliveries WHERE state = ? AND due_at IS NOT NULL "
                "AND lease_owner IS NULL",
                (state.value,),
            ).fetchone()[0]
            return _dt(value)

        return await self._run(read)

    # -- observability -----------------------------------------------------------------------

    async def depth(self, now: datetime | None = None) -> list[Depth]:
        def read() -> list[Depth]:
            return [
                Depth(State(r[0]), r[1], r[2], _dt(r[3]))
                for r in self._db.execute(
                    "SELECT state, channel, COUNT(*), MIN(created_at) FROM deliveries "
                    "GROUP BY state, channel ORDER BY state, channel"
                )
            ]

        return await self._run(read)

    async def active_count(self) -> int:
        return await self._run(self._active_sync)

    async def purge_keys(self, now: datetime | None = None) -> int:
        def purge() -> int:
            with self._transaction() as tx:
                return tx.execute(
                    "DELETE FROM submit_keys WHERE expires_at <= ?", (self._now(now),)
                ).rowcount

        return await self._run(purge)

    # -- inbox -------------------------------------------------------------------------------

    async def inbox_position(self, channel: str) -> datetime | None:
        def read() -> datetime | None:
            row = self._db.execute(
                "SELECT position FROM inbox_positions WHERE channel = ?", (channel,)
            ).fetchone()
            return None if row is None else _dt_(row[0])

        return await self._run(read)

    async def record_inbox(
        self, channel: str, messages: Sequence[Inbound], position: datetime
    ) -> list[InboundRecord]:
        def record() -> list[InboundRecord]:
            now = time.time()
            new: list[int] = []
            with self._transaction() as tx:
                for m in messages:
                    cursor = tx.execute(
                        "INSERT INTO inbox (channel, sender, recipient, text, received_at, "
                        "stored_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (m.channel, m.sender, m.recipient, m.text, m.received_at.timestamp(), now),
                    )
                    if cursor.rowcount:
                        assert cursor.lastrowid is not None
                        new.append(cursor.lastrowid)
                tx.execute(
                    "INSERT INTO inbox_positions (channel, position) VALUES (?, ?) "
                    "ON CONFLICT (channel) DO UPDATE SET position = "
                    "MAX(inbox_positions.position, excluded.position)",
                    (channel, position.timestamp()),
                )
            if not new:
                return []
            marks = ",".join("?" * len(new))
            return self._inbox_rows(f"seq IN ({marks})", new, len(new))

        return await self._run(record)

    def _inbox_rows(self, where: str, args: Sequence[Any], limit: int) -> list[InboundRecord]:
        return [
            InboundRecord(
                seq=r["seq"],
                channel=r["channel"],
                sender=r["sender"],
                recipient=r["recipient"],
                text=r["text"],
                received_at=_dt_(r["received_at"]),
                stored_at=_dt_(r["stored_at"]),
            )
            for r in self._db.execute(
                f"SELECT seq, channel, sender, recipient, text, received_at, stored_at FROM inbox "
                f"WHERE {where} ORDER BY seq LIMIT ?",
                (*args, limit),
            )
        ]

    async def inbox(self, *, after: int = 0, limit: int = 100) -> list[InboundRecord]:
        return await self._run(self._inbox_rows, "seq > ?", (after,), limit)

    # -- alert acknowledgement codes ---------------------------------------------------------

    _CODE_COLUMNS = (
        "alert_key, address, code, contact, labels, opened_at, acked_at, acked_by, silence_id, "
        "closed_at"
    )

    @staticmethod
    def _code(row: sqlite3.Row) -> AlertCode:
        return AlertCode(
            alert_key=row["alert_key"],
            address=row["address"],
            code=row["code"],
            labels=json.loads(row["labels"]),
            opened_at=_dt_(row["opened_at"]),
            contact=row["contact"],
            acked_at=_dt(row["acked_at"]),
            acked_by=row["acked_by"],
            silence_id=row["silence_id"],
            closed_at=_dt(row["closed_at"]),
        )

    def _codes(self, where: str, args: Sequence[Any]) -> list[AlertCode]:
        return [
            self._code(r)
            for r in self._db.execute(
                f"SELECT {self._CODE_COLUMNS} FROM alert_codes WHERE {where} "
                "ORDER BY opened_at, rowid",
                tuple(args),
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
        at = self._now(now)
        addresses = list(recipients)
        if not addresses:
            raise ValueError("an alert code needs at least one recipient")

        def run() -> str:
            with self._transaction() as tx:
                marks = ",".join("?" * len(addresses))
                taken = {
                    (r["address"], r["code"])
                    for r in tx.execute(
                        f"SELECT address, code FROM alert_codes WHERE closed_at IS NULL "
                        f"AND alert_key != ? AND address IN ({marks})",
                        (alert_key, *addresses),
                    )
                }
                mine = [
                    r["code"]
                    for r in tx.execute(
                        "SELECT code FROM alert_codes WHERE alert_key = ? AND closed_at IS NULL",
                        (alert_key,),
                    )
                ]
                used = {code for _, code in taken}
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
                tx.execute(
                    "UPDATE alert_codes SET code = ?, labels = ?, "
                    "opened_at = CASE WHEN closed_at IS NULL THEN opened_at ELSE ? END, "
                    "acked_at = CASE WHEN closed_at IS NULL THEN acked_at END, "
                    "acked_by = CASE WHEN closed_at IS NULL THEN acked_by END, "
                    "silence_id = CASE WHEN closed_at IS NULL THEN silence_id END, "
                    "closed_at = NULL WHERE alert_key = ?",
                    (code, _dumps(dict(labels)), at, alert_key),
                )
                for address, contact in recipients.items():
                    tx.execute(
                        "INSERT INTO alert_codes (alert_key, address, code, contact, labels, "
                        "opened_at) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (alert_key, address) DO UPDATE SET contact = excluded.contact",
                        (alert_key, address, code, contact, _dumps(dict(labels)), at),
                    )
                return code

        return await self._run(run)

    async def open_alert_codes(self, address: str) -> list[AlertCode]:
        return await self._run(self._codes, "address = ? AND closed_at IS NULL", (address,))

    async def alert_codes(self, alert_key: str) -> list[AlertCode]:
        return await self._run(self._codes, "alert_key = ?", (alert_key,))

    async def acknowledge_alert(
        self, alert_key: str, by: str, now: datetime | None = None
    ) -> tuple[bool, list[AlertCode]]:
        at = self._now(now)

        def run() -> tuple[bool, list[AlertCode]]:
            with self._transaction() as tx:
                changed = tx.execute(
                    "UPDATE alert_codes SET acked_at = ?, acked_by = ? "
                    "WHERE alert_key = ? AND closed_at IS NULL AND acked_at IS NULL",
                    (at, by, alert_key),
                ).rowcount
            return changed > 0, self._codes("alert_key = ?", (alert_key,))

        return await self._run(run)

    async def set_alert_silence(self, alert_key: str, silence_id: str | None) -> None:
        def run() -> None:
            with self._transaction() as tx:
                tx.execute(
                    "UPDATE alert_codes SET silence_id = ? WHERE alert_key = ?",
                    (silence_id, alert_key),
                )

        await self._run(run)

    async def close_alert(self, alert_key: str, now: datetime | None = None) -> list[AlertCode]:
        at = self._now(now)

        def run() -> list[AlertCode]:
            with self._transaction() as tx:
                rows = self._codes("alert_key = ? AND closed_at IS NULL", (alert_key,))
                tx.execute(
                    "UPDATE alert_codes SET closed_at = ? WHERE alert_key = ? "
                    "AND closed_at IS NULL",
                    (at, alert_key),
                )
            return [dataclasses.replace(r, closed_at=_dt_(at)) for r in rows]

        return await self._run(run)

    async def acknowledged_alert_keys(self) -> set[str]:
        def run() -> set[str]:
            return {
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT alert_key FROM alert_codes "
                    "WHERE closed_at IS NULL AND acked_at IS NOT NULL"
                )
            }

        return await self._run(run)

    async def cursor(self, name: str) -> int:
        def run() -> int:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
            return int(row[0]) if row else 0

        return await self._run(run)

    async def set_cursor(self, name: str, value: int) -> None:
        def run() -> None:
            with self._transaction() as tx:
                tx.execute(
                    "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) "
                    "DO UPDATE SET value = MAX(value, excluded.value)",
                    (name, value),
                )

        await self._run(run)


__all__ = ["SqliteStore", "migrations"]
