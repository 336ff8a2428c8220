"""What only the SQLite engine promises: its lock, WAL and full synchronous commits, URLs."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from notify_devino.errors import ConfigError
from notify_devino.service.store import SqliteStore, StoreLocked, open_store
from notify_devino.service.store.sqlite import migrations


async def test_a_second_writer_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    async with SqliteStore(path):
        with pytest.raises(StoreLocked, match=str(path)):
            await SqliteStore(path).open()
        # Another process too (flock is per open file, so this is the real case).
        code = (
            "import asyncio, sys\n"
            "from notify_devino.service.store import SqliteStore, StoreLocked\n"
            "async def main():\n"
            "    try:\n"
            f"        await SqliteStore({str(path)!r}).open()\n"
            "    except StoreLocked as exc:\n"
            "        print(exc); sys.exit(3)\n"
            "asyncio.run(main())\n"
        )
        done = subprocess.run(  # noqa: ASYNC221 - the other process is the point
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert done.returncode == 3, done.stderr
        assert str(path) in done.stdout
    async with SqliteStore(path):  # released on close
        pass


async def test_wal_and_full_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    async with SqliteStore(path) as store:

        def pragmas() -> tuple[str, int, int]:
            db = store._db
            return (
                db.execute("PRAGMA journal_mode").fetchone()[0],
                db.execute("PRAGMA synchronous").fetchone()[0],
                db.execute("PRAGMA busy_timeout").fetchone()[0],
            )

        mode, sync, busy = await store._run(pragmas)
    assert (mode, sync) == ("wal", 2)  # 2 is FULL
    assert busy > 0


async def test_migrations_are_recorded_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    async with SqliteStore(path) as store:
        assert await store.schema_version() == migrations()[-1][0]
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    db.commit()
    db.close()
    with pytest.raises(Exception, match="newer than this notify-devino knows"):
        await SqliteStore(path).open()


def test_open_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/a.db")
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "a.db"
    relative = open_store("sqlite:///./b.db")
    assert isinstance(relative, SqliteStore)
    assert relative.path == Path("b.db")
    assert isinstance(open_store("c.db"), SqliteStore)
    with pytest.raises(ConfigError, match=r"'mysql'.*known: sqlite://"):
        open_store("mysql://u:secret@host/db")
    with pytest.raises(ConfigError) as info:
        open_store("mysql://u:secret@host/db")
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="no file path"):
        open_store("sqlite://")


async def test_a_reader_opens_beside_the_writer_without_the_lock(tmp_path: Path) -> None:
    from notify_devino.service.store import NewNotification

    path = tmp_path / "outbox.db"
    async with SqliteStore(path) as writer:
        from datetime import UTC, datetime

        await writer.submit(NewNotification("n1", "t", {}, datetime.now(UTC)), [])
        reader = open_store(f"sqlite://{path}", readonly=True)
        async with reader:
            assert (await reader.get_notification("n1")) is not None
            with pytest.raises(Exception, match="readonly"):
                await reader.check_writable()


async def test_a_claim_does_not_wait_behind_a_whole_burst_of_submits(tmp_path: Path) -> None:
    """Every statement takes its turn on the store's one thread: a burst of large submits is
    committed in groups of a bounded size, so the sender's claim runs between two groups."""
    from datetime import UTC, datetime

    from notify_devino.service.store import NewDelivery, NewNotification, Work
    from notify_devino.service.store.sqlite import SUBMIT_BATCH_DELIVERIES

    now = datetime.now(UTC)
    per = 1000
    count = 4 * SUBMIT_BATCH_DELIVERIES // per
    async with SqliteStore(tmp_path / "outbox.db") as store:

        async def submit(n: int) -> None:
            deliveries = [
                NewDelivery("sms", f"+7903{n * per + i:07d}", now, "k", {"text": "x"})
                for i in range(per)
            ]
            await store.submit(NewNotification(f"n{n}", "x", {}, now, None), deliveries)

        burst = [asyncio.create_task(submit(n)) for n in range(count)]
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
        claimed = await store.claim(Work.SEND, owner="o", lease_seconds=60, limit=10_000)
        committed = sum(task.done() for task in burst)
        await asyncio.gather(*burst)
    assert 0 < len(claimed) < count * per
    assert committed < count


