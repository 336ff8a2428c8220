"""Fixtures of the webhook plugin's tests, on the core's kit (``notify_devino.testing``) and
the plugin's own receiver (``notify_devino_webhook.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import notify_devino_webhook.hooks
from notify_devino.config import Config
from notify_devino.plugins import PluginManager
from notify_devino_webhook.testing import TEST_SECRET


@pytest.fixture
def plugins(notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.register(notify_devino_webhook.hooks, name="webhook")
    return notify_plugin_manager


@pytest.fixture
def hooks_config(notify_config: Callable[..., Config]) -> Callable[..., Config]:
    """A configuration with one ``webhook`` channel named ``hooks``, signing with TEST_SECRET,
    quick to retry."""

    def make(**settings: Any) -> Config:
        settings.setdefault("secret", TEST_SECRET)
        settings.setdefault("timeout_seconds", 5)
        settings.setdefault(
            "retry", {"attempts": 3, "wait_initial_seconds": 0.01, "wait_max_seconds": 0.1}
        )
        return notify_config({"hooks": {"type": "webhook", "settings": settings}})

    return make
