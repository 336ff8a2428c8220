"""Replies of the Devino SmsService: XML -> typed values, faults -> typed errors.

:func:`read_result` takes one HTTP reply (status, body) and returns the ``<Operation>Result``
node, or raises the error the reply means: a fault is classified by :data:`FAULT_RULES`, HTTP
429/503 is :class:`~notify_devino.errors.RateLimitedError`, anything unreadable is
:class:`~notify_devino.errors.ParseError`. The ``*_from`` functions turn a result node into
typed values.

Parsing uses xmltodict (expat) with namespaces processed and none renamed: every element is
keyed by its namespace URI and name (``http://ws.devinosms.com:State``), so any prefix
(``soap:``, ``soap12:``, a default namespace) reads the same, and an element is found only in
the namespace the WSDL puts it in (``elementFormDefault="qualified"``: the Devino namespace, for
every element inside the SOAP Body). A reply with a DTD or an entity declaration is refused,
entities are never expanded, and replies are size-capped. No expat or xmltodict exception leaves
this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from xml.parsers import expat

import xmltodict

from notify_devino.errors import (
    AuthenticationError,
    InsufficientFundsError,
    ParseError,
    ProviderFaultError,
    RateLimitedError,
    SessionExpiredError,
    TemporaryFaultError,
)
from notify_devino.transport import parse_retry_after

from .envelopes import DEVINO_NS, SOAP11_NS, SOAP12_NS, XSI_NS
from .models import DevinoStatistics, IncomingMessage, MessageState, state_info

DEFAULT_MAX_REPLY_BYTES = 10 * 2**20
"""Replies larger than this (10 MiB) are refused unread."""

RATE_LIMIT_STATUSES = frozenset({429, 503})
"""HTTP statuses that mean "slow down": the request was refused, not processed."""

FAULT_RULES: tuple[tuple[re.Pattern[str], type[ProviderFaultError]], ...] = (
    (re.compile(r"invalid user login or password", re.IGNORECASE), AuthenticationError),
    (re.compile(r"session", re.IGNORECASE), SessionExpiredError),
    (re.compile(r"not enough credits|\bbalance\b", re.IGNORECASE), InsufficientFundsError),
    (re.compile(r"too many requests|\brate\b|rate.?limit", re.IGNORECASE), RateLimitedError),
    (re.compile(r"temporar|try again", re.IGNORECASE), TemporaryFaultError),
)
"""How a fault's text maps to an error class: the first pattern found in the text wins; a text
that matches none is a plain :class:`~notify_devino.errors.ProviderFaultError`.

The service's fault texts for an expired session, too little balance, too many requests or a
temporary failure are not documented (the REST twin says ``SessionID expired``, ``Invalid
session``, ``Not enough credits``), hence the loose patterns. A temporary fault (``Service is
temporarily unavailable, try again later``) is the service refusing the request: a send may be
retried after one, as after a rate-limit refusal."""


def _key(namespace: str | None, name: str) -> str:
    """xmltodict's key for an element (``@`` before it for an attribute) with namespaces
    processed: ``<namespace URI>:<name>``, or the bare name for one in no namespace."""
    return name if namespace is None else f"{namespace}:{name}"


_DEVINO = _key(DEVINO_NS, "")
"""The key prefix of the Devino namespace, whose elements are looked up by name."""
_ENVELOPES: Mapping[str, str] = {
    _key(SOAP11_NS, "Envelope"): SOAP11_NS,
    _key(SOAP12_NS, "Envelope"): SOAP12_NS,
}
_LISTS = frozenset({"string", "IncomingMessage"})
"""Devino elements that are always read as lists (xmltodict gives one child as itself)."""
_FORCE_LIST = tuple(_DEVINO + name for name in sorted(_LISTS))
_NIL = "@" + _key(XSI_NS, "nil")
_MISSING: Any = object()
_SNIPPET = 2000

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
"""The forms of ``xsd:dateTime`` accepted; ``datetime.fromisoformat`` reads them (and more,
which this keeps out)."""
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_MESSAGE_ID = re.compile(r"\d{1,19}")
_SESSION_ID = re.compile(r"[!-~]{1,256}")


# ---------------------------------------------------------------------------------------------
# XML


class _ForbiddenMarkupError(ValueError):
    pass


def _refuse(*_args: object) -> NoReturn:
    raise _ForbiddenMarkupError("DTDs and entity declarations are not accepted in replies")


class _GuardedExpat:
    """Stands in for ``xml.parsers.expat`` inside xmltodict: the parsers it makes refuse any
    DOCTYPE and any external entity, whatever the body's encoding."""

    ExpatError = expat.ExpatError

    @staticmethod
    def ParserCreate(encoding: str | None = None, namespace_separator: str | None = None) -> Any:
        parser = expat.ParserCreate(encoding, namespace_separator)
        parser.StartDoctypeDeclHandler = _refuse
        parser.EntityDeclHandler = _refuse
        parser.ExternalEntityRefHandler = _refuse
        return parser


