"""Fixtures of the service tests.

``new_store`` (and ``store_factory`` on it) is parametrised over the store engines: an engine
joins the contract suite and the API tests by adding its name to ``ENGINES`` and a branch to
``new_store`` (a fresh, empty database per test).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from notify_devino.service.store import SqliteStore, Store
from tests.peers.postgres import new_database, postgres  # noqa: F401 - fixtures

if TYPE_CHECKING:
    from notify_devino.service.store.postgres import PostgresStore

ENGINES = ["sqlite", "postgresql"]

StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(params=ENGINES)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """``new_store()`` makes an unopened store on this test's database (for a service that
    opens its own); called again, another on the same database (a restart)."""
    dsn = request.getfixturevalue("new_database") if request.param == "postgresql" else ""

    def make() -> Store:
        if request.param == "sqlite":
            return SqliteStore(tmp_path / "outbox.db")
        if request.param == "postgresql":
            from notify_devino.service.store.postgres import PostgresStore

            return PostgresStore(dsn)
        raise AssertionError(f"no factory for the {request.param} engine")  # pragma: no cover

    return make


S = TypeVar("S", bound=Store)


@contextlib.asynccontextmanager
async def _opening(new: Callable[[], S]) -> AsyncIterator[Callable[[], Awaitable[S]]]:
    """``await open_one()`` opens one more store made by ``new``; all are closed at the end."""
    opened: list[S] = []

    async def open_one() -> S:
        store = new()
        await store.open()
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        for store in opened:
            await store.aclose()


@pytest.fixture
async def store_factory(new_store: Callable[[], Store]) -> AsyncIterator[StoreFactory]:
    """``await store_factory()`` opens a store on this test's database; called again after
    the first is closed, it opens the same database (a restart)."""
    async with _opening(new_store) as open_one:
        yield open_one


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()


Opener = Callable[[], Awaitable["PostgresStore"]]


@pytest.fixture
async def instances(new_database: str) -> AsyncIterator[Opener]:  # noqa: F811 - the fixture
    """``await instances()`` opens one more PostgreSQL store on the test's database: another
    ``serve`` instance's view of the shared outbox."""
    from notify_devino.service.store.postgres import PostgresStore

    async with _opening(lambda: PostgresStore(new_database)) as open_one:
        yield open_one
