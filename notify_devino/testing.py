"""A pytest plugin for people who write notify-devino plugins, and for host systems that test
their configuration (loaded automatically when notify-devino is installed; entry point
``pytest11: notify_devino``). The project's own plugins are tested with it.

Fixtures:

``notify_plugin_manager``
    A fresh :class:`~notify_devino.plugins.PluginManager` that has loaded nothing: register the
    plugin under test by hand (``notify_plugin_manager.register(my_plugin.hooks)``), or call
    ``load_entrypoints()`` to test that your installed entry point is found.
``notify_config``
    A factory of validated :class:`~notify_devino.config.Config` objects, from YAML text
    (``notify_config('''version: 1 ...''')``, checked with the same line-precise errors as a
    file) or from channel definitions and top-level keys
    (``notify_config({"mail": {"type": "smtp", "settings": {...}}}, contacts={...})``).
``notify_events``
    A plugin object registered on ``notify_plugin_manager`` that records what observers hear:
    ``.sent`` (send results), ``.status_changes``, ``.inbound``, ``.lifecycle``.
``notify_dispatcher``
    An async factory of started dispatchers, closed when the test ends:
    ``dispatcher = await notify_dispatcher(config)`` (on ``notify_plugin_manager`` unless
    ``plugins=`` is given). Needs pytest-asyncio.

And two ways to run the ``notify-devino`` command line: :func:`invoke_cli` in this process
(click's test runner, a command line built for the call; from an async test,
``await asyncio.to_thread(invoke_cli, ...)`` so the command's own event loop has a thread),
and :func:`run_cli` in a subprocess, as a user does, for what only a process shows (entry
points, signals, the exit status): ``code, out, err = await run_cli("plugins", "--json")``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .config import Config, parse_config
from .hookspecs import hookimpl
from .plugins import PluginManager
from .types import InboundMessage, SendResult, StatusChange

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture says what is missing when used
    pytest_asyncio = None  # type: ignore[assignment]


def invoke_cli(
    *args: str,
    stdin: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
    plugins: PluginManager | None = None,
) -> tuple[int, str, str]:
    """Run the ``notify-devino`` command line in this process; :return: exit code, stdout,
    stderr. An exception that is not an exit is raised, not turned into exit code 1.

    ``NOTIFY_DEVINO_CONFIG`` is cleared unless ``env`` sets it. ``plugins`` defaults to a
    manager that loads the installed plugins. The logging configuration the command sets up
    (pointed at the runner's stderr) is undone afterwards.
    """
    import logging

    import structlog
    from click.testing import CliRunner

    from .cli import build_cli

    saved = structlog.get_config()
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        result = CliRunner().invoke(
            build_cli(plugins),
            list(args),
            input=stdin,
            env={"NOTIFY_DEVINO_CONFIG": None, **(env or {})},
            prog_name="notify-devino",
        )
    finally:
        structlog.configure(**saved)
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def run_cli(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,  # noqa: ASYNC109 - a bound for the whole subprocess
) -> tuple[int, str, str]:
    """Run ``python -m notify_devino ARGS`` in a subprocess; :return: exit code, stdout, stderr.

    ``NOTIFY_DEVINO_CONFIG`` is cleared unless ``env`` sets it, so only ``--config`` counts.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify_devino",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NOTIFY_DEVINO_CONFIG": "", **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def notify_plugin_manager() -> PluginManager:
    """A plugin manager of its own for one test; it never touches a global one."""
    return PluginManager(autoload=False)


ConfigFactory = Callable[..., Config]


@pytest.fixture
def notify_config() -> ConfigFactory:
    """Build a validated configuration from YAML text, or from channel definitions."""

    def make(
        channels: Mapping[str, Mapping[str, Any]] | str,
        *,
        env: Mapping[str, str] | None = None,
        **top: Any,
    ) -> Config:
        if isinstance(channels, str):
            if top:
                raise TypeError("give YAML text alone, or channel definitions with keywords")
            return parse_config(textwrap.dedent(channels), source="<test config>", env=env or {})
        return Config.model_validate({"version": 1, "channels": dict(channels), **top})

    return make


class EventRecorder:
    """Records every observer hook call, in order."""

    def __init__(self) -> None:
        self.sent: list[SendResult] = []
        self.status_changes: list[StatusChange] = []
        self.inbound: list[InboundMessage] = []
        self.lifecycle: list[str] = []

    @hookimpl
    def notify_dispatcher_started(self, dispatcher: Dispatcher) -> None:
        self.lifecycle.append("started")

    @hookimpl
    def notify_dispatcher_closing(self, dispatcher: Dispatcher) -> None:
        self.lifecycle.append("closing")

    @hookimpl
    def notify_after_send(self, result: SendResult) -> None:
        self.sent.append(result)

    @hookimpl
    def notify_status_changed(self, change: StatusChange) -> None:
        self.status_changes.append(change)

    @hookimpl
    def notify_inbound_message(self, message: InboundMessage) -> None:
        self.inbound.append(message)


@pytest.fixture
def notify_events(notify_plugin_manager: PluginManager) -> EventRecorder:
    """What the observer hooks of ``notify_plugin_manager`` hear during the test."""
    recorder = EventRecorder()
    notify_plugin_manager.register(recorder, name="notify_events")
    return recorder


DispatcherFactory = Callable[..., Awaitable["Dispatcher"]]


async def _dispatchers(plugins: PluginManager) -> AsyncIterator[DispatcherFactory]:
    from .dispatcher import Dispatcher

    started: list[Dispatcher] = []

    async def start(config: Config, **kwargs: Any) -> Dispatcher:
        kwargs.setdefault("plugins", plugins)
        dispatcher = Dispatcher(config, **kwargs)
        await dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    try:
        yield start
    finally:
        for dispatcher in reversed(started):
            await dispatcher.aclose()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def notify_dispatcher(
        notify_plugin_manager: PluginManager,
    ) -> AsyncIterator[DispatcherFactory]:
        """Start dispatchers in the test's event loop; each is closed when the test ends."""
        async for factory in _dispatchers(notify_plugin_manager):
            yield factory

else:  # pragma: no cover

    @pytest.fixture
    def notify_dispatcher() -> None:
        pytest.fail(
            "the notify_dispatcher fixture needs pytest-asyncio (pip install pytest-asyncio)"
        )