def _snippet(body: bytes) -> str:
    return body[:_SNIPPET].decode("utf-8", errors="replace")


def parse_xml(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_REPLY_BYTES, redact: bool = False
) -> dict[str, Any]:
    """Parse a reply into xmltodict's dicts, keyed by namespace and name (see the module),
    ``string`` and ``IncomingMessage`` always lists. Whitespace is kept (texts are verbatim).

    :param redact: leave the body out of the error (a reply that carries a session ID).
    :raises ParseError: empty, too large, not well-formed or truncated, or with a DTD.
    """
    shown = None if redact else _snippet(body)
    if len(body) > max_bytes:
        raise ParseError(f"reply of {len(body)} bytes is larger than {max_bytes}", body=shown)
    if not body.strip():
        raise ParseError("reply body is empty", body=shown, transient=True)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ParseError("reply has a DTD or an entity declaration; refused", body=shown)
    try:
        doc = xmltodict.parse(
            body,
            expat=_GuardedExpat,
            process_namespaces=True,
            force_list=_FORCE_LIST,
            strip_whitespace=False,
            disable_entities=True,
        )
    except _ForbiddenMarkupError as exc:
        raise ParseError(str(exc), body=shown) from exc
    except (expat.ExpatError, ValueError) as exc:
        # Unreadable bytes (cut short, an intermediary's page) may read fine on a second try.
        raise ParseError(
            f"reply is not well-formed XML: {exc}", body=shown, transient=True
        ) from exc
    if not isinstance(doc, dict):
        raise ParseError("reply has no root element", body=shown)
    return doc


# ---------------------------------------------------------------------------------------------
# Node access. xmltodict gives: None for an empty element, a str for text, a dict for an element
# with attributes or children (text under "#text", attributes under "@<key>", namespace
# declarations under "@xmlns"). Elements are named by their Devino name: "State" finds the key
# "http://ws.devinosms.com:State".


def _shown(key: str) -> str:
    """An element key as a reader knows it: ``<State>`` in the Devino namespace, else
    ``<{namespace}name>`` (Clark notation), or ``<name>`` with "(no namespace)"."""
    if key.startswith(_DEVINO):
        return f"<{key[len(_DEVINO) :]}>"
    namespace, colon, name = key.rpartition(":")
    return f"<{{{namespace}}}{name}>" if colon else f"<{key}> (no namespace)"


def _is_nil(node: Any) -> bool:
    return isinstance(node, dict) and str(node.get(_NIL, "")).strip() in ("true", "1")


def _children(node: Any, where: str) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ParseError(f"{where} has text where elements were expected")
    return {k: v for k, v in node.items() if not k.startswith(("@", "#"))}


def _child(node: Any, name: str, where: str) -> Any:
    """The Devino element ``name`` under ``node``: _MISSING when absent. A repeated child is an
    error, unless ``name`` is one always read as a list."""
    if node is None:
        return _MISSING
    if not isinstance(node, dict):
        raise ParseError(f"{where} has text where elements were expected")
    value = node.get(_DEVINO + name, _MISSING)
    if isinstance(value, list) and name not in _LISTS:
        raise ParseError(f"{where} has {len(value)} <{name}> elements, expected one")
    return value


