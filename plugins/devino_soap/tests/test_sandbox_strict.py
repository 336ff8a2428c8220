"""The sandbox's strict mode: every request checked against the schema of the WSDL it serves,
answered with a SOAP Client fault naming the first element that breaks it. Over real HTTP, in
both SOAP versions, with hand-written envelopes (sandbox_wire), not the project's client."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from sandbox_wire import NIL, NS, Reply, Wire, envelope, operation

from notify_devino_soap.emulator import RateLimit, Sandbox, SandboxConfig
from notify_devino_soap.emulator.schema import Schema, SchemaViolation, service_schema
from notify_devino_soap.emulator.wire import OPERATIONS
from notify_devino_soap.envelopes import SOAP11_NS, SOAP12_NS

READ = "Server was unable to read request. ---> There is an error in XML document ("
NUMBER = "79031234567"


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    return devino_sandbox_config.model_copy(update={"rate_limit": RateLimit(enabled=False)})


@pytest.fixture(params=["1.1", "1.2"])
def wire(
    request: pytest.FixtureRequest, http: aiohttp.ClientSession, devino_sandbox: Sandbox
) -> Wire:
    return Wire(http, devino_sandbox.url, request.param)


@pytest.fixture
async def session_id(wire: Wire) -> str:
    return await wire.login()


def message(**changes: Any) -> dict[str, Any]:
    """A complete SendMessage ``message``, in the WSDL's order, with ``changes`` applied (a
    value of None leaves the element out)."""
    full: dict[str, Any] = {
        "Data": "Hi",
        "DelayUntilUtc": NIL,
        "DestinationAddresses": [NUMBER],
        "SourceAddress": "ALERTS",
        "ReceiptRequested": "true",
        "Validity": 0,
    }
    full.update(changes)
    return full


def assert_client_fault(reply: Reply, version: str, *names: str) -> str:
    """A Client fault (1.2 soap:Sender, 1.1 soap:Client) that names each of ``names``."""
    assert reply.status == 500, reply.text
    if version == "1.1":
        assert "<faultcode>soap:Client</faultcode>" in reply.text
    code, reason = reply.fault
    assert code == "soap:Sender"
    assert reason.startswith(READ), reason
    assert re.match(re.escape(READ) + r"\d+, \d+\)\. ---> ", reason), reason
    for name in names:
        assert name in reason, reason
    return reason


@pytest.mark.parametrize("missing", ["DelayUntilUtc", "ReceiptRequested", "Validity"])
async def test_send_message_lacking_a_required_element_is_a_client_fault(
    wire: Wire, session_id: str, devino_sandbox: Sandbox, missing: str
) -> None:
    reply = await wire.call("SendMessage", sessionID=session_id, message=message(**{missing: None}))
    reason = assert_client_fault(reply, wire.version, f"'SendMessage/message/{missing}'", "missing")
    assert 'minOccurs="1"' in reason
    if missing == "DelayUntilUtc":
        assert 'xsi:nil="true"' in reason  # what to send for "now"
    assert devino_sandbox.state.messages() == []
    assert devino_sandbox.requests[-1].status == 500
    assert devino_sandbox.requests[-1].operation == "SendMessage"


async def test_the_complete_message_is_accepted(wire: Wire, session_id: str) -> None:
    reply = await wire.call("SendMessage", sessionID=session_id, message=message())
    assert len(reply.ids) == 1


@pytest.mark.parametrize("op", ["SendMessageByTimeZone", "SendMessageByTimeZoneToAddresses"])
@pytest.mark.parametrize("missing", ["sendDate", "validity"])
async def test_by_time_zone_lacking_a_required_element(
    wire: Wire, session_id: str, op: str, missing: str
) -> None:
    params: dict[str, Any] = {
        "sessionID": session_id,
        "sourceAddress": "ALERTS",
        "destinationAddress" if op == "SendMessageByTimeZone" else "destinationAddresses": (
            NUMBER if op == "SendMessageByTimeZone" else [NUMBER]
        ),
        "data": "Hi",
        "sendDate": "2030-01-01T09:00:00",
        "validity": 60,
    }
    assert len((await wire.call(op, **params)).ids) == 1
    params[missing] = None
    reply = await wire.call(op, **params)
    assert_client_fault(reply, wire.version, f"'{op}/{missing}'", "missing")


@pytest.mark.parametrize(
    ("op", "params", "names"),
    [
        ("GetMessageState", {"messageID": None}, ["'GetMessageState/messageID'", "missing"]),
        ("GetStatistics", {"endDateTime": None}, ["'GetStatistics/endDateTime'", "missing"]),
        (
            "GetIncomingMessages",
            {"maxDateUTC": None},
            ["'GetIncomingMessages/maxDateUTC'", "missing", "before 'minDateUTC'"],
        ),
        (
            "GetMessageState",
            {"messageID": 2**63},
            ["'GetMessageState/messageID'", "xs:long", "9223372036854775807"],
        ),
        ("GetMessageState", {"messageID": "١٢٣"}, ["'GetMessageState/messageID'", "xs:long"]),
        (
            "GetStatistics",
            {"startDateTime": "2026-02-30T00:00:00"},
            ["'GetStatistics/startDateTime'", "xs:dateTime"],
        ),
        (
            "GetStatistics",
            {"startDateTime": "2026-03-02T09:00"},  # no seconds
            ["'GetStatistics/startDateTime'", "xs:dateTime"],
        ),
        (
            "GetStatistics",
            {"startDateTime": NIL},
            ["'GetStatistics/startDateTime'", "nillable"],
        ),
    ],
)
async def test_other_operations(
    wire: Wire, session_id: str, op: str, params: dict[str, Any], names: list[str]
) -> None:
    full: dict[str, dict[str, Any]] = {
        "GetMessageState": {"messageID": 579700854169272358},
        "GetStatistics": {
            "startDateTime": "2026-03-01T00:00:00",
            "endDateTime": "2026-03-02T00:00:00",
        },
        "GetIncomingMessages": {
            "maxDateUTC": "2026-03-02T00:00:00",
            "minDateUTC": "2026-03-01T00:00:00",
        },
    }
    assert (await wire.call(op, sessionID=session_id, **full[op])).status == 200
    reply = await wire.call(op, sessionID=session_id, **{**full[op], **params})
    assert_client_fault(reply, wire.version, *names)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"Validity": 2**31}, ["'SendMessage/message/Validity'", "xs:int", "2147483647"]),
        ({"Validity": -(2**31) - 1}, ["'SendMessage/message/Validity'", "xs:int"]),
        ({"Validity": "1.5"}, ["'SendMessage/message/Validity'", "xs:int"]),
        ({"Validity": NIL}, ["'SendMessage/message/Validity'", "not declare it nillable"]),
        ({"ReceiptRequested": "yes"}, ["'SendMessage/message/ReceiptRequested'", "xs:boolean"]),
        ({"DelayUntilUtc": "2026-13-01T00:00:00Z"}, ["'SendMessage/message/DelayUntilUtc'"]),
        ({"DelayUntilUtc": "2026-03-02T25:00:00Z"}, ["'SendMessage/message/DelayUntilUtc'"]),
        ({"DelayUntilUtc": "2026-03-02T09:00:00+15:00"}, ["'SendMessage/message/DelayUntilUtc'"]),
        ({"Unknown": "x"}, ["'SendMessage/message/Unknown'", "no such element"]),
    ],
)
async def test_bad_values_name_the_element(
    wire: Wire, session_id: str, changes: dict[str, Any], names: list[str]
) -> None:
    reply = await wire.call("SendMessage", sessionID=session_id, message=message(**changes))
    assert_client_fault(reply, wire.version, *names)


async def test_order_and_repetition(wire: Wire, session_id: str) -> None:
    swapped = message()
    swapped = {
        k: swapped[k]
        for k in (
            "Data",
            "DelayUntilUtc",
            "DestinationAddresses",
            "SourceAddress",
            "Validity",
            "ReceiptRequested",
        )
    }
    reply = await wire.call("SendMessage", sessionID=session_id, message=swapped)
    assert_client_fault(reply, wire.version, "'SendMessage/message/ReceiptRequested'", "missing")
    late = (
        f'<GetMessageState xmlns="{NS}"><messageID>1</messageID>'
        f"<sessionID>{session_id}</sessionID></GetMessageState>"
    )
    reply = await wire.post(late, op="GetMessageState")
    assert_client_fault(reply, wire.version, "'GetMessageState/sessionID'", "out of order")
    twice = f"<sessionID>{session_id}</sessionID><sessionID>{session_id}</sessionID>"
    reply = await wire.post(f'<GetBalance xmlns="{NS}">{twice}</GetBalance>', op="GetBalance")
    assert_client_fault(reply, wire.version, "'GetBalance/sessionID'", 'maxOccurs="1"')
    foreign = f'<GetBalance xmlns="{NS}"><sessionID xmlns="urn:other">x</sessionID></GetBalance>'
    reply = await wire.post(foreign, op="GetBalance")
    assert_client_fault(reply, wire.version, "'GetBalance/sessionID'", "urn:other")
    text = f'<GetBalance xmlns="{NS}">stray<sessionID>{session_id}</sessionID></GetBalance>'
    reply = await wire.post(text, op="GetBalance")
    assert_client_fault(reply, wire.version, "'GetBalance'", "stray")


async def test_nil_strings_in_an_array_and_a_header_are_allowed(
    wire: Wire, session_id: str
) -> None:
    """ArrayOfString's items are nillable (the service then refuses the empty address, as a
    rule, not as a schema error); a SOAP Header is not looked into."""
    body = operation(
        "SendMessage",
        sessionID=session_id,
        message=message(DestinationAddresses=[NUMBER]),
    ).replace(f"<string>{NUMBER}</string>", '<string xsi:nil="true" />')
    reply = await wire.post(body, op="SendMessage")
    assert reply.status == 500
    assert reply.fault[0] == "soap:Receiver"
    prefix = "soap" if wire.version == "1.1" else "soap12"
    with_header = envelope(wire.version, operation("GetBalance", sessionID=session_id)).replace(
        f"<{prefix}:Body>".encode(),
        f"<{prefix}:Header><x:Any xmlns:x='urn:x'/></{prefix}:Header><{prefix}:Body>".encode(),
    )
    assert (await wire.post(with_header, op="GetBalance")).status == 200


async def test_lenient_mode_reads_a_request_as_asmx_does(
    http: aiohttp.ClientSession, devino_sandbox_config: SandboxConfig
) -> None:
    """``strict: false`` keeps ASMX's leniency: missing value-type elements take defaults."""
    async with Sandbox(devino_sandbox_config.model_copy(update={"strict": False})) as lenient:
        wire = Wire(http, lenient.url, "1.2")
        session_id = await wire.login()
        bare = {"Data": "Hi", "DestinationAddresses": [NUMBER], "SourceAddress": "ALERTS"}
        reply = await wire.call("SendMessage", sessionID=session_id, message=bare)
        assert len(reply.ids) == 1


