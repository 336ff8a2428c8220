"""Request envelopes: exact XML per operation and SOAP version, element order, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_devino.errors import InvalidInputError
from notify_devino_soap import envelopes
from notify_devino_soap.emulator.schema import service_schema
from notify_devino_soap.envelopes import (
    DEVINO_NS,
    SOAP11_NS,
    SOAP12_NS,
    SoapRequest,
    SoapVersion,
)

SID = "Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
D = "{" + DEVINO_NS + "}"


def envelope(version: str, operation: str, inner: str) -> bytes:
    prefix, ns = ("soap12", SOAP12_NS) if version == "1.2" else ("soap", SOAP11_NS)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<{prefix}:Envelope xmlns:xsi="{XSI}" xmlns:xsd="{XSD}" xmlns:{prefix}="{ns}">'
        f"<{prefix}:Body>"
        f'<{operation} xmlns="{DEVINO_NS}">{inner}</{operation}>'
        f"</{prefix}:Body></{prefix}:Envelope>"
    ).encode()


def operation_element(body: bytes, version: str) -> ET.Element:
    """Parse an envelope back and return the operation element (the Body's only child)."""
    ns = SOAP12_NS if version == "1.2" else SOAP11_NS
    root = ET.fromstring(body)
    assert root.tag == f"{{{ns}}}Envelope"
    (soap_body,) = list(root)
    assert soap_body.tag == f"{{{ns}}}Body"
    (op,) = list(soap_body)
    return op


def child_names(element: ET.Element) -> list[str]:
    names = []
    for child in element:
        assert child.tag.startswith(D), child.tag
        names.append(child.tag[len(D) :])
    return names


WHEN = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)
LOCAL = datetime(2024, 3, 5, 9, 30)

CASES: dict[str, tuple[Callable[[SoapVersion], SoapRequest], str]] = {
    "GetSessionID": (
        lambda v: envelopes.build_get_session_id("demo", "pa<ss>&\"'", soap_version=v),
        "<login>demo</login><password>pa&lt;ss&gt;&amp;&quot;&apos;</password>",
    ),
    "GetBalance": (
        lambda v: envelopes.build_get_balance(SID, soap_version=v),
        f"<sessionID>{SID}</sessionID>",
    ),
    "SendMessage": (
        lambda v: envelopes.build_send_message(
            SID,
            source="Alerts",
            destinations=["79031234567", "79037654321"],
            data="Disk full",
            delay_until_utc=None,
            receipt_requested=True,
            validity=2880,
            soap_version=v,
        ),
        f"<sessionID>{SID}</sessionID><message><Data>Disk full</Data>"
        '<DelayUntilUtc xsi:nil="true" />'
        "<DestinationAddresses><string>79031234567</string><string>79037654321</string>"
        "</DestinationAddresses><SourceAddress>Alerts</SourceAddress>"
        "<ReceiptRequested>true</ReceiptRequested><Validity>2880</Validity></message>",
    ),
    "SendMessageByTimeZone": (
        lambda v: envelopes.build_send_message_by_time_zone(
            SID,
            source="Alerts",
            destination="79031234567",
            data="Wake up",
            send_date=LOCAL,
            validity=60,
            soap_version=v,
        ),
        f"<sessionID>{SID}</sessionID><sourceAddress>Alerts</sourceAddress>"
        "<destinationAddress>79031234567</destinationAddress><data>Wake up</data>"
        "<sendDate>2024-03-05T09:30:00</sendDate><validity>60</validity>",
    ),
    "SendMessageByTimeZoneToAddresses": (
        lambda v: envelopes.build_send_message_by_time_zone_to_addresses(
            SID,
            source="Alerts",
            destinations=["79031234567"],
            data="Wake up",
            send_date=LOCAL,
            validity=2880,
            soap_version=v,
        ),
        f"<sessionID>{SID}</sessionID><sourceAddress>Alerts</sourceAddress>"
        "<destinationAddresses><string>79031234567</string></destinationAddresses>"
        "<data>Wake up</data><sendDate>2024-03-05T09:30:00</sendDate><validity>2880</validity>",
    ),
    "GetMessageState": (
        lambda v: envelopes.build_get_message_state(SID, 579700854169272358, soap_version=v),
        f"<sessionID>{SID}</sessionID><messageID>579700854169272358</messageID>",
    ),
    "GetStatistics": (
        lambda v: envelopes.build_get_statistics(
            SID, WHEN, WHEN + timedelta(days=1), soap_version=v
        ),
        f"<sessionID>{SID}</sessionID><startDateTime>2024-03-05T07:08:09</startDateTime>"
        "<endDateTime>2024-03-06T07:08:09</endDateTime>",
    ),
    "GetIncomingMessages": (
        lambda v: envelopes.build_get_incoming_messages(
            SID, min_date_utc=WHEN, max_date_utc=WHEN + timedelta(hours=1), soap_version=v
        ),
        f"<sessionID>{SID}</sessionID><maxDateUTC>2024-03-05T08:08:09</maxDateUTC>"
        "<minDateUTC>2024-03-05T07:08:09</minDateUTC>",
    ),
}


