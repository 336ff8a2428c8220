"""Helpers of the service tests: a configuration pointed at a sandbox, and a service that can
be started, stopped and started again on one store file (a restart)."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from notify_devino.config import Config, parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.plugins import PluginManager
from notify_devino.service.settings import ServiceSettings
from notify_devino.service.store import SqliteStore
from notify_devino.service.workers import Service


def sandbox_config(url: str, *, extra: str = "", poll: float = 0.1, rate: float = 10) -> Config:
    """Two SMS channels on two sandbox accounts (``sms`` the default, ``backup``, each at
    ``rate`` requests/s), a contact per sandbox number kind, and a route from ``sms`` to
    ``backup``."""
    text = f"""
    version: 1
    default_channel: sms
    status: {{poll_interval_seconds: {poll}, wait_timeout_seconds: 30}}
    channels:
      sms:
        type: devino_soap
        settings: {{url: "{url}", login: demo, password: demo-password, sender: ALERTS,
                    currency: RUB, price_per_segment: 1.50,
                    timeout_seconds: 5, rate_limit_per_second: {rate}}}
      backup:
        type: devino_soap
        settings: {{url: "{url}", login: other, password: other-password, sender: BACKUP,
                    timeout_seconds: 5, rate_limit_per_second: {rate}}}
    contacts:
      ann: {{sms: "+79031234567", backup: "+79031234567"}}
      stuck: {{sms: "+79990000003", backup: "+79031230003"}}
      rejected: {{sms: "+79990000001", backup: "+79031230001"}}
    groups:
      oncall: [ann, stuck]
    routes:
      critical:
        match: {{severity: critical}}
        channels: [sms, backup]
        fallback_after_seconds: 2
    """
    return parse_config(textwrap.dedent(text) + textwrap.dedent(extra), source="<test>", env={})


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline for many awaits
    interval: float = 0.05,
) -> Any:
    """Await ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {timeout} s: last {value!r}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running(
    config: Config,
    path: Path,
    plugins: PluginManager,
    *,
    settings: ServiceSettings | None = None,
    start: bool = True,
    store_class: type[SqliteStore] = SqliteStore,
) -> AsyncIterator[Service]:
    """A service on the store at ``path``: stopped and closed on exit (a graceful restart)."""
    settings = settings or ServiceSettings()
    async with store_class(path) as store, Dispatcher(config, plugins=plugins) as dispatcher:
        service = Service(config, settings, store, dispatcher)
        if start:
            await service.start()
        try:
            yield service
        finally:
            if service.started:
                await service.stop()