async def test_a_submit_that_cannot_be_written_fails_alone_in_its_group_commit(
    tmp_path: Path,
) -> None:
    """A submit that cannot be written (here a notification ID used twice, after its
    idempotency key was written) fails; the commit is done again with a savepoint per submit,
    so the others in it are kept and nothing of the failed one is."""
    from datetime import UTC, datetime, timedelta

    from notify_devino.service.store import NewDelivery, NewNotification, SubmitKey, SubmitOutcome

    now = datetime.now(UTC)
    key = SubmitKey("idempotency", "k1", "h", now + timedelta(hours=1))

    def submit(
        store: SqliteStore, nid: str, address: str, key: SubmitKey | None = None
    ) -> asyncio.Task[object]:
        delivery = NewDelivery("sms", address, now, "k", {"text": "x"})
        return asyncio.create_task(
            store.submit(NewNotification(nid, "x", {}, now, None), [delivery], key=key)
        )

    async with SqliteStore(tmp_path / "outbox.db") as store:
        await store.submit(
            NewNotification("taken", "x", {}, now, None),
            [NewDelivery("sms", "+79030000000", now, "k", {"text": "x"})],
        )
        tasks = [
            submit(store, "a", "+79030000001"),
            submit(store, "taken", "+79030000002", key),
            submit(store, "b", "+79030000003"),
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [getattr(r, "outcome", None) for r in results] == [
            SubmitOutcome.CREATED,
            None,
            SubmitOutcome.CREATED,
        ]
        assert isinstance(results[1], sqlite3.IntegrityError)
        again = await submit(store, "c", "+79030000004", key)  # the key was not kept
        kept = await store.list_deliveries()
    assert getattr(again, "outcome", None) is SubmitOutcome.CREATED
    assert sorted(d.address for d in kept) == [
        "+79030000000",
        "+79030000001",
        "+79030000003",
        "+79030000004",
    ]
    assert {d.notification_id for d in kept} == {"taken", "a", "b", "c"}


async def test_an_urgent_commit_runs_before_the_work_waiting_ahead_of_it(tmp_path: Path) -> None:
    """A send that is leaving waits on its 'sending' commit: behind a burst's queued intake and
    claims it goes first (the job under way finishes; those not started wait)."""
    order: list[str] = []
    started, release = threading.Event(), threading.Event()

    def busy() -> None:
        started.set()
        release.wait(5)
        order.append("busy")

    async with SqliteStore(tmp_path / "o.db") as store:
        first = asyncio.ensure_future(store._run(busy))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        later = [
            asyncio.ensure_future(store._run(order.append, name)) for name in ("intake", "claim")
        ]
        urgent = asyncio.ensure_future(store._run(order.append, "sending", urgent=True))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, *later, urgent)
    assert order == ["busy", "sending", "intake", "claim"]


async def test_values_the_fast_json_encoder_refuses_are_stored_as_json_dumps_writes_them(
    tmp_path: Path,
) -> None:
    """The store writes its JSON columns with pydantic-core's encoder, which refuses a lone
    surrogate. The API refuses one in any string, but the store takes any JSON value from its
    caller: such a value is written as ``json.dumps`` writes it, and reads back unchanged."""
    from datetime import UTC, datetime

    from notify_devino.service.store import NewDelivery, NewNotification

    now = datetime.now(UTC)
    half = "half a character: \ud800"
    async with SqliteStore(tmp_path / "outbox.db") as store:
        await store.submit(
            NewNotification("n1", "text", {"text": half, "tags": ["é"]}, now, None),
            [NewDelivery("sms", "+79030000001", now, "k", {"text": half})],
            response={"id": "n1", "note": half},
        )
        found = await store.get_notification("n1")
    assert found is not None
    assert found.request == {"text": half, "tags": ["é"]}
    assert [d.payload for d in found.deliveries] == [{"text": half}]


