"""The service's durable state: the :class:`Store` interface and its engines.

``open_store(url)`` picks the engine by the URL's scheme. An engine registers its scheme in
:data:`ENGINES` (a factory from the URL to an unopened :class:`Store`); the SQLite engine is
built in::

    sqlite:///var/lib/notify-devino/outbox.db   an absolute path
    sqlite:///./outbox.db, or a bare path        relative to the working directory
    postgresql://user:password@host/database     shared by several instances (asyncpg)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import ConfigError
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
from .sqlite import SqliteStore


def _sqlite(url: str) -> Store:
    if "://" not in url:
        return SqliteStore(Path(url))
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"the store URL {url!r} has no file path: expected sqlite:///absolute/path.db, "
            "sqlite:///./relative.db or a plain file path"
        )
    path = rest[1:] if rest.startswith("/./") else rest
    return SqliteStore(Path(path))


def _postgresql(url: str) -> Store:
    from .postgres import PostgresStore

    return PostgresStore(url)


ENGINES: dict[str, Callable[[str], Store]] = {
    "sqlite": _sqlite,
    "": _sqlite,
    "postgresql": _postgresql,
    "postgres": _postgresql,
}
"""URL scheme -> factory of an unopened store. The PostgreSQL engine adds ``postgresql``."""


def open_store(url: str, *, readonly: bool = False) -> Store:
    """The store at ``url``, not yet opened (``async with open_store(url) as store:``).

    :param readonly: only read (see :attr:`Store.readonly`).
    :raises ConfigError: the scheme names no engine.
    """
    scheme = urlsplit(url).scheme if "://" in url else ""
    factory = ENGINES.get(scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in ENGINES if s)  # in registration order
        raise ConfigError(
            f"the store URL {_redacted(url)!r} has the scheme {scheme!r}, which no store engine "
            f"provides (known: {known}, or a plain file path for SQLite)"
        )
    store = factory(url)
    store.readonly = readonly
    return store


def _redacted(url: str) -> str:
    """The URL without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


__all__ = [
    "ENGINES",
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
    "SqliteStore",
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
    "open_store",
]
