"""CPU per call: our client against zeep, the standard SOAP client of the ecosystem.

Both make the same calls, one after another, to the same sandbox (its own process on a CPU of
its own where the machine has two, rate limit off): GetBalance, SendMessage to one number,
GetMessageState. zeep runs as a user runs it: ``zeep.Client(url + "?WSDL")`` with its default
transport (requests), and the WSDL's default port (SOAP 1.1); ours uses SOAP 1.1 too, on one
event loop and one aiohttp session for the whole run, as a service would. CPU is this process's
user+system time (``time.process_time``) over the measured calls, after a warm-up; the baseline
is zeep's.

zeep's cost per call depends on the process environment: its transport (requests, with
``trust_env``) walks ``os.environ`` several times on every request, looking for proxy settings,
about 2 us per variable per call. The target row compares against zeep in the environment the
benchmark was started in, as a user's service would run it (``tox -e bench`` passes the
caller's environment on for that reason). Every run also measures zeep with the environment
emptied, its cheapest possible case, and prints that ratio beside the target as information.

The sides take turns in short batches (a batch of zeep's calls to one operation, one of zeep's
with the environment emptied, then one of ours to the same operation, and so on), so all see
the machine in the same state: a neighbour's burst lands on a round, not on one side. Each
side's figure is its best batch, the lower bound of what it costs; the median of the rounds'
ratios is printed beside it as a check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp

from notify_devino_soap.client import DevinoClient

from .common import LOGIN, PASSWORD, quiet, sandbox_process

BATCHES = 30
CALLS = 100
WARM_UP = 40
NUMBER = "79031234567"
TEXT = "db-1: disk 91% full"
OPERATIONS = ("GetBalance", "SendMessage", "GetMessageState")


def zeep_operations(url: str) -> dict[str, Callable[[], Any]]:
    import zeep

    service = zeep.Client(url + "?WSDL").service  # type: ignore[no-untyped-call]
    session_id = service.GetSessionID(login=LOGIN, password=PASSWORD)
    message = {
        "Data": TEXT,
        "DestinationAddresses": {"string": [NUMBER]},
        "SourceAddress": "ALERTS",
        "ReceiptRequested": True,
        "Validity": 0,
    }
    message_id = int(service.SendMessage(sessionID=session_id, message=message)[0])
    return {
        "GetBalance": lambda: service.GetBalance(sessionID=session_id),
        "SendMessage": lambda: service.SendMessage(sessionID=session_id, message=message),
        "GetMessageState": lambda: service.GetMessageState(
            sessionID=session_id, messageID=message_id
        ),
    }


async def our_operations(
    url: str,
) -> tuple[aiohttp.ClientSession, dict[str, Callable[[], Awaitable[Any]]]]:
    """The aiohttp session (the caller closes it) and our three operations on it."""
    http = aiohttp.ClientSession()
    client = DevinoClient(
        http, url=url, login=LOGIN, password=PASSWORD, soap_version="1.1", rate_limit=10**6
    )
    message_id = (await client.send_message(source="ALERTS", destinations=[NUMBER], data=TEXT))[0]
    return http, {
        "GetBalance": client.get_balance,
        "SendMessage": lambda: client.send_message(
            source="ALERTS", destinations=[NUMBER], data=TEXT
        ),
        "GetMessageState": lambda: client.get_message_state(message_id),
    }


@contextlib.contextmanager
def empty_environment() -> Iterator[None]:
    """No environment variables in this process while inside (all restored after)."""
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.update(saved)


def zeep_batch(call: Callable[[], Any], count: int) -> float:
    """CPU seconds per call over ``count`` calls."""
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count


def bare_zeep_batch(call: Callable[[], Any], count: int) -> float:
    """:func:`zeep_batch` with the environment emptied (emptying and restoring it are not timed)."""
    with empty_environment():
        return zeep_batch(call, count)


async def our_batch(call: Callable[[], Awaitable[Any]], count: int) -> float:
    """CPU seconds per call over ``count`` calls."""
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count


Round = tuple[float, float, float]
"""CPU seconds per call in one round: ours, zeep's, zeep's with the environment emptied."""


def measure(url: str, batches: int, count: int) -> dict[str, list[Round]]:
    """Every round's figures, by operation."""
    theirs = zeep_operations(url)
    with asyncio.Runner() as loop:  # one loop for every batch of ours
        http, ours = loop.run(our_operations(url))
        try:
            for name in OPERATIONS:
                zeep_batch(theirs[name], WARM_UP)
                bare_zeep_batch(theirs[name], WARM_UP)
                loop.run(our_batch(ours[name], WARM_UP))
            rounds: dict[str, list[Round]] = {name: [] for name in OPERATIONS}
            for _ in range(batches):
                for name in OPERATIONS:
                    baseline = zeep_batch(theirs[name], count)
                    floor = bare_zeep_batch(theirs[name], count)
                    measured = loop.run(our_batch(ours[name], count))
                    rounds[name].append((measured, baseline, floor))
            return rounds
        finally:
            loop.run(http.close())


def run(batches: int = BATCHES, count: int = CALLS) -> dict[str, float]:
    quiet()
    with sandbox_process(rate_limit=False) as url:
        rounds = measure(url, batches, count)
    print(
        f"per-call CPU: our client vs zeep (default transport), SOAP 1.1, {batches} rounds of "
        f"{count} calls per operation and side; best batch of each side; zeep in this "
        f"process's environment of {len(os.environ)} variables (its transport reads them on "
        "every request), and with the environment emptied"
    )
    best = {
        name: tuple(min(r[side] for r in rounds[name]) for side in range(3)) for name in OPERATIONS
    }
    for name in OPERATIONS:
        ours_us, zeep_us, bare_us = (seconds * 1e6 for seconds in best[name])
        median = statistics.median(r[0] / r[1] for r in rounds[name])
        print(
            f"  {name:<16} ours {ours_us:5.0f} us   zeep {zeep_us:5.0f} us"
            f"   ratio {ours_us / zeep_us:.3f}   (median of rounds {median:.3f})"
            f"   zeep, empty environment {bare_us:5.0f} us   ratio {ours_us / bare_us:.3f}"
        )
    ours, zeep, bare = (sum(best[name][side] for name in OPERATIONS) for side in range(3))
    ratio, floor_ratio = ours / zeep, ours / bare
    median = statistics.median(
        sum(rounds[name][i][0] for name in OPERATIONS)
        / sum(rounds[name][i][1] for name in OPERATIONS)
        for i in range(batches)
    )
    print(
        f"  all three        ours {ours * 1e6:5.0f} us   zeep {zeep * 1e6:5.0f} us"
        f"   ratio {ratio:.3f}   (median of rounds {median:.3f})   (target <= 0.333)"
    )
    print(
        f"  against zeep with the environment emptied, its cheapest case: zeep "
        f"{bare * 1e6:5.0f} us, ratio {floor_ratio:.3f} (information, no target)"
    )
    return {"ratio": ratio, "median": median, "empty_environment_ratio": floor_ratio}


if __name__ == "__main__":
    run()
