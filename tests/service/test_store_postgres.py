"""What the PostgreSQL engine adds to the contract: several processes' stores on one database.

Each test opens two or more stores on one fresh database of the session's throw-away server
(tests/peers/postgres.py), as two ``serve`` instances would.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notify_devino.config import parse_config
from notify_devino.errors import ConfigError
from notify_devino.service.states import SendPolicy, State
from notify_devino.service.store import (
    Change,
    NewDelivery,
    NewNotification,
    StoreError,
    StoreUnavailable,
    Work,
    open_store,
)
from notify_devino.service.store.postgres import PostgresStore, migrations
from tests.peers.postgres import PostgresPeer

from .conftest import Opener
from .harness import eventually


def note(nid: str) -> NewNotification:
    return NewNotification(id=nid, text="disk full", request={}, created_at=datetime.now(UTC))


def dlv(address: str) -> NewDelivery:
    return NewDelivery(
        "sms", address, datetime.now(UTC) - timedelta(seconds=1), "g", {"text": "disk full"}
    )


async def test_open_store_picks_the_engine_and_hides_the_password(new_database: str) -> None:
    store = open_store(new_database)
    assert isinstance(store, PostgresStore)
    password = new_database.split(":")[2].split("@")[0]
    assert password not in store.url
    assert password not in repr(store)
    assert "***" in store.url
    with pytest.raises(ConfigError, match="pool_size"):
        open_store(new_database + "?pool_size=many")


async def test_a_wrong_password_is_a_clear_error_without_the_password(
    postgres: PostgresPeer,
) -> None:
    wrong = postgres.dsn().replace(postgres.password, "not-the-password-xyz")
    with pytest.raises(StoreUnavailable) as caught:
        await PostgresStore(wrong).open()
    assert "cannot open the store" in str(caught.value)
    assert "not-the-password-xyz" not in str(caught.value)


async def test_readonly_on_an_empty_database_says_there_is_no_store(new_database: str) -> None:
    store = open_store(new_database, readonly=True)
    with pytest.raises(StoreUnavailable, match="no store"):
        await store.open()


async def test_instances_starting_at_once_migrate_once(instances: Opener) -> None:
    stores = await asyncio.gather(*(instances() for _ in range(4)))
    versions = {await s.schema_version() for s in stores}
    assert versions == {migrations()[-1][0]}
    async with stores[0]._read() as conn:
        rows = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == sorted({r["version"] for r in rows})


async def test_instances_claiming_at_once_never_get_one_row_twice(instances: Opener) -> None:
    a, b, c = [await instances() for _ in range(3)]
    await a.submit(note("n1"), [dlv(f"+7903{i:07d}") for i in range(300)])

    async def drain(store: PostgresStore, owner: str) -> list[int]:
        got: list[int] = []
        while rows := await store.claim(Work.SEND, owner=owner, lease_seconds=30, limit=7):
            got += [r.id for r in rows]
        return got

    taken = await asyncio.gather(drain(a, "a"), drain(b, "b"), drain(c, "c"), drain(a, "a2"))
    every = [i for ids in taken for i in ids]
    assert len(every) == 300
    assert len(set(every)) == 300
    assert sum(1 for ids in taken if ids) >= 2  # they really shared the work


async def test_a_dead_instances_claims_return_to_the_queue_when_its_lease_expires(
    instances: Opener,
) -> None:
    dead, alive = await instances(), await instances()
    await dead.submit(note("n1"), [dlv("+7901"), dlv("+7902"), dlv("+7903")])
    a, b, c = await dead.claim(Work.SEND, owner="dead", lease_seconds=0.5, limit=5)
    await dead.apply(
        [Change(b.id, expect=State.CLAIMED, to=State.SENDING, release=False)], owner="dead"
    )
    await dead.extend_leases("dead", [c.id], 60)  # a heartbeat keeps this one
    # While the lease lasts, nobody else takes the rows back.
    assert (await alive.recover(owner="alive", policy=SendPolicy.AT_MOST_ONCE)).requeued == ()
    await dead.aclose()  # killed: no more heartbeats
    await asyncio.sleep(0.6)
    recovery = await alive.recover(owner="alive", policy=SendPolicy.AT_MOST_ONCE)
    assert recovery.requeued == (a.id,)
    assert recovery.unknown == (b.id,)
    assert c.id not in recovery.requeued  # its lease was extended
    again = await alive.claim(Work.SEND, owner="alive", lease_seconds=30, limit=5)
    assert [d.id for d in again] == [a.id]


async def test_a_submit_on_one_instance_wakes_the_others_listeners(instances: Opener) -> None:
    intake, worker = await instances(), await instances()
    heard: asyncio.Queue[Work] = asyncio.Queue()
    worker.subscribe(heard.put_nowait)
    await asyncio.sleep(0.2)  # the listener connects
    await intake.submit(note("n1"), [dlv("+7901")])
    assert await asyncio.wait_for(heard.get(), 5) is Work.SEND
    (row,) = await worker.claim(Work.SEND, owner="w", lease_seconds=30, limit=5)
    await worker.apply(
        [Change(row.id, expect=State.CLAIMED, to=State.SENDING, release=False)], owner="w"
    )
    while not heard.empty():
        heard.get_nowait()
    await worker.apply(
        [
            Change(
                row.id,
                expect=State.SENDING,
                to=State.ACCEPTED,
                message_ids=["m"],
                due_at=datetime.now(UTC),
            )
        ],
        owner="w",
    )
    assert await asyncio.wait_for(heard.get(), 5) is Work.FOLLOW


async def test_a_listener_whose_connection_drops_connects_again_and_hears_on(
    instances: Opener,
) -> None:
    intake, worker = await instances(), await instances()
    heard: asyncio.Queue[Work] = asyncio.Queue()
    worker.subscribe(heard.put_nowait)

    async def pid() -> int | None:  # of the backend the listener is connected to
        return None if worker._listener is None else int(worker._listener.get_server_pid())

    first = await eventually(pid, timeout=5)
    async with intake._tx() as conn:  # what a server restart or an operator does to it
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", first)

    async def reconnected() -> bool:  # gone, then back on a new backend
        return (await pid()) not in (None, first)

    await eventually(reconnected, timeout=10)
    woken = {await asyncio.wait_for(heard.get(), 5), await asyncio.wait_for(heard.get(), 5)}
    assert woken == {Work.SEND, Work.FOLLOW}  # a wake-up may have been missed: both woken
    await intake.submit(note("n1"), [dlv("+7901")])
    assert await asyncio.wait_for(heard.get(), 5) is Work.SEND


async def test_one_leader_at_a_time_and_another_takes_over_when_its_lease_runs_out(
    instances: Opener,
) -> None:
    a, b = await instances(), await instances()
    assert await a.lead("inbox:sms", "a", 0.5)
    assert not await b.lead("inbox:sms", "b", 0.5)
    assert await a.lead("inbox:sms", "a", 0.5)  # renewed
    assert await b.lead("inbox:other", "b", 0.5)  # another singleton is free
    await asyncio.sleep(0.6)  # a stopped renewing
    assert await b.lead("inbox:sms", "b", 5)
    assert not await a.lead("inbox:sms", "a", 5)
    await b.resign("inbox:sms", "b")
    assert await a.lead("inbox:sms", "a", 5)


def test_the_dsn_comes_from_the_environment_or_a_file_and_stays_out_of_the_repr(
    tmp_path: Path,
) -> None:
    dsn = "postgresql://notify:s3cret-pw@db.example.org/notify"
    base = "version: 1\nchannels: {sms: {type: memory}}\nservice:\n"
    from_env = parse_config(
        base + "  store: ${NOTIFY_DSN}\n", source="<t>", env={"NOTIFY_DSN": dsn}
    )
    assert from_env.service is not None
    assert from_env.service.store == dsn
    secret = tmp_path / "dsn"
    secret.write_text(dsn + "\n")
    from_file = parse_config(base + f"  store_file: {secret}\n", source="<t>", env={})
    assert from_file.service is not None
    assert from_file.service.store == dsn
    assert "s3cret-pw" not in repr(from_file.service)
    assert "s3cret-pw" not in open_store(from_file.service.store).url
    with pytest.raises(ConfigError, match="store or store_file"):
        parse_config(base + f"  store: x.db\n  store_file: {secret}\n", source="<t>", env={})


async def test_an_older_notify_devino_refuses_a_newer_schema(instances: Opener) -> None:
    store = await instances()
    async with store._tx() as conn:
        await conn.execute("INSERT INTO schema_version (version, name) VALUES (999, 'future')")
    with pytest.raises(StoreError, match="newer than this notify-devino knows"):
        await PostgresStore(store._dsn).open()


@pytest.mark.slow
async def test_a_database_that_went_away_is_unavailable_not_a_crash(postgres: PostgresPeer) -> None:
    with PostgresPeer(postgres.bindir) as own:
        store = PostgresStore(own.create_database())
        await store.open()
        await store.submit(note("n1"), [dlv("+7901")])
        own.stop()
        with pytest.raises(StoreUnavailable, match="cannot commit"):
            await store.check_writable()
        with pytest.raises(StoreUnavailable):
            await store.submit(note("n2"), [dlv("+7902")])
        assert own.password not in repr(store)
        await store.aclose()


async def test_queue_reads_a_postgresql_outbox_beside_its_writers(instances: Opener) -> None:
    writer = await instances()
    await writer.submit(note("n1"), [dlv("+7901")])
    dsn = writer._dsn
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        "queue",
        "--store",
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await done.communicate()
    assert done.returncode == 0, err.decode()
    assert "queued  sms" in out.decode()
    password = dsn.split(":")[2].split("@")[0]
    assert password not in (out + err).decode()


def test_the_server_runs_durable_and_unprivileged(postgres: PostgresPeer) -> None:
    settings = postgres.psql("SHOW fsync; SHOW synchronous_commit; SHOW listen_addresses")
    assert settings.split() == ["on", "on", "127.0.0.1"]
    owner = Path(postgres.data).stat().st_uid
    assert owner != 0  # PostgreSQL never runs as root
