"""The sandbox's SOAP codec: read a request, write a reply or a fault, the ASMX way.

Reading: the content type tells the SOAP version; the envelope is parsed with xmltodict over an
expat that refuses any DOCTYPE (no DTD, no entities), in UTF-8 only; the operation is found as
ASMX finds it (SOAP 1.1: the ``SOAPAction`` header; SOAP 1.2: the ``action`` parameter or the
body element) and handed on as a :class:`Call`. In strict mode :func:`check_schema` then walks
the body through the served WSDL's schema (:mod:`.schema`). Values are read leniently here
(:func:`parse_datetime`); what strict mode demands is the schema walker's business.

Writing: :func:`envelope` wraps a reply body, :func:`fault_body` writes a SOAP 1.1 or 1.2 Fault,
:func:`element` and :func:`string_array` write values the way .NET does (see the server's
module docstring for the wire choices a client must know).

Nothing here knows about accounts, messages or HTTP routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from xml.parsers import expat

import xmltodict
from aiohttp.helpers import parse_mimetype

from .schema import SchemaViolation, service_schema
from .state import MIN_DATETIME, SandboxFault

NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_DEVINO = "http://ws.devinosms.com"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"

SERVICE_PATH = "/SmsService.asmx"
CONTENT_TYPE_11 = "text/xml; charset=utf-8"
CONTENT_TYPE_12 = "application/soap+xml; charset=utf-8"

OPERATIONS = (
    "GetSessionID",
    "GetBalance",
    "SendMessageByTimeZone",
    "SendMessage",
    "SendMessageByTimeZoneToAddresses",
    "GetMessageState",
    "GetStatistics",
    "GetIncomingMessages",
)

SoapVersion = Literal["1.1", "1.2"]

READ_PREFIX = "Server was unable to read request. ---> "

# -- values on the wire --------------------------------------------------------------------------

_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_escape(value: object) -> str:
    """Escape any value for XML text or a double-quoted attribute. Characters XML 1.0 cannot
    carry become U+FFFD; a carriage return is kept as ``&#xD;``."""
    text = _INVALID_XML_CHARS.sub("\ufffd", str(value))
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#xD;")
    )


def format_datetime(moment: datetime) -> str:
    """.NET style: ``yyyy-MM-ddTHH:mm:ss.fffZ`` for an aware moment (converted to UTC);
    ``yyyy-MM-ddTHH:mm:ss`` for DateTime.MinValue."""
    if moment.tzinfo is None:
        if moment == MIN_DATETIME:
            return "0001-01-01T00:00:00"
        moment = moment.replace(tzinfo=UTC)
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def format_decimal(value: Decimal) -> str:
    return format(value, "f")


_DATETIME = re.compile(  # ASCII digits only: \d would take other scripts' digits too
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<h>[0-9]{2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,7}))?)?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_datetime(text: str) -> datetime:
    """Read an xsd:dateTime leniently: seconds and fraction optional, ``Z``/offset/none.

    :return: aware for ``Z`` or an offset, naive otherwise.
    :raise ValueError: if it is not a date-time.
    """
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    year, month, day = (int(part) for part in match["date"].split("-"))
    micro = int((match["f"] or "0").ljust(7, "0")[:6])
    tz = match["tz"]
    tzinfo: timezone | None = None
    if tz == "Z":
        tzinfo = UTC
    elif tz:
        sign = 1 if tz[0] == "+" else -1
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
    moment = datetime(
        year, month, day, int(match["h"]), int(match["m"]), int(match["s"] or 0), micro, tzinfo
    )
    if tzinfo is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(text) from None
    return moment


def read_fault(detail: str, position: tuple[int, int] = (1, 1)) -> SandboxFault:
    line, column = position
    return SandboxFault(
        f"{READ_PREFIX}There is an error in XML document ({line}, {column}). ---> {detail}",
        code="soap:Sender",
    )


# -- reading a request ---------------------------------------------------------------------------


