"""``notify-devino serve`` and ``notify-devino queue``.

Registered by :func:`notify_devino.cli.build_cli`; they use only the CLI's declared helpers
(``CliState``, ``setup_logging``, ``fail``, ``emit_json``, ``table`` and the exit codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import signal
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import click
import structlog
from aiohttp import web

from ..cliapi import EXIT_FAILED, EXIT_USAGE, CliState, emit_json, fail, setup_logging, table
from ..config import Config, find_config, load_config
from ..errors import ConfigError, NotifyError
from ..types import utc_now
from .settings import ServiceSettings
from .states import FINAL, State
from .store import StoreError, open_store

log = structlog.get_logger(__name__)

DEFAULT_STORE = "sqlite:///./notify-devino-outbox.db"
SERVING_GEN0_THRESHOLD = 10_000
"""The cyclic collector's first threshold while serving (Python's default is 700)."""


@contextlib.contextmanager
def collector_tuned_for_serving() -> Iterator[None]:
    """Tune the cyclic garbage collector for a long-running service, and restore it after.

    - Everything alive once the service has started (modules, classes, the configuration,
      the plugins) is frozen (:func:`gc.freeze`): a full collection no longer walks it.
    - A young collection waits for 10,000 net new objects instead of 700. At 700, every young
      collection found the objects of the 64 requests in flight still alive, walked them and
      moved them to the older generations, where they were walked again; given time, they die
      by reference counting and no collection walks them at all. Objects in reference
      cycles wait longer to be freed; the service makes few.

    Measured with ``python -m benchmarks serve`` (a): the collector took about 12 % of the
    event loop's CPU per accepted POST, and this tuning saves most of it.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], SERVING_GEN0_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _configured(state: CliState) -> Config | None:
    """The configuration file's, or None when there is none to find and none was named."""
    if state.config_path is not None:
        return state.load_config()
    try:
        path = find_config(None)
    except ConfigError:
        return None
    return load_config(path)


@click.command()
@click.option("--host", help="Address to listen on (default: service.listen.host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port (default: service.listen.port, 8080)."
)
@click.option(
    "--store",
    "store_url",
    help="The outbox: sqlite:///absolute/path.db or sqlite:///./relative.db "
    f"(default: service.store, {DEFAULT_STORE}).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, store_url: str | None) -> None:
    """Run the durable notification service: the HTTP API, the outbox and its workers.

    With no configuration file it runs on the embedded sandbox (as 'demo' does), on 127.0.0.1
    only, without authentication, with the outbox in the working directory.
    """
    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - main() always passes one
        fail("the command line was not set up", EXIT_USAGE)
    try:
        config = _configured(state)
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    setup: AbstractAsyncContextManager[Config] | None = None
    if config is None:
        setup = state.plugins.embedded_setup()
        if setup is None:
            fail(
                "no configuration file found, and no installed plugin provides an embedded "
                "setup: pass --config (see docs/service.md)",
                EXIT_USAGE,
            )
        settings = ServiceSettings(auth=False)
        if host is not None and not _is_loopback(host):
            fail("without a configuration the service listens on loopback only", EXIT_USAGE)
    else:
        settings = config.service or ServiceSettings()
    # A service: the configuration's logging.level (the access log is at info), set once.
    setup_logging(state, config, config_level=True, final=True)
    settings = settings.model_copy(deep=True)
    if host is not None:
        settings.listen.host = host
    if port is not None:
        settings.listen.port = port
    if store_url is not None:
        settings.store = store_url
    try:
        asyncio.run(_serve(config, setup, settings, state))
    except KeyboardInterrupt:
        pass
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(
            f"cannot serve on {settings.listen.host}:{settings.listen.port}: {exc.strerror or exc}",
            EXIT_FAILED,
        )


async def _serve(
    config: Config | None,
    setup: AbstractAsyncContextManager[Config] | None,
    settings: ServiceSettings,
    state: CliState,
) -> None:
    from .app import make_app

    async with contextlib.AsyncExitStack() as stack:
        if setup is not None:
            config = await stack.enter_async_context(setup)
            log.warning(
                "embedded_setup",
                detail="no configuration file: running on the embedded sandbox, auth off, "
                "127.0.0.1 only",
            )
        assert config is not None
        app = make_app(config, settings, store=open_store(settings.store), plugins=state.plugins)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=False,
            shutdown_timeout=settings.workers.shutdown_grace_seconds,
            max_line_size=settings.limits.max_header_bytes,
            max_field_size=settings.limits.max_header_bytes,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.listen.host, settings.listen.port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stack.enter_context(collector_tuned_for_serving())
        bound = runner.addresses[0]
        auth = "on" if settings.auth and settings.tokens else "off"
        click.echo(
            f"notify-devino serving on http://{bound[0]}:{bound[1]} "
            f"(store {open_store(settings.store).url}, auth {auth}, "
            f"{settings.send_policy.value})",
            err=True,
        )
        log.info("service_listening", host=bound[0], port=bound[1], auth=auth)
        await stop.wait()
        log.info("service_stopping", reason="signal")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@click.command()
@click.option("--store", "store_url", help="The outbox (default: the configuration's).")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in State]),
    help="Only deliveries in this state (repeatable). Default: every state not final.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def queue(
    ctx: click.Context, store_url: str | None, states: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """Show what the outbox holds: counts by state and channel, and the deliveries not final.

    It only reads, so it runs beside a serving 'serve'.
    """
    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover
        fail("the command line was not set up", EXIT_USAGE)
    if store_url is None:
        try:
            config = _configured(state)
        except NotifyError as exc:
            fail(str(exc), EXIT_USAGE)
        service = config.service if config is not None else None
        store_url = service.store if service is not None else DEFAULT_STORE
    wanted = [State(s) for s in states] or [s for s in State if s not in FINAL]
    try:
        depth, rows = asyncio.run(_read_queue(store_url, wanted, limit))
    except (StoreError, NotifyError) as exc:
        fail(str(exc), EXIT_FAILED)
    if as_json:
        emit_json({"depth": depth, "deliveries": rows})
        return
    click.echo(
        table(
            ("state", "channel", "count", "oldest age s"),
            [[d["state"], d["channel"], d["count"], d["oldest_age_seconds"]] for d in depth],
        )
    )
    click.echo("")
    click.echo(
        table(
            ("id", "notification", "channel", "address", "state", "due at", "attempts", "error"),
            [
                [
                    r["id"],
                    r["notification_id"],
                    r["channel"],
                    r["address"],
                    r["state"],
                    r["due_at"],
                    r["attempts"],
                    r["error"],
                ]
                for r in rows
            ],
        )
    )


async def _read_queue(
    url: str, states: list[State], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with open_store(url, readonly=True) as store:
        now = utc_now()
        depth = [
            {
                "state": d.state.value,
                "channel": d.channel,
                "count": d.count,
                "oldest_age_seconds": None
                if d.oldest is None
                else round((now - d.oldest).total_seconds(), 1),
            }
            for d in await store.depth(now)
        ]
        rows = [
            {
                "id": d.id,
                "notification_id": d.notification_id,
                "channel": d.channel,
                "address": d.address,
                "state": d.state.value,
                "due_at": None if d.due_at is None else d.due_at.isoformat(timespec="seconds"),
                "attempts": d.attempts,
                "error": d.error,
            }
            for d in await store.list_deliveries(states=states, limit=limit)
        ]
    return depth, rows


__all__ = ["collector_tuned_for_serving", "queue", "serve"]
