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
every element inside the SOAP Body).

Hostile or foreign replies cost little and say what they are: a reply that is not SOAP (an HTML
page, JSON, plain text, an empty body, a wrong content type) is named as such, with the
operation, the URL and the HTTP status; a reply with a DTD or an entity declaration is refused
and entities are never expanded; what the parser builds is bounded (:data:`MAX_REPLY_DEPTH`,
:data:`MAX_REPLY_ELEMENTS`, :class:`_BoundedParser`), and so are the numbers read (to their XSD
types, before any conversion) and the texts put in errors (:data:`MAX_SHOWN_CHARS`,
:data:`MAX_RAW_CHARS`). No expat,
xmltodict or conversion exception leaves this module: only the error tree of
:mod:`notify_devino.errors`.
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
"""Replies larger than this (10 MiB, counted after any Content-Encoding is undone) are
refused."""

MAX_REPLY_DEPTH = 32
"""Elements nested deeper than this are refused while parsing. The service's deepest reply
(``Envelope/Body/GetIncomingMessagesResponse/GetIncomingMessagesResult/IncomingMessage/Data``)
is six deep; a SOAP 1.2 fault with subcodes a few more."""

MAX_REPLY_ELEMENTS = 100_000
"""Replies with more elements than this are refused while parsing. The largest send reply has
30,000 (1,000 destinations of 30 segments); an inbox of 20,000 messages has 100,000."""

MAX_RAW_CHARS = 64 * 1024
"""How much of a reply an error keeps in ``raw`` (and of a fault's text in ``text``)."""

MAX_SHOWN_CHARS = 300
"""How much of a fault's text (or of any name taken from the reply) an error message shows."""

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
_SENDS = frozenset({"SendMessage", "SendMessageByTimeZone", "SendMessageByTimeZoneToAddresses"})
_MISSING: Any = object()
_SNIPPET = 2000

_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?", re.ASCII
)
"""The forms of ``xsd:dateTime`` accepted; ``datetime.fromisoformat`` reads them (and more,
which this keeps out)."""
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
_MESSAGE_ID = re.compile(r"\d{1,19}", re.ASCII)
"""Numbers are read in ASCII digits only (``\\d`` alone takes any script's, and ``int()``
reads them): .NET writes no others."""
_LONG_MAX = 2**63 - 1
INT_RANGE = (-(2**31), 2**31 - 1)
"""``xsd:int``, the type of ``State`` and of every statistics count."""
_MAX_DECIMAL_CHARS = 40
"""``xsd:decimal`` as .NET writes it (``System.Decimal``: at most 29 significant digits, a sign
and a point); anything longer is not a value the service sends."""
_SESSION_ID = re.compile(r"[!-~]{1,256}")


# ---------------------------------------------------------------------------------------------
# XML


class _ForbiddenMarkupError(ValueError):
    pass


class _TooCostlyError(_ForbiddenMarkupError):
    pass


def _refuse(*_args: object) -> NoReturn:
    raise _ForbiddenMarkupError("DTDs and entity declarations are not accepted in replies")


class _BoundedParser:
    """An expat parser whose handlers, as xmltodict sets them, are wrapped so that a reply
    costs little more than its bytes, whatever its shape:

    - an element deeper than :data:`MAX_REPLY_DEPTH`, or past the :data:`MAX_REPLY_ELEMENTS`-th,
      stops the parse before xmltodict builds anything for it (a reply of a million nested
      elements would otherwise become a million nested dicts, 45 times its size);
    - attributes other than ``xsi:nil`` (the only one read) are dropped, and so are namespace
      declarations (namespaces are already resolved into the keys): xmltodict makes a dict for
      every element that has either, 25 times the bytes of ``<a b=""/>``;
    - a run of text longer than :data:`MAX_RAW_CHARS` keeps only its start (no value the
      service sends is near that long; a fault's text is kept up to that length anyway), so a
      text of megabytes is not held twice, once in pieces and once joined.
    """

    __slots__ = ("_counts", "_parser")

    def __init__(self, parser: Any) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_counts", [0, 0, 0])  # depth, elements, text of this run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        counts = self._counts
        if name == "StartElementHandler":
            start = value

            def value(tag: str, attrs: Any) -> None:
                counts[0] += 1
                counts[1] += 1
                if counts[0] > MAX_REPLY_DEPTH:
                    raise _TooCostlyError(
                        f"reply is nested deeper than {MAX_REPLY_DEPTH} elements; refused"
                    )
                if counts[1] > MAX_REPLY_ELEMENTS:
                    raise _TooCostlyError(
                        f"reply has more than {MAX_REPLY_ELEMENTS} elements; refused (a query "
                        "over a shorter range gives a shorter reply)"
                    )
                if attrs:
                    attrs = _nil_only(attrs)
                counts[2] = 0
                start(tag, attrs)

        elif name == "EndElementHandler":
            end = value

            def value(tag: str) -> None:
                counts[0] -= 1
                counts[2] = 0
                end(tag)

        elif name == "CharacterDataHandler":
            characters = value

            def value(data: str) -> None:
                room = MAX_RAW_CHARS + 1 - counts[2]  # one more: a cut later sees the rest
                if room > 0:
                    counts[2] += len(data)
                    characters(data if len(data) <= room else data[:room])

        elif name == "StartNamespaceDeclHandler":
            value = _ignore
        setattr(self._parser, name, value)


