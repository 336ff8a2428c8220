"""CPU per call: our client against zeep, the standard SOAP client of the ecosystem.

Both make the same calls, one after another, to the same sandbox (its own process on a CPU of
its own where the machine has two, rate limit off): GetBalance, SendMessage to one number,
GetMessageState. zeep runs as a user runs it: ``zeep.Client(url + "?WSDL")`` with its default
transport (requests), and the WSDL's default port (SOAP 1.1); ours uses SOAP 1.1 too, on one
event loop and one aiohttp session for the whole run, as a service would. CPU is this process's
user+system time (``time.process_time``) over the measured calls, after a warm-up; the baseline
is zeep's.

zeep's cost per call depends on the process environment: its transport (requests, with
``trust_env``) walks ``os.environ`` several times on every request, looking for proxy settings.
Measured here: about 2 us per variable per call, so zeep costs ~10 % more in a shell of 35
variables than in an empty environment, and more still on CI runners with a hundred. The run
prints how many it had (``tox -e bench`` passes few: its figure is the one least in our favour).

The two take turns in short batches (a batch of zeep's calls to one operation, then a batch of
ours to the same one, and so on), so both see the machine in the same state: a neighbour's
burst lands on a pair, not on one side. Each side's figure is its best batch, the lower bound
of what it costs; the median of the paired batches' ratios is printed beside it as a check.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
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

    service = zeep.Client(url + "?WSDL").service
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


def zeep_batch(call: Callable[[], Any], count: int) -> float:
    """CPU seconds per call over ``count`` calls."""
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count


async def our_batch(call: Callable[[], Awaitable[Any]], count: int) -> float:
    """CPU seconds per call over ``count`` calls."""
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count


def measure(url: str, batches: int, count: int) -> dict[str, list[tuple[float, float]]]:
    """(ours, zeep) CPU seconds per call of every batch pair, by operation."""
    theirs = zeep_operations(url)
    with asyncio.Runner() as loop:  # one loop for every batch of ours
        http, ours = loop.run(our_operations(url))
        try:
            for name in OPERATIONS:
                zeep_batch(theirs[name], WARM_UP)
                loop.run(our_batch(ours[name], WARM_UP))
            pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in OPERATIONS}
            for _ in range(batches):
                for name in OPERATIONS:
                    baseline = zeep_batch(theirs[name], count)
                    measured = loop.run(our_batch(ours[name], count))
                    pairs[name].append((measured, baseline))
            return pairs
        finally:
            loop.run(http.close())


def run(batches: int = BATCHES, count: int = CALLS) -> dict[str, float]:
    quiet()
    with sandbox_process(rate_limit=False) as url:
        pairs = measure(url, batches, count)
    print(
        f"per-call CPU: our client vs zeep (default transport), SOAP 1.1, {batches} paired "
        f"batches of {count} calls per operation; best batch of each side; "
        f"{len(os.environ)} environment variables (zeep reads them on every request)"
    )
    best_ours = {name: min(m for m, _ in pairs[name]) for name in OPERATIONS}
    best_zeep = {name: min(b for _, b in pairs[name]) for name in OPERATIONS}
    for name in OPERATIONS:
        ours_us, zeep_us = best_ours[name] * 1e6, best_zeep[name] * 1e6
        median = statistics.median(m / b for m, b in pairs[name])
        print(
            f"  {name:<16} ours {ours_us:5.0f} us   zeep {zeep_us:5.0f} us"
            f"   ratio {ours_us / zeep_us:.3f}   (median of pairs {median:.3f})"
        )
    total_ours, total_zeep = sum(best_ours.values()), sum(best_zeep.values())
    ratio = total_ours / total_zeep
    median = statistics.median(
        sum(pairs[name][i][0] for name in OPERATIONS)
        / sum(pairs[name][i][1] for name in OPERATIONS)
        for i in range(batches)
    )
    print(
        f"  all three        ours {total_ours * 1e6:5.0f} us   zeep {total_zeep * 1e6:5.0f} us"
        f"   ratio {ratio:.3f}   (median of pairs {median:.3f})   (target <= 0.333)"
    )
    return {"ratio": ratio, "median": median}


if __name__ == "__main__":
    run()
