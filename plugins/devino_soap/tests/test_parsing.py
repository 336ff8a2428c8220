"""Replies -> typed values, and faults -> typed errors, from real-looking reply texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_devino.errors import (
    AuthenticationError,
    InsufficientFundsError,
    NotifyError,
    ParseError,
    ProviderFaultError,
    RateLimitedError,
    SessionExpiredError,
)
from notify_devino.types import DeliveryState
from notify_devino_soap import parsing
from notify_devino_soap.envelopes import DEVINO_NS, SOAP11_NS, SOAP12_NS
from notify_devino_soap.models import STATES, DevinoState, state_info

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
SID = "Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1"


def dotnet12(inner: str) -> bytes:
    """A reply as ASMX writes it: one line, ``soap:`` prefix for SOAP 1.2."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">'
        f"<soap:Body>{inner}</soap:Body></soap:Envelope>"
    ).encode()


def seed12(inner: str) -> bytes:
    """A reply as the provider's documentation shows it: pretty, ``soap12:`` prefix."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<soap12:Envelope xmlns:xsi="{XSI}"\nxmlns:xsd="{XSD}"\n'
        f'xmlns:soap12="{SOAP12_NS}">\n  <soap12:Body>\n    {inner}\n  </soap12:Body>\n'
        "</soap12:Envelope>\n"
    ).encode()


def soap11(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:xsi="{XSI}" xmlns:xsd="{XSD}" xmlns:soap="{SOAP11_NS}">'
        f"<soap:Body>{inner}</soap:Body></soap:Envelope>"
    ).encode()


def unprefixed(inner: str) -> bytes:
    return (
        f'<Envelope xmlns="{SOAP12_NS}" xmlns:xsi="{XSI}"><Body>{inner}</Body></Envelope>'
    ).encode()


WRAPPERS = [dotnet12, seed12, soap11, unprefixed]


def response(operation: str, result: str) -> str:
    return f'<{operation}Response xmlns="{DEVINO_NS}">{result}</{operation}Response>'


def read(operation: str, body: bytes, **kwargs: Any) -> Any:
    return parsing.read_result(body, operation=operation, **kwargs)


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_session_id(wrap: Any) -> None:
    body = wrap(response("GetSessionID", f"<GetSessionIDResult>{SID}</GetSessionIDResult>"))
    assert parsing.session_id_from(read("GetSessionID", body)) == SID


def test_session_id_missing_never_shows_body() -> None:
    body = dotnet12(response("GetSessionID", ""))
    with pytest.raises(ParseError) as info:
        parsing.session_id_from(read("GetSessionID", body))
    assert info.value.body is None
    bad = dotnet12(response("GetSessionID", f"<GetSessionIDResult>{SID} x</GetSessionIDResult>"))
    with pytest.raises(ParseError) as info:
        parsing.session_id_from(read("GetSessionID", bad))
    assert SID not in str(info.value)


@pytest.mark.parametrize("wrap", WRAPPERS)
@pytest.mark.parametrize(
    ("text", "value"), [("1000", "1000"), ("123.4500", "123.4500"), ("-5.5", "-5.5")]
)
def test_balance(wrap: Any, text: str, value: str) -> None:
    body = wrap(response("GetBalance", f"<GetBalanceResult>{text}</GetBalanceResult>"))
    assert parsing.balance_from(read("GetBalance", body)) == Decimal(value)


@pytest.mark.parametrize("text", ["", "decimal", "NaN", "1e5", "1,5"])
def test_bad_balance(text: str) -> None:
    body = dotnet12(response("GetBalance", f"<GetBalanceResult>{text}</GetBalanceResult>"))
    with pytest.raises(ParseError):
        parsing.balance_from(read("GetBalance", body))


SENDS = ["SendMessage", "SendMessageByTimeZone", "SendMessageByTimeZoneToAddresses"]


@pytest.mark.parametrize("wrap", WRAPPERS)
@pytest.mark.parametrize("operation", SENDS)
@pytest.mark.parametrize(
    "ids",
    [["579700854169272358"], ["579700854169272358", "579700854169272359", "12"]],
)
def test_message_ids_always_a_list(wrap: Any, operation: str, ids: list[str]) -> None:
    items = "".join(f"<string>{i}</string>" for i in ids)
    body = wrap(response(operation, f"<{operation}Result>{items}</{operation}Result>"))
    assert parsing.message_ids_from(read(operation, body), operation=operation) == ids


def test_message_ids_pretty_and_self_closing() -> None:
    pretty = seed12(
        response(
            "SendMessage",
            "\n      <SendMessageResult>\n        <string>1</string>\n"
            "        <string> 2 </string>\n      </SendMessageResult>\n    ",
        )
    )
    assert parsing.message_ids_from(read("SendMessage", pretty), operation="SendMessage") == [
        "1",
        "2",
    ]


# A send the service took always yields an ID: a reply without one cannot be "accepted" (the
# message may be out, but nobody could follow it), so each of these is a ParseError that names
# what was missing, and the channel reports the send as unknown.
SEND_REPLIES_WITHOUT_IDS = [
    ("<SendMessageResult />", "SendMessageResult has nothing, expected <string> message IDs"),
    ("<SendMessageResult>  </SendMessageResult>", "SendMessageResult has nothing, expected"),
    ('<SendMessageResult xsi:nil="true" />', "SendMessageResult is nil, expected <string>"),
    ("", "SendMessageResponse has nothing, expected <SendMessageResult>"),
    (
        "<SendMessageResult><Id>1</Id><Id>2</Id></SendMessageResult>",
        "SendMessageResult has <Id>, expected <string> message IDs",
    ),
    (
        "<SendMessageResult><string xmlns='urn:other'>1</string></SendMessageResult>",
        "SendMessageResult has <{urn:other}string>, expected <string> message IDs",
    ),
    (
        "<SendMessageResults><string>1</string></SendMessageResults>",
        "SendMessageResponse has <SendMessageResults>, expected <SendMessageResult>",
    ),
    (
        "<SendMessageResult xmlns='urn:other'><string>1</string></SendMessageResult>",
        "SendMessageResponse has <{urn:other}SendMessageResult>, expected <SendMessageResult>",
    ),
    (
        "<SendMessageResult>579700854169272358</SendMessageResult>",
        "SendMessageResult has text '579700854169272358', expected <string> message IDs",
    ),
]


@pytest.mark.parametrize(("inner", "message"), SEND_REPLIES_WITHOUT_IDS)
def test_a_send_reply_without_message_ids_is_a_parse_error(inner: str, message: str) -> None:
    body = dotnet12(response("SendMessage", inner))
    with pytest.raises(ParseError) as info:
        parsing.message_ids_from(read("SendMessage", body), operation="SendMessage")
    assert message in str(info.value)
    assert str(info.value).startswith("SendMessage: ")
    assert info.value.may_have_been_processed()


def test_a_send_response_in_a_foreign_namespace_is_a_parse_error() -> None:
    body = dotnet12(
        '<SendMessageResponse xmlns="urn:other"><SendMessageResult><string>1</string>'
        "</SendMessageResult></SendMessageResponse>"
    )
    with pytest.raises(ParseError, match=r"SOAP Body has <\{urn:other\}SendMessageResponse>"):
        read("SendMessage", body)


def test_a_read_response_with_foreign_children_is_a_parse_error() -> None:
    # An empty inbox is an empty result; a response holding something else is not one.
    empty = dotnet12(response("GetIncomingMessages", ""))
    assert parsing.incoming_messages_from(read("GetIncomingMessages", empty)) == []
    body = dotnet12(response("GetIncomingMessages", "<Messages/>"))
    with pytest.raises(ParseError, match="has <Messages>, expected <GetIncomingMessagesResult>"):
        read("GetIncomingMessages", body)


@pytest.mark.parametrize("item", ['<string xsi:nil="true" />', "<string>abc</string>", "<string/>"])
def test_bad_message_id(item: str) -> None:
    body = dotnet12(response("SendMessage", f"<SendMessageResult>{item}</SendMessageResult>"))
    with pytest.raises(ParseError, match="message ID 0"):
        parsing.message_ids_from(read("SendMessage", body), operation="SendMessage")


STATE_FULL = (
    "<GetMessageStateResult><State>0</State>"
    "<CreationDateUtc>2024-03-05T07:08:09.123</CreationDateUtc>"
    "<SubmittedDateUtc>2024-03-05T07:08:10.1234567Z</SubmittedDateUtc>"
    "<ReportedDateUtc>2024-03-05T10:08:12+03:00</ReportedDateUtc>"
    "<TimeStampUtc>2024-03-05T07:08:12</TimeStampUtc>"
    "<StateDescription>Доставлено</StateDescription><Price>1.5000</Price>"
    "</GetMessageStateResult>"
)


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_message_state(wrap: Any) -> None:
    body = wrap(response("GetMessageState", STATE_FULL))
    state = parsing.message_state_from(read("GetMessageState", body), message_id="42")
    assert state.message_id == "42"
    assert state.state == 0
    assert state.state_name == "Delivered_To_Recipient"
    assert state.is_final
    assert state.delivery_state is DeliveryState.DELIVERED
    assert state.description == "Доставлено"
    assert state.creation_date_utc == datetime(2024, 3, 5, 7, 8, 9, 123000, tzinfo=UTC)
    assert state.submitted_date_utc == datetime(2024, 3, 5, 7, 8, 10, 123456, tzinfo=UTC)
    assert state.reported_date_utc == datetime(2024, 3, 5, 7, 8, 12, tzinfo=UTC)
    assert state.time_stamp_utc == datetime(2024, 3, 5, 7, 8, 12, tzinfo=UTC)
    assert state.price == Decimal("1.5")


def test_message_state_unknown_id_all_nil() -> None:
    body = dotnet12(
        response(
            "GetMessageState",
            "<GetMessageStateResult><State>255</State>"
            '<CreationDateUtc xsi:nil="true" /><SubmittedDateUtc xsi:nil="true" />'
            '<ReportedDateUtc xsi:nil="true" /><TimeStampUtc>0001-01-01T00:00:00</TimeStampUtc>'
            '<Price xsi:nil="true" /></GetMessageStateResult>',
        )
    )
    state = parsing.message_state_from(read("GetMessageState", body), message_id="1")
    assert (state.state, state.state_name, state.is_final) == (255, "Unknown", True)
    assert state.creation_date_utc is None
    assert state.submitted_date_utc is None
    assert state.reported_date_utc is None
    assert state.time_stamp_utc is None
    assert state.price is None
    assert state.description is None
    assert state.delivery_state is DeliveryState.UNKNOWN


@pytest.mark.parametrize(("code", "final"), [(-97, False), (-10, False), (69, True), (99, True)])
def test_unknown_state_code_is_kept(code: int, final: bool) -> None:
    body = dotnet12(
        response(
            "GetMessageState",
            f"<GetMessageStateResult><State>{code}</State></GetMessageStateResult>",
        )
    )
    state = parsing.message_state_from(read("GetMessageState", body), message_id="7")
    assert state.state == code
    assert state.state_name == f"Unknown({code})"
    assert state.is_final is final
    assert state.delivery_state is DeliveryState.UNKNOWN


def test_state_table() -> None:
    final = {0, 8, 10, 11, 41, 42, 46, 47, 48, 255, -3, -200}
    in_progress = {-100, -40, -30, -20, -2, -1}
    assert set(STATES) == final | in_progress
    for code in final:
        assert STATES[code].is_final, code
    for code in in_progress:
        assert not STATES[code].is_final, code
    assert DevinoState(11).name == "Error_Invalid_Destination_Address"
    assert state_info(-3).name == "ErrorSendingDateTimeInterpretation"
    assert state_info(46).delivery_state is DeliveryState.EXPIRED


STATISTICS = (
    "<GetStatisticsResult><Sent>10</Sent><Delivered>7</Delivered><Errors>1</Errors>"
    "<InProcess>2</InProcess><Expired>0</Expired><Rejected>1</Rejected><Optimized>0</Optimized>"
    "<Tarificated>10</Tarificated><Total>10</Total><TotalWithErrors>11</TotalWithErrors>"
    "<DeliveryRatio>0.7</DeliveryRatio></GetStatisticsResult>"
)


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_statistics(wrap: Any) -> None:
    stats = parsing.statistics_from(
        read("GetStatistics", wrap(response("GetStatistics", STATISTICS)))
    )
    assert (stats.sent, stats.delivered, stats.errors, stats.in_process) == (10, 7, 1, 2)
    assert (stats.expired, stats.rejected, stats.optimized, stats.tarificated) == (0, 1, 0, 10)
    assert (stats.total, stats.total_with_errors) == (10, 11)
    assert stats.delivery_ratio == Decimal("0.7")
    assert list(stats.counts()) == [
        "Sent",
        "Delivered",
        "Errors",
        "InProcess",
        "Expired",
        "Rejected",
        "Optimized",
        "Tarificated",
        "Total",
        "TotalWithErrors",
    ]


def test_statistics_seed_spelling_and_missing_field() -> None:
    seed = STATISTICS.replace("InProcess>", "InProgress>")
    stats = parsing.statistics_from(
        read("GetStatistics", dotnet12(response("GetStatistics", seed)))
    )
    assert stats.in_process == 2
    short = STATISTICS.replace("<Optimized>0</Optimized>", "")
    with pytest.raises(ParseError, match="Optimized"):
        parsing.statistics_from(read("GetStatistics", dotnet12(response("GetStatistics", short))))


def incoming(n: int, date_tag: str = "CreatedDateUtc") -> str:
    items = "".join(
        f"<IncomingMessage><Data>reply {i} &amp; more</Data><SourceAddress>7903123456{i}"
        f"</SourceAddress><DestinationAddress>Alerts</DestinationAddress>"
        f"<{date_tag}>2024-03-05T07:0{i}:00</{date_tag}></IncomingMessage>"
        for i in range(n)
    )
    return f"<GetIncomingMessagesResult>{items}</GetIncomingMessagesResult>"


@pytest.mark.parametrize("wrap", WRAPPERS)
@pytest.mark.parametrize("n", [0, 1, 3])
def test_incoming_messages_always_a_list(wrap: Any, n: int) -> None:
    body = wrap(response("GetIncomingMessages", incoming(n)))
    messages = parsing.incoming_messages_from(read("GetIncomingMessages", body))
    assert len(messages) == n
    for i, message in enumerate(messages):
        assert message.data == f"reply {i} & more"
        assert message.source_address == f"7903123456{i}"
        assert message.destination_address == "Alerts"
        assert message.created_date_utc == datetime(2024, 3, 5, 7, i, tzinfo=UTC)


def test_incoming_seed_spelling_and_whitespace_kept() -> None:
    body = dotnet12(response("GetIncomingMessages", incoming(1, "CreateDateUtc")))
    (message,) = parsing.incoming_messages_from(read("GetIncomingMessages", body))
    assert message.created_date_utc == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
    spaced = incoming(1).replace("<Data>reply 0 &amp; more</Data>", "<Data>  two  spaces </Data>")
    (message,) = parsing.incoming_messages_from(
        read("GetIncomingMessages", dotnet12(response("GetIncomingMessages", spaced)))
    )
    assert message.data == "  two  spaces "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T07:08:09", datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)),
        ("2024-03-05T07:08", datetime(2024, 3, 5, 7, 8, tzinfo=UTC)),
        ("2024-03-05T07:08:09Z", datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)),
        ("2024-03-05T07:08:09.5", datetime(2024, 3, 5, 7, 8, 9, 500000, tzinfo=UTC)),
        ("2024-03-05T07:08:09.1234567Z", datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-03-05T07:08:09-02:30", datetime(2024, 3, 5, 9, 38, 9, tzinfo=UTC)),
        (" 2024-03-05T07:08:09 ", datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)),
    ],
)
def test_datetimes(text: str, expected: datetime) -> None:
    assert parsing.parse_datetime(text, field="x") == expected


@pytest.mark.parametrize("text", ["dateTime", "2024-13-01T00:00:00", "2024-03-05", "05.03.2024"])
def test_bad_datetimes(text: str) -> None:
    with pytest.raises(ParseError):
        parsing.parse_datetime(text, field="x")


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)))
def test_datetime_round_trip(moment: datetime) -> None:
    text = moment.isoformat(timespec="microseconds")
    assert parsing.parse_datetime(text, field="x") == moment.replace(tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.integers(min_value=1, max_value=9),
)
def test_datetime_with_offset_and_any_fraction(moment: datetime, minutes: int, digits: int) -> None:
    sign = "-" if minutes < 0 else "+"
    fraction = f"{moment.microsecond:06d}{'7' * 3}"[:digits]
    hours, rest = divmod(abs(minutes), 60)
    text = f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction}{sign}{hours:02d}:{rest:02d}"
    micro = int(fraction[:6].ljust(6, "0"))
    local = moment.replace(microsecond=micro, tzinfo=timezone(timedelta(minutes=minutes)))
    parsed = parsing.parse_datetime(text, field="x")
    assert parsed == local
    assert parsed.tzinfo is UTC


# -- faults --------------------------------------------------------------------------------------

PREFIX = "Server was unable to process request. ---> "


def fault12(text: str, code: str = "soap:Receiver") -> bytes:
    return dotnet12(
        f"<soap:Fault><soap:Code><soap:Value>{code}</soap:Value></soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="en">{text}</soap:Text></soap:Reason>'
        "<soap:Detail /></soap:Fault>"
    )


def fault11(text: str, code: str = "soap:Server") -> bytes:
    return soap11(
        f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
        "<detail /></soap:Fault>"
    )


FAULTS = [
    ("Invalid user login or password", AuthenticationError),
    ("SessionID expired", SessionExpiredError),
    ("Invalid session", SessionExpiredError),
    ("Not enough credits", InsufficientFundsError),
    ("Insufficient balance", InsufficientFundsError),
    ("Too many requests", RateLimitedError),
    ("Rate limit exceeded", RateLimitedError),
    ("Invalid source address", ProviderFaultError),
    ("Object reference not set to an instance of an object.", ProviderFaultError),
]


@pytest.mark.parametrize(("reason", "cls"), FAULTS)
@pytest.mark.parametrize("version", ["1.2", "1.1"])
def test_faults(reason: str, cls: type[ProviderFaultError], version: str) -> None:
    text = PREFIX + reason
    body = fault12(text.replace(">", "&gt;")) if version == "1.2" else fault11(text)
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", body, http_status=500)
    error = info.value
    assert type(error) is cls
    assert error.text == text
    assert error.code == ("soap:Receiver" if version == "1.2" else "soap:Server")
    assert error.http_status == 500
    assert error.raw == body.decode()
    assert reason in str(error)


def test_seed_fault_text_kept_verbatim() -> None:
    text = (
        "\n    Server was unable to process request. ---\n"
        "    &gt; Invalid user login or password\n  "
    )
    body = seed12(
        "<soap12:Fault><soap12:Code>\n  <soap12:Value>soap:Receiver</soap12:Value>\n"
        f'</soap12:Code>\n<soap12:Reason>\n  <soap12:Text xml:lang="en">{text}</soap12:Text>\n'
        "</soap12:Reason></soap12:Fault>"
    )
    with pytest.raises(AuthenticationError) as info:
        read("GetSessionID", body, http_status=500)
    assert info.value.text == text.replace("&gt;", ">")


def test_fault_classes_are_transient_only_for_rate_limits() -> None:
    for reason, cls in FAULTS:
        error = parsing.classify_fault(
            operation="X", code=None, text=reason, http_status=500, raw=None
        )
        assert type(error) is cls
        assert error.is_transient() is (cls is RateLimitedError)


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limit_statuses(status: int) -> None:
    with pytest.raises(RateLimitedError) as info:
        read("GetBalance", b"Too Many Requests", http_status=status, retry_after="3")
    assert info.value.retry_after == 3.0
    assert info.value.http_status == status
    with pytest.raises(RateLimitedError) as info:
        read("GetBalance", fault12("Server busy"), http_status=status)
    assert info.value.retry_after is None
    assert info.value.text == "Server busy"


def test_retry_after_http_date() -> None:
    now = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
    later = "Tue, 05 Mar 2024 07:00:30 GMT"
    assert parsing.parse_retry_after(later, now=now) == 30.0
    assert parsing.parse_retry_after("soon", now=now) is None
    assert parsing.parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "body"), [(500, b"<html><body>Runtime Error</body></html>"), (502, b""), (404, b"x")]
)
def test_non_200_without_fault(status: int, body: bytes) -> None:
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", body, http_status=status)
    assert type(info.value) is ProviderFaultError
    assert info.value.http_status == status


def test_fault_with_200_is_still_a_fault() -> None:
    with pytest.raises(SessionExpiredError):
        read("GetBalance", fault12(PREFIX + "Invalid session"), http_status=200)


# -- namespaces ----------------------------------------------------------------------------------


def test_devino_elements_under_any_prefix() -> None:
    body = dotnet12(
        f'<d:GetMessageStateResponse xmlns:d="{DEVINO_NS}"><d:GetMessageStateResult>'
        "<d:State>0</d:State><d:TimeStampUtc>2024-01-01T00:00:00Z</d:TimeStampUtc>"
        '<d:ReportedDateUtc xsi:nil="true"/><d:Price>1.5</d:Price>'
        "</d:GetMessageStateResult></d:GetMessageStateResponse>"
    )
    state = parsing.message_state_from(read("GetMessageState", body), message_id="7")
    assert (state.state, state.price, state.reported_date_utc) == (0, Decimal("1.5"), None)
    assert state.time_stamp_utc == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("inner", "shown"),
    [
        # The WSDL qualifies every element: one in no namespace, or in another, is not Devino's.
        (
            "<GetBalanceResponse><GetBalanceResult>1</GetBalanceResult></GetBalanceResponse>",
            "<GetBalanceResponse> (no namespace)",
        ),
        (
            '<GetBalanceResponse xmlns="urn:other"><GetBalanceResult>1</GetBalanceResult>'
            "</GetBalanceResponse>",
            "<{urn:other}GetBalanceResponse>",
        ),
    ],
)
def test_response_in_another_namespace_is_refused(inner: str, shown: str) -> None:
    with pytest.raises(ParseError) as info:
        read("GetBalance", dotnet12(inner))
    assert f"SOAP Body has {shown}, expected <GetBalanceResponse>" in str(info.value)


def test_unqualified_result_children_are_not_read() -> None:
    body = dotnet12(
        f'<GetMessageStateResponse xmlns="{DEVINO_NS}"><GetMessageStateResult>'
        '<State xmlns="">0</State></GetMessageStateResult></GetMessageStateResponse>'
    )
    with pytest.raises(ParseError, match="has no <State>"):
        parsing.message_state_from(read("GetMessageState", body), message_id="7")


def test_soap11_body_in_a_soap12_envelope_is_no_body() -> None:
    body = (
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}" xmlns:s11="{SOAP11_NS}"><s11:Body>'
        + response("GetBalance", "<GetBalanceResult>1</GetBalanceResult>")
        + "</s11:Body></soap:Envelope>"
    ).encode()
    with pytest.raises(ParseError, match="no Body"):
        read("GetBalance", body)


# -- unreadable replies --------------------------------------------------------------------------

GOOD = dotnet12(response("GetBalance", "<GetBalanceResult>10</GetBalanceResult>"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"Service Unavailable",
        b"<html><body>hello</body></html>",
        GOOD[: len(GOOD) // 2],
        GOOD[:-5],
        b"\xff\xfe\x00garbage",
        dotnet12("<GetBalanceResponse>wrong namespace</GetBalanceResponse>"),
        dotnet12(response("GetSessionID", "")),
        dotnet12(""),
        b'<?xml version="1.0"?><soap:Envelope xmlns:soap="urn:other"><soap:Body/></soap:Envelope>',
    ],
)
def test_unreadable_replies(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        read("GetBalance", body)
    assert info.value.__cause__ is None or not isinstance(info.value.__cause__, ParseError)


def test_expat_errors_are_chained() -> None:
    with pytest.raises(ParseError) as info:
        read("GetBalance", GOOD[:-5])
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__module__.startswith("xml.parsers.expat")


BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
    b"<lolz>&lol2;</lolz>"
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<foo>&xxe;</foo>"
)


@pytest.mark.parametrize(
    "body",
    [
        BOMB,
        EXTERNAL,
        b'<?xml version="1.0"?><!DOCTYPE html><html/>',
        # The same, in UTF-16: the byte scan cannot see it, the parser's guard does.
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode(
            "utf-16"
        ),
    ],
)
def test_dtd_refused(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"DTD|entit"):
        parsing.parse_xml(body)


def test_size_cap() -> None:
    with pytest.raises(ParseError, match="larger"):
        read("GetBalance", GOOD, max_bytes=len(GOOD) - 1)
    assert parsing.balance_from(read("GetBalance", GOOD, max_bytes=len(GOOD))) == Decimal(10)


def test_repeated_element_is_a_shape_error() -> None:
    body = dotnet12(
        response(
            "GetBalance",
            "<GetBalanceResult>1</GetBalanceResult><GetBalanceResult>2</GetBalanceResult>",
        )
    )
    with pytest.raises(ParseError, match="2 <GetBalanceResult>"):
        read("GetBalance", body)


def test_nil_result_reads_as_none() -> None:
    body = dotnet12(response("GetMessageState", '<GetMessageStateResult xsi:nil="true" />'))
    with pytest.raises(ParseError, match="no result"):
        parsing.message_state_from(read("GetMessageState", body), message_id="1")


def test_timedelta_sanity() -> None:
    # Offsets far from UTC near the end of the calendar must not crash.
    with pytest.raises(ParseError):
        parsing.parse_datetime("9999-12-31T23:59:59-05:00", field="x")
    assert parsing.parse_datetime("0001-01-01T00:00:00", field="x") == datetime(1, 1, 1, tzinfo=UTC)


# -- numbers bounded to their XSD types, before any conversion -----------------------------------

HUGE = "9" * 5000


@pytest.mark.parametrize(
    "state", [HUGE, "-" + HUGE, "0" * 5000 + "1" + "0" * 12, "2147483648", "-2147483649"]
)
def test_a_state_out_of_the_int_range_is_a_parse_error(state: str) -> None:
    body = dotnet12(
        response(
            "GetMessageState",
            f"<GetMessageStateResult><State>{state}</State></GetMessageStateResult>",
        )
    )
    with pytest.raises(ParseError) as info:
        parsing.message_state_from(read("GetMessageState", body), message_id="7")
    message = str(info.value)
    assert "GetMessageStateResult/State is out of range" in message
    assert "expected an integer from -2147483648 to 2147483647" in message
    assert len(message) < 300


def test_int_bounds_are_inclusive_and_leading_zeros_are_fine() -> None:
    for text, value in [("2147483647", 2**31 - 1), ("-2147483648", -(2**31)), ("0" * 50 + "7", 7)]:
        assert parsing.parse_int(text, field="x") == value


@pytest.mark.parametrize("field", ["Sent", "TotalWithErrors"])
@pytest.mark.parametrize("count", [HUGE, "4294967296"])
def test_a_statistics_count_out_of_range_is_a_parse_error(field: str, count: str) -> None:
    result = STATISTICS.replace(f"<{field}>", f"<{field}>{count}", 1)
    with pytest.raises(ParseError, match=f"GetStatisticsResult/{field} is out of range"):
        parsing.statistics_from(read("GetStatistics", dotnet12(response("GetStatistics", result))))


@pytest.mark.parametrize("price", [HUGE, "1." + HUGE])
def test_a_decimal_of_thousands_of_digits_is_a_parse_error(price: str) -> None:
    body = dotnet12(
        response(
            "GetMessageState",
            f"<GetMessageStateResult><State>0</State><Price>{price}</Price></GetMessageStateResult>",
        )
    )
    with pytest.raises(ParseError, match="Price is not a decimal number the service sends"):
        parsing.message_state_from(read("GetMessageState", body), message_id="7")
    with pytest.raises(ParseError, match="GetBalanceResult is not a decimal number"):
        parsing.balance_from(
            read(
                "GetBalance",
                dotnet12(response("GetBalance", f"<GetBalanceResult>{price}</GetBalanceResult>")),
            )
        )


@pytest.mark.parametrize("item", ["9223372036854775808", "9999999999999999999", HUGE])
def test_a_message_id_beyond_a_long_is_a_parse_error(item: str) -> None:
    body = dotnet12(
        response("SendMessage", f"<SendMessageResult><string>{item}</string></SendMessageResult>")
    )
    with pytest.raises(ParseError, match="message ID 0 is not a number") as info:
        parsing.message_ids_from(read("SendMessage", body), operation="SendMessage")
    assert len(str(info.value)) < 300
    top = dotnet12(
        response(
            "SendMessage",
            "<SendMessageResult><string>9223372036854775807</string></SendMessageResult>",
        )
    )
    assert parsing.message_ids_from(read("SendMessage", top), operation="SendMessage") == [
        str(2**63 - 1)
    ]


# -- faults of any size make errors of bounded size ----------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_fault_of_megabytes_makes_a_short_message(version: str) -> None:
    text = PREFIX + "Invalid user login or password " + "x" * (9 * 2**20)
    body = fault12(text) if version == "1.2" else fault11(text)
    with pytest.raises(AuthenticationError) as info:
        read("GetBalance", body, http_status=500)
    error = info.value
    assert len(str(error)) < 500
    assert str(error).startswith("GetBalance: Devino fault soap:")
    assert "Invalid user login or password" in str(error)
    assert "more characters)" in str(error)  # it says that it was cut
    assert error.text is not None
    assert error.text.startswith(PREFIX + "Invalid user login")
    assert len(error.text) <= parsing.MAX_RAW_CHARS
    assert error.raw is not None
    assert len(error.raw) <= parsing.MAX_RAW_CHARS


def test_a_fault_code_of_megabytes_makes_a_short_message() -> None:
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", fault12("Boom", code="c" * 2**20), http_status=500)
    assert len(str(info.value)) < 300


def test_a_rate_limit_fault_of_megabytes_makes_a_short_message() -> None:
    with pytest.raises(RateLimitedError) as info:
        read("GetBalance", fault12("Too many requests " * 500_000), http_status=503)
    assert len(str(info.value)) < 500
    assert info.value.text is not None
    assert len(info.value.text) <= parsing.MAX_RAW_CHARS


def test_a_body_of_megabytes_without_a_fault_keeps_a_bounded_raw() -> None:
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", b"<html>" + b"x" * (9 * 2**20), http_status=500)
    assert info.value.raw is not None
    assert len(info.value.raw) <= parsing.MAX_RAW_CHARS
    assert len(str(info.value)) < 300


def test_a_body_listing_a_million_elements_makes_a_short_message() -> None:
    inner = "".join(f"<e{n}/>" for n in range(50_000))
    with pytest.raises(ParseError, match=r"SOAP Body has <e0> \(no namespace\), .* and 49995 more"):
        read("GetBalance", dotnet12(inner))
    long_name = "n" * 100_000
    with pytest.raises(ParseError) as info:
        read("GetBalance", f"<{long_name}/>".encode())
    assert len(str(info.value)) < 500


# -- what a reply is when it is not SOAP (issue 10.21) -------------------------------------------

URL = "http://proxy.example:8080/SmsService.asmx"
HTML = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body/></html>"


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (HTML, "text/html; charset=utf-8", "an HTML page"),
        (HTML, "application/soap+xml", "an HTML page"),
        (HTML, None, "an HTML page"),
        (b"  <HTML><BODY>Down for maintenance</BODY></HTML>", "text/xml", "an HTML page"),
        (b'{"error": "not found"}', "application/json", "JSON"),
        (b"[1, 2]", None, "JSON"),
        (b"<x/>", "application/problem+json", "JSON"),
        (b"Service Unavailable", "text/plain", "plain text"),
        (b"OK", None, "plain text"),
        (b"", "application/soap+xml", "an empty body"),
        (b" \r\n\t ", None, "an empty body"),
        (b"\xef\xbb\xbf", "text/xml", "an empty body"),
        (b"\x89PNG\r\n", "image/png", "plain text"),
        (GOOD, "image/png", "a reply of type image/png"),
        (GOOD, "text/plain", "a reply of type text/plain"),
    ],
)
def test_a_reply_that_is_not_soap_says_what_it_is(
    body: bytes, content_type: str | None, what: str
) -> None:
    with pytest.raises(ParseError) as info:
        read("GetBalance", body, content_type=content_type, url=URL)
    message = str(info.value)
    shown_type = content_type or "none"
    assert message == (
        f"GetBalance: {URL} answered {what} (HTTP 200, Content-Type {shown_type}), not SOAP; "
        "is this the Devino SmsService endpoint?"
    )
    assert "DTD" not in message
    assert info.value.is_transient()  # an intermediary's page may pass


@pytest.mark.parametrize("status", [404, 500, 502])
def test_a_non_200_that_is_not_soap_says_what_it_is(status: int) -> None:
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", HTML, http_status=status, content_type="text/html", url=URL)
    assert type(info.value) is ProviderFaultError
    assert str(info.value) == (
        f"GetBalance: HTTP {status} without a SOAP fault: {URL} answered an HTML page "
        f"(HTTP {status}, Content-Type text/html)"
    )


def test_a_rate_limit_that_is_not_soap_is_still_a_rate_limit() -> None:
    with pytest.raises(RateLimitedError, match="answered plain text") as info:
        read("GetBalance", b"Too Many Requests", http_status=429, content_type="text/plain")
    assert info.value.http_status == 429


def test_xml_that_is_not_soap_names_its_root_and_the_url() -> None:
    with pytest.raises(ParseError) as info:
        read("GetBalance", b"<rss><channel/></rss>", content_type="application/xml", url=URL)
    assert str(info.value) == (
        f"GetBalance: {URL} answered XML that is not SOAP (root <rss> (no namespace)) "
        "(HTTP 200, Content-Type application/xml)"
    )


def test_a_dtd_in_an_xml_reply_is_still_refused_as_hostile() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + GOOD[38:]
    with pytest.raises(ParseError, match="DTD or an entity declaration") as info:
        read("GetBalance", body, content_type="application/soap+xml", url=URL)
    assert not info.value.is_transient()


def test_soap_in_utf16_is_judged_by_the_parser_not_the_sniffer() -> None:
    body = GOOD.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert parsing.balance_from(read("GetBalance", body, content_type="text/xml")) == 10


def test_a_session_reply_that_is_not_soap_shows_no_body() -> None:
    with pytest.raises(ParseError) as info:
        read("GetSessionID", b"session=" + SID.encode(), content_type="text/plain", url=URL)
    assert info.value.body is None
    assert SID not in str(info.value)


# -- fuzz: only the error tree leaves the parser -------------------------------------------------

REAL_REPLIES = [
    dotnet12(response("GetSessionID", f"<GetSessionIDResult>{SID}</GetSessionIDResult>")),
    GOOD,
    seed12(
        response(
            "SendMessage",
            "<SendMessageResult><string>579700854169272358</string>"
            "<string>579700854169272359</string></SendMessageResult>",
        )
    ),
    soap11(
        response(
            "SendMessageByTimeZone",
            "<SendMessageByTimeZoneResult><string>1</string></SendMessageByTimeZoneResult>",
        )
    ),
    dotnet12(response("GetMessageState", STATE_FULL)),
    dotnet12(response("GetStatistics", STATISTICS)),
    dotnet12(
        response(
            "GetIncomingMessages",
            "<GetIncomingMessagesResult><IncomingMessage><Data>Ack 42</Data>"
            "<SourceAddress>79031234567</SourceAddress><DestinationAddress>ALERTS"
            "</DestinationAddress><CreatedDateUtc>2024-03-05T07:08:09</CreatedDateUtc>"
            "</IncomingMessage></GetIncomingMessagesResult>",
        )
    ),
    fault12(PREFIX + "Invalid session"),
    fault11(PREFIX + "Not enough credits"),
]
READERS: dict[str, Any] = {
    "GetSessionID": parsing.session_id_from,
    "GetBalance": parsing.balance_from,
    "SendMessage": lambda r: parsing.message_ids_from(r, operation="SendMessage"),
    "SendMessageByTimeZone": lambda r: parsing.message_ids_from(
        r, operation="SendMessageByTimeZone"
    ),
    "GetMessageState": lambda r: parsing.message_state_from(r, message_id="1"),
    "GetStatistics": parsing.statistics_from,
    "GetIncomingMessages": parsing.incoming_messages_from,
}

_TOKENS = [
    b"<",
    b">",
    b"/",
    b"</",
    b"/>",
    b"=",
    b'"',
    b"'",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?",
    b"?>",
    b"<!DOCTYPE x>",
    b'xmlns=""',
    b'xmlns="urn:x"',
    b'xsi:nil="true"',
    b"9" * 5000,
    b"-" + b"9" * 30,
    b"1e999",
    b"NaN",
    b"0001-01-01T00:00:00",
    b"9999-12-31T23:59:59-14:00",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\r\n",
    b" " * 100,
    b"<a>" * 40,
    b"<string>",
    b"</string>",
    b"<State>",
    b"</State>",
    b'encoding="utf-16"',
    b'encoding="ebcdic-x"',
    b"soap:Fault",
    b"<soap:Fault><soap:Code><soap:Value>x</soap:Value></soap:Code></soap:Fault>",
]


@st.composite
def mutated_replies(draw: st.DrawFn) -> tuple[str, bytes, int, str | None]:
    base = draw(st.sampled_from(REAL_REPLIES))
    operation = (
        next(op for op in READERS if f"<{op}Response".encode() in base)
        if (b"Response" in base)
        else draw(st.sampled_from(sorted(READERS)))
    )
    body = bytearray(base)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "flip", "truncate", "dup"]))
        at = draw(st.integers(min_value=0, max_value=len(body)))
        if kind == "insert":
            body[at:at] = draw(st.sampled_from(_TOKENS) | st.binary(max_size=8))
        elif kind == "delete":
            del body[at : at + draw(st.integers(min_value=1, max_value=40))]
        elif kind == "replace":
            body[at : at + draw(st.integers(min_value=1, max_value=8))] = draw(
                st.sampled_from(_TOKENS)
            )
        elif kind == "flip" and at < len(body):
            body[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "truncate":
            del body[at:]
        elif kind == "dup":
            end = min(len(body), at + draw(st.integers(min_value=1, max_value=200)))
            body[at:at] = body[at:end]
    status = draw(st.sampled_from([200, 200, 200, 500, 503, 429, 404]))
    content_type = draw(
        st.sampled_from([None, "application/soap+xml; charset=utf-8", "text/xml", "text/html"])
    )
    return operation, bytes(body), status, content_type


@settings(max_examples=600, deadline=None)
@given(mutated_replies())
def test_mutated_real_replies_raise_only_the_error_tree(
    case: tuple[str, bytes, int, str | None],
) -> None:
    operation, body, status, content_type = case
    message = ""
    try:
        READERS[operation](
            read(operation, body, http_status=status, content_type=content_type, url=URL)
        )
    except NotifyError as exc:  # anything else fails the test with its own traceback
        message = str(exc)
    assert len(message) < 2000, message[:200]


@pytest.mark.parametrize("at", [0, 1, 10, 35, 36])
@pytest.mark.parametrize("where", ["message", "text", "raw"])
def test_a_cut_never_leaves_part_of_an_echoed_session_id(where: str, at: int) -> None:
    # A fault that echoes the session ID, padded so that the limit of the message, of the
    # text or of the raw falls ``at`` characters into it: the ID is kept whole (and then
    # masked by the log redaction) or left out, never cut to a part it cannot recognise.
    limit, before = {
        "message": (parsing.MAX_SHOWN_CHARS, len(PREFIX)),
        "text": (parsing.MAX_RAW_CHARS, len(PREFIX)),
        "raw": (parsing.MAX_RAW_CHARS, fault12("@").index(b"@") + len(PREFIX)),
    }[where]
    text = PREFIX + "." * (limit - before - at) + SID + " tail" * 50_000
    with pytest.raises(ProviderFaultError) as info:
        read("GetBalance", fault12(text), http_status=500)
    error = info.value
    shown = {"message": str(error), "text": error.text or "", "raw": error.raw or ""}[where]
    parts = [SID[:n] for n in range(4, len(SID))]
    assert SID in shown or not any(part in shown for part in parts), shown[-80:]
    assert (SID in shown) is (at == len(SID))  # whole before the limit, or left out


def test_cut_keeps_whole_words() -> None:
    assert parsing._cut("abc def", 5) == "abc "
    assert parsing._cut("abc def", 4) == "abc "
    assert parsing._cut("abc def", 3) == "abc"
    assert parsing._cut("abcdef", 3) == ""
    assert parsing._cut("ab, cd", 3) == "ab,"


@pytest.mark.parametrize("digits", ["١٢٣", "１２３", "१२३"])
def test_numbers_in_other_scripts_are_not_numbers(digits: str) -> None:
    # int() and Decimal() read Arabic-Indic, full-width and Devanagari digits; .NET never
    # writes them, so a reply carrying them is not read as if it had said 123.
    ids = dotnet12(
        response("SendMessage", f"<SendMessageResult><string>{digits}</string></SendMessageResult>")
    )
    with pytest.raises(ParseError, match="message ID 0 is not a number"):
        parsing.message_ids_from(read("SendMessage", ids), operation="SendMessage")
    with pytest.raises(ParseError, match="is not an integer"):
        parsing.parse_int(digits, field="State")
    with pytest.raises(ParseError, match="is not a decimal number"):
        parsing.parse_decimal(digits, field="Price")
    with pytest.raises(ParseError, match="is not a dateTime"):
        parsing.parse_datetime(f"2024-03-05T07:08:09.{digits}", field="x")
