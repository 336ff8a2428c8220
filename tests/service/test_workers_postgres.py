"""The workers on a shared PostgreSQL store, in one process: what an instance does about the
others (wake on their submits, take back what a dead one held)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from notify_devino.dispatcher import Dispatcher
from notify_devino.plugins import PluginManager
from notify_devino.service.outbox import NotificationRequest, Outbox
from notify_devino.service.settings import ServiceSettings, WorkerSettings
from notify_devino.service.states import State
from notify_devino.service.store import Work
from notify_devino.service.store.postgres import PostgresStore
from notify_devino.service.workers import Service

from .harness import eventually, sandbox_config

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino


def plugins() -> PluginManager:
    manager = PluginManager()
    manager.load_entrypoints()
    return manager


@pytest.fixture
async def two_stores(new_database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(new_database), PostgresStore(new_database)
    await a.open()
    await b.open()
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_an_idle_instance_sends_at_once_what_another_accepted(
    devino_sandbox: Sandbox, two_stores: tuple[PostgresStore, PostgresStore]
) -> None:
    intake, worker = two_stores
    config = sandbox_config(devino_sandbox.url)
    # An idle worker looks at the store every 60 s on its own: only the other instance's
    # NOTIFY can make it send within the test's few seconds.
    settings = ServiceSettings(workers=WorkerSettings(idle_poll_seconds=60))
    async with Dispatcher(config, plugins=plugins()) as dispatcher:
        service = Service(config, settings, worker, dispatcher)
        await service.start()
        try:
            await asyncio.sleep(0.5)  # idle, waiting
            outbox = Outbox(intake, config)  # the other instance's intake, no workers
            await outbox.submit(NotificationRequest(text="db-1 down", addresses=["+79031234567"]))

            async def sent() -> bool:
                rows = await worker.list_deliveries()
                return bool(rows) and rows[0].state is State.ACCEPTED

            await eventually(sent, timeout=10)
        finally:
            await service.stop()


async def test_a_running_instance_takes_back_what_a_dead_one_claimed(
    devino_sandbox: Sandbox, two_stores: tuple[PostgresStore, PostgresStore]
) -> None:
    dead, alive = two_stores
    config = sandbox_config(devino_sandbox.url)
    outbox = Outbox(dead, config)
    await outbox.submit(NotificationRequest(text="db-1 down", addresses=["+79031234567"]))
    (claimed,) = await dead.claim(Work.SEND, owner="dead", lease_seconds=1.5, limit=5)
    settings = ServiceSettings(workers=WorkerSettings(lease_seconds=1.5, idle_poll_seconds=60))
    async with Dispatcher(config, plugins=plugins()) as dispatcher:
        service = Service(config, settings, alive, dispatcher)
        await service.start()  # at its start the lease is still live: the row is not its
        try:
            (row,) = await alive.list_deliveries()
            assert row.state is State.CLAIMED

            async def sent() -> bool:
                (now,) = await alive.list_deliveries()
                return now.state is State.ACCEPTED

            # The dead holder never renews: its lease runs out and the running instance's
            # periodic recovery queues the row again, and sends it.
            await eventually(sent, timeout=15)
        finally:
            await service.stop()
    stored = await alive.get_notification(claimed.notification_id)
    assert stored is not None
    assert [t.to_state for t in stored.transitions] == [
        State.QUEUED,
        State.CLAIMED,
        State.QUEUED,
        State.CLAIMED,
        State.SENDING,
        State.ACCEPTED,
    ]
