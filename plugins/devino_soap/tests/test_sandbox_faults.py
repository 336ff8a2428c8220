"""Every fault the sandbox answers, in both SOAP versions, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest
from sandbox_wire import NS, NS11, NS12, Reply, Wire, envelope, operation

from notify_devino_soap.emulator import ManualClock, RateLimit, Sandbox, SandboxConfig

PROCESS = "Server was unable to process request. ---> "
READ = "Server was unable to read request. ---> There is an error in XML document"


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    return devino_sandbox_config.model_copy(update={"rate_limit": RateLimit(enabled=False)})


@pytest.fixture
def devino_sandbox_clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(devino_sandbox_manual_clock: Sandbox) -> Sandbox:
    return devino_sandbox_manual_clock


@pytest.fixture(params=["1.1", "1.2"])
def wire(request: pytest.FixtureRequest, http: aiohttp.ClientSession, sandbox: Sandbox) -> Wire:
    return Wire(http, sandbox.url, request.param)


@pytest.fixture
async def session_id(wire: Wire) -> str:
    return await wire.login()


def assert_fault(reply: Reply, code: str, reason: str, *, exact: bool = True) -> None:
    assert reply.status == 500, reply.text
    got_code, got_reason = reply.fault
    assert got_code == code
    if exact:
        assert got_reason == reason
    else:
        assert got_reason.startswith(reason), got_reason


def assert_fault_shape(reply: Reply, version: str) -> None:
    """The literal shape ASMX writes for each version."""
    if version == "1.2":
        assert reply.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
        assert f'xmlns:soap="{NS12}"' in reply.text
        assert (
            "<soap:Fault><soap:Code><soap:Value>soap:Receiver</soap:Value></soap:Code>"
            in reply.text
        )
        assert (
            '<soap:Reason><soap:Text xml:lang="en">Server was unable to process request. ---&gt; '
            in (reply.text)
        )
        assert "</soap:Text></soap:Reason><soap:Detail /></soap:Fault>" in reply.text
    else:
        assert reply.headers["Content-Type"] == "text/xml; charset=utf-8"
        assert f'xmlns:soap="{NS11}"' in reply.text
        assert "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>" in reply.text
        assert "</faultstring><detail /></soap:Fault>" in reply.text


async def test_bad_login(wire: Wire) -> None:
    reply = await wire.call("GetSessionID", login="demo", password="wrong")
    assert_fault(reply, "soap:Receiver", PROCESS + "Invalid user login or password")
    assert_fault_shape(reply, wire.version)
    unknown = await wire.call("GetSessionID", login="nobody", password="demo-password")
    assert_fault(unknown, "soap:Receiver", PROCESS + "Invalid user login or password")


async def test_unknown_session(wire: Wire) -> None:
    reply = await wire.call("GetBalance", sessionID="Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1")
    assert_fault(reply, "soap:Receiver", PROCESS + "Invalid session")
    assert "Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1" not in reply.text  # never echo a session ID


async def test_session_expires_after_120_minutes(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    devino_sandbox_clock.advance(timedelta(minutes=119, seconds=59))
    assert (await wire.call("GetBalance", sessionID=session_id)).status == 200
    devino_sandbox_clock.advance(timedelta(seconds=1))
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert_fault(reply, "soap:Receiver", PROCESS + "SessionID expired")
    fresh = await wire.login()
    assert (await wire.call("GetBalance", sessionID=fresh)).status == 200


async def test_admin_expires_every_session(
    wire: Wire, session_id: str, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(sandbox.base_url + "/admin/expire-sessions") as response:
        assert response.status == 200
        assert await response.json() == {"expired": 1}
    reply = await wire.call("GetBalance", sessionID=session_id)
    assert_fault(reply, "soap:Receiver", PROCESS + "SessionID expired")


@pytest.mark.parametrize("number", ["12345", "7903123456789", "+7903abc4567", "70001234567"])
async def test_bad_number(wire: Wire, session_id: str, number: str, sandbox: Sandbox) -> None:
    reply = await wire.send(session_id, ["79031234567", number], "Hi")
    assert_fault(reply, "soap:Receiver", PROCESS + f"Invalid destination address: {number}")
    assert sandbox.state.messages() == []  # the whole request failed


async def test_bad_number_by_time_zone(wire: Wire, session_id: str) -> None:
    reply = await wire.call(
        "SendMessageByTimeZone",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddress="555",
        data="Hi",
        sendDate="2026-03-02T15:00:00",
        validity=0,
    )
    assert_fault(reply, "soap:Receiver", PROCESS + "Invalid destination address: 555")


@pytest.mark.parametrize("sender", ["TWELVECHARSX", "1234567890123456", "Привет", "١٢٣٤٥"])
async def test_bad_sender(wire: Wire, session_id: str, sender: str) -> None:
    reply = await wire.send(session_id, ["79031234567"], "Hi", SourceAddress=sender)
    assert_fault(reply, "soap:Receiver", PROCESS + f"Invalid source address: {sender}")


async def test_text_too_long(wire: Wire, session_id: str) -> None:
    assert (await wire.send(session_id, ["79031234567"], "x" * 2000)).status == 200
    reply = await wire.send(session_id, ["79031234567"], "x" * 2001)
    assert_fault(reply, "soap:Receiver", PROCESS + "Message is too long: 2001 characters")


async def test_too_many_addresses(wire: Wire, session_id: str, sandbox: Sandbox) -> None:
    sandbox.state.accounts["demo"].balance = Decimal("5000.00")
    numbers = [f"7903{n:07d}" for n in range(1001)]
    reply = await wire.send(session_id, numbers, "Hi")
    assert_fault(reply, "soap:Receiver", PROCESS + "Too many destination addresses: 1001")
    reply = await wire.send(session_id, numbers[:1000], "Hi")
    assert len(reply.ids) == 1000


async def test_not_enough_credits_charges_nothing(wire: Wire, sandbox: Sandbox) -> None:
    session_id = await wire.login("poor", "poor-password")  # balance 1.00, one SMS costs 1.50
    first_id = sandbox.state._next_id
    reply = await wire.send(session_id, ["79031234567"], "Hi")
    assert_fault(reply, "soap:Receiver", PROCESS + "Not enough credits")
    assert (await wire.call("GetBalance", sessionID=session_id)).result == "1.00"
    assert sandbox.state.messages() == []
    assert sandbox.state._next_id == first_id


async def test_not_enough_credits_for_the_whole_request(wire: Wire, sandbox: Sandbox) -> None:
    sandbox.state.accounts["demo"].balance = Decimal("4.00")
    session_id = await wire.login()
    reply = await wire.send(session_id, ["79031234567", "79031234568", "79031234569"], "Hi")
    assert_fault(reply, "soap:Receiver", PROCESS + "Not enough credits")
    assert sandbox.state.accounts["demo"].balance == Decimal("4.00")
    assert len((await wire.send(session_id, ["79031234567", "79031234568"], "Hi")).ids) == 2
    assert sandbox.state.accounts["demo"].balance == Decimal("1.00")


async def test_statistics_range_over_three_months(wire: Wire, session_id: str) -> None:
    reply = await wire.call(
        "GetStatistics",
        sessionID=session_id,
        startDateTime="2026-01-01T00:00:00",
        endDateTime="2026-05-01T00:00:00",
    )
    assert_fault(reply, "soap:Receiver", PROCESS + "Date range is more than 3 months")
    ok = await wire.call(
        "GetStatistics",
        sessionID=session_id,
        startDateTime="2026-01-01T00:00:00",
        endDateTime="2026-04-01T00:00:00",
    )
    assert ok.status == 200


async def test_statistics_range_backwards(wire: Wire, session_id: str) -> None:
    reply = await wire.call(
        "GetStatistics",
        sessionID=session_id,
        startDateTime="2026-03-02T00:00:00",
        endDateTime="2026-03-01T00:00:00",
    )
    assert_fault(
        reply, "soap:Receiver", PROCESS + "Invalid argument: endDateTime is before startDateTime"
    )


_SEND_BY_TIME_ZONE = {"sourceAddress": "X", "data": "Hi", "sendDate": "2026-03-02T15:00:00"}


@pytest.mark.parametrize(
    ("op", "params", "missing"),
    [
        ("GetSessionID", {"login": "demo"}, "password"),
        ("GetBalance", {}, "sessionID"),
        ("SendMessage", {}, "message"),
        ("GetMessageState", {}, "messageID"),
        ("GetStatistics", {"endDateTime": "2026-03-02T00:00:00"}, "startDateTime"),
        ("GetIncomingMessages", {"minDateUTC": "2026-03-02T00:00:00"}, "maxDateUTC"),
        (
            "SendMessageByTimeZone",
            {**_SEND_BY_TIME_ZONE, "validity": 0},
            "destinationAddress",
        ),
    ],
)
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
async def test_missing_parameter(
    wire: Wire,
    sandbox: Sandbox,
    session_id: str,
    op: str,
    params: dict[str, str],
    missing: str,
    strict: bool,
) -> None:
    """An optional (reference-type) parameter left out is the service's "null or empty" fault
    in either mode. A value-type one (minOccurs="1") is a schema error in strict mode; the
    lenient sandbox reads it as null, as ASMX reads a missing nullable, and faults the same."""
    sandbox.config.strict = strict
    if op != "GetBalance" and op != "GetSessionID":
        params = {"sessionID": session_id, **params}
    reply = await wire.call(op, **params)
    if strict and missing in ("messageID", "startDateTime", "maxDateUTC"):
        assert_fault(reply, "soap:Sender", READ, exact=False)
        assert f"Element '{op}/{missing}' is missing" in reply.fault[1]
    else:
        assert_fault(reply, "soap:Receiver", PROCESS + f"Argument is null or empty: {missing}")


async def test_empty_message_fields(wire: Wire, session_id: str) -> None:
    reply = await wire.send(session_id, ["79031234567"], "")
    assert_fault(reply, "soap:Receiver", PROCESS + "Argument is null or empty: data")
    reply = await wire.send(session_id, [], "Hi")
    assert_fault(
        reply, "soap:Receiver", PROCESS + "Argument is null or empty: destinationAddresses"
    )


async def test_unreadable_xml(wire: Wire) -> None:
    reply = await wire.post(b"<soap:Envelope><oops>", op="GetBalance")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    if wire.version == "1.1":
        assert "<faultcode>soap:Client</faultcode>" in reply.text
    else:
        assert "<soap:Value>soap:Sender</soap:Value>" in reply.text
    empty = await wire.post(b"", op="GetBalance")
    assert_fault(empty, "soap:Sender", "Server was unable to read request.", exact=False)


async def test_bad_value_is_a_read_error(wire: Wire, sandbox: Sandbox, session_id: str) -> None:
    """A value its type cannot hold is a read error (soap:Sender): in strict mode named by the
    schema walk, in lenient mode with the texts .NET's reader writes."""
    reply = await wire.call("GetMessageState", sessionID=session_id, messageID="abc")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    assert "'GetMessageState/messageID' holds 'abc', which is not a valid xs:long" in reply.fault[1]
    sandbox.config.strict = False
    reply = await wire.call("GetMessageState", sessionID=session_id, messageID="abc")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    assert reply.fault[1].endswith("Input string was not in a correct format.")
    reply = await wire.call(
        "GetStatistics", sessionID=session_id, startDateTime="yesterday", endDateTime="today"
    )
    assert reply.fault[1].endswith("The string 'yesterday' is not a valid AllXsd value.")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE x SYSTEM "http://127.0.0.1:1/evil.dtd">',
    ],
)
async def test_doctype_is_refused(wire: Wire, session_id: str, doctype: str) -> None:
    body = envelope(wire.version, operation("GetBalance", sessionID=session_id)).decode()
    declaration, rest = body.split("\n", 1)
    evil = f"{declaration}\n{doctype}\n{rest}".replace(session_id, "&b;&secret;")
    reply = await wire.post(evil.encode(), op="GetBalance")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    assert reply.fault[1].endswith("DTD is prohibited in this XML document.")
    assert "root:" not in reply.text


