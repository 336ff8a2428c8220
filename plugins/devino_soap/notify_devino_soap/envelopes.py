"""SOAP request envelopes for the Devino SmsService, built by hand.

Every operation has one ``build_*`` function returning a :class:`SoapRequest`: the UTF-8 body
and the HTTP headers for the chosen SOAP version. Element names, their order and their namespace
follow the service's WSDL exactly (the copy the sandbox serves, ``emulator/SmsService.wsdl``),
and every element the WSDL requires is sent, a null one as ``xsi:nil="true"``; a test walks
each built envelope against that WSDL's schema. Numbers are bounded to their XSD type before
anything is sent (validity is an ``xsd:int``, a message ID an ``xsd:long``). Where the provider's
examples and the live service differ, the live service wins (``GetStatistics`` takes
``sessionID``; ``GetIncomingMessages`` takes ``maxDateUTC`` before ``minDateUTC``).

Every user value is XML-escaped; a character XML 1.0 cannot carry at all (a control character
other than tab, CR and LF, a lone surrogate, U+FFFE/U+FFFF) is refused with
:class:`~notify_devino.errors.InvalidInputError` before anything is sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal, TypeAlias

from notify_devino.errors import InvalidInputError

SoapVersion: TypeAlias = Literal["1.1", "1.2"]

DEVINO_NS = "http://ws.devinosms.com"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"

SOAP_NAMESPACES: Mapping[str, str] = {"1.1": SOAP11_NS, "1.2": SOAP12_NS}
_PREFIXES: Mapping[str, str] = {"1.1": "soap", "1.2": "soap12"}

MAX_MESSAGE_ID = 2**63 - 1
"""Message IDs are .NET ``long`` values."""
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of ``xsd:int`` (.NET ``int``): validity is one."""

OPERATIONS = (
    "GetSessionID",
    "GetBalance",
    "SendMessage",
    "SendMessageByTimeZone",
    "SendMessageByTimeZoneToAddresses",
    "GetMessageState",
    "GetStatistics",
    "GetIncomingMessages",
)

# XML 1.0 Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A literal CR would be read back as LF by any XML parser (end-of-line normalisation), so CR is
# sent as a character reference; the rest are the five characters with a meaning in markup.
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
)


def soap_action(operation: str) -> str:
    """The action URI of an operation: ``http://ws.devinosms.com/<Operation>``."""
    return f"{DEVINO_NS}/{operation}"


def check_xml_text(value: str, *, field: str, secret: bool = False) -> str:
    """Return ``value`` if XML 1.0 can carry it, else raise InvalidInputError.

    :param field: the input's name, for the error.
    :param secret: leave the value out of the error (a password).
    """
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{field} is not a string",
            field=field,
            value=None if secret else value,
            expected="a string",
        )
    bad = _ILLEGAL_XML.search(value)
    if bad is not None:
        char = bad.group()
        raise InvalidInputError(
            f"{field} contains U+{ord(char):04X} at position {bad.start()}, "
            "which XML 1.0 cannot carry",
            field=field,
            value=None if secret else value,
            expected="text without control characters other than tab, CR and LF",
        )
    return value


def escape_text(value: str, *, field: str, secret: bool = False) -> str:
    """Check ``value`` with :func:`check_xml_text` and escape it for element content."""
    return check_xml_text(value, field=field, secret=secret).translate(_ESCAPES)