_NIL_ATTRIBUTE = f"{XSI_NS}:nil"
"""``xsi:nil`` as expat names it with namespaces processed (``:`` the separator)."""


def _nil_only(attrs: Any) -> Any:
    """Of an element's attributes (expat's ordered list, or a dict), only ``xsi:nil``."""
    if isinstance(attrs, dict):
        return {k: v for k, v in attrs.items() if k == _NIL_ATTRIBUTE}
    for index in range(0, len(attrs) - 1, 2):
        if attrs[index] == _NIL_ATTRIBUTE:
            return attrs[index : index + 2]
    return []


def _ignore(*_args: object) -> None:
    return None


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


class _BoundedExpat(_GuardedExpat):
    """:class:`_GuardedExpat`, whose parsers also bound the cost of what they build
    (:class:`_BoundedParser`)."""

    @staticmethod
    def ParserCreate(encoding: str | None = None, namespace_separator: str | None = None) -> Any:
        return _BoundedParser(_GuardedExpat.ParserCreate(encoding, namespace_separator))


_SMALL_BYTES = 64 * 1024
_SMALL_TAGS = 4096
"""A reply of at most :data:`_SMALL_BYTES` with at most :data:`_SMALL_TAGS` ``<`` can build
little whatever its shape (a few thousand elements, texts of 64 KiB), so it is parsed without
the per-element wrappers of :class:`_BoundedParser`, which cost a third of the parse. Nearly
every reply is one: a send to 1,000 numbers is 36 KB."""


Body = bytes | bytearray
"""A reply body as the client reads it (a bytearray, grown as the decoded bytes stream in)."""

_LEAD = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*")
"""A UTF-8 byte order mark and white space, before a reply's first character."""
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_XML_TYPES = frozenset({"", "application/soap+xml", "text/xml", "application/xml"})


def _snippet(body: Body) -> str:
    return bytes(body[:_SNIPPET]).decode("utf-8", errors="replace")


_WORD = re.compile(r"[A-Za-z0-9_-]+")
"""A run of characters a cut must not split: a session ID or a password echoed in a fault is
one, and half of one would escape the redaction that masks the whole."""


def _cut(text: str, limit: int) -> str:
    """``text``'s first ``limit`` characters at most, never ending inside a word: a word that
    the limit would split is left out whole."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if _WORD.fullmatch(text[limit - 1 : limit + 1]):  # the limit falls inside a word
        word = _WORD.match(head[::-1])  # the word's part before the limit, reversed
        if word is not None:
            head = head[: limit - word.end()]
    return head


def _shown_body(body: Body, redact: bool) -> str | None:
    """The start of a reply for a ParseError's ``body``; None when it may carry a secret."""
    return None if redact else _snippet(body)


def _raw(body: Body) -> str:
    """The start of a reply, for an error's ``raw``: at most :data:`MAX_RAW_CHARS`."""
    raw = bytes(body[: MAX_RAW_CHARS + 1]).decode("utf-8", errors="replace")
    return _cut(raw, MAX_RAW_CHARS)