def test_strict_is_on_by_default_in_the_fixtures_and_the_packaged_configs(
    devino_sandbox_config: SandboxConfig,
) -> None:
    from notify_devino_soap.commands import DEFAULT_SANDBOX_CONFIG
    from notify_devino_soap.emulator import load_sandbox_config

    assert SandboxConfig().strict
    assert devino_sandbox_config.strict
    assert load_sandbox_config(DEFAULT_SANDBOX_CONFIG).strict
    assert "\nstrict: true\n" in DEFAULT_SANDBOX_CONFIG.read_text(encoding="utf-8")


async def test_every_reply_the_sandbox_writes_matches_the_wsdl(
    wire: Wire, session_id: str, devino_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """The same walker holds the sandbox's own replies to the response elements."""
    soap_ns = SOAP11_NS if wire.version == "1.1" else SOAP12_NS
    (message_id,) = (await wire.call("SendMessage", sessionID=session_id, message=message())).ids
    async with http.post(
        devino_sandbox.base_url + "/admin/incoming",
        json={"source": NUMBER, "destination": "ALERTS", "text": "1"},
    ) as response:
        assert response.status == 201
    calls: dict[str, dict[str, Any]] = {
        "GetSessionID": {"login": "demo", "password": "demo-password"},
        "GetBalance": {"sessionID": session_id},
        "SendMessage": {"sessionID": session_id, "message": message(Data="x" * 200)},
        "SendMessageByTimeZone": {
            "sessionID": session_id,
            "sourceAddress": "ALERTS",
            "destinationAddress": NUMBER,
            "data": "Hi",
            "sendDate": "2030-01-01T09:00:00",
            "validity": 0,
        },
        "SendMessageByTimeZoneToAddresses": {
            "sessionID": session_id,
            "sourceAddress": "ALERTS",
            "destinationAddresses": [NUMBER, "79031234568"],
            "data": "Hi",
            "sendDate": "2030-01-01T09:00:00",
            "validity": 0,
        },
        "GetMessageState": {"sessionID": session_id, "messageID": message_id},
        "GetStatistics": {
            "sessionID": session_id,
            "startDateTime": "2000-01-01T00:00:00",
            "endDateTime": "2000-02-01T00:00:00",
        },
        "GetIncomingMessages": {
            "sessionID": session_id,
            "maxDateUTC": "2100-01-01T00:00:00",
            "minDateUTC": "2000-01-01T00:00:00",
        },
    }
    unknown = await wire.call("GetMessageState", sessionID=session_id, messageID=1)
    checked = service_schema()
    assert checked.check_envelope(unknown.text.encode(), soap_ns) == "GetMessageStateResponse"
    for op, params in calls.items():
        reply = await wire.call(op, **params)
        assert reply.status == 200, reply.text
        assert checked.check_envelope(reply.text.encode(), soap_ns) == f"{op}Response"


def test_the_walker_refuses_what_it_does_not_check() -> None:
    head = (
        '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        'xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:t"><wsdl:types>'
        '<s:schema elementFormDefault="qualified" targetNamespace="urn:t">'
    )
    tail = "</s:schema></wsdl:types></wsdl:definitions>"
    choice = (
        '<s:element name="A"><s:complexType><s:choice>'
        '<s:element name="b" type="s:string" /></s:choice></s:complexType></s:element>'
    )
    with pytest.raises(ValueError, match="sequence"):
        Schema.from_wsdl(head + choice + tail)
    float_type = (
        '<s:element name="A"><s:complexType><s:sequence>'
        '<s:element name="b" type="s:float" /></s:sequence></s:complexType></s:element>'
    )
    with pytest.raises(ValueError, match="float"):
        Schema.from_wsdl(head + float_type + tail)


def test_the_walker_alone_refuses_a_dtd_and_malformed_xml() -> None:
    """check_envelope is safe on its own, not only behind the server's reader."""
    schema = service_schema()
    body = envelope("1.2", operation("GetBalance", sessionID="x"))
    declaration, rest = body.split(b"\n", 1)
    evil = declaration + b'\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n' + rest.replace(b">x<", b">&a;<")
    with pytest.raises(SchemaViolation, match="DTD"):
        schema.check_envelope(evil, SOAP12_NS)
    with pytest.raises(SchemaViolation, match="not well-formed"):
        schema.check_envelope(body[:-5], SOAP12_NS)
    assert schema.check_envelope(body, SOAP12_NS) == "GetBalance"


def test_the_sandbox_routes_exactly_the_operations_of_the_wsdl() -> None:
    assert set(OPERATIONS) == set(service_schema().operations)
    assert len(service_schema().operations) == 8
