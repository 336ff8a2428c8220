"""A pytest plugin for people who write notify-devino plugins (loaded automatically when
notify-devino is installed; entry point ``pytest11: notify_devino``).

Fixtures:

``notify_plugin_manager``
    A fresh :class:`~notify_devino.plugins.PluginManager` that has loaded nothing: register the
    plugin under test by hand, or call ``load_entrypoints()`` to test your entry point.
``notify_config``
    A factory: ``notify_config({"sms": {"type": "devino_soap", "settings": {...}}})`` returns a
    validated :class:`~notify_devino.config.Config` with those channels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from .config import Config
from .plugins import PluginManager


@pytest.fixture
def notify_plugin_manager() -> PluginManager:
    """A plugin manager of its own for one test; it never touches a global one."""
    return PluginManager(autoload=False)


@pytest.fixture
def notify_config() -> Callable[..., Config]:
    """Build a validated configuration from channel definitions."""

    def make(channels: Mapping[str, Mapping[str, Any]], **top: Any) -> Config:
        return Config.model_validate({"version": 1, "channels": dict(channels), **top})

    return make