def _text(node: Any, where: str) -> str | None:
    """An element's text: None when nil, "" when empty."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        if _is_nil(node):
            return None
        if _children(node, where):
            raise ParseError(f"{where} has elements where text was expected")
        return str(node.get("#text", ""))
    raise ParseError(f"{where} is repeated")


def _required_text(node: Any, name: str, where: str) -> str:
    value = _child(node, name, where)
    if value is _MISSING:
        raise ParseError(f"{where} has no <{name}>")
    text = _text(value, f"{where}/{name}")
    if text is None:
        raise ParseError(f"{where}/{name} is nil")
    return text


def _optional_text(node: Any, name: str, where: str) -> str | None:
    value = _child(node, name, where)
    return None if value is _MISSING else _text(value, f"{where}/{name}")


def _texts(node: Any, where: str) -> dict[str, str | None]:
    """The text of every Devino element under ``node``, by name (None when nil): one pass, for
    results whose children are all values. A repeated child is an error."""
    if not isinstance(node, dict):
        raise ParseError(f"{where} has text where elements were expected")
    texts: dict[str, str | None] = {}
    start = len(_DEVINO)
    for key, value in node.items():
        if key.startswith(_DEVINO):
            name = key[start:]
            if isinstance(value, str):
                texts[name] = value
            elif isinstance(value, list):
                raise ParseError(f"{where} has {len(value)} <{name}> elements, expected one")
            else:
                texts[name] = _text(value, f"{where}/{name}")
    return texts


def _nillable_datetime(text: str | None, *, field: str) -> datetime | None:
    """A nillable dateTime: None when nil, absent, empty or .NET's ``DateTime.MinValue``."""
    if text is None:
        return None
    value = text.strip()
    if not value or value.startswith("0001-01-01T00:00:00"):
        return None
    return parse_datetime(value, field=field)


# ---------------------------------------------------------------------------------------------
# Values


def parse_int(text: str, *, field: str) -> int:
    value = text.strip()
    if not _INTEGER.fullmatch(value):
        raise ParseError(f"{field} is not an integer: {text[:40]!r}")
    return int(value)


def parse_decimal(text: str, *, field: str) -> Decimal:
    value = text.strip()
    if not _DECIMAL.fullmatch(value):
        raise ParseError(f"{field} is not a decimal number: {text[:40]!r}")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guards
        raise ParseError(f"{field} is not a decimal number: {text[:40]!r}") from exc


def parse_datetime(text: str, *, field: str) -> datetime:
    """A .NET ``xsd:dateTime``, leniently: seconds and fractions optional (fractions of any
    length, cut to microseconds), ``Z`` or an offset optional. No offset means UTC. The result
    is an aware UTC datetime."""
    value = text.strip()
    if _DATETIME.fullmatch(value) is None:
        raise ParseError(f"{field} is not a dateTime: {text[:40]!r}")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ParseError(f"{field} is not a valid dateTime: {text[:40]!r}") from exc


# ---------------------------------------------------------------------------------------------
# Faults


def classify_fault(
    *,
    operation: str,
    code: str | None,
    text: str | None,
    http_status: int | None,
    raw: str | None,
) -> ProviderFaultError:
    """The error a SOAP fault means, by :data:`FAULT_RULES`. ``text`` is kept verbatim."""
    haystack = " ".join((text or "").split())
    cls: type[ProviderFaultError] = ProviderFaultError
    for pattern, candidate in FAULT_RULES:
        if pattern.search(haystack):
            cls = candidate
            break
    message = f"{operation}: Devino fault {code or '?'}: {haystack or '(no text)'}"
    return cls(message, code=code, text=text, http_status=http_status, raw=raw)


def _fault_parts(fault: Any, soap_ns: str) -> tuple[str | None, str | None]:
    """(code, text) of a SOAP 1.2 fault (``Code/Value``, ``Reason/Text``, in the SOAP 1.2
    namespace) or a SOAP 1.1 one (``faultcode``, ``faultstring``, in no namespace); either may be
    None when the fault is odd."""

    def text_of(node: Any) -> str | None:
        if isinstance(node, list):  # several Reason/Text (one per language): take the first
            node = node[0] if node else None
        try:
            return _text(node, "Fault")
        except ParseError:
            return None

    if not isinstance(fault, dict):
        return None, text_of(fault)
    if soap_ns == SOAP12_NS:
        code_node = fault.get(_key(SOAP12_NS, "Code"))
        value = code_node.get(_key(SOAP12_NS, "Value")) if isinstance(code_node, dict) else None
        reason = fault.get(_key(SOAP12_NS, "Reason"))
        if isinstance(reason, dict):
            reason = reason.get(_key(SOAP12_NS, "Text"))
        return text_of(value), text_of(reason)
    return text_of(fault.get("faultcode")), text_of(fault.get("faultstring"))


def _soap_body(doc: dict[str, Any]) -> tuple[str | None, Any]:
    """(the SOAP namespace, the Body node) of a reply; (None, _MISSING) when its root is not a
    SOAP envelope, (namespace, _MISSING) when the envelope has no Body."""
    for key, envelope in doc.items():  # the root: a document has one
        soap_ns = _ENVELOPES.get(key)
        if soap_ns is None:
            return None, _MISSING
        if not isinstance(envelope, dict):
            return soap_ns, _MISSING
        return soap_ns, envelope.get(_key(soap_ns, "Body"), _MISSING)
    return None, _MISSING


