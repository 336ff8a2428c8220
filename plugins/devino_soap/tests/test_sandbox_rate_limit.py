"""The rate limit (10 requests per second per account, in real time) and the request log."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import ValidationError
from sandbox_wire import Wire

from notify_devino_soap.emulator import RateLimit, Sandbox, SandboxConfig

TOO_MANY = "Server was unable to process request. ---> Too many requests"


async def eleven_requests(wire: Wire) -> list[int]:
    """A login and ten balance queries, as fast as loopback allows: the 11th is over the limit."""
    login = await wire.call("GetSessionID", login="demo", password="demo-password")
    session_id = login.result
    statuses = [login.status]
    for _ in range(10):
        statuses.append((await wire.call("GetBalance", sessionID=session_id)).status)
    return statuses


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_eleventh_request_gets_a_fault(
    devino_sandbox: Sandbox, http: aiohttp.ClientSession, version: str
) -> None:
    wire = Wire(http, devino_sandbox.url, version)
    assert await eleven_requests(wire) == [200] * 10 + [500]
    records = devino_sandbox.requests
    assert records[-1].monotonic - records[0].monotonic < 1.0
    assert records[-1].fault == TOO_MANY
    assert (await wire.call("GetBalance", sessionID="whatever")).fault == (
        "soap:Receiver",
        "Server was unable to process request. ---> Invalid session",
    )  # an unknown session is not demo's: it counts in the shared window


@pytest.mark.parametrize(("kind", "status"), [("http_429", 429), ("http_503", 503)])
async def test_eleventh_request_gets_an_http_status(
    devino_sandbox_config: SandboxConfig, http: aiohttp.ClientSession, kind: str, status: int
) -> None:
    limit = RateLimit(response=kind, retry_after_seconds=2.5)
    async with Sandbox(devino_sandbox_config.model_copy(update={"rate_limit": limit})) as sandbox:
        wire = Wire(http, sandbox.url, "1.2")
        session_id = await wire.login()
        for _ in range(9):
            assert (await wire.call("GetBalance", sessionID=session_id)).status == 200
        async with http.post(
            sandbox.url,
            data=b"<x/>",
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        ) as response:
            assert response.status == 500  # unreadable: no account, so the global window
        reply = await wire.call("GetBalance", sessionID=session_id)
        assert reply.status == status
        assert reply.headers["Retry-After"] == "3"
        assert reply.text == "Too many requests\n"
        last = sandbox.requests[-1]
        assert (last.status, last.operation, last.login) == (status, "GetBalance", "demo")


async def test_accounts_have_separate_windows(
    devino_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    wire = Wire(http, devino_sandbox.url, "1.2")
    other = await wire.login("other", "other-password")
    assert (await eleven_requests(wire))[-1] == 500
    assert (await wire.call("GetBalance", sessionID=other)).status == 200


async def test_window_slides(
    devino_sandbox_config: SandboxConfig, http: aiohttp.ClientSession
) -> None:
    limit = RateLimit(requests_per_second=3)
    async with Sandbox(devino_sandbox_config.model_copy(update={"rate_limit": limit})) as sandbox:
        wire = Wire(http, sandbox.url, "1.2")
        session_id = await wire.login()
        statuses = [(await wire.call("GetBalance", sessionID=session_id)).status for _ in range(3)]
        assert statuses == [200, 200, 500]
        await asyncio.sleep(1.05)
        assert (await wire.call("GetBalance", sessionID=session_id)).status == 200


async def test_disabled(devino_sandbox_config: SandboxConfig, http: aiohttp.ClientSession) -> None:
    config = devino_sandbox_config.model_copy(update={"rate_limit": RateLimit(enabled=False)})
    async with Sandbox(config) as sandbox:
        wire = Wire(http, sandbox.url, "1.2")
        session_id = await wire.login()
        replies = await asyncio.gather(
            *(wire.call("GetBalance", sessionID=session_id) for _ in range(30))
        )
        assert {reply.status for reply in replies} == {200}


async def test_request_log(devino_sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    wire = Wire(http, devino_sandbox.url, "1.1")
    session_id = await wire.login()
    await wire.send(session_id, ["+79031234567", "89031234568"], "Hi")
    await wire.call("GetSessionID", login="demo", password="nope")
    async with http.get(devino_sandbox.url + "?wsdl") as response:
        assert response.status == 200
    records = devino_sandbox.requests
    assert [(r.operation, r.soap_version, r.login, r.status) for r in records] == [
        ("GetSessionID", "1.1", "demo", 200),
        ("SendMessage", "1.1", "demo", 200),
        ("GetSessionID", "1.1", "demo", 500),
        ("WSDL", "", None, 200),
    ]
    assert records[1].destinations == ("+79031234567", "89031234568")
    assert records[2].fault == (
        "Server was unable to process request. ---> Invalid user login or password"
    )
    assert records[0].monotonic <= records[1].monotonic
    async with http.get(devino_sandbox.base_url + "/admin/requests") as response:
        logged = await response.json()
    assert logged[1]["operation"] == "SendMessage"
    assert logged[1]["destinations"] == ["+79031234567", "89031234568"]
    assert logged[1]["at"].endswith("Z")
    assert session_id not in repr(logged)
    assert "nope" not in repr(logged)


async def test_a_running_sandbox_can_be_retuned(
    devino_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    devino_sandbox.config.rate_limit.enabled = False
    wire = Wire(http, devino_sandbox.url, "1.2")
    assert await eleven_requests(wire) == [200] * 11
    devino_sandbox.config.rate_limit.enabled = True
    devino_sandbox.config.rate_limit.requests_per_second = 1
    session_id = devino_sandbox.state.login("demo", "demo-password")
    assert (await wire.call("GetBalance", sessionID=session_id)).status == 200
    assert (await wire.call("GetBalance", sessionID=session_id)).fault[1] == TOO_MANY
    with pytest.raises(ValidationError):
        devino_sandbox.config.rate_limit.response = "bogus"  # type: ignore[assignment]
