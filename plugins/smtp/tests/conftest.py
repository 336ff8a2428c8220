"""Fixtures of the SMTP plugin's tests, on the core's kit (``notify_devino.testing``) and the
plugin's own loopback server (``notify_devino_smtp.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import notify_devino_smtp.hooks
from notify_devino.config import Config
from notify_devino.plugins import PluginManager


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(notify_devino_smtp.hooks, name="smtp")
    return notify_plugin_manager


@pytest.fixture
def email_config(notify_config: Callable[..., Config]) -> Callable[..., Config]:
    """A configuration with one ``smtp`` channel named ``email``."""

    def make(settings: dict[str, Any]) -> Config:
        return notify_config({"email": {"type": "smtp", "settings": settings}})

    return make
