"""One provider account's rate limit across instances, held in PostgreSQL.

Three dispatchers, each with a store of its own on one database (as three ``serve`` processes
would have), send on one Devino account to one sandbox whose own limit is on (10 per second,
refused with a fault). The sandbox timestamps every arrival; the tests count its busiest
one-second window. Without a shared limiter (each instance's own, in-process one) the same
run puts more than 10 into one second: the control case shows the test can fail.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from notify_devino.dispatcher import Dispatcher
from notify_devino.limits import LimiterFactory, RateLimiter
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome

from .conftest import Opener
from .harness import sandbox_config

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def plugins() -> PluginManager:
    manager = PluginManager()
    manager.load_entrypoints()
    return manager


async def send_from_three_instances(sandbox: Sandbox, factories: list[LimiterFactory]) -> None:
    config = sandbox_config(sandbox.url)
    dispatchers = [Dispatcher(config, plugins=plugins(), limiters=f) for f in factories]
    for dispatcher in dispatchers:
        await dispatcher.start()
    try:
        results = await asyncio.gather(
            *(
                d.send(f"alert {i}", to=[f"+7903{n:03d}{i:04d}"])
                for n, d in enumerate(dispatchers)
                for i in range(15)
            )
        )
    finally:
        for dispatcher in dispatchers:
            await dispatcher.aclose()
    assert all(r.recipients[0].outcome is SendOutcome.ACCEPTED for r in results)


@pytest.mark.slow
async def test_instances_sharing_one_account_keep_to_10_per_second_at_the_provider(
    devino_sandbox: Sandbox, instances: Opener
) -> None:
    assert devino_sandbox.config.rate_limit.requests_per_second == 10
    stores = [await instances() for _ in range(3)]
    factories = [s.rate_limiters(f"instance-{n}") for n, s in enumerate(stores)]
    limiters = [f("devino_soap x demo", 10) for f in factories]
    assert len({id(limiter) for limiter in limiters}) == 3  # no limiter shared in-process
    await send_from_three_instances(devino_sandbox, factories)
    records = devino_sandbox.requests
    assert len([r for r in records if r.operation == "SendMessage"]) == 45  # none retried
    assert {r.status for r in records} == {200}  # the sandbox refused nothing
    assert busiest_second([r.monotonic for r in records]) <= 10


@pytest.mark.slow
async def test_control_instances_with_limiters_of_their_own_exceed_the_limit(
    devino_sandbox: Sandbox,
) -> None:
    from notify_devino_soap.ratelimit import AccountLimiter  # not at the top: see pytestmark

    devino_sandbox.config.rate_limit.enabled = False  # count what would arrive

    def own() -> LimiterFactory:
        limiter = AccountLimiter(10)

        def factory(account: str, rate: float) -> RateLimiter:
            return limiter

        return factory

    await send_from_three_instances(devino_sandbox, [own(), own(), own()])
    assert busiest_second([r.monotonic for r in devino_sandbox.requests]) > 10


async def test_a_crashed_holders_slot_frees_when_its_lease_expires(instances: Opener) -> None:
    from notify_devino.service.store.postgres import SharedLimiter

    a, b = await instances(), await instances()
    crashed = SharedLimiter(a, "acct", 1, owner="a", lease_seconds=0.6)
    await crashed.acquire()  # never released: its process died mid-request
    await crashed.aclose()  # no more heartbeats
    survivor = SharedLimiter(b, "acct", 1, owner="b", lease_seconds=0.6)
    assert await survivor.counted() == 1
    started = time.monotonic()
    got = await asyncio.wait_for(survivor.acquire(), 10)
    assert time.monotonic() - started >= 0.3
    await survivor.release(got, 0)
    await survivor.aclose()


async def test_a_slot_counts_until_a_window_after_its_answer_on_every_instance(
    instances: Opener,
) -> None:
    from notify_devino.service.store.postgres import SharedLimiter

    a, b = await instances(), await instances()
    first = SharedLimiter(a, "acct", 2, owner="a")
    second = SharedLimiter(b, "acct", 2, owner="b")
    async with first.slot() as slot:
        await asyncio.sleep(0.3)  # the request is under way: it counts
        slot.answered()
    answered = time.monotonic()
    async with second.slot():
        pass  # the second of two slots: free at once
    third = await asyncio.wait_for(second.acquire(), 10)  # waits for the first's window
    assert time.monotonic() - answered >= 0.95
    await second.release(third, 0)
    await second.aclose()