def format_utc(moment: datetime, *, field: str) -> str:
    """An aware moment as the service's UTC ``xsd:dateTime``: ``YYYY-MM-DDTHH:MM:SS``.

    Sub-second precision is dropped. A naive datetime is refused: a UTC field needs a moment.
    """
    if not isinstance(moment, datetime):
        raise InvalidInputError(
            f"{field} is not a datetime", field=field, value=moment, expected="an aware datetime"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError(
            f"{field} is a naive datetime",
            field=field,
            value=moment,
            expected="a timezone-aware datetime (it is sent in UTC)",
        )
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(
            f"{field} {moment.isoformat()} is outside the years a UTC date-time can hold",
            field=field,
            value=moment,
            expected="a moment from 0001-01-01 to 9999-12-31 in UTC",
        ) from None
    return utc.replace(tzinfo=None, microsecond=0).isoformat()


def format_local(moment: datetime, *, field: str) -> str:
    """A naive wall-clock time as ``YYYY-MM-DDTHH:MM:SS`` (the recipient's local time).

    An aware datetime is refused: the service reads ``sendDate`` in each recipient's own zone,
    so an absolute moment would silently mean something else.
    """
    if not isinstance(moment, datetime):
        raise InvalidInputError(
            f"{field} is not a datetime", field=field, value=moment, expected="a naive datetime"
        )
    if moment.tzinfo is not None:
        raise InvalidInputError(
            f"{field} is timezone-aware",
            field=field,
            value=moment,
            expected="a naive datetime: the wall-clock time in each recipient's own time zone",
        )
    return moment.replace(microsecond=0).isoformat()


def format_message_id(message_id: int | str) -> str:
    """A message ID as the service's ``s:long``: a positive 64-bit integer in decimal."""
    expected = f"a positive whole number up to {MAX_MESSAGE_ID}"
    if isinstance(message_id, bool) or not isinstance(message_id, int | str):
        raise InvalidInputError(
            f"message ID {message_id!r} is not a number",
            field="message_id",
            value=message_id,
            expected=expected,
        )
    if isinstance(message_id, str):
        text = message_id.strip()
        if not (text.isascii() and text.isdigit()):
            raise InvalidInputError(
                f"message ID {message_id!r} is not a decimal number",
                field="message_id",
                value=message_id,
                expected=expected,
            )
        number = int(text)
    else:
        number = message_id
    if not 0 < number <= MAX_MESSAGE_ID:
        raise InvalidInputError(
            f"message ID {message_id!r} is out of range",
            field="message_id",
            value=message_id,
            expected=expected,
        )
    return str(number)


def format_int(value: int, *, field: str, minimum: int = INT_MIN) -> str:
    """An ``xsd:int`` value: a whole number in ``minimum`` .. 2147483647, in decimal.

    A number out of range would be refused by the service as unreadable (or worse, wrap on a
    lenient reader), so it is refused here before any request.
    """
    expected = f"a whole number from {minimum} to {INT_MAX}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"{field} {value!r} is not a whole number", field=field, value=value, expected=expected
        )
    if not minimum <= value <= INT_MAX:
        raise InvalidInputError(
            f"{field} {value} is out of range", field=field, value=value, expected=expected
        )
    return str(value)


def _bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise InvalidInputError(
            f"receipt_requested {value!r} is not a bool",
            field="receipt_requested",
            value=value,
            expected="True or False",
        )
    return "true" if value else "false"


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """One request, ready for the wire.

    The body carries the session ID or the password, so it is left out of ``repr``: a request
    in a traceback or a log line never shows it.
    """

    operation: str
    soap_version: SoapVersion
    body: bytes = field(repr=False)
    headers: Mapping[str, str]


_Child: TypeAlias = "tuple[str, str | Sequence[_Child] | None]"
"""An element: its name and either its escaped text, its children, or None for
``xsi:nil="true"`` (the ``xsi`` prefix is declared on the Envelope)."""


def _render(children: Iterable[_Child]) -> str:
    parts: list[str] = []
    for name, content in children:
        if content is None:
            parts.append(f'<{name} xsi:nil="true" />')
        elif isinstance(content, str):
            parts.append(f"<{name}>{content}</{name}>" if content else f"<{name} />")
        else:
            parts.append(f"<{name}>{_render(content)}</{name}>")
    return "".join(parts)


def _strings(values: Sequence[str], *, field: str) -> list[_Child]:
    # A phone number in wire form (ASCII digits) needs neither checking nor escaping.
    return [
        (
            "string",
            value if value.isdigit() and value.isascii() else escape_text(value, field=field),
        )
        for value in values
    ]


@functools.cache
def _frame(operation: str, soap_version: SoapVersion) -> tuple[str, str, Mapping[str, str]]:
    """The text before and after an operation's children, and its HTTP headers: the same for
    every request of the operation, so made once."""
    if soap_version not in SOAP_NAMESPACES:
        raise ValueError(f"unknown SOAP version {soap_version!r}; expected '1.1' or '1.2'")
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    prefix, ns = _PREFIXES[soap_version], SOAP_NAMESPACES[soap_version]
    head = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<{prefix}:Envelope xmlns:xsi="{XSI_NS}" xmlns:xsd="{XSD_NS}" xmlns:{prefix}="{ns}">'
        f"<{prefix}:Body>"
        f'<{operation} xmlns="{DEVINO_NS}">'
    )
    tail = f"</{operation}></{prefix}:Body></{prefix}:Envelope>"
    action = soap_action(operation)
    if soap_version == "1.2":
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
    else:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    return head, tail, MappingProxyType(headers)


def build_request(
    operation: str, children: Sequence[_Child], *, soap_version: SoapVersion = "1.2"
) -> SoapRequest:
    """Wrap an operation's (already escaped) children in an envelope of the given version."""
    head, tail, headers = _frame(operation, soap_version)
    return SoapRequest(
        operation, soap_version, (head + _render(children) + tail).encode("utf-8"), headers
    )


def build_get_session_id(
    login: str, password: str, *, soap_version: SoapVersion = "1.2"
) -> SoapRequest:
    return build_request(
        "GetSessionID",
        [
            ("login", escape_text(login, field="login")),
            ("password", escape_text(password, field="password", secret=True)),
        ],
        soap_version=soap_version,
    )


def _session(session_id: str) -> _Child:
    return ("sessionID", escape_text(session_id, field="session_id", secret=True))