def read_result(
    body: bytes,
    *,
    operation: str,
    http_status: int = 200,
    retry_after: str | None = None,
    max_bytes: int = DEFAULT_MAX_REPLY_BYTES,
) -> Any:
    """Check one reply and return its ``<operation>Result`` node (None when empty or absent).

    :param retry_after: the reply's ``Retry-After`` header, if any.
    :raises RateLimitedError: HTTP 429 or 503, or a fault that says so.
    :raises ProviderFaultError: a SOAP fault (a subclass by :data:`FAULT_RULES`), or a non-200
        reply without one.
    :raises ParseError: a 200 reply that is not a SOAP envelope with the expected response.
    """
    redact = operation == "GetSessionID"
    raw = body[:max_bytes].decode("utf-8", errors="replace")
    try:
        doc = parse_xml(body, max_bytes=max_bytes, redact=redact)
    except ParseError:
        if http_status in RATE_LIMIT_STATUSES:
            raise RateLimitedError(
                f"{operation}: HTTP {http_status}, rate limited",
                retry_after=parse_retry_after(retry_after),
                http_status=http_status,
                raw=raw,
            ) from None
        if http_status != 200:
            raise ProviderFaultError(
                f"{operation}: HTTP {http_status} without a SOAP fault",
                http_status=http_status,
                raw=raw,
            ) from None
        raise
    soap_ns, soap_body = _soap_body(doc)
    fault = (
        soap_body.get(_key(soap_ns, "Fault"), _MISSING)
        if soap_ns is not None and isinstance(soap_body, dict)
        else _MISSING
    )
    code, text = (None, None) if fault is _MISSING else _fault_parts(fault, soap_ns or "")
    if http_status in RATE_LIMIT_STATUSES:
        raise RateLimitedError(
            f"{operation}: HTTP {http_status}, rate limited" + (f": {text}" if text else ""),
            retry_after=parse_retry_after(retry_after),
            code=code,
            text=text,
            http_status=http_status,
            raw=raw,
        )
    if fault is not _MISSING:
        raise classify_fault(
            operation=operation, code=code, text=text, http_status=http_status, raw=raw
        )
    if http_status != 200:
        raise ProviderFaultError(
            f"{operation}: HTTP {http_status} without a SOAP fault",
            http_status=http_status,
            raw=raw,
        )
    shown = None if redact else _snippet(body)
    try:
        if soap_ns is None:  # someone else answered (a maintenance page): may pass
            root = next(iter(doc))
            raise ParseError(f"reply is not a SOAP envelope (root {_shown(root)})", transient=True)
        if soap_body is _MISSING:
            raise ParseError("SOAP envelope has no Body")
        if isinstance(soap_body, list):
            raise ParseError(f"SOAP envelope has {len(soap_body)} Body elements, expected one")
        response = _child(soap_body, f"{operation}Response", "Body")
        if response is _MISSING:
            found = ", ".join(_shown(k) for k in _children(soap_body, "Body")) or "nothing"
            raise ParseError(f"SOAP Body has {found}, expected <{operation}Response>")
        result = _child(response, f"{operation}Result", f"{operation}Response")
    except ParseError as exc:
        raise ParseError(f"{operation}: {exc}", body=shown, transient=exc.transient) from None
    return None if result is _MISSING else result


# ---------------------------------------------------------------------------------------------
# Results


def session_id_from(result: Any) -> str:
    """``GetSessionIDResult``: the session ID. Errors never show it."""
    try:
        text = _text(result, "GetSessionIDResult")
    except ParseError as exc:
        raise ParseError(f"GetSessionID: {exc}") from None
    value = (text or "").strip()
    if not _SESSION_ID.fullmatch(value):
        raise ParseError("GetSessionID: the reply has no usable session ID")
    return value


def balance_from(result: Any) -> Decimal:
    """``GetBalanceResult``: the balance, overdraft included."""
    text = _text(result, "GetBalanceResult")
    if not text:
        raise ParseError("GetBalance: the reply has no balance")
    return parse_decimal(text, field="GetBalanceResult")


def message_ids_from(result: Any, *, operation: str) -> list[str]:
    """An ``ArrayOfString`` of message IDs, as decimal strings, in the service's order."""
    where = f"{operation}Result"
    items = _child(result, "string", where)
    if items is _MISSING:
        return []
    ids: list[str] = []
    for index, item in enumerate(items):
        text = _text(item, f"{where}/string[{index}]")
        value = (text or "").strip()
        if not _MESSAGE_ID.fullmatch(value):
            shown = "nil" if text is None else repr(value[:40])
            raise ParseError(f"{operation}: message ID {index} is not a number: {shown}")
        ids.append(str(int(value)))
    return ids


