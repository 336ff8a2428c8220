"""The Devino sandbox over HTTP: Devino's SmsService SOAP API on a local port.

Routes
------
``POST /SmsService.asmx`` (path case-insensitive, as on IIS)
    SOAP 1.2 (``Content-Type: application/soap+xml; charset=utf-8``, optional ``action=``
    parameter, which must then name the body's operation) or SOAP 1.1 (``Content-Type:
    text/xml; charset=utf-8`` plus ``SOAPAction: "http://ws.devinosms.com/<Operation>"``).
    The reply uses the request's SOAP version and content type. Faults are HTTP 500 with a
    SOAP Fault of the same version. Any other content type, or a charset other than UTF-8, is
    answered 415 (plain text); a body in UTF-16 or declared in another encoding is a
    ``soap:Sender`` fault: the service reads UTF-8 only.
``GET /SmsService.asmx?WSDL`` (query key case-insensitive)
    The WSDL (a reconstruction, see the file's header), its ``soap:address`` and
    ``soap12:address`` pointing at this sandbox as the request addressed it (the Host header,
    as ASMX does). Without ``?WSDL``: a short HTML page listing the operations.
``POST /admin/incoming``
    JSON ``{"source", "destination", "text", "created_at"?, "login"?}`` stores an incoming SMS
    (``created_at``: ISO 8601, naive = UTC, default now; ``login``: the only account that sees
    it, default every account). 201 with the stored message as JSON; 400 on bad input.
``POST /admin/expire-sessions``
    Expires every session now. 200 ``{"expired": <sessions that were alive>}``.
``GET /admin/requests``
    The request log (:attr:`Sandbox.requests`) as a JSON list.
``GET /admin/messages``
    Every stored segment with its current state, as a JSON list (for demos and debugging).

Admin routes are neither rate-limited nor logged in :attr:`Sandbox.requests`.

Wire choices the client must know
---------------------------------
- Dates are written like .NET's ``yyyy-MM-ddTHH:mm:ss.fff`` with a trailing ``Z`` (every date
  the sandbox writes is UTC, stored to the millisecond), e.g. ``2026-03-02T09:00:01.250Z``.
  The one exception is the TimeStampUtc of an unknown message: ``0001-01-01T00:00:00``.
- Nil values are ``<CreationDateUtc xsi:nil="true" />`` (``xsi`` declared on the Envelope).
- Message IDs are decimal ``<string>`` children, one per segment, consecutive per text,
  grouped per destination in the order the destinations were given.
- Decimals (balance, Price) keep their scale: ``1.50``, ``997.00``; DeliveryRatio has two
  decimals.
- Dates are read leniently: with or without seconds and fraction (up to 7 digits), ``Z`` or
  an offset or nothing. A naive date is UTC, except ``sendDate``, which is the recipient's
  wall-clock time (an offset there is ignored).
- ``validity`` / ``Validity`` 0 means the default 2880 minutes (a generated client always
  sends the element, as 0 when unset).
- Strict mode (``SandboxConfig.strict``, on by default, in the packaged config and in the
  pytest fixtures) checks every request body against the schema of the WSDL served here
  (:mod:`.schema`): element names, namespace and order, ``minOccurs``/``maxOccurs``,
  ``xsi:nil`` only where ``nillable``, and int/long/boolean/decimal/dateTime values in range.
  The first element that breaks it is answered as a SOAP Client fault (``soap:Sender``; 1.1
  ``soap:Client``), HTTP 500, nothing processed: ``Server was unable to read request. --->
  There is an error in XML document (1, 366). ---> Element 'SendMessage/message/DelayUntilUtc'
  is missing (before 'DestinationAddresses'): the WSDL requires it (minOccurs="1"); with no
  value, send it as xsi:nil="true".`` With ``strict: false`` the sandbox reads requests as
  leniently as ASMX: a missing value-type element is null or its default (validity 2880).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from typing import Any, Literal
from xml.parsers import expat

import structlog
import xmltodict
from aiohttp import web
from aiohttp.helpers import parse_mimetype

from .clock import Clock, SystemClock
from .config import SandboxConfig
from .faults import FaultInjector, FaultKind, FaultRule
from .schema import SchemaViolation, service_schema
from .state import (
    MIN_DATETIME,
    IncomingRecord,
    MessageStateRecord,
    SandboxFault,
    SandboxState,
    StatisticsRecord,
)

log = structlog.get_logger(__name__)

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

_READ_PREFIX = "Server was unable to read request. ---> "


# -- the request log -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request to the SOAP endpoint, as the sandbox saw it.

    :ivar monotonic: :func:`time.monotonic` when it arrived (what the rate limit measures).
    :ivar at: the sandbox clock's time when it arrived.
    :ivar operation: the operation named by the request (``WSDL`` for a WSDL GET), or None
        if none could be told.
    :ivar soap_version: ``1.1``, ``1.2``, or ``""`` (not a SOAP request: a WSDL GET, a wrong
        content type).
    :ivar login: the account it belongs to (the login given, or the session's), when known.
    :ivar status: the HTTP status answered; 0 when the connection was closed without one.
    :ivar fault: the fault text, or the rate-limit text for an HTTP 429/503, else None.
    :ivar destinations: the destination addresses as the request gave them.
    :ivar injected: the kind of fault injected into this request (see :mod:`.faults`), or None.
    """

    monotonic: float
    at: datetime
    operation: str | None
    soap_version: str
    login: str | None
    status: int
    fault: str | None
    destinations: tuple[str, ...] = ()
    injected: FaultKind | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = format_datetime(self.at)
        data["destinations"] = list(self.destinations)
        return data