def _clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters (never inside a word), saying how much was left
    out."""
    if len(text) <= limit:
        return text
    head = _cut(text, limit)
    return f"{head}... ({len(text) - len(head)} more characters)"


def _start(body: Body) -> bytes:
    """The first bytes of a reply past a UTF-8 byte order mark and white space, lower-cased."""
    if body[:1] == b"<":  # nearly every reply: no scan
        return bytes(body[:16]).lower()
    lead = _LEAD.match(body)
    at = lead.end() if lead is not None else 0
    return bytes(body[at : at + 16]).lower()


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def not_soap(body: Body, content_type: str | None = None) -> str | None:
    """What a reply is when it plainly is not SOAP (``"an HTML page"``, ``"JSON"``, ``"plain
    text"``, ``"an empty body"``, ``"a reply of type image/png"``), from its first bytes and its
    ``Content-Type``; None when it may be SOAP (XML, or a body in UTF-16 the parser judges)."""
    media = _media_type(content_type)
    start = _start(body)
    if not start:
        return "an empty body"
    if start.startswith(b"<?xml") and media in _XML_TYPES:  # the usual reply: no more checks
        return None
    if body[:2] in _UTF16_BOMS:
        start = b"<"  # UTF-16 (the service sends UTF-8): only the content type can tell
    if start.startswith((b"<!doctype html", b"<html")) or media in (
        "text/html",
        "application/xhtml+xml",
    ):
        return "an HTML page"
    if start[:1] in (b"{", b"[") or media == "application/json" or media.endswith("+json"):
        return "JSON"
    if not start.startswith(b"<"):
        return "plain text"
    if media and "xml" not in media:
        return f"a reply of type {_clip(media, 80)}"
    return None


def parse_xml(
    body: Body, *, max_bytes: int = DEFAULT_MAX_REPLY_BYTES, redact: bool = False
) -> dict[str, Any]:
    """Parse a reply into xmltodict's dicts, keyed by namespace and name (see the module),
    ``string`` and ``IncomingMessage`` always lists. Whitespace is kept (texts are verbatim).

    :param redact: leave the body out of the error (a reply that carries a session ID).
    :raises ParseError: empty, too large, not well-formed or truncated, with a DTD, or (past
        64 KiB or 4,096 tags, below which nothing it builds can be large) nested deeper than
        :data:`MAX_REPLY_DEPTH` or with more than :data:`MAX_REPLY_ELEMENTS` elements.
    """
    if len(body) > max_bytes:
        raise ParseError(
            f"reply of {len(body)} bytes is larger than {max_bytes}", body=_shown_body(body, redact)
        )
    if not _start(body):
        raise ParseError("reply body is empty", body=_shown_body(body, redact), transient=True)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ParseError(
            "reply has a DTD or an entity declaration, which SOAP forbids; refused",
            body=_shown_body(body, redact),
        )
    try:
        small = len(body) <= _SMALL_BYTES and body.count(b"<") <= _SMALL_TAGS
        doc = xmltodict.parse(
            body,
            expat=_GuardedExpat if small else _BoundedExpat,
            process_namespaces=True,
            force_list=_FORCE_LIST,
            strip_whitespace=False,
            disable_entities=True,
        )
    except _ForbiddenMarkupError as exc:
        raise ParseError(str(exc), body=_shown_body(body, redact)) from exc
    except (expat.ExpatError, ValueError, LookupError) as exc:
        # Unreadable bytes (cut short, an intermediary's page) may read fine on a second try.
        # LookupError: an encoding declaration Python does not know.
        raise ParseError(
            f"reply is not well-formed XML: {_clip(str(exc))}",
            body=_shown_body(body, redact),
            transient=True,
        ) from exc
    if not isinstance(doc, dict):
        raise ParseError("reply has no root element", body=_shown_body(body, redact))
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
        return f"<{_clip(key[len(_DEVINO) :], 80)}>"
    namespace, colon, name = key.rpartition(":")
    if colon:
        return f"<{{{_clip(namespace, 80)}}}{_clip(name, 80)}>"
    return f"<{_clip(key, 80)}> (no namespace)"


def _listed(keys: Any, limit: int = 5) -> str:
    """Element keys as a reader knows them, the first ``limit`` of them: ``<A>, <B> and 3
    more``; ``nothing`` when there are none."""
    names = [_shown(key) for _, key in zip(range(limit + 1), keys, strict=False)]
    if not names:
        return "nothing"
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(keys) - limit} more"


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


def parse_int(text: str, *, field: str, bounds: tuple[int, int] = INT_RANGE) -> int:
    """An integer within ``bounds`` (both included; ``xsd:int`` by default), checked on the
    digits before any conversion: a reply's 5,000-digit number is a ParseError, never Python's
    own int-conversion ``ValueError``."""
    value = text.strip()
    if not _INTEGER.fullmatch(value):
        raise ParseError(f"{field} is not an integer: {text[:40]!r}")
    low, high = bounds
    if len(value) <= 9 and bounds == INT_RANGE:  # the usual case: within xsd:int whatever it is
        return int(value)
    digits = value.lstrip("+-").lstrip("0")
    number = None if len(digits) > max(len(str(low)), len(str(high))) else int(value)
    if number is None or not low <= number <= high:
        raise ParseError(
            f"{field} is out of range: {_clip(value, 40)!r} ({len(digits)} digits); "
            f"expected an integer from {low} to {high}"
        )
    return number


def parse_decimal(text: str, *, field: str) -> Decimal:
    value = text.strip()
    if len(value) > _MAX_DECIMAL_CHARS:
        raise ParseError(
            f"{field} is not a decimal number the service sends: {len(value)} characters "
            f"({_clip(value, 40)!r}); expected at most {_MAX_DECIMAL_CHARS}"
        )
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
    """The error a SOAP fault means, by :data:`FAULT_RULES`. ``text`` is kept verbatim up to
    :data:`MAX_RAW_CHARS` characters; the message shows at most :data:`MAX_SHOWN_CHARS` of it
    (a fault of megabytes must not become a message of megabytes)."""
    full = len(text or "")
    if text is not None:
        text = _cut(text, MAX_RAW_CHARS)
    if code is not None:
        code = _cut(code, MAX_RAW_CHARS)
    haystack = " ".join((text or "").split())
    cls: type[ProviderFaultError] = ProviderFaultError
    for pattern, candidate in FAULT_RULES:
        if pattern.search(haystack):
            cls = candidate
            break
    shown = _cut(haystack, MAX_SHOWN_CHARS)
    left = full - len(text or "") + len(haystack) - len(shown)
    if left > 0:
        shown += f"... ({left} more characters)"
    shown_code = _clip(" ".join(code.split()), 80) if code else "?"
    message = f"{operation}: Devino fault {shown_code}: {shown or '(no text)'}"
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


def _answered(what: str, *, url: str | None, http_status: int, content_type: str | None) -> str:
    """``http://host/path answered an HTML page (HTTP 200, Content-Type text/html)``."""
    where = url or "the service"
    shown_type = _clip(content_type, 80) if content_type else "none"
    return f"{where} answered {what} (HTTP {http_status}, Content-Type {shown_type})"


def _redirected(redirect: str | None) -> str:
    return (
        ""
        if redirect is None
        else f"; it redirects to {_clip(redirect, 200)} (redirects are not followed: "
        "configure the URL it points to, if that is the service)"
    )


def read_result(
    body: Body,
    *,
    operation: str,
    http_status: int = 200,
    retry_after: str | None = None,
    max_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    content_type: str | None = None,
    url: str | None = None,
    redirect: str | None = None,
) -> Any:
    """Check one reply and return its ``<operation>Result`` node (None when it is empty, or
    absent from a response that has no other child; a send's absent result is an error).

    :param retry_after: the reply's ``Retry-After`` header, if any.
    :param content_type: the reply's ``Content-Type`` header, if any.
    :param url: the URL that answered (without credentials), for error messages.
    :param redirect: where a 3xx reply points (without credentials), for its error.
    :raises RateLimitedError: HTTP 429 or 503, or a fault that says so.
    :raises ProviderFaultError: a SOAP fault (a subclass by :data:`FAULT_RULES`), or a non-200
        reply without one.
    :raises ParseError: a 200 reply that is not a SOAP envelope with the expected response: not
        SOAP at all (HTML, JSON, plain text, empty, a foreign content type: transient, as an
        intermediary's page may pass), unreadable, or of the wrong shape.
    """
    redact = operation == "GetSessionID"
    what = not_soap(body, content_type)
    doc: dict[str, Any] | None = None
    unreadable: ParseError | None = None
    if what is None:
        try:
            doc = parse_xml(body, max_bytes=max_bytes, redact=redact)
        except ParseError as exc:
            unreadable = exc
    if doc is None:
        answered = (
            ""
            if what is None
            else ": " + _answered(what, url=url, http_status=http_status, content_type=content_type)
        )
        if http_status in RATE_LIMIT_STATUSES:
            raise RateLimitedError(
                f"{operation}: HTTP {http_status}, rate limited{answered}",
                retry_after=parse_retry_after(retry_after),
                http_status=http_status,
                raw=_raw(body),
            ) from None
        if http_status != 200:
            raise ProviderFaultError(
                f"{operation}: HTTP {http_status} without a SOAP fault{answered}"
                + _redirected(redirect),
                http_status=http_status,
                raw=_raw(body),
            ) from None
        if unreadable is not None:
            raise ParseError(
                f"{operation}: {unreadable}", body=unreadable.body, transient=unreadable.transient
            ) from unreadable.__cause__
        assert what is not None
        raise ParseError(
            f"{operation}: {answered[2:]}, not SOAP; is this the Devino SmsService endpoint?",
            body=None if redact else _snippet(body),
            transient=True,
        )
    soap_ns, soap_body = _soap_body(doc)
    fault = (
        soap_body.get(_key(soap_ns, "Fault"), _MISSING)
        if soap_ns is not None and isinstance(soap_body, dict)
        else _MISSING
    )
    code, text = (None, None) if fault is _MISSING else _fault_parts(fault, soap_ns or "")
    if http_status in RATE_LIMIT_STATUSES:
        raise RateLimitedError(
            f"{operation}: HTTP {http_status}, rate limited"
            + (f": {_clip(' '.join(text.split()))}" if text else ""),
            retry_after=parse_retry_after(retry_after),
            code=code if code is None else _cut(code, MAX_RAW_CHARS),
            text=text if text is None else _cut(text, MAX_RAW_CHARS),
            http_status=http_status,
            raw=_raw(body),
        )
    if fault is not _MISSING:
        raise classify_fault(
            operation=operation, code=code, text=text, http_status=http_status, raw=_raw(body)
        )
    if http_status != 200:
        raise ProviderFaultError(
            f"{operation}: HTTP {http_status} without a SOAP fault" + _redirected(redirect),
            http_status=http_status,
            raw=_raw(body),
        )
    try:
        if soap_ns is None:  # someone else answered (a maintenance system): may pass
            root = _shown(next(iter(doc)))
            raise ParseError(
                _answered(
                    f"XML that is not SOAP (root {root})",
                    url=url,
                    http_status=http_status,
                    content_type=content_type,
                ),
                transient=True,
            )
        if soap_body is _MISSING:
            raise ParseError("SOAP envelope has no Body")
        if isinstance(soap_body, list):
            raise ParseError(f"SOAP envelope has {len(soap_body)} Body elements, expected one")
        response = _child(soap_body, f"{operation}Response", "Body")
        if response is _MISSING:
            found = _listed(_children(soap_body, "Body"))
            raise ParseError(f"SOAP Body has {found}, expected <{operation}Response>")
        result = _child(response, f"{operation}Result", f"{operation}Response")
        if result is _MISSING:
            others = _children(response, f"{operation}Response")
            if others or operation in _SENDS:
                # A send's reply without its result may still mean the service took the
                # message: nobody can follow it, so it is an error, never "accepted".
                raise ParseError(
                    f"{operation}Response has {_listed(others)}, expected <{operation}Result>"
                )
    except ParseError as exc:
        raise ParseError(
            f"{operation}: {exc}", body=_shown_body(body, redact), transient=exc.transient
        ) from None
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
    """A send's ``ArrayOfString`` of message IDs, as decimal strings, in the service's order.

    A send the service took yields at least one ID (one per segment per destination), so a
    result with none (empty, nil, or holding other elements) is a ParseError that says what
    was found: the service may have taken the message, but nobody could follow it.
    """
    where = f"{operation}Result"
    if _is_nil(result):
        raise ParseError(f"{operation}: {where} is nil, expected <string> message IDs")
    if isinstance(result, str):
        if result.strip():
            raise ParseError(
                f"{operation}: {where} has text {_clip(result.strip(), 40)!r}, expected "
                "<string> message IDs"
            )
        result = None
    items = _child(result, "string", where)
    if items is _MISSING:
        found = _listed(_children(result, where))
        raise ParseError(f"{operation}: {where} has {found}, expected <string> message IDs")
    ids: list[str] = []
    for index, item in enumerate(items):
        text = _text(item, f"{where}/string[{index}]")
        value = (text or "").strip()
        number = int(value) if _MESSAGE_ID.fullmatch(value) else _LONG_MAX + 1
        if number > _LONG_MAX:
            shown = "nil" if text is None else repr(_clip(value, 40))
            raise ParseError(
                f"{operation}: message ID {index} is not a number: {shown}; expected a "
                f"decimal integer from 0 to {_LONG_MAX}"
            )
        ids.append(str(number))
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
    "INT_RANGE",
    "MAX_RAW_CHARS",
    "MAX_REPLY_DEPTH",
    "MAX_REPLY_ELEMENTS",
    "MAX_SHOWN_CHARS",
    "RATE_LIMIT_STATUSES",
    "balance_from",
    "classify_fault",
    "incoming_messages_from",
    "message_ids_from",
    "message_state_from",
    "not_soap",
    "parse_datetime",
    "parse_decimal",
    "parse_int",
    "parse_retry_after",
    "parse_xml",
    "read_result",
    "session_id_from",
    "statistics_from",
]