async def test_unknown_soap_action(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.1")
    body = operation("GetBalance", sessionID="X")
    reply = await wire.post(
        body, op=None, headers={"Content-Type": "text/xml", "SOAPAction": f'"{NS}/Nope"'}
    )
    assert_fault(
        reply,
        "soap:Sender",
        f"Server did not recognize the value of HTTP Header SOAPAction: {NS}/Nope.",
    )
    assert "<faultcode>soap:Client</faultcode>" in reply.text
    missing = await wire.post(body, op=None, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert_fault(
        missing, "soap:Sender", "Server did not recognize the value of HTTP Header SOAPAction: ."
    )


async def test_soap11_action_must_match_body(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.1")
    reply = await wire.post(operation("GetBalance", sessionID="X"), op="GetSessionID")
    assert_fault(reply, "soap:Sender", READ, exact=False)


async def test_unknown_operation_element(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.2")
    reply = await wire.post(operation("DeleteEverything", sessionID="X"), op=None)
    assert_fault(
        reply,
        "soap:Sender",
        "Unable to handle request without a valid action parameter. "
        "Please supply a valid soap action.",
    )
    wrong_ns = "<GetBalance xmlns='http://example.com'><sessionID>X</sessionID></GetBalance>"
    assert (await wire.post(wrong_ns, op=None)).fault[0] == "soap:Sender"


async def test_soap_version_mismatch(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    wire = Wire(http, sandbox.url, "1.1")
    body12 = envelope("1.2", operation("GetBalance", sessionID="X"))
    reply = await wire.post(body12, op="GetBalance")
    assert reply.status == 500
    assert reply.fault == (
        "soap:VersionMismatch",
        f"Possible SOAP version mismatch: Envelope namespace {NS12} was unexpected. "
        f"Expecting {NS11}.",
    )
    wire12 = Wire(http, sandbox.url, "1.2")
    reply = await wire12.post(envelope("1.1", operation("GetBalance", sessionID="X")), op=None)
    assert reply.fault[1].endswith(f"namespace {NS11} was unexpected. Expecting {NS12}.")
    not_soap = await wire12.post(b"<GetBalance/>", op=None)
    assert not_soap.fault[0] == "soap:Sender"


async def test_unsupported_content_type(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    async with http.post(
        sandbox.url, data=b"{}", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 415


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-16", "iso-8859-1"])
async def test_a_request_declared_in_another_charset_is_refused(
    wire: Wire, session_id: str, sandbox: Sandbox, charset: str
) -> None:
    """The service reads UTF-8 only: a Content-Type in another charset is refused, although
    the body could be decoded with it."""
    body = operation(
        "SendMessage",
        sessionID=session_id,
        message={"Data": "Hello", "DestinationAddresses": ["79031234567"]},
    )
    data = envelope(wire.version, body).decode().encode(charset)
    content_type = wire.headers("SendMessage")["Content-Type"].replace("utf-8", charset)
    headers = {**wire.headers("SendMessage"), "Content-Type": content_type}
    reply = await wire.post(data, op="SendMessage", headers=headers)
    assert reply.status == 415
    assert f"charset {charset}" in reply.text
    assert "UTF-8" in reply.text
    assert sandbox.state.messages() == []
    assert sandbox.requests[-1].status == 415


async def test_a_body_declared_in_another_encoding_is_refused(
    wire: Wire, session_id: str, sandbox: Sandbox
) -> None:
    text = envelope(wire.version, operation("GetBalance", sessionID=session_id)).decode()
    declared = text.replace('encoding="utf-8"', 'encoding="windows-1251"')
    reply = await wire.post(declared.encode("cp1251"), op="GetBalance")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    assert "windows-1251" in reply.fault[1]
    assert "UTF-8" in reply.fault[1]
    utf16 = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    reply = await wire.post(utf16, op="GetBalance")
    assert_fault(reply, "soap:Sender", READ, exact=False)
    assert "UTF-8" in reply.fault[1]
    without_declaration = text.split("?>", 1)[1].encode()
    assert (await wire.post(without_declaration, op="GetBalance")).status == 200


async def test_send_date_out_of_range(wire: Wire, session_id: str, sandbox: Sandbox) -> None:
    reply = await wire.send(session_id, ["79031234567"], "Hi", DelayUntilUtc="9999-12-31T23:59:59Z")
    assert_fault(reply, "soap:Receiver", PROCESS + "Invalid argument: send date out of range")
    reply = await wire.send(
        session_id, ["79031234567"], "Hi", DelayUntilUtc="0001-01-01T00:00:00+01:00"
    )
    assert reply.fault[0] == "soap:Sender"
    assert sandbox.state.messages() == []


async def test_negative_validity(wire: Wire, session_id: str) -> None:
    reply = await wire.send(session_id, ["79031234567"], "Hi", Validity=-5)
    assert_fault(reply, "soap:Receiver", PROCESS + "Invalid argument: validity -5")