def build_get_balance(session_id: str, *, soap_version: SoapVersion = "1.2") -> SoapRequest:
    return build_request("GetBalance", [_session(session_id)], soap_version=soap_version)


def build_send_message(
    session_id: str,
    *,
    source: str,
    destinations: Sequence[str],
    data: str,
    delay_until_utc: datetime | None,
    receipt_requested: bool,
    validity: int,
    soap_version: SoapVersion = "1.2",
) -> SoapRequest:
    """``SendMessage``. ``DelayUntilUtc`` is ``xsi:nil="true"`` when ``delay_until_utc`` is
    None (send now): the WSDL declares it ``minOccurs="1" nillable="true"``, so it is always
    there. Every element of ``Message`` is sent, in the WSDL's order."""
    delay = (
        None if delay_until_utc is None else format_utc(delay_until_utc, field="delay_until_utc")
    )
    message: list[_Child] = [
        ("Data", escape_text(data, field="text")),
        ("DelayUntilUtc", delay),
        ("DestinationAddresses", _strings(destinations, field="recipient")),
        ("SourceAddress", escape_text(source, field="sender")),
        ("ReceiptRequested", _bool(receipt_requested)),
        ("Validity", format_int(validity, field="validity", minimum=0)),
    ]
    return build_request(
        "SendMessage", [_session(session_id), ("message", message)], soap_version=soap_version
    )


def build_send_message_by_time_zone(
    session_id: str,
    *,
    source: str,
    destination: str,
    data: str,
    send_date: datetime,
    validity: int,
    soap_version: SoapVersion = "1.2",
) -> SoapRequest:
    return build_request(
        "SendMessageByTimeZone",
        [
            _session(session_id),
            ("sourceAddress", escape_text(source, field="sender")),
            ("destinationAddress", escape_text(destination, field="recipient")),
            ("data", escape_text(data, field="text")),
            ("sendDate", format_local(send_date, field="send_date")),
            ("validity", format_int(validity, field="validity", minimum=0)),
        ],
        soap_version=soap_version,
    )


def build_send_message_by_time_zone_to_addresses(
    session_id: str,
    *,
    source: str,
    destinations: Sequence[str],
    data: str,
    send_date: datetime,
    validity: int,
    soap_version: SoapVersion = "1.2",
) -> SoapRequest:
    return build_request(
        "SendMessageByTimeZoneToAddresses",
        [
            _session(session_id),
            ("sourceAddress", escape_text(source, field="sender")),
            ("destinationAddresses", _strings(destinations, field="recipient")),
            ("data", escape_text(data, field="text")),
            ("sendDate", format_local(send_date, field="send_date")),
            ("validity", format_int(validity, field="validity", minimum=0)),
        ],
        soap_version=soap_version,
    )


def build_get_message_state(
    session_id: str, message_id: int | str, *, soap_version: SoapVersion = "1.2"
) -> SoapRequest:
    return build_request(
        "GetMessageState",
        [_session(session_id), ("messageID", format_message_id(message_id))],
        soap_version=soap_version,
    )


def build_get_statistics(
    session_id: str, start: datetime, end: datetime, *, soap_version: SoapVersion = "1.2"
) -> SoapRequest:
    return build_request(
        "GetStatistics",
        [
            _session(session_id),
            ("startDateTime", format_utc(start, field="start")),
            ("endDateTime", format_utc(end, field="end")),
        ],
        soap_version=soap_version,
    )


def build_get_incoming_messages(
    session_id: str,
    *,
    min_date_utc: datetime,
    max_date_utc: datetime,
    soap_version: SoapVersion = "1.2",
) -> SoapRequest:
    """``GetIncomingMessages``. Note the wire order: ``maxDateUTC`` comes before ``minDateUTC``."""
    return build_request(
        "GetIncomingMessages",
        [
            _session(session_id),
            ("maxDateUTC", format_utc(max_date_utc, field="max_date_utc")),
            ("minDateUTC", format_utc(min_date_utc, field="min_date_utc")),
        ],
        soap_version=soap_version,
    )


__all__ = [
    "DEVINO_NS",
    "INT_MAX",
    "INT_MIN",
    "MAX_MESSAGE_ID",
    "OPERATIONS",
    "SOAP11_NS",
    "SOAP12_NS",
    "SOAP_NAMESPACES",
    "XSD_NS",
    "XSI_NS",
    "SoapRequest",
    "SoapVersion",
    "build_get_balance",
    "build_get_incoming_messages",
    "build_get_message_state",
    "build_get_session_id",
    "build_get_statistics",
    "build_request",
    "build_send_message",
    "build_send_message_by_time_zone",
    "build_send_message_by_time_zone_to_addresses",
    "check_xml_text",
    "escape_text",
    "format_int",
    "format_local",
    "format_message_id",
    "format_utc",
    "soap_action",
]
