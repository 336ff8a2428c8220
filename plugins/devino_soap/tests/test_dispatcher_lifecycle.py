"""The dispatcher's life against the sandbox: many threads through the sync facade, one loop
per dispatcher, and closing while a stream's batches are in flight. The sandbox's stored
messages are the truth every result is held to."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import structlog

from notify_devino import hookimpl
from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher, SyncDispatcher
from notify_devino.errors import DispatcherStateError
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome, SendResult
from notify_devino_soap.emulator import Sandbox

THREADS = 50


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"7903{n:07d}" for n in range(start, start + count)]


async def test_a_sync_dispatcher_serves_fifty_threads_at_once_and_reports_every_sent_message(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    config = make_config(devino_sandbox.url)
    results: list[SendResult] = []
    errors: list[BaseException] = []

    def run() -> None:  # a program without a loop: its threads all send at once
        with SyncDispatcher(config, plugins=devino_plugins) as dispatcher:
            together = threading.Barrier(THREADS)

            def one(number: str) -> None:
                together.wait()
                try:
                    results.append(dispatcher.send(f"disk full ({number})", to=[number]))
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(n,)) for n in numbers(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    await asyncio.to_thread(run)  # the sandbox serves on this test's loop meanwhile
    assert errors == []
    assert len(results) == THREADS
    assert [r.outcome for result in results for r in result.recipients] == [
        SendOutcome.ACCEPTED
    ] * THREADS
    stored = devino_sandbox.state.messages("demo")
    assert len(stored) == THREADS
    assert sorted(m.destination for m in stored) == numbers(THREADS)
    reported = {i for result in results for i in result.message_ids}
    assert reported == {str(m.message_id) for m in stored}


async def test_a_dispatcher_refuses_a_second_event_loop_before_sending(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    dispatcher = Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()

    async def in_other(coroutine: object) -> object:
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coroutine, other)  # type: ignore[arg-type]
        )

    try:
        await in_other(dispatcher.start())
        assert (await in_other(dispatcher.send("x", to=["79031234567"]))).ok  # type: ignore[attr-defined]
        with pytest.raises(DispatcherStateError, match="another event loop"):
            await dispatcher.send("x", to=["79031234568"])
        with pytest.raises(DispatcherStateError, match="another event loop"):
            await dispatcher.balance()
        assert len(devino_sandbox.state.messages("demo")) == 1
    finally:
        await in_other(dispatcher.aclose())
        other.call_soon_threadsafe(other.stop)
        thread.join()
        other.close()


class Heard:
    def __init__(self) -> None:
        self.sent: list[SendResult] = []

    @hookimpl
    def notify_after_send(self, result: SendResult) -> None:
        self.sent.append(result)


class Boom(Exception):
    pass


async def test_closing_lets_a_streams_batches_in_flight_finish_and_reports_them(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    heard = Heard()
    devino_plugins.register(heard, name="heard")
    # every send is answered half a second late: several are in flight when the consumer fails
    devino_sandbox.faults.add("delay", operation="SendMessage", probability=1.0, delay_seconds=0.5)
    config = make_config(devino_sandbox.url)

    async def consume() -> None:
        async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
            stream = dispatcher.send_stream(
                "maintenance at 22:00", numbers(200), batch_size=5, max_in_flight=4
            )
            async for _ in stream:
                raise Boom  # the caller's loop body fails at the first result

    with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
        await consume()
    stored = devino_sandbox.state.messages("demo")
    assert len(stored) > 5  # the first batch, and those in flight beside it
    assert len(stored) <= 5 * 5  # no batch started after the consumer left
    # every message the provider took is reported, as accepted, to the log and the observers
    outcomes = [r.outcome for result in heard.sent for r in result.recipients]
    assert outcomes == [SendOutcome.ACCEPTED] * len(stored)
    reported = {i for result in heard.sent for i in result.message_ids}
    assert reported == {str(m.message_id) for m in stored}
    sent = [e for e in logs if e["event"] == "notification_sent"]
    assert sum(e["accepted"] for e in sent) == len(stored)
    assert [e for e in logs if e["event"] in ("send_outcome_unknown", "send_failed")] == []
