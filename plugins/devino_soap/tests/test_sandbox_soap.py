"""Every operation of the sandbox, in SOAP 1.1 and SOAP 1.2, over real HTTP on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import xmltodict
from sandbox_wire import NS, NS12, Wire, operation

from notify_devino_soap.emulator import ManualClock, RateLimit, Sandbox, SandboxConfig

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    return devino_sandbox_config.model_copy(update={"rate_limit": RateLimit(enabled=False)})


@pytest.fixture
def devino_sandbox_clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=["1.1", "1.2"])
def wire(
    request: pytest.FixtureRequest,
    http: aiohttp.ClientSession,
    devino_sandbox_manual_clock: Sandbox,
) -> Wire:
    return Wire(http, devino_sandbox_manual_clock.url, request.param)


@pytest.fixture
def sandbox(devino_sandbox_manual_clock: Sandbox) -> Sandbox:
    return devino_sandbox_manual_clock


async def test_get_session_id(wire: Wire) -> None:
    reply = await wire.call("GetSessionID", login="demo", password="demo-password")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == (
        "text/xml; charset=utf-8"
        if wire.version == "1.1"
        else "application/soap+xml; charset=utf-8"
    )
    session_id = reply.result
    assert re.fullmatch(r"[A-Z0-9]{36}", session_id)
    assert await wire.login() != session_id


async def test_reply_shape_follows_the_docs(wire: Wire) -> None:
    reply = await wire.call("GetSessionID", login="demo", password="demo-password")
    envelope_ns = NS12 if wire.version == "1.2" else "http://schemas.xmlsoap.org/soap/envelope/"
    assert reply.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert f'<soap:Envelope xmlns:soap="{envelope_ns}"' in reply.text
    assert f'<GetSessionIDResponse xmlns="{NS}"><GetSessionIDResult>' in reply.text


async def test_get_balance(wire: Wire) -> None:
    session_id = await wire.login()
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert reply.result == "1000.00"


async def test_send_message_charges_and_returns_ids(wire: Wire, sandbox: Sandbox) -> None:
    session_id = await wire.login()
    reply = await wire.send(session_id, ["+79031234567", "89031234568"], "Hello")
    first = sandbox.config.message_id_start
    assert reply.ids == [first, first + 1]
    assert (await wire.call("GetBalance", sessionID=session_id)).result == "997.00"


async def test_send_message_by_time_zone(wire: Wire, sandbox: Sandbox) -> None:
    session_id = await wire.login()
    reply = await wire.call(
        "SendMessageByTimeZone",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddress="79031234567",
        data="Wake up",
        sendDate="2026-03-02T15:00:00",
        validity=60,
    )
    (message_id,) = reply.ids
    state = await wire.state(session_id, message_id)
    assert state["State"] == "-40"


async def test_send_message_by_time_zone_to_addresses(wire: Wire) -> None:
    session_id = await wire.login()
    reply = await wire.call(
        "SendMessageByTimeZoneToAddresses",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddresses=["79031234567", "79141234567"],
        data="Wake up",
        sendDate="2026-03-02T15:00:00",
        validity=0,
    )
    assert len(reply.ids) == 2
    assert reply.ids[1] == reply.ids[0] + 1


async def test_get_message_state_fields_in_order(
    wire: Wire, devino_sandbox_clock: ManualClock
) -> None:
    session_id = await wire.login()
    (message_id,) = (await wire.send(session_id, ["79031234567"], "Hi")).ids
    devino_sandbox_clock.advance(timedelta(seconds=1))
    state = await wire.state(session_id, message_id)
    assert list(state) == [
        "State",
        "CreationDateUtc",
        "SubmittedDateUtc",
        "ReportedDateUtc",
        "TimeStampUtc",
        "StateDescription",
        "Price",
    ]
    assert state["State"] == "0"
    assert state["CreationDateUtc"] == "2026-03-02T09:00:00.000Z"
    assert state["SubmittedDateUtc"] == "2026-03-02T09:00:00.050Z"
    assert state["ReportedDateUtc"] == "2026-03-02T09:00:00.200Z"
    assert state["TimeStampUtc"] == "2026-03-02T09:00:00.200Z"
    assert state["StateDescription"] == "Delivered to recipient"
    assert state["Price"] == "1.50"


async def test_get_statistics_fields_in_order(
    wire: Wire, devino_sandbox_clock: ManualClock
) -> None:
    session_id = await wire.login()
    await wire.send(session_id, ["79031234567", "79990000001"], "Hi")
    devino_sandbox_clock.advance(timedelta(seconds=1))
    reply = await wire.call(
        "GetStatistics",
        sessionID=session_id,
        startDateTime="2026-03-01T00:00:00",
        endDateTime="2026-03-03T00:00:00",
    )
    assert reply.result == {
        "Sent": "2",
        "Delivered": "1",
        "Errors": "1",
        "InProcess": "0",
        "Expired": "0",
        "Rejected": "1",
        "Optimized": "0",
        "Tarificated": "2",
        "Total": "2",
        "TotalWithErrors": "2",
        "DeliveryRatio": "0.50",
    }
    assert list(reply.result) == list(reply.result.keys())  # order is the help page's


async def test_get_incoming_messages_by_range(
    wire: Wire, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    admin = sandbox.base_url + "/admin/incoming"
    for minute, text in [(30, "second <&> one"), (10, "first"), (50, "too late")]:
        body = {
            "source": "79031234567",
            "destination": "4242",
            "text": text,
            "created_at": f"2026-03-02T08:{minute}:00Z",
        }
        async with http.post(admin, json=body) as response:
            assert response.status == 201
            stored = await response.json()
            assert stored["created_at"] == f"2026-03-02T08:{minute}:00.000Z"
    session_id = await wire.login()
    reply = await wire.call(
        "GetIncomingMessages",
        sessionID=session_id,
        maxDateUTC="2026-03-02T08:40:00",
        minDateUTC="2026-03-02T08:00:00",
    )
    messages = reply.result["IncomingMessage"]
    assert [m["Data"] for m in messages] == ["first", "second <&> one"]
    assert messages[0] == {
        "Data": "first",
        "SourceAddress": "79031234567",
        "DestinationAddress": "4242",
        "CreatedDateUtc": "2026-03-02T08:10:00.000Z",
    }
    assert "second &lt;&amp;&gt; one" in reply.text


async def test_incoming_for_one_account_only(
    wire: Wire, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    body = {"source": "79031234567", "destination": "4242", "text": "for other", "login": "other"}
    async with http.post(sandbox.base_url + "/admin/incoming", json=body) as response:
        assert response.status == 201
    params = {"maxDateUTC": "2026-03-03T00:00:00", "minDateUTC": "2026-03-01T00:00:00"}
    mine = await wire.call("GetIncomingMessages", sessionID=await wire.login(), **params)
    assert mine.result is None  # <GetIncomingMessagesResult />
    theirs = await wire.call(
        "GetIncomingMessages", sessionID=await wire.login("other", "other-password"), **params
    )
    assert [m["Data"] for m in theirs.result["IncomingMessage"]] == ["for other"]


async def test_admin_incoming_refuses_bad_input(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    url = sandbox.base_url + "/admin/incoming"
    for body in [
        {"source": "1"},
        {"source": "1", "destination": "2", "text": "x", "created_at": "x"},
    ]:
        async with http.post(url, json=body) as response:
            assert response.status == 400
            assert "error" in await response.json()


@pytest.mark.parametrize("query", ["WSDL", "wsdl", "Wsdl"])
@pytest.mark.parametrize("path", ["/SmsService.asmx", "/smsservice.asmx"])
async def test_wsdl_points_at_the_sandbox(
    sandbox: Sandbox, http: aiohttp.ClientSession, query: str, path: str
) -> None:
    async with http.get(f"{sandbox.base_url}{path}?{query}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/xml")
        text = await response.text()
    wsdl = xmltodict.parse(text, process_namespaces=True)
    ports = wsdl["http://schemas.xmlsoap.org/wsdl/:definitions"][
        "http://schemas.xmlsoap.org/wsdl/:service"
    ]["http://schemas.xmlsoap.org/wsdl/:port"]
    locations = [
        next(v["@location"] for k, v in port.items() if k.endswith(":address")) for port in ports
    ]
    assert locations == [sandbox.url, sandbox.url]
    assert 'ws.devinotele.com/SmsService.asmx"' not in text


async def test_path_is_case_insensitive(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.base_url + "/SMSSERVICE.ASMX", "1.2")
    assert re.fullmatch(r"[A-Z0-9]{36}", await wire.login())


async def test_other_paths_are_not_found(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    async with http.post(sandbox.base_url + "/Other.asmx", data=b"") as response:
        assert response.status == 404


async def test_soap12_action_parameter(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.2")
    body = operation("GetSessionID", login="demo", password="demo-password")
    matching = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{NS}/GetSessionID"'}
    reply = await wire.post(body, op="GetSessionID", headers=matching)
    assert reply.status == 200
    other = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{NS}/GetBalance"'}
    reply = await wire.post(body, op="GetSessionID", headers=other)
    assert reply.status == 500
    assert reply.fault[0] == "soap:Sender"


async def test_soap11_action_without_quotes(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.1")
    body = operation("GetSessionID", login="demo", password="demo-password")
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f"{NS}/GetSessionID"}
    assert (await wire.post(body, op="GetSessionID", headers=headers)).status == 200


async def test_request_text_survives_the_round_trip(
    wire: Wire, sandbox: Sandbox, devino_sandbox_clock: ManualClock
) -> None:
    session_id = await wire.login()
    text = "  Ошибка <disk> & \"quotes\" 'x'  "
    await wire.send(session_id, ["79031234567"], text)
    (stored,) = sandbox.state.messages()
    assert stored.text == text
    assert stored.source == "TESTSENDER"
    assert stored.destination == "79031234567"