async def test_a_full_disk_fails_the_group_commit_as_store_unavailable_naming_the_cause(
    tmp_path: Path,
) -> None:
    """A group commit that does not fit (the file's page limit stands for a full disk) is
    rolled back by SQLite itself: every submit in it fails as :class:`StoreUnavailable`, which
    the API answers 503 with Retry-After, and the error names the cause (not the rollback that
    found no transaction). Nothing of it is kept; once there is room, the retries commit."""
    from datetime import UTC, datetime

    from notify_devino.service.store import NewDelivery, NewNotification, StoreUnavailable

    now = datetime.now(UTC)

    def submit(store: SqliteStore, nid: str, text: str) -> asyncio.Task[object]:
        delivery = NewDelivery("sms", f"+7903000{len(nid):04d}", now, "k", {"text": text})
        return asyncio.create_task(
            store.submit(NewNotification(nid, text, {"text": text}, now, None), [delivery])
        )

    async with SqliteStore(tmp_path / "outbox.db") as store:

        def limit_pages(extra: int) -> None:
            (pages,) = store._db.execute("PRAGMA page_count").fetchone()
            store._db.execute(f"PRAGMA max_page_count = {pages + extra}")

        await store._run(limit_pages, 40)  # about 160 KiB more
        texts = {"a": "small", "bb": "x" * 400_000, "ccc": "small too"}
        results = await asyncio.gather(
            *(submit(store, nid, text) for nid, text in texts.items()), return_exceptions=True
        )
        for result in results:
            assert isinstance(result, StoreUnavailable), result
            assert "cannot commit: database or disk is full" in str(result)
        assert await store.list_deliveries() == []
        await store._run(limit_pages, 10_000)
        await asyncio.gather(*(submit(store, nid, text) for nid, text in texts.items()))
        kept = await store.list_deliveries()
    assert {d.notification_id for d in kept} == set(texts)


async def test_a_submit_whose_own_write_the_store_cannot_make_is_unavailable_alone(
    tmp_path: Path,
) -> None:
    """A statement of one submit that fails with an OperationalError, the transaction still
    open (here a trigger's function raises for one address): that submit fails as
    :class:`StoreUnavailable` (503 with Retry-After, not 500), the others are kept."""
    from datetime import UTC, datetime

    from notify_devino.service.store import (
        NewDelivery,
        NewNotification,
        StoreUnavailable,
        SubmitOutcome,
    )

    now = datetime.now(UTC)

    def submit(store: SqliteStore, nid: str, address: str) -> asyncio.Task[object]:
        delivery = NewDelivery("sms", address, now, "k", {"text": "x"})
        return asyncio.create_task(
            store.submit(NewNotification(nid, "x", {}, now, None), [delivery])
        )

    def refuse(address: str) -> int:
        if address == "+79030000002":
            raise OSError("no space left on device")
        return 0

    async with SqliteStore(tmp_path / "outbox.db") as store:

        def add_trigger() -> None:
            store._db.create_function("refuse", 1, refuse)
            store._db.execute(
                "CREATE TEMP TRIGGER refuse_one BEFORE INSERT ON deliveries "
                "BEGIN SELECT refuse(NEW.address); END"
            )

        await store._run(add_trigger)
        tasks = [
            submit(store, "a", "+79030000001"),
            submit(store, "b", "+79030000002"),
            submit(store, "c", "+79030000003"),
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        kept = await store.list_deliveries()
    assert getattr(results[0], "outcome", None) is SubmitOutcome.CREATED
    assert isinstance(results[1], StoreUnavailable), results[1]
    assert isinstance(results[1].__cause__, sqlite3.OperationalError)
    assert getattr(results[2], "outcome", None) is SubmitOutcome.CREATED
    assert {d.notification_id for d in kept} == {"a", "c"}
