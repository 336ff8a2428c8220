"""Fixtures of the service tests.

``store_factory`` is parametrised over the store engines: an engine joins the contract suite by
adding its name to ``ENGINES`` and a branch to ``_make`` (a fresh, empty database per test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from notify_devino.service.store import SqliteStore, Store
from tests.peers.postgres import new_database, postgres  # noqa: F401 - fixtures

ENGINES = ["sqlite", "postgresql"]

StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(params=ENGINES)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """``await store_factory()`` opens a store on this test's database; called again after
    the first is closed, it opens the same database (a restart)."""
    opened: list[Store] = []
    dsn = request.getfixturevalue("new_database") if request.param == "postgresql" else ""

    async def make() -> Store:
        if request.param == "sqlite":
            store: Store = SqliteStore(tmp_path / "outbox.db")
        elif request.param == "postgresql":
            from notify_devino.service.store.postgres import PostgresStore

            store = PostgresStore(dsn)
        else:  # pragma: no cover - an engine listed without a factory
            raise AssertionError(f"no factory for the {request.param} engine")
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()
