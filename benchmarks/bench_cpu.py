"""CPU per call: our client against zeep, the standard SOAP client of the ecosystem.

Both make the same calls, one after another, to the same sandbox (its own process on a CPU of
its own where the machine has two, rate limit off): GetBalance, SendMessage to one number,
GetMessageState. zeep runs as a user runs it: ``zeep.Client(url + "?WSDL")`` with its default
transport (requests), and the WSDL's default port (SOAP 1.1); ours uses SOAP 1.1 too. CPU is
this process's user+system time (``time.process_time``) over the measured calls, after a
warm-up; the baseline is zeep's. The two run in alternating rounds and each keeps its best
round, so a busy machine's noise does not land on one side only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from notify_devino_soap.client import DevinoClient

from .common import LOGIN, PASSWORD, quiet, sandbox_process

CALLS = 200
ROUNDS = 9
WARM_UP = 40
NUMBER = "79031234567"


def cpu_per_call(call: Callable[[], Any], count: int) -> float:
    for _ in range(WARM_UP):
        call()
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count


async def ours(url: str, count: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        client = DevinoClient(
            http, url=url, login=LOGIN, password=PASSWORD, soap_version="1.1", rate_limit=10**6
        )
        message_id = (
            await client.send_message(source="ALERTS", destinations=[NUMBER], data="warm")
        )[0]
        operations: dict[str, Callable[[], Awaitable[Any]]] = {
            "GetBalance": client.get_balance,
            "SendMessage": lambda: client.send_message(
                source="ALERTS", destinations=[NUMBER], data="db-1: disk 91% full"
            ),
            "GetMessageState": lambda: client.get_message_state(message_id),
        }
        out = {}
        for name, operation in operations.items():
            for _ in range(WARM_UP):
                await operation()
            started = time.process_time()
            for _ in range(count):
                await operation()
            out[name] = (time.process_time() - started) / count
        return out


def theirs(url: str, count: int) -> dict[str, float]:
    import zeep

    client = zeep.Client(url + "?WSDL")
    service = client.service
    session_id = service.GetSessionID(login=LOGIN, password=PASSWORD)
    message = {
        "Data": "db-1: disk 91% full",
        "DestinationAddresses": {"string": [NUMBER]},
        "SourceAddress": "ALERTS",
        "ReceiptRequested": True,
        "Validity": 0,
    }
    message_id = int(service.SendMessage(sessionID=session_id, message=message)[0])
    return {
        "GetBalance": cpu_per_call(lambda: service.GetBalance(sessionID=session_id), count),
        "SendMessage": cpu_per_call(
            lambda: service.SendMessage(sessionID=session_id, message=message), count
        ),
        "GetMessageState": cpu_per_call(
            lambda: service.GetMessageState(sessionID=session_id, messageID=message_id), count
        ),
    }


def run(count: int = CALLS, rounds: int = ROUNDS) -> dict[str, float]:
    quiet()
    baseline: dict[str, float] = {}
    measured: dict[str, float] = {}
    with sandbox_process(rate_limit=False) as url:
        for _ in range(rounds):
            for best, result in (
                (baseline, theirs(url, count)),
                (measured, asyncio.run(ours(url, count))),
            ):
                for name, value in result.items():
                    best[name] = min(best.get(name, value), value)
    print(
        f"per-call CPU: our client vs zeep (default transport), best of {rounds} rounds of "
        f"{count} calls each, SOAP 1.1"
    )
    for name in baseline:
        ours_us, zeep_us = measured[name] * 1e6, baseline[name] * 1e6
        print(
            f"  {name:<16} ours {ours_us:5.0f} us   zeep {zeep_us:5.0f} us"
            f"   ratio {ours_us / zeep_us:.3f}"
        )
    total_ours, total_zeep = sum(measured.values()), sum(baseline.values())
    ratio = total_ours / total_zeep
    print(
        f"  all three        ours {total_ours * 1e6:5.0f} us   zeep {total_zeep * 1e6:5.0f} us"
        f"   ratio {ratio:.3f}   (target <= 0.333)"
    )
    return {"ratio": ratio}


if __name__ == "__main__":
    run()