class _DoctypeRefused(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__("DTD is prohibited in this XML document.")
        self.position = (line, column)


class _NoDoctypeExpat:
    """pyexpat for xmltodict, refusing a DOCTYPE the moment it starts: no DTD, no entities."""

    ExpatError = expat.ExpatError

    @staticmethod
    def ParserCreate(*args: Any, **kwargs: Any) -> Any:
        parser = expat.ParserCreate(*args, **kwargs)

        def refuse(*_: Any) -> None:
            raise _DoctypeRefused(parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)

        parser.StartDoctypeDeclHandler = refuse
        parser.EntityDeclHandler = refuse
        return parser


_PREFIXES = {NS_SOAP11: "s11", NS_SOAP12: "s12", NS_DEVINO: "d", NS_XSI: "xsi"}


_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def check_utf8(body: bytes) -> None:
    """The service reads UTF-8 only: refuse a body in UTF-16/32 or declared in another encoding
    (expat would otherwise decode ISO-8859-1 or UTF-16 as declared)."""
    if body.startswith(_UTF16_32_BOMS) or body[:2] in (b"<\x00", b"\x00<"):
        raise read_fault("The request is not in UTF-8; the service reads UTF-8 only.")
    declared = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None and declared[1].lower() != b"utf-8":
        name = declared[1].decode("ascii", "replace")
        raise read_fault(
            f"The request is declared in encoding '{name}'; the service reads UTF-8 only."
        )


def parse_xml(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise SandboxFault(
            f"{READ_PREFIX}There is an error in XML document (0, 0). ---> Root element is missing.",
            code="soap:Sender",
        )
    check_utf8(body)
    try:
        parsed = xmltodict.parse(
            body,
            expat=_NoDoctypeExpat,
            process_namespaces=True,
            namespaces=_PREFIXES,
            strip_whitespace=False,
            force_list=("d:string", "d:IncomingMessage"),
            disable_entities=True,
        )
    except _DoctypeRefused as exc:
        raise read_fault(str(exc), exc.position) from None
    except expat.ExpatError as exc:
        raise read_fault(
            expat.ErrorString(exc.code) if exc.code else str(exc), (exc.lineno, exc.offset + 1)
        ) from None
    except ValueError as exc:  # xmltodict's own refusals (entities)
        raise read_fault(str(exc)) from None
    if not isinstance(parsed, dict):
        raise read_fault("Root element is missing.")
    return parsed


def children(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    return {k: v for k, v in node.items() if not k.startswith(("@", "#"))}


def is_nil(node: Any) -> bool:
    return isinstance(node, dict) and str(node.get("@xsi:nil", "")).strip() in ("true", "1")


def text_of(node: Any) -> str | None:
    """The text of a leaf element; None when absent, empty or nil."""
    if isinstance(node, list):
        node = node[0] if node else None
    if node is None or is_nil(node):
        return None
    if isinstance(node, dict):
        node = node.get("#text")
    return node or None


def strings_of(node: Any) -> list[str | None] | None:
    """The ``<string>`` items of an ArrayOfString; None when the array is absent or nil."""
    if isinstance(node, list):
        node = node[0] if node else None
    if node is None or is_nil(node):
        return None
    if not isinstance(node, dict):
        return []
    return [text_of(item) for item in node.get("d:string", [])]


@dataclass(frozen=True, slots=True)
class Call:
    version: SoapVersion
    operation: str
    params: dict[str, Any]


def version_for(content_type: str) -> SoapVersion | None:
    mime = parse_mimetype(content_type)
    kind = f"{mime.type}/{mime.subtype}" + (f"+{mime.suffix}" if mime.suffix else "")
    if kind == "application/soap+xml":
        return "1.2"
    if kind == "text/xml":
        return "1.1"
    return None


def charset_of(content_type: str) -> str | None:
    charset = parse_mimetype(content_type).parameters.get("charset")
    return charset.strip().strip('"') if charset is not None else None


def _unknown_action(action: str) -> SandboxFault:
    return SandboxFault(
        f"Server did not recognize the value of HTTP Header SOAPAction: {action}.",
        code="soap:Sender",
    )


def _operation_of_action(action: str) -> str | None:
    operation = action.removeprefix(NS_DEVINO + "/")
    return operation if action.startswith(NS_DEVINO + "/") and operation in OPERATIONS else None


def read_call(version: SoapVersion, headers: Mapping[str, str], body: bytes) -> Call:
    """Parse the envelope and find the operation, ASMX style: SOAP 1.1 routes on the
    SOAPAction header, SOAP 1.2 on the ``action`` parameter or, without one, the body element."""
    action: str | None
    if version == "1.1":
        header = headers.get("SOAPAction")
        action = header.strip().strip('"').strip() if header is not None else ""
    else:
        content_type = parse_mimetype(headers.get("Content-Type", ""))
        action = content_type.parameters.get("action")
        action = action.strip().strip('"').strip() if action is not None else None
    if action is not None and _operation_of_action(action) is None:
        raise _unknown_action(action)
    doc = parse_xml(body)
    expected, other = ("s11", "s12") if version == "1.1" else ("s12", "s11")
    root = next(iter(doc))
    if root == f"{other}:Envelope":
        got, want = (NS_SOAP12, NS_SOAP11) if version == "1.1" else (NS_SOAP11, NS_SOAP12)
        raise SandboxFault(
            f"Possible SOAP version mismatch: Envelope namespace {got} was unexpected. "
            f"Expecting {want}.",
            code="soap:VersionMismatch",
        )
    if root != f"{expected}:Envelope":
        raise read_fault(f"The root element is not a SOAP {version} Envelope.")
    body_node = children(doc[root]).get(f"{expected}:Body")
    elements = children(body_node)
    first = next(iter(elements), None)
    operation = first[2:] if first and first.startswith("d:") else None
    if operation not in OPERATIONS:
        if action is not None:
            raise read_fault(f"<{first or 'Body'}> was not expected.")
        raise SandboxFault(
            "Unable to handle request without a valid action parameter. "
            "Please supply a valid soap action.",
            code="soap:Sender",
        )
    assert operation is not None
    if action is not None and action != f"{NS_DEVINO}/{operation}":
        raise read_fault(f"<{operation} xmlns='{NS_DEVINO}'> was not expected.")
    node = elements[f"d:{operation}"]
    if isinstance(node, list):
        node = node[0]
    return Call(version, operation, children(node))


def check_schema(version: SoapVersion, body: bytes) -> None:
    """Strict mode: the body against the served WSDL's schema (see :mod:`.schema`)."""
    try:
        service_schema().check_envelope(body, NS_SOAP11 if version == "1.1" else NS_SOAP12)
    except SchemaViolation as violation:
        raise read_fault(str(violation), violation.position) from None


# -- writing a reply -----------------------------------------------------------------------------


def envelope(version: SoapVersion, body: str) -> bytes:
    ns = NS_SOAP11 if version == "1.1" else NS_SOAP12
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{ns}" xmlns:xsi="{NS_XSI}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


_FAULT_CODES_11 = {
    "soap:Receiver": "soap:Server",
    "soap:Sender": "soap:Client",
    "soap:VersionMismatch": "soap:VersionMismatch",
}


def fault_body(version: SoapVersion, fault: SandboxFault) -> str:
    reason = xml_escape(fault.reason)
    if version == "1.1":
        code = _FAULT_CODES_11[fault.code]
        return (
            f"<soap:Fault><faultcode>{code}</faultcode>"
            f"<faultstring>{reason}</faultstring><detail /></soap:Fault>"
        )
    return (
        f"<soap:Fault><soap:Code><soap:Value>{fault.code}</soap:Value></soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason>'
        "<soap:Detail /></soap:Fault>"
    )


def element(name: str, value: object) -> str:
    """``<name>value</name>``, or ``<name xsi:nil="true" />`` for None."""
    if value is None:
        return f'<{name} xsi:nil="true" />'
    if isinstance(value, datetime):
        text = format_datetime(value)
    elif isinstance(value, Decimal):
        text = format_decimal(value)
    else:
        text = xml_escape(value)
    return f"<{name}>{text}</{name}>"


def string_array(name: str, values: Iterable[object]) -> str:
    items = "".join(f"<string>{xml_escape(v)}</string>" for v in values)
    return f"<{name}>{items}</{name}>" if items else f"<{name} />"