@pytest.mark.parametrize("version", ["1.2", "1.1"])
@pytest.mark.parametrize("operation", sorted(CASES))
def test_exact_envelope(operation: str, version: SoapVersion) -> None:
    build, inner = CASES[operation]
    request = build(version)
    assert request.operation == operation
    assert request.soap_version == version
    assert request.body == envelope(version, operation, inner)
    operation_element(request.body, version)  # well-formed, one operation in the Body


@pytest.mark.parametrize("operation", sorted(CASES))
def test_headers_soap12(operation: str) -> None:
    request = CASES[operation][0]("1.2")
    assert request.headers == {
        "Content-Type": (
            f'application/soap+xml; charset=utf-8; action="http://ws.devinosms.com/{operation}"'
        )
    }


@pytest.mark.parametrize("operation", sorted(CASES))
def test_headers_soap11(operation: str) -> None:
    request = CASES[operation][0]("1.1")
    assert request.headers == {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"http://ws.devinosms.com/{operation}"',
    }


def test_default_version_is_soap12() -> None:
    assert envelopes.build_get_balance(SID).soap_version == "1.2"
    with pytest.raises(ValueError, match="SOAP version"):
        envelopes.build_get_balance(SID, soap_version="1.0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operation", "order"),
    [
        ("GetSessionID", ["login", "password"]),
        ("GetBalance", ["sessionID"]),
        ("SendMessage", ["sessionID", "message"]),
        (
            "SendMessageByTimeZone",
            ["sessionID", "sourceAddress", "destinationAddress", "data", "sendDate", "validity"],
        ),
        (
            "SendMessageByTimeZoneToAddresses",
            ["sessionID", "sourceAddress", "destinationAddresses", "data", "sendDate", "validity"],
        ),
        ("GetMessageState", ["sessionID", "messageID"]),
        ("GetStatistics", ["sessionID", "startDateTime", "endDateTime"]),
        ("GetIncomingMessages", ["sessionID", "maxDateUTC", "minDateUTC"]),
    ],
)
@pytest.mark.parametrize("version", ["1.2", "1.1"])
def test_element_order_and_namespace(
    operation: str, order: list[str], version: SoapVersion
) -> None:
    op = operation_element(CASES[operation][0](version).body, version)
    assert op.tag == D + operation
    assert child_names(op) == order


def test_send_message_children_order_with_delay() -> None:
    request = envelopes.build_send_message(
        SID,
        source="Alerts",
        destinations=["79031234567"],
        data="x",
        delay_until_utc=datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=3))),
        receipt_requested=False,
        validity=10,
    )
    op = operation_element(request.body, "1.2")
    message = op.find(D + "message")
    assert message is not None
    assert child_names(message) == [
        "Data",
        "DelayUntilUtc",
        "DestinationAddresses",
        "SourceAddress",
        "ReceiptRequested",
        "Validity",
    ]
    assert message.findtext(D + "DelayUntilUtc") == "2024-01-01T09:00:00"  # converted to UTC
    assert message.findtext(D + "ReceiptRequested") == "false"
    assert message.findtext(D + "Validity") == "10"


def test_send_now_sends_delay_as_nil() -> None:
    """The WSDL declares DelayUntilUtc minOccurs="1" nillable="true": send now is nil, not
    left out."""
    op = operation_element(CASES["SendMessage"][0]("1.2").body, "1.2")
    message = op.find(D + "message")
    assert message is not None
    delay = message.find(D + "DelayUntilUtc")
    assert delay is not None
    assert delay.attrib == {f"{{{XSI}}}nil": "true"}
    assert delay.text is None
    assert len(delay) == 0


@pytest.mark.parametrize("version", ["1.2", "1.1"])
@pytest.mark.parametrize("operation", sorted(CASES))
def test_every_envelope_matches_the_wsdl_schema(operation: str, version: SoapVersion) -> None:
    """Walk each operation's built envelope against the schema of the WSDL the sandbox serves:
    order, minOccurs, nillable and the range of every typed value."""
    soap_ns = SOAP12_NS if version == "1.2" else SOAP11_NS
    assert service_schema().check_envelope(CASES[operation][0](version).body, soap_ns) == operation


def test_the_schema_walk_covers_every_operation_of_the_wsdl() -> None:
    requests = {name for name in service_schema().elements if not name.endswith("Response")}
    assert requests == set(CASES) == set(envelopes.OPERATIONS)


