"""Shared fixtures of the Devino plugin's tests.

The sandbox fixtures (``devino_sandbox``, ``devino_sandbox_config``, ...) come from the plugin's own
pytest plugin, ``notify_devino_soap.testing``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from notify_devino.config import Config, load_config
from notify_devino.plugins import PluginManager
from notify_devino_soap.ratelimit import forget_account_limiters


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Each test starts with no shared rate limiter: a sandbox's port may have been another
    test's, with another rate."""
    forget_account_limiters()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to a sandbox by hand (sandbox_wire), closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def devino_plugins() -> PluginManager:
    """A fresh plugin manager that found the Devino plugin through its installed entry point."""
    manager = PluginManager(autoload=True)
    assert manager.is_registered("devino_soap")
    return manager


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a dispatcher YAML with one Devino channel ``sms`` pointing at ``url``."""

    def write(url: str, *, soap_version: str = "1.2", **settings: Any) -> Path:
        channel = {
            "url": url,
            "login": "demo",
            "password": "demo-password",
            "sender": "ALERTS",
            "soap_version": soap_version,
            "timeout_seconds": 5,
            **settings,
        }
        data = {
            "version": 1,
            "status": {"poll_interval_seconds": 0.05, "wait_timeout_seconds": 10},
            "channels": {"sms": {"type": "devino_soap", "settings": channel}},
        }
        path = tmp_path / f"notify-devino-{soap_version}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def make_config(write_config: Callable[..., Path]) -> Callable[..., Config]:
    def make(url: str, **kwargs: Any) -> Config:
        return load_config(write_config(url, **kwargs))

    return make