def message_state_from(result: Any, *, message_id: str) -> MessageState:
    """``GetMessageStateResult``. An unknown state code is kept and named ``Unknown(<code>)``."""
    where = "GetMessageStateResult"
    if result is None or _is_nil(result):
        raise ParseError("GetMessageState: the reply has no result")
    texts = _texts(result, where)
    state_text = texts.get("State")
    if state_text is None:
        raise ParseError(f"{where}/State is nil" if "State" in texts else f"{where} has no <State>")
    state = parse_int(state_text, field="GetMessageStateResult/State")
    info = state_info(state)
    price_text = texts.get("Price")
    return MessageState(
        message_id=message_id,
        state=state,
        state_name=info.name,
        description=texts.get("StateDescription"),
        creation_date_utc=_nillable_datetime(
            texts.get("CreationDateUtc"), field="GetMessageStateResult/CreationDateUtc"
        ),
        submitted_date_utc=_nillable_datetime(
            texts.get("SubmittedDateUtc"), field="GetMessageStateResult/SubmittedDateUtc"
        ),
        reported_date_utc=_nillable_datetime(
            texts.get("ReportedDateUtc"), field="GetMessageStateResult/ReportedDateUtc"
        ),
        time_stamp_utc=_nillable_datetime(
            texts.get("TimeStampUtc"), field="GetMessageStateResult/TimeStampUtc"
        ),
        price=(
            parse_decimal(price_text, field="GetMessageStateResult/Price")
            if price_text is not None and price_text.strip()
            else None
        ),
        is_final=info.is_final,
    )


_STATISTICS_FIELDS = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("errors", "Errors"),
    ("in_process", "InProcess"),
    ("expired", "Expired"),
    ("rejected", "Rejected"),
    ("optimized", "Optimized"),
    ("tarificated", "Tarificated"),
    ("total", "Total"),
    ("total_with_errors", "TotalWithErrors"),
)


def statistics_from(result: Any) -> DevinoStatistics:
    """``GetStatisticsResult``: all 11 fields are required (``InProgress``, the seed's spelling,
    is read as ``InProcess``)."""
    where = "GetStatisticsResult"
    if result is None or _is_nil(result):
        raise ParseError("GetStatistics: the reply has no result")
    counts: dict[str, int] = {}
    for attr, name in _STATISTICS_FIELDS:
        if name == "InProcess" and _child(result, name, where) is _MISSING:
            name = "InProgress"
        counts[attr] = parse_int(_required_text(result, name, where), field=f"{where}/{name}")
    ratio = parse_decimal(
        _required_text(result, "DeliveryRatio", where), field=f"{where}/DeliveryRatio"
    )
    return DevinoStatistics(**counts, delivery_ratio=ratio)


def incoming_messages_from(result: Any) -> list[IncomingMessage]:
    """``GetIncomingMessagesResult``: the messages in the service's order (``CreateDateUtc``,
    the seed's spelling, is read as ``CreatedDateUtc``)."""
    where = "GetIncomingMessagesResult"
    items = _child(result, "IncomingMessage", where)
    if items is _MISSING:
        return []
    messages: list[IncomingMessage] = []
    for index, item in enumerate(items):
        at = f"{where}/IncomingMessage[{index}]"
        if item is None or _is_nil(item):
            continue
        date_name = "CreatedDateUtc"
        if _child(item, date_name, at) is _MISSING:
            date_name = "CreateDateUtc"
        messages.append(
            IncomingMessage(
                data=_optional_text(item, "Data", at) or "",
                source_address=_required_text(item, "SourceAddress", at).strip(),
                destination_address=_required_text(item, "DestinationAddress", at).strip(),
                created_date_utc=parse_datetime(
                    _required_text(item, date_name, at), field=f"{at}/{date_name}"
                ),
            )
        )
    return messages


__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "FAULT_RULES",
    "RATE_LIMIT_STATUSES",
    "balance_from",
    "classify_fault",
    "incoming_messages_from",
    "message_ids_from",
    "message_state_from",
    "parse_datetime",
    "parse_decimal",
    "parse_int",
    "parse_retry_after",
    "parse_xml",
    "read_result",
    "session_id_from",
    "statistics_from",
]