@pytest.mark.parametrize(
    "build",
    [
        lambda validity: envelopes.build_send_message(
            SID,
            source="Alerts",
            destinations=["79031234567"],
            data="x",
            delay_until_utc=None,
            receipt_requested=False,
            validity=validity,
        ),
        lambda validity: envelopes.build_send_message_by_time_zone(
            SID,
            source="Alerts",
            destination="79031234567",
            data="x",
            send_date=LOCAL,
            validity=validity,
        ),
        lambda validity: envelopes.build_send_message_by_time_zone_to_addresses(
            SID,
            source="Alerts",
            destinations=["79031234567"],
            data="x",
            send_date=LOCAL,
            validity=validity,
        ),
    ],
    ids=["SendMessage", "SendMessageByTimeZone", "SendMessageByTimeZoneToAddresses"],
)
def test_validity_is_bounded_to_xsd_int(build: Callable[[object], SoapRequest]) -> None:
    soap_ns = SOAP12_NS
    assert service_schema().check_envelope(build(2**31 - 1).body, soap_ns)
    for bad in (2**31, -(2**31) - 1, 10**40, 1.5, "60", True, None):
        with pytest.raises(InvalidInputError) as caught:
            build(bad)
        assert caught.value.field == "validity"
        assert "2147483647" in str(caught.value.expected)


def test_escaping_round_trips() -> None:
    nasty = "</data><x>&amp; \"double\" 'single' <![CDATA[ ]]> \t tab\r\nCRLF"
    request = envelopes.build_send_message_by_time_zone(
        SID,
        source="A&B'Co",
        destination="79031234567",
        data=nasty,
        send_date=LOCAL,
        validity=1,
    )
    assert b"&lt;/data&gt;&lt;x&gt;&amp;amp;" in request.body
    assert b"&quot;double&quot; &apos;single&apos;" in request.body
    assert b"<x>" not in request.body
    op = operation_element(request.body, "1.2")
    assert child_names(op) == [
        "sessionID",
        "sourceAddress",
        "destinationAddress",
        "data",
        "sendDate",
        "validity",
    ]
    assert op.findtext(D + "data") == nasty  # the CR survives as &#13;
    assert op.findtext(D + "sourceAddress") == "A&B'Co"


def test_message_id_is_64_bit() -> None:
    biggest = 2**63 - 1
    op = operation_element(envelopes.build_get_message_state(SID, str(biggest)).body, "1.2")
    assert op.findtext(D + "messageID") == str(biggest)
    for bad in (0, -1, 2**63, "12a", "", "1.5", True, 1.0, None, "١٢٣"):
        with pytest.raises(InvalidInputError) as info:
            envelopes.build_get_message_state(SID, bad)  # type: ignore[arg-type]
        assert info.value.field == "message_id"


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\ud800"]
)
def test_illegal_characters_refused(char: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        envelopes.build_send_message_by_time_zone(
            SID,
            source="Alerts",
            destination="79031234567",
            data=f"before{char}after",
            send_date=LOCAL,
            validity=1,
        )
    assert info.value.field == "text"
    assert f"U+{ord(char):04X}" in str(info.value)


def test_password_never_in_error() -> None:
    with pytest.raises(InvalidInputError) as info:
        envelopes.build_get_session_id("demo", "secret\x00pw")
    assert info.value.field == "password"
    assert info.value.value is None
    assert "secret" not in str(info.value)


def test_request_repr_hides_body() -> None:
    request = envelopes.build_get_session_id("demo", "hunter2")
    assert "hunter2" not in repr(request)
    assert SID not in repr(envelopes.build_get_balance(SID))


def test_dates() -> None:
    with pytest.raises(InvalidInputError, match="naive"):
        envelopes.build_get_statistics(SID, datetime(2024, 1, 1), WHEN)
    with pytest.raises(InvalidInputError, match="aware"):
        envelopes.build_send_message_by_time_zone(
            SID, source="A", destination="7", data="x", send_date=WHEN, validity=1
        )
    assert envelopes.format_utc(datetime(5, 1, 2, tzinfo=UTC), field="x") == "0005-01-02T00:00:00"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2))),
    ],
)
def test_a_moment_outside_xsd_years_in_utc_is_invalid_input(moment: datetime) -> None:
    """Its UTC time falls outside years 0001-9999: an InvalidInputError, not an OverflowError."""
    with pytest.raises(InvalidInputError) as caught:
        envelopes.build_get_statistics(SID, moment, WHEN)
    assert caught.value.field == "start"
    assert "0001" in str(caught.value.expected)


xml_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    )
)


@given(text=xml_text)
def test_any_legal_text_round_trips(text: str) -> None:
    request = envelopes.build_send_message(
        SID,
        source="Alerts",
        destinations=["79031234567"],
        data=text,
        delay_until_utc=None,
        receipt_requested=True,
        validity=1,
    )
    op = operation_element(request.body, "1.2")
    assert (op.findtext(f"{D}message/{D}Data") or "") == text
