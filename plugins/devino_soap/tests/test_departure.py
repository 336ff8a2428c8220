"""The Devino channel announces each send request's departure (notify_devino.departure) after
its login and its rate-limit slot, before the request leaves; a refusal keeps it back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from notify_devino.config import Config
from notify_devino.departure import on_departure
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import DepartureRefused
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome
from notify_devino_soap.emulator import Sandbox

NUMBER = "79031234567"


def operations(sandbox: Sandbox) -> list[str | None]:
    return [r.operation for r in sandbox.requests]


async def test_each_send_request_is_announced_before_it_leaves_and_nothing_else_is(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    seen: list[list[str | None]] = []

    async def listener() -> None:
        seen.append(operations(devino_sandbox))

    numbers = [f"7903{n:07d}" for n in range(1500)]  # two requests of at most 1,000
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        with on_departure(listener):
            await dispatcher.balance()
            assert seen == []  # a read is not a departure
            one = await dispatcher.send("disk full", to=[NUMBER])
            bulk = await dispatcher.send("disk full", to=numbers)
    assert one.recipients[0].outcome is SendOutcome.ACCEPTED
    assert all(r.outcome is SendOutcome.ACCEPTED for r in bulk.recipients)
    # One announcement per SendMessage, each after the login and before its own request.
    assert len(seen) == 3
    assert seen[0] == ["GetSessionID", "GetBalance"]
    assert seen[0].count("SendMessage") == 0
    assert seen[1].count("SendMessage") == 1
    assert operations(devino_sandbox).count("SendMessage") == 3


async def test_a_retried_send_announces_each_attempt(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    devino_sandbox.faults.add("http_503", operation="SendMessage", requests=[1])
    calls: list[int] = []

    async def listener() -> None:
        calls.append(operations(devino_sandbox).count("SendMessage"))

    config = make_config(devino_sandbox.url, retry={"attempts": 3, "wait_initial_seconds": 0.01})
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        with on_departure(listener):
            result = await dispatcher.send("disk full", to=[NUMBER])
    assert result.recipients[0].outcome is SendOutcome.ACCEPTED
    assert calls == [0, 1]  # before the first attempt, and before the retry


async def test_a_refused_departure_sends_nothing_and_reaches_the_caller(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    async def refuse() -> None:
        await asyncio.sleep(0)
        raise DepartureRefused("the outbox cannot commit")

    numbers = [f"7903{n:07d}" for n in range(1500)]
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        with on_departure(refuse):
            with pytest.raises(DepartureRefused, match="cannot commit"):
                await dispatcher.send("disk full", to=[NUMBER])
            with pytest.raises(DepartureRefused):  # every request of a bulk send held back
                await dispatcher.send("disk full", to=numbers)
        assert "SendMessage" not in operations(devino_sandbox)
        # Outside the block nothing listens: the send goes.
        result = await dispatcher.send("disk full", to=[NUMBER])
    assert result.recipients[0].outcome is SendOutcome.ACCEPTED


@pytest.mark.parametrize("refusal", ["receiver_fault", "rate_limited", "session_expired"])
async def test_an_attempt_refused_unprocessed_is_given_back_one_that_may_be_out_is_not(
    refusal: str,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    devino_sandbox.faults.add(refusal, operation="SendMessage", requests=[1])  # type: ignore[arg-type]
    devino_sandbox.faults.add("close_after_processing", operation="SendMessage", requests=[3])
    events: list[str] = []

    async def depart() -> None:
        events.append("depart")

    async def back() -> None:
        events.append("back")

    config = make_config(devino_sandbox.url, retry={"attempts": 3, "wait_initial_seconds": 0.01})
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        with on_departure(depart, back):
            refused_then_sent = await dispatcher.send("disk full", to=[NUMBER])
            assert events == ["depart", "back", "depart"]
            maybe_out = await dispatcher.send("disk full", to=["79031234568"])
    assert refused_then_sent.recipients[0].outcome is SendOutcome.ACCEPTED
    assert maybe_out.recipients[0].outcome is SendOutcome.UNKNOWN
    assert events == ["depart", "back", "depart", "depart"]  # the lost reply is not given back
