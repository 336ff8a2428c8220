"""Fault injection in the sandbox, seen from the wire: every kind, its schedule, its seed.

These tests speak raw HTTP (``sandbox_wire``) so they see exactly what the sandbox does; how the
Devino client copes with each kind is in ``test_flaky_provider.py``.
"""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from sandbox_wire import Wire

from notify_devino.errors import ConfigError
from notify_devino_soap.emulator import (
    FAULT_KINDS,
    PROCESSED_KINDS,
    FaultRule,
    RateLimit,
    Sandbox,
    SandboxConfig,
    load_sandbox_config,
)
from notify_devino_soap.emulator.wire import OPERATIONS

PROCESS = "Server was unable to process request. ---> "
NUMBER = "79031234567"


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    return devino_sandbox_config.model_copy(update={"rate_limit": RateLimit(enabled=False)})


@pytest.fixture(params=["1.1", "1.2"])
def wire(
    request: pytest.FixtureRequest, http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> Wire:
    return Wire(http, devino_sandbox.url, request.param)


def charged(sandbox: Sandbox) -> Decimal:
    return Decimal("1000") - sandbox.state.accounts["demo"].balance


async def test_receiver_fault(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("receiver_fault", operation="SendMessage", requests=[1])
    reply = await wire.send(session_id, [NUMBER], "Hi")
    assert reply.status == 500
    assert reply.fault == (
        "soap:Receiver",
        PROCESS + "Service is temporarily unavailable, try again later",
    )
    assert devino_sandbox.state.messages() == []
    assert (await wire.send(session_id, [NUMBER], "Hi")).status == 200  # only the first
    record = devino_sandbox.requests[1]
    assert (record.operation, record.status, record.injected) == (
        "SendMessage",
        500,
        "receiver_fault",
    )
    assert devino_sandbox.requests[2].injected is None


async def test_http_503(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("http_503", requests=[1], retry_after_seconds=1.5)
    devino_sandbox.faults.add("http_503", requests=[2])
    first = await wire.call("GetBalance", sessionID=session_id)
    second = await wire.call("GetBalance", sessionID=session_id)
    assert (first.status, first.headers["Retry-After"], first.text) == (
        503,
        "2",
        "Service Unavailable\n",
    )
    assert second.status == 503
    assert "Retry-After" not in second.headers
    assert devino_sandbox.faults.injected == {"http_503": 2}


async def test_connection_closed_before_any_response(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("close_before_response", operation="SendMessage", requests=[1])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await wire.send(session_id, [NUMBER], "Hi")
    assert devino_sandbox.state.messages() == []  # not processed
    assert charged(devino_sandbox) == 0
    last = devino_sandbox.requests[-1]
    assert (last.status, last.injected, last.destinations) == (
        0,
        "close_before_response",
        (NUMBER,),
    )


async def test_connection_closed_after_processing(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("close_after_processing", operation="SendMessage", requests=[1])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await wire.send(session_id, [NUMBER], "Hi")
    (message,) = devino_sandbox.state.messages()  # stored and charged, never answered
    assert message.destination == NUMBER
    assert charged(devino_sandbox) == Decimal("1.50")
    assert devino_sandbox.requests[-1].status == 0
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 1}


async def test_delay_longer_than_the_client_timeout(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    devino_sandbox.faults.add("delay", operation="SendMessage", requests=[1], delay_seconds=30)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await wire.send(session_id, [NUMBER], "Hi")
    assert len(devino_sandbox.state.messages()) == 1  # processed at once, answered late
    assert devino_sandbox.requests[-1].injected == "delay"
    # The held reply does not hold up the sandbox's shutdown (the fixture closes it).


async def test_delay_shorter_than_the_timeout_is_a_late_normal_reply(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    devino_sandbox.faults.add("delay", operation="GetBalance", requests=[1], delay_seconds=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert loop.time() - started >= 0.3
    assert reply.result == "1000.00"


async def test_not_xml(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("not_xml", operation="SendMessage", requests=[1])
    reply = await wire.send(session_id, [NUMBER], "Hi")
    assert reply.status == 200
    assert not reply.text.lstrip().startswith("<")
    assert devino_sandbox.state.messages() == []  # an intermediary answered


async def test_truncated(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("truncated", operation="SendMessage", requests=[1])
    reply = await wire.send(session_id, [NUMBER], "Hi")
    assert reply.status == 200
    assert reply.text.startswith('<?xml version="1.0" encoding="utf-8"?><soap:Envelope')
    assert not reply.text.endswith("</soap:Envelope>")
    assert int(reply.headers["Content-Length"]) == len(reply.text.encode())
    assert len(devino_sandbox.state.messages()) == 1  # processed, the answer cut short
    full = await wire.send(session_id, ["79031234568"], "Hi")
    assert full.text.startswith(reply.text)
    assert len(reply.text.encode()) == len(full.text.encode()) // 2


async def test_session_expires_early(wire: Wire, devino_sandbox: Sandbox) -> None:
    session_id = await wire.login()
    devino_sandbox.faults.add("session_expired", requests=[1])
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert reply.fault == ("soap:Receiver", PROCESS + "SessionID expired")
    fresh = await wire.login()  # a login is never faulted by this kind, nor counted
    assert (await wire.call("GetBalance", sessionID=fresh)).result == "1000.00"
    assert [r.injected for r in devino_sandbox.requests] == [None, "session_expired", None, None]


@pytest.mark.parametrize(
    ("response", "status"), [("fault", 500), ("http_429", 429), ("http_503", 503)]
)
async def test_rate_limited(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox, response: str, status: int
) -> None:
    # The configured answer, while the real limit is off: nothing else would refuse it.
    devino_sandbox.config.rate_limit = RateLimit(
        enabled=False,
        response=response,  # type: ignore[arg-type]
        retry_after_seconds=0.2,
    )
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    devino_sandbox.faults.add("rate_limited", operation="GetBalance", requests=[1])
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert reply.status == status
    if response == "fault":
        assert reply.fault[1] == PROCESS + "Too many requests"
    else:
        assert (reply.headers["Retry-After"], reply.text) == ("1", "Too many requests\n")
    assert devino_sandbox.requests[-1].injected == "rate_limited"


async def test_schedule_counts_per_rule_and_times_caps(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    devino_sandbox.faults.add("http_503", operation="GetBalance", requests=[2, 4])
    devino_sandbox.faults.add("receiver_fault", operation="*", probability=1.0, times=2)
    for _ in range(2):  # "*" fires on the logins until times=2 is spent
        faulted = await wire.call("GetSessionID", login="demo", password="demo-password")
        assert faulted.status == 500
    session_id = await wire.login()
    statuses = []
    for _ in range(5):
        statuses.append((await wire.call("GetBalance", sessionID=session_id)).status)
    assert statuses == [200, 503, 200, 503, 200]
    assert devino_sandbox.faults.injected == {"receiver_fault": 2, "http_503": 2}
    assert [(f.kind, f.operation, f.ordinal) for f in devino_sandbox.faults.log] == [
        ("receiver_fault", "GetSessionID", 1),
        ("receiver_fault", "GetSessionID", 2),
        ("http_503", "GetBalance", 2),
        ("http_503", "GetBalance", 4),
    ]


async def test_the_first_rule_that_fires_decides(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    devino_sandbox.faults.add("not_xml", operation="GetBalance", requests=[1])
    devino_sandbox.faults.add("http_503", operation="GetBalance", requests=[1, 2])
    assert (await wire.call("GetBalance", sessionID=session_id)).text.startswith("Service")
    assert (await wire.call("GetBalance", sessionID=session_id)).status == 503
    devino_sandbox.faults.clear()
    assert (await wire.call("GetBalance", sessionID=session_id)).status == 200
    assert devino_sandbox.faults.injected == {"not_xml": 1, "http_503": 1}


async def draw_pattern(config: SandboxConfig, http: aiohttp.ClientSession) -> list[str | None]:
    async with Sandbox(config) as sandbox:
        wire = Wire(http, sandbox.url, "1.2")
        session_id = sandbox.state.login("demo", "demo-password")
        for _ in range(60):
            await wire.call("GetBalance", sessionID=session_id)
        return [r.injected for r in sandbox.requests]


async def test_a_seed_makes_the_draws_reproducible(
    devino_sandbox_config: SandboxConfig, http: aiohttp.ClientSession
) -> None:
    def with_seed(seed: int) -> SandboxConfig:
        faults = {
            "seed": seed,
            "rules": [
                {"kind": "http_503", "operation": "GetBalance", "probability": 0.2},
                {"kind": "not_xml", "probability": 0.2},
            ],
        }
        return devino_sandbox_config.model_copy(
            update={"faults": SandboxConfig.model_validate({"faults": faults}).faults}
        )

    first = await draw_pattern(with_seed(11), http)
    assert first == await draw_pattern(with_seed(11), http)
    assert first != await draw_pattern(with_seed(12), http)
    assert {"http_503", "not_xml", None} == set(first)


def test_faults_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            faults:
              seed: 7
              rules:
                - {kind: close_after_processing, operation: SendMessage, probability: 0.1}
                - {kind: delay, requests: [3, 5], delay_seconds: 2.5, times: 1}
            """
        )
    )
    faults = load_sandbox_config(path).faults
    assert faults.seed == 7
    assert faults.rules == [
        FaultRule(kind="close_after_processing", operation="SendMessage", probability=0.1),
        FaultRule(kind="delay", requests=[3, 5], delay_seconds=2.5, times=1),
    ]
    sandbox = Sandbox(load_sandbox_config(path))
    assert [rule.kind for rule in sandbox.faults.rules] == ["close_after_processing", "delay"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{kind: http_503}", "exactly one of probability or requests"),
        (
            "{kind: http_503, probability: 0.1, requests: [1]}",
            "exactly one of probability or requests",
        ),
        ("{kind: http_503, probability: 1.5}", "less than or equal to 1"),
        ("{kind: http_503, requests: [0]}", "start at 1"),
        ("{kind: http_503, operation: SendSms, probability: 0.1}", "unknown operation 'SendSms'"),
        ("{kind: explode, probability: 0.1}", "close_after_processing"),
    ],
)
def test_bad_fault_rules_name_their_place(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text(f"version: 1\nfaults:\n  rules:\n    - {rule}\n")
    with pytest.raises(ConfigError) as info:
        load_sandbox_config(path)
    assert "faults.rules[0]" in str(info.value)
    assert ":4:" in str(info.value)
    assert message in str(info.value)


def test_fault_kinds_and_operations() -> None:
    assert set(FAULT_KINDS) == {
        "receiver_fault",
        "http_503",
        "close_before_response",
        "close_after_processing",
        "delay",
        "not_xml",
        "truncated",
        "session_expired",
        "rate_limited",
    }
    assert {"close_after_processing", "delay", "truncated"} == PROCESSED_KINDS
    for operation in OPERATIONS:
        assert FaultRule(kind="not_xml", operation=operation, probability=1).operation


async def test_the_admin_request_log_shows_injected_faults(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    devino_sandbox.faults.add("receiver_fault", operation="GetBalance", requests=[1])
    await wire.call("GetBalance", sessionID=session_id)
    async with http.get(devino_sandbox.base_url + "/admin/requests") as response:
        logged = await response.json()
    assert [entry["injected"] for entry in logged] == [None, "receiver_fault"]


async def test_sends_per_destination_shows_a_duplicate(
    http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    session_id = await wire.login()
    await wire.send(session_id, [NUMBER, "79031234568"], "x" * 200)  # two segments each
    await wire.send(session_id, ["+" + NUMBER], "again")
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 2, "79031234568": 1}
    assert devino_sandbox.state.sends_per_destination("other") == {}
