"""The account rate limiter on its own: a request counts from its start until a window after it
ends, so no window at the service can hold more than N, however long the way there."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from notify_devino.limits import ANNOUNCE_LEAD_SECONDS
from notify_devino_soap.ratelimit import AccountLimiter, account_limiter


def most_counted_at_once(spans: list[tuple[float, float]], window: float) -> int:
    """The most spans [start, end + window) that overlap at any instant."""
    events = sorted(
        [(start, 1) for start, _ in spans] + [(end + window, -1) for _, end in spans],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


async def request(limiter: AccountLimiter, flight: float, log: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    async with limiter.slot():
        started = loop.time()
        await asyncio.sleep(flight)
        log.append((started, loop.time()))


async def test_a_burst_leaves_at_once_and_the_next_waits_a_window_after_the_ends() -> None:
    limiter = AccountLimiter(5)
    limiter.window = 0.2  # 5 per 0.2 s, to keep the test short
    log: list[tuple[float, float]] = []
    await asyncio.gather(*(request(limiter, 0.05, log) for _ in range(12)))
    starts = sorted(start for start, _ in log)
    assert starts[4] - starts[0] < 0.04  # five at once
    first_end = min(end for _, end in log)
    assert starts[5] >= first_end + 0.2  # the sixth waited a window after an end, not a start
    assert most_counted_at_once(log, 0.2) <= 5


async def test_a_slow_request_keeps_its_slot_for_its_whole_flight() -> None:
    # Two slots; one request takes 0.4 s. Counting starts only (a 0.2 s window after each
    # start) would let a third go at 0.2 s while the slow one may still be on its way.
    limiter = AccountLimiter(2)
    limiter.window = 0.2
    loop = asyncio.get_running_loop()
    log: list[tuple[float, float]] = []
    slow = asyncio.create_task(request(limiter, 0.4, log))
    fast = asyncio.create_task(request(limiter, 0.01, log))
    await asyncio.sleep(0)
    t0 = loop.time()
    third: list[tuple[float, float]] = []
    await request(limiter, 0.01, third)
    await asyncio.gather(slow, fast)
    assert third[0][0] - t0 >= 0.2  # after the fast one's end + window
    fourth: list[tuple[float, float]] = []
    await request(limiter, 0.01, fourth)
    slow_end = max(end for _, end in log)
    assert fourth[0][0] >= min(slow_end, third[0][1]) + 0.2 - 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_flights_never_exceed_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    limiter = AccountLimiter(4)
    limiter.window = 0.1
    log: list[tuple[float, float]] = []
    await asyncio.gather(*(request(limiter, rng.uniform(0, 0.05), log) for _ in range(40)))
    assert len(log) == 40
    assert most_counted_at_once(log, 0.1) <= 4
    # Any instant a service might see each request arrive at lies within its span, so no
    # window there holds more than four, wherever in its span each one arrived.
    for _ in range(20):
        arrivals = [rng.uniform(start, end) for start, end in log]
        assert most_in_any_window(arrivals, 0.1) <= 4


async def test_waiters_are_served_in_arrival_order() -> None:
    limiter = AccountLimiter(1)
    limiter.window = 0.02
    order: list[int] = []

    async def one(n: int) -> None:
        async with limiter.slot():
            order.append(n)

    tasks = []
    for n in range(8):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(0)  # each is queued before the next starts
    await asyncio.gather(*tasks)
    assert order == list(range(8))


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    limiter = AccountLimiter(1)
    limiter.window = 0.05
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    waiting = asyncio.create_task(limiter._acquire())
    behind: list[int] = []

    async def after() -> None:
        async with limiter.slot():
            behind.append(1)

    later = asyncio.create_task(after())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await asyncio.gather(task, later)
    assert behind == [1]  # the one queued behind the cancelled waiter was served
    assert (limiter._in_flight, list(limiter._queue)) == (0, [])  # and it left no trace


def test_event_loops_in_two_threads_share_one_limiter() -> None:
    limiter = AccountLimiter(3)
    limiter.window = 0.1
    log: list[tuple[float, float]] = []
    lock = threading.Lock()

    def run() -> None:
        async def main() -> None:
            local: list[tuple[float, float]] = []
            await asyncio.gather(*(request(limiter, 0.01, local) for _ in range(9)))
            with lock:
                log.extend(local)

        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(log) == 18  # loop.time() is time.monotonic(): one clock for both threads
    assert most_counted_at_once(log, 0.1) <= 3


def test_rates() -> None:
    ten = AccountLimiter(10)
    assert (ten.max_requests, ten.window) == (10, 1.0)
    assert AccountLimiter(2.5).max_requests == 2
    half = AccountLimiter(0.5)
    assert (half.max_requests, half.window) == (1, 2.0)
    with pytest.raises(ValueError, match="positive"):
        AccountLimiter(0)
    with pytest.raises(ValueError, match="positive"):
        AccountLimiter(float("inf"))


def test_one_limiter_per_account() -> None:
    url = "http://127.0.0.1:1/SmsService.asmx"
    first = account_limiter(url, "acct-a", 10)
    assert account_limiter(url, "acct-a", 20) is first  # looser: the account keeps 10/s
    assert first.max_requests == 10
    assert account_limiter(url, "acct-a", 5) is first  # stricter: tightened for every client
    assert first.max_requests == 5
    assert account_limiter(url, "acct-a", 0.5) is first
    assert (first.max_requests, first.window) == (1, 2.0)
    assert account_limiter(url, "acct-b", 10) is not first
    assert account_limiter(url.replace(":1/", ":2/"), "acct-a", 10) is not first


# -- before: what must happen just before a request leaves, run while it waits --------------


async def test_before_runs_as_the_slot_nears_so_its_time_does_not_hold_the_slot() -> None:
    """One request per second: the second's ``before`` (a commit taking half the lead) runs
    while it waits, no sooner than the lead before its slot, and its slot is granted when it
    frees, not the commit's time later."""
    loop = asyncio.get_running_loop()
    limiter = AccountLimiter(1)
    marks: dict[str, float] = {}

    async def commit() -> None:
        marks["before"] = loop.time()
        assert limiter.counted == 1  # the first request's slot; this one holds none yet
        await asyncio.sleep(ANNOUNCE_LEAD_SECONDS / 2)

    async with limiter.slot():
        ended = loop.time()
    async with limiter.slot(before=commit):
        granted = loop.time()
    assert granted - ended == pytest.approx(1.0, abs=0.03)  # the commit did not delay it
    assert granted - marks["before"] == pytest.approx(ANNOUNCE_LEAD_SECONDS, abs=0.03)


async def test_befores_of_a_burst_run_side_by_side_and_a_free_slot_runs_it_first() -> None:
    loop = asyncio.get_running_loop()
    limiter = AccountLimiter(5)
    started: list[float] = []
    counted: list[int] = []

    async def commit() -> None:
        counted.append(limiter.counted)
        await asyncio.sleep(0.1)

    async def one() -> None:
        async with limiter.slot(before=commit):
            started.append(loop.time())

    begun = loop.time()
    await asyncio.gather(*(one() for _ in range(5)))
    assert counted == [0, 0, 0, 0, 0]  # each ran before its slot was taken
    assert max(started) - begun < 0.15  # not 5 x 0.1 s one after another


async def test_a_before_that_raises_takes_no_slot_and_the_next_waiter_goes() -> None:
    limiter = AccountLimiter(1)

    async def refuse() -> None:
        raise RuntimeError("cannot record it")

    with pytest.raises(RuntimeError, match="cannot record it"):
        async with limiter.slot(before=refuse):
            raise AssertionError("the block must not run")
    assert limiter.counted == 0
    async with asyncio.timeout(0.1):  # the slot is still free
        async with limiter.slot():
            pass