class _SlidingWindow:
    """At most ``limit`` admitted requests per key in any one window (read from the config at
    every request, so a running sandbox can be retuned)."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._hits: dict[str | None, deque[float]] = {}

    def admit(self, key: str | None, now: float, limit: int) -> bool:
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True


def _hang_up(request: web.Request) -> None:
    """Close the request's connection: the client sees it drop, with no response."""
    transport = request.transport
    if transport is not None:
        transport.close()


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


def _read_fault(detail: str, position: tuple[int, int] = (1, 1)) -> SandboxFault:
    line, column = position
    return SandboxFault(
        f"{_READ_PREFIX}There is an error in XML document ({line}, {column}). ---> {detail}",
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


def _check_utf8(body: bytes) -> None:
    """The service reads UTF-8 only: refuse a body in UTF-16/32 or declared in another encoding
    (expat would otherwise decode ISO-8859-1 or UTF-16 as declared)."""
    if body.startswith(_UTF16_32_BOMS) or body[:2] in (b"<\x00", b"\x00<"):
        raise _read_fault("The request is not in UTF-8; the service reads UTF-8 only.")
    declared = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None and declared[1].lower() != b"utf-8":
        name = declared[1].decode("ascii", "replace")
        raise _read_fault(
            f"The request is declared in encoding '{name}'; the service reads UTF-8 only."
        )


def _parse_xml(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise SandboxFault(
            f"{_READ_PREFIX}There is an error in XML document (0, 0). ---> "
            "Root element is missing.",
            code="soap:Sender",
        )
    _check_utf8(body)
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
        raise _read_fault(str(exc), exc.position) from None
    except expat.ExpatError as exc:
        raise _read_fault(
            expat.ErrorString(exc.code) if exc.code else str(exc), (exc.lineno, exc.offset + 1)
        ) from None
    except ValueError as exc:  # xmltodict's own refusals (entities)
        raise _read_fault(str(exc)) from None
    if not isinstance(parsed, dict):
        raise _read_fault("Root element is missing.")
    return parsed


def _children(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    return {k: v for k, v in node.items() if not k.startswith(("@", "#"))}


def _is_nil(node: Any) -> bool:
    return isinstance(node, dict) and str(node.get("@xsi:nil", "")).strip() in ("true", "1")


def _text(node: Any) -> str | None:
    """The text of a leaf element; None when absent, empty or nil."""
    if isinstance(node, list):
        node = node[0] if node else None
    if node is None or _is_nil(node):
        return None
    if isinstance(node, dict):
        node = node.get("#text")
    return node or None


def _strings(node: Any) -> list[str | None] | None:
    """The ``<string>`` items of an ArrayOfString; None when the array is absent or nil."""
    if isinstance(node, list):
        node = node[0] if node else None
    if node is None or _is_nil(node):
        return None
    if not isinstance(node, dict):
        return []
    return [_text(item) for item in node.get("d:string", [])]


@dataclass(frozen=True, slots=True)
class _Call:
    version: SoapVersion
    operation: str
    params: dict[str, Any]


def _version_for(content_type: str) -> SoapVersion | None:
    mime = parse_mimetype(content_type)
    kind = f"{mime.type}/{mime.subtype}" + (f"+{mime.suffix}" if mime.suffix else "")
    if kind == "application/soap+xml":
        return "1.2"
    if kind == "text/xml":
        return "1.1"
    return None


def _charset_of(content_type: str) -> str | None:
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


def _read_call(version: SoapVersion, request: web.Request, body: bytes) -> _Call:
    """Parse the envelope and find the operation, ASMX style: SOAP 1.1 routes on the
    SOAPAction header, SOAP 1.2 on the ``action`` parameter or, without one, the body element."""
    action: str | None
    if version == "1.1":
        header = request.headers.get("SOAPAction")
        action = header.strip().strip('"').strip() if header is not None else ""
    else:
        content_type = parse_mimetype(request.headers.get("Content-Type", ""))
        action = content_type.parameters.get("action")
        action = action.strip().strip('"').strip() if action is not None else None
    if action is not None and _operation_of_action(action) is None:
        raise _unknown_action(action)
    doc = _parse_xml(body)
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
        raise _read_fault(f"The root element is not a SOAP {version} Envelope.")
    body_node = _children(doc[root]).get(f"{expected}:Body")
    elements = _children(body_node)
    element = next(iter(elements), None)
    operation = element[2:] if element and element.startswith("d:") else None
    if operation not in OPERATIONS:
        if action is not None:
            raise _read_fault(f"<{element or 'Body'}> was not expected.")
        raise SandboxFault(
            "Unable to handle request without a valid action parameter. "
            "Please supply a valid soap action.",
            code="soap:Sender",
        )
    assert operation is not None
    if action is not None and action != f"{NS_DEVINO}/{operation}":
        raise _read_fault(f"<{operation} xmlns='{NS_DEVINO}'> was not expected.")
    node = elements[f"d:{operation}"]
    if isinstance(node, list):
        node = node[0]
    return _Call(version, operation, _children(node))


def _check_schema(version: SoapVersion, body: bytes) -> None:
    """Strict mode: the body against the served WSDL's schema (see :mod:`.schema`)."""
    try:
        service_schema().check_envelope(body, NS_SOAP11 if version == "1.1" else NS_SOAP12)
    except SchemaViolation as violation:
        raise _read_fault(str(violation), violation.position) from None


# -- writing a reply -----------------------------------------------------------------------------


def _envelope(version: SoapVersion, body: str) -> bytes:
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


def _fault_body(version: SoapVersion, fault: SandboxFault) -> str:
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


def _element(name: str, value: object) -> str:
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


def _string_array(name: str, values: Iterable[object]) -> str:
    items = "".join(f"<string>{xml_escape(v)}</string>" for v in values)
    return f"<{name}>{items}</{name}>" if items else f"<{name} />"


def _state_xml(record: MessageStateRecord) -> str:
    return (
        "<GetMessageStateResult>"
        + _element("State", record.state)
        + _element("CreationDateUtc", record.creation_date_utc)
        + _element("SubmittedDateUtc", record.submitted_date_utc)
        + _element("ReportedDateUtc", record.reported_date_utc)
        + _element("TimeStampUtc", record.time_stamp_utc)
        + _element("StateDescription", record.state_description)
        + _element("Price", record.price)
        + "</GetMessageStateResult>"
    )


def _statistics_xml(stats: StatisticsRecord) -> str:
    fields = (
        ("Sent", stats.sent),
        ("Delivered", stats.delivered),
        ("Errors", stats.errors),
        ("InProcess", stats.in_process),
        ("Expired", stats.expired),
        ("Rejected", stats.rejected),
        ("Optimized", stats.optimized),
        ("Tarificated", stats.tarificated),
        ("Total", stats.total),
        ("TotalWithErrors", stats.total_with_errors),
        ("DeliveryRatio", stats.delivery_ratio),
    )
    return (
        "<GetStatisticsResult>"
        + "".join(_element(name, value) for name, value in fields)
        + "</GetStatisticsResult>"
    )


def _incoming_xml(records: list[IncomingRecord]) -> str:
    if not records:
        return "<GetIncomingMessagesResult />"
    items = "".join(
        "<IncomingMessage>"
        + _element("Data", r.data)
        + _element("SourceAddress", r.source_address)
        + _element("DestinationAddress", r.destination_address)
        + _element("CreatedDateUtc", r.created_date_utc)
        + "</IncomingMessage>"
        for r in records
    )
    return f"<GetIncomingMessagesResult>{items}</GetIncomingMessagesResult>"


def _incoming_json(record: IncomingRecord) -> dict[str, Any]:
    return {
        "source": record.source_address,
        "destination": record.destination_address,
        "text": record.data,
        "created_at": format_datetime(record.created_date_utc),
        "login": record.login,
    }


# -- the sandbox ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Delayed:
    """A processed request's reply, to be given only after an injected delay."""

    response: web.Response
    seconds: float


class Sandbox:
    """Devino's SmsService on a local port, backed by a :class:`SandboxState`.

    :param config: the settings; None is ``SandboxConfig()``.
    :param clock: the time the state runs on; None is the wall clock.

    Use ``async with Sandbox(config) as sandbox:`` (starts on 127.0.0.1 on a free port), or
    :meth:`start` and :meth:`close`. :attr:`url` is the endpoint to give a client.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.state = SandboxState(self.config, self.clock)
        self.requests: list[RequestRecord] = []
        self.faults = FaultInjector(self.config.faults)
        """The faults to inject (from ``config.faults``; a test adds its own with
        ``sandbox.faults.add(...)``) and what was injected (``sandbox.faults.injected``)."""
        self._closing = asyncio.Event()
        self._limiter = _SlidingWindow()
        self._answering = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._wsdl: str | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], str]] = {
            "GetSessionID": self._get_session_id,
            "GetBalance": self._get_balance,
            "SendMessage": self._send_message,
            "SendMessageByTimeZone": self._send_by_time_zone,
            "SendMessageByTimeZoneToAddresses": self._send_by_time_zone_to_addresses,
            "GetMessageState": self._get_message_state,
            "GetStatistics": self._get_statistics,
            "GetIncomingMessages": self._get_incoming_messages,
        }

    # -- lifecycle -------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes in the module docstring)."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/admin/incoming", self._admin_incoming)
        app.router.add_post("/admin/expire-sessions", self._admin_expire_sessions)
        app.router.add_get("/admin/requests", self._admin_requests)
        app.router.add_get("/admin/messages", self._admin_messages)
        app.router.add_route("*", "/{path:.*}", self._service)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Listen on ``host``:``port`` (0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        log.info("sandbox_started", url=self.url)
        return self

    async def close(self) -> None:
        self._closing.set()  # delayed replies stop waiting
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            log.info("sandbox_closed")

    async def __aenter__(self) -> Sandbox:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Wait until cancelled (the sandbox must be started)."""
        if self._runner is None:
            raise RuntimeError("start the sandbox first")
        await asyncio.Event().wait()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (a wildcard host is shown as loopback)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def url(self) -> str:
        """The SOAP endpoint: ``http://127.0.0.1:<port>/SmsService.asmx``."""
        return self.base_url + SERVICE_PATH

    @property
    def port(self) -> int | None:
        return self._port

    # -- HTTP ------------------------------------------------------------------------------------

    async def _service(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower() != SERVICE_PATH.lower():
            raise web.HTTPNotFound(text="Not found\n")
        if request.method == "POST":
            return await self._soap(request)
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])

    def _get(self, request: web.Request) -> web.Response:
        if any(key.lower() == "wsdl" for key in request.query):
            response = web.Response(
                body=self._wsdl_for(f"{request.scheme}://{request.host}{SERVICE_PATH}").encode(),
                headers={"Content-Type": CONTENT_TYPE_11},
            )
            status, operation = 200, "WSDL"
        else:
            items = "".join(f"<li>{op}</li>" for op in OPERATIONS)
            response = web.Response(
                text=f"<html><body><h1>SmsService (Devino sandbox)</h1><ul>{items}</ul>"
                f'<p><a href="{SERVICE_PATH}?WSDL">Service description</a></p></body></html>',
                content_type="text/html",
            )
            status, operation = 200, None
        self._record(time.monotonic(), self._now(), operation, "", None, status, None, ())
        return response

    def _wsdl_for(self, location: str) -> str:
        if self._wsdl is None:
            self._wsdl = (
                resources.files(__package__).joinpath("SmsService.wsdl").read_text(encoding="utf-8")
            )
        return re.sub(
            r'(<soap(?:12)?:address\s+location=")[^"]*(")',
            lambda m: m[1] + xml_escape(location) + m[2],
            self._wsdl,
        )

    def _now(self) -> datetime:
        return self.clock.now()

    async def _soap(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        started = time.perf_counter()
        at = self._now()
        body = await request.read()
        # Requests are answered one at a time, each having taken its arrival time first. The
        # rate limit measures arrivals: were several 1000-address requests parsed and checked
        # side by side, a request arriving meanwhile would wait a slice of each before it could
        # take its time, and requests sent a second apart would look closer together.
        async with self._answering:
            answer = await self._answer(request, body, arrived, started, at)
        if isinstance(answer, _Delayed):  # an injected delay holds only its own request
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), answer.seconds)
            return answer.response
        return answer

    async def _answer(
        self, request: web.Request, body: bytes, arrived: float, started: float, at: datetime
    ) -> web.Response | _Delayed:
        version = _version_for(request.headers.get("Content-Type", ""))
        if version is None:
            content_type = request.headers.get("Content-Type", "(none)")
            self._record(arrived, at, None, "", None, 415, None, ())
            return web.Response(
                status=415,
                text=f"Unsupported content type {content_type}: use text/xml (SOAP 1.1) or "
                "application/soap+xml (SOAP 1.2).\n",
            )
        charset = _charset_of(request.headers["Content-Type"])
        if charset is not None and charset.lower() != "utf-8":
            self._record(arrived, at, None, version, None, 415, None, ())
            return web.Response(
                status=415,
                text=f"Unsupported charset {charset}: the service reads requests in UTF-8 only "
                "(charset=utf-8).\n",
            )
        call: _Call | None = None
        read_error: SandboxFault | None = None
        try:
            call = _read_call(version, request, body)
            if self.config.strict:
                _check_schema(version, body)
        except SandboxFault as fault:
            read_error = fault
        login = self._login_of(call)
        destinations = self._destinations_of(call)
        operation = call.operation if call else None
        limit = self.config.rate_limit
        if limit.enabled and not self._limiter.admit(login, arrived, limit.requests_per_second):
            log.info("sandbox_rate_limited", login=login, operation=operation)
            if limit.response == "fault":
                read_error = SandboxFault.processing(self.config.fault_texts.rate_limited)
            else:
                status = 429 if limit.response == "http_429" else 503
                text = self.config.fault_texts.rate_limited
                self._record(arrived, at, operation, version, login, status, text, destinations)
                return web.Response(
                    status=status,
                    text=text + "\n",
                    headers={"Retry-After": str(math.ceil(limit.retry_after_seconds))},
                )
        injected: tuple[FaultRule, int] | None = None
        if call is not None and read_error is None:
            injected = self.faults.draw(call.operation)
        if injected is not None:
            assert call is not None
            rule, ordinal = injected
            self.faults.record(rule, ordinal, call.operation, login, destinations)
            log.info("sandbox_fault_injected", kind=rule.kind, operation=operation, login=login)
            early = self._refuse_injected(
                rule,
                request,
                call,
                version,
                lambda status, text: self._record(
                    arrived, at, operation, version, login, status, text, destinations, rule.kind
                ),
            )
            if early is not None:
                return early
        status, payload, fault_text, headers = self._process(call, version, read_error)
        kind = injected[0].kind if injected is not None else None
        answered = 0 if kind == "close_after_processing" else status
        self._record(
            arrived, at, operation, version, login, answered, fault_text, destinations, kind
        )
        log.info(
            "sandbox_request_handled",
            operation=operation,
            soap_version=version,
            login=login,
            status=status,
            fault=fault_text,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        content_type = CONTENT_TYPE_11 if version == "1.1" else CONTENT_TYPE_12
        response = web.Response(
            status=status, body=payload, headers={"Content-Type": content_type, **headers}
        )
        if injected is not None:
            if injected[0].kind == "delay":  # waited for outside the answering lock
                return _Delayed(response, injected[0].delay_seconds)
            spoiled = self._spoil_reply(injected[0], request, status, payload, content_type)
            if spoiled is not None:
                return spoiled
        return response

    def _process(
        self, call: _Call | None, version: SoapVersion, read_error: SandboxFault | None
    ) -> tuple[int, bytes, str | None, dict[str, str]]:
        """Handle a read request: (HTTP status, reply body, fault text, extra headers)."""
        try:
            if read_error is not None:
                raise read_error
            assert call is not None
            try:
                result = self._handlers[call.operation](call.params)
            except SandboxFault:
                raise
            except Exception as exc:  # what ASMX does with an unhandled exception
                log.exception("sandbox_internal_error", operation=call.operation)
                raise SandboxFault.processing(type(exc).__name__) from exc
            op = call.operation
            payload = f'<{op}Response xmlns="{NS_DEVINO}">{result}</{op}Response>'
            return 200, _envelope(version, payload), None, {}
        except SandboxFault as fault:
            return (
                fault.http_status,
                _envelope(version, _fault_body(version, fault)),
                fault.reason,
                fault.headers,
            )

    # -- injected faults (see .faults) -----------------------------------------------------------

    def _refuse_injected(
        self,
        rule: FaultRule,
        request: web.Request,
        call: _Call,
        version: SoapVersion,
        record: Callable[[int, str | None], None],
    ) -> web.Response | None:
        """The kinds that leave the request unprocessed: their response (recorded with
        ``record(status, text)``), or None for the kinds that go on to process it
        (``session_expired`` expires the caller's session first)."""
        if rule.kind == "session_expired":
            self.state.expire_session(_text(call.params.get("d:sessionID")))
            return None
        limit = self.config.rate_limit
        if rule.kind == "receiver_fault" or (
            rule.kind == "rate_limited" and limit.response == "fault"
        ):
            texts = self.config.fault_texts
            reason = (
                texts.temporarily_unavailable
                if rule.kind == "receiver_fault"
                else texts.rate_limited
            )
            fault = SandboxFault.processing(reason)
            content_type = CONTENT_TYPE_11 if version == "1.1" else CONTENT_TYPE_12
            record(500, fault.reason)
            return web.Response(
                status=500,
                body=_envelope(version, _fault_body(version, fault)),
                headers={"Content-Type": content_type},
            )
        if rule.kind in ("http_503", "rate_limited"):
            if rule.kind == "http_503":
                status, text, retry_after = 503, "Service Unavailable", rule.retry_after_seconds
            else:
                status = 429 if limit.response == "http_429" else 503
                text, retry_after = self.config.fault_texts.rate_limited, limit.retry_after_seconds
            headers = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
            record(status, text)
            return web.Response(status=status, text=text + "\n", headers=headers)
        if rule.kind == "not_xml":
            record(200, None)
            return web.Response(text="Service temporarily unavailable. Maintenance in progress.\n")
        if rule.kind == "close_before_response":
            record(0, None)
            _hang_up(request)
            return web.Response(status=204)
        return None

    def _spoil_reply(
        self, rule: FaultRule, request: web.Request, status: int, body: bytes, content_type: str
    ) -> web.Response | None:
        """The kinds that spoil the reply of a processed request: the response to give instead,
        or None to give the normal one (``session_expired``; ``delay`` is waited for by
        :meth:`_soap`, outside the answering lock)."""
        if rule.kind == "close_after_processing":
            _hang_up(request)
            return web.Response(status=204)
        if rule.kind == "truncated":
            cut = body[: len(body) // 2]
            return web.Response(status=status, body=cut, headers={"Content-Type": content_type})
        return None

    def _record(
        self,
        arrived: float,
        at: datetime,
        operation: str | None,
        version: str,
        login: str | None,
        status: int,
        fault: str | None,
        destinations: tuple[str, ...],
        injected: FaultKind | None = None,
    ) -> None:
        self.requests.append(
            RequestRecord(
                arrived, at, operation, version, login, status, fault, destinations, injected
            )
        )

    def _login_of(self, call: _Call | None) -> str | None:
        if call is None:
            return None
        if call.operation == "GetSessionID":
            login = _text(call.params.get("d:login"))
            return login if login in self.state.accounts else None
        return self.state.login_for_session(_text(call.params.get("d:sessionID")))

    @staticmethod
    def _destinations_of(call: _Call | None) -> tuple[str, ...]:
        if call is None:
            return ()
        params = call.params
        if call.operation == "SendMessage":
            found = _strings(_children(params.get("d:message")).get("d:DestinationAddresses"))
        elif call.operation == "SendMessageByTimeZoneToAddresses":
            found = _strings(params.get("d:destinationAddresses"))
        elif call.operation == "SendMessageByTimeZone":
            found = [_text(params.get("d:destinationAddress"))]
        else:
            found = None
        return tuple(d for d in found or () if d is not None)

    # -- parameters ------------------------------------------------------------------------------

    def _required(self, params: dict[str, Any], name: str) -> str:
        value = _text(params.get(f"d:{name}"))
        if value is None:
            raise SandboxFault.processing(self.config.fault_texts.argument_null, name)
        return value

    def _datetime(
        self, params: dict[str, Any], name: str, *, required: bool = True
    ) -> datetime | None:
        raw = _text(params.get(f"d:{name}"))
        if raw is None:
            if required:
                raise SandboxFault.processing(self.config.fault_texts.argument_null, name)
            return None
        try:
            return parse_datetime(raw)
        except ValueError:
            raise _read_fault(f"The string '{raw}' is not a valid AllXsd value.") from None

    @staticmethod
    def _integer(raw: str | None, bits: int) -> int | None:
        if raw is None:
            return None
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _read_fault("Input string was not in a correct format.")
        value = int(text)
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            kind = "an Int64" if bits == 64 else "an Int32"
            raise _read_fault(f"Value was either too large or too small for {kind}.")
        return value

    @staticmethod
    def _boolean(raw: str | None) -> bool | None:
        if raw is None:
            return None
        value = raw.strip()
        if value not in ("true", "false", "1", "0"):
            raise _read_fault(f"The string '{raw}' is not a valid Boolean value.")
        return value in ("true", "1")

    # -- operations (each returns the XML inside <OpResponse>) -----------------------------------

    def _get_session_id(self, params: dict[str, Any]) -> str:
        session_id = self.state.login(_text(params.get("d:login")), _text(params.get("d:password")))
        return _element("GetSessionIDResult", session_id)

    def _get_balance(self, params: dict[str, Any]) -> str:
        balance = self.state.balance(_text(params.get("d:sessionID")))
        return _element("GetBalanceResult", balance)

    def _send_message(self, params: dict[str, Any]) -> str:
        session_id = _text(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        message_node = params.get("d:message")
        if message_node is None or _is_nil(message_node):
            raise SandboxFault.processing(self.config.fault_texts.argument_null, "message")
        message = _children(message_node)
        delay = self._datetime(message, "DelayUntilUtc", required=False)
        validity = self._integer(_text(message.get("d:Validity")), 32)
        self._boolean(_text(message.get("d:ReceiptRequested")))
        ids = self.state.send(
            session_id,
            _text(message.get("d:SourceAddress")),
            _strings(message.get("d:DestinationAddresses")),
            _text(message.get("d:Data")),
            delay_until_utc=delay,
            validity_minutes=validity,
        )
        return _string_array("SendMessageResult", ids)

    def _send_by_time_zone_common(
        self, params: dict[str, Any], destinations: list[str | None] | None
    ) -> list[int]:
        session_id = _text(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        send_date = self._datetime(params, "sendDate")
        validity = self._integer(_text(params.get("d:validity")), 32)
        return self.state.send(
            session_id,
            _text(params.get("d:sourceAddress")),
            destinations,
            _text(params.get("d:data")),
            local_send_time=send_date,
            validity_minutes=validity,
        )

    def _send_by_time_zone(self, params: dict[str, Any]) -> str:
        destination = _text(params.get("d:destinationAddress"))
        if destination is None:
            self.state.account_for_session(_text(params.get("d:sessionID")))
            raise SandboxFault.processing(
                self.config.fault_texts.argument_null, "destinationAddress"
            )
        ids = self._send_by_time_zone_common(params, [destination])
        return _string_array("SendMessageByTimeZoneResult", ids)

    def _send_by_time_zone_to_addresses(self, params: dict[str, Any]) -> str:
        ids = self._send_by_time_zone_common(params, _strings(params.get("d:destinationAddresses")))
        return _string_array("SendMessageByTimeZoneToAddressesResult", ids)

    def _get_message_state(self, params: dict[str, Any]) -> str:
        session_id = _text(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        message_id = self._integer(self._required(params, "messageID"), 64)
        assert message_id is not None
        return _state_xml(self.state.message_state(session_id, message_id))

    def _get_statistics(self, params: dict[str, Any]) -> str:
        session_id = _text(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        start = self._datetime(params, "startDateTime")
        end = self._datetime(params, "endDateTime")
        assert start is not None
        assert end is not None
        return _statistics_xml(self.state.statistics(session_id, start, end))

    def _get_incoming_messages(self, params: dict[str, Any]) -> str:
        session_id = _text(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        high = self._datetime(params, "maxDateUTC")
        low = self._datetime(params, "minDateUTC")
        assert high is not None
        assert low is not None
        return _incoming_xml(self.state.incoming(session_id, low, high))

    # -- admin -----------------------------------------------------------------------------------

    async def _admin_incoming(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        missing = [k for k in ("source", "destination", "text") if not isinstance(data.get(k), str)]
        if missing:
            return web.json_response(
                {"error": f"missing or not a string: {', '.join(missing)}"}, status=400
            )
        created_at: datetime | None = None
        if data.get("created_at") is not None:
            try:
                created_at = parse_datetime(str(data["created_at"]))
            except ValueError:
                return web.json_response(
                    {"error": "created_at must be an ISO 8601 date-time (naive = UTC)"}, status=400
                )
        login = data.get("login")
        try:
            record = self.state.inject_incoming(
                data["source"], data["destination"], data["text"], created_at, login=login
            )
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(_incoming_json(record), status=201)

    async def _admin_expire_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.state.expire_sessions()})

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return web.json_response([record.to_json() for record in self.requests])

    async def _admin_messages(self, request: web.Request) -> web.Response:
        now = self.state.clock.now()
        out = []
        for message in self.state.messages():
            record = self.state.state_of(message, now)
            out.append(
                {
                    "message_id": str(message.message_id),
                    "login": message.login,
                    "source": message.source,
                    "destination": message.destination,
                    "segment": f"{message.segment_index + 1}/{message.segment_count}",
                    "created_at": format_datetime(message.created_at),
                    "send_at": format_datetime(message.send_at),
                    "state": record.state,
                    "state_description": record.state_description,
                    "price": format_decimal(message.price),
                }
            )
        return web.json_response(out)


async def run_sandbox(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8085,
    *,
    clock: Clock | None = None,
    on_ready: Callable[[Sandbox], object] | None = None,
) -> None:
    """Run a sandbox until cancelled (the CLI's ``notify-devino sandbox``).

    Logs ``sandbox_started`` with the URL; ``on_ready`` is called with the started sandbox
    (the CLI prints :attr:`Sandbox.url` from it).
    """
    sandbox = Sandbox(config, clock=clock)
    await sandbox.start(host, port)
    try:
        if on_ready is not None:
            on_ready(sandbox)
        await sandbox.serve_forever()
    finally:
        await sandbox.close()
