"""The sandbox's strict mode: every request body checked against the schema of the WSDL the
sandbox serves (``SmsService.wsdl``).

A small schema walker, not a general XSD validator: it reads the WSDL's ``<types>`` (top-level
elements, named and inline complex types, each a ``<sequence>`` of elements with ``minOccurs``,
``maxOccurs``, ``nillable`` and a type) and refuses at load time any construct outside that
subset, so it never silently checks less than the WSDL says. Then it walks a SOAP envelope as
expat reads it, one event at a time, and checks:

- the envelope: an optional ``Header`` (not looked into), then ``Body``, which holds exactly one
  element of the schema;
- every element's children: their names, namespace and order, how often each occurs
  (``minOccurs`` / ``maxOccurs``), and that nothing else is there;
- ``xsi:nil="true"`` only where the element is ``nillable``, and then with no content;
- simple values by their XSD type, within what the service's .NET types hold: ``int`` (32-bit)
  and ``long`` (64-bit) as ASCII decimal integers in range, ``boolean`` (``true``, ``false``,
  ``1``, ``0``), ``decimal``, ``dateTime`` (``YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]``, a real
  calendar date, years 0001-9999); ``string`` is any text.

A broken rule raises :class:`SchemaViolation` naming the element by its path from the
operation (``SendMessage/message/DelayUntilUtc``), what was wrong and what the WSDL expects,
with the line and column where expat found it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"

SIMPLE_TYPES = ("string", "int", "long", "boolean", "decimal", "dateTime")
"""The XSD types the walker checks; the WSDL uses no other."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.[0-9]+)?"
    r"(?:Z|(?P<sign>[+-])(?P<tzh>[0-9]{2}):(?P<tzm>[0-9]{2}))?"
)
_BOUNDS = {"int": 32, "long": 64}
_EXPECTED = {
    "int": "a whole number from -2147483648 to 2147483647",
    "long": "a whole number from -9223372036854775808 to 9223372036854775807",
    "boolean": "true, false, 1 or 0",
    "decimal": "a decimal number such as 12.50",
    "dateTime": "a date-time such as 2026-03-02T09:00:00 or 2026-03-02T09:00:00Z (years 0001-9999)",
}


class SchemaViolation(ValueError):
    """A request that does not match the WSDL's schema.

    :ivar path: the offending element, from the operation element down
        (``SendMessage/message/Validity``).
    :ivar position: (line, column) where it was found, both 1-based.
    """

    def __init__(self, message: str, path: str, position: tuple[int, int]) -> None:
        super().__init__(message)
        self.path = path
        self.position = position


@dataclass(frozen=True, slots=True)
class ElementDecl:
    """One ``<s:element>`` of a sequence (or a top-level one).

    :ivar children: the content model of a complex type, None for a simple one.
    """

    name: str
    type: str
    min_occurs: int
    max_occurs: int | None
    nillable: bool
    children: tuple[ElementDecl, ...] | None

    def describe(self) -> str:
        occurs = "required" if self.min_occurs else "optional"
        many = ", repeatable" if self.max_occurs is None or self.max_occurs > 1 else ""
        nil = ", nillable" if self.nillable else ""
        return f"{self.name} ({occurs}{many}{nil})"


@dataclass(frozen=True, slots=True)
class Schema:
    """The WSDL's elements: ``elements`` maps each top-level element's name to its
    declaration, all in ``namespace``."""

    namespace: str
    elements: Mapping[str, ElementDecl]

    @property
    def operations(self) -> tuple[str, ...]:
        """The request elements (those with a ``<name>Response`` beside them), in the WSDL's
        order: the service's operations."""
        return tuple(
            name
            for name in self.elements
            if not name.endswith("Response") and f"{name}Response" in self.elements
        )

    @classmethod
    def from_wsdl(cls, text: str) -> Schema:
        """Read the schema of a WSDL's ``<types>``.

        :raise ValueError: for an XSD construct the walker does not check.
        """
        prefixes: dict[str, str] = {}
        root: ElementTree.Element | None = None
        for event, item in _events(text):
            if event == "start-ns":  # every prefix must mean one namespace throughout
                prefix, uri = item
                if prefixes.setdefault(prefix, uri) != uri:
                    raise ValueError(f"prefix {prefix!r} is bound to two namespaces")
            elif root is None:
                root = item
        assert root is not None
        schema = root.find(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
        if schema is None:
            raise ValueError("the WSDL has no <types><schema>")
        target = schema.get("targetNamespace", "")
        if schema.get("elementFormDefault") != "qualified":
            raise ValueError("the walker checks elementFormDefault='qualified' schemas only")
        builder = _Builder(schema, target, prefixes)
        elements = {
            node.get("name", ""): builder.element(node, top_level=True)
            for node in schema.findall(f"{{{XSD_NS}}}element")
        }
        return cls(target, MappingProxyType(elements))

    def check_envelope(self, body: bytes, soap_namespace: str) -> str:
        """Check a SOAP envelope in ``soap_namespace`` whose body holds one schema element.

        :return: the name of that element (the operation, for a request).
        :raise SchemaViolation: for the first thing that does not match.
        """
        walker = _Walker(self, soap_namespace)
        parser = expat.ParserCreate(namespace_separator=" ")
        walker.parser = parser
        parser.StartElementHandler = walker.start
        parser.EndElementHandler = walker.end
        parser.CharacterDataHandler = walker.text
        parser.StartDoctypeDeclHandler = walker.doctype
        parser.buffer_text = True
        try:
            parser.Parse(body, True)
        except expat.ExpatError as exc:
            raise SchemaViolation(
                f"The request is not well-formed XML: {expat.ErrorString(exc.code)}.",
                "Envelope",
                (exc.lineno, exc.offset + 1),
            ) from None
        assert walker.operation is not None  # end() saw the Body close with one element
        return walker.operation


def _events(text: str) -> Any:
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(["start-ns", "start"])
    parser.feed(text)
    parser.close()
    return parser.read_events()


class _Builder:
    """Turns the schema's XSD into :class:`ElementDecl` trees, resolving named types."""

    def __init__(
        self, schema: ElementTree.Element, target: str, prefixes: Mapping[str, str]
    ) -> None:
        self.target = target
        self.prefixes = prefixes
        self.named = {
            node.get("name", ""): node for node in schema.findall(f"{{{XSD_NS}}}complexType")
        }
        self.building: set[str] = set()
        for child in schema:
            if child.tag not in (f"{{{XSD_NS}}}element", f"{{{XSD_NS}}}complexType"):
                raise ValueError(f"unsupported schema construct {child.tag}")

    def qname(self, value: str) -> tuple[str, str]:
        prefix, _, local = value.rpartition(":")
        if prefix not in self.prefixes:
            raise ValueError(f"unknown prefix in type {value!r}")
        return self.prefixes[prefix], local

    def element(self, node: ElementTree.Element, *, top_level: bool = False) -> ElementDecl:
        name = node.get("name")
        if name is None:
            raise ValueError("an element without a name (ref= is not supported)")
        unsupported = set(node.attrib) - {"name", "type", "minOccurs", "maxOccurs", "nillable"}
        if unsupported:
            raise ValueError(f"element {name}: unsupported attributes {sorted(unsupported)}")
        max_text = node.get("maxOccurs", "1")
        max_occurs = None if max_text == "unbounded" else int(max_text)
        min_occurs = int(node.get("minOccurs", "1"))
        nillable = node.get("nillable", "false") == "true"
        if top_level:
            min_occurs, max_occurs = 1, 1
        type_name = node.get("type")
        inline = node.find(f"{{{XSD_NS}}}complexType")
        if type_name is None:
            if inline is None:
                raise ValueError(f"element {name} has neither a type nor a complexType")
            return ElementDecl(
                name, name, min_occurs, max_occurs, nillable, self.sequence(inline, name)
            )
        ns, local = self.qname(type_name)
        if ns == XSD_NS:
            if local not in SIMPLE_TYPES:
                raise ValueError(f"element {name}: XSD type {local} is not checked")
            return ElementDecl(name, local, min_occurs, max_occurs, nillable, None)
        if ns != self.target or local not in self.named:
            raise ValueError(f"element {name}: unknown type {type_name}")
        if local in self.building:
            raise ValueError(f"type {local} is recursive, which the walker does not check")
        self.building.add(local)
        try:
            children = self.sequence(self.named[local], local)
        finally:
            self.building.discard(local)
        return ElementDecl(name, local, min_occurs, max_occurs, nillable, children)

    def sequence(self, complex_type: ElementTree.Element, name: str) -> tuple[ElementDecl, ...]:
        parts = [c for c in complex_type if isinstance(c.tag, str)]
        if not parts:
            return ()
        if (
            len(parts) != 1
            or parts[0].tag != f"{{{XSD_NS}}}sequence"
            or parts[0].attrib
            or complex_type.attrib.keys() - {"name"}
        ):
            raise ValueError(f"type {name}: only a plain <sequence> is supported")
        decls = []
        for child in parts[0]:
            if not isinstance(child.tag, str):
                continue
            if child.tag != f"{{{XSD_NS}}}element":
                raise ValueError(f"type {name}: {child.tag} in a sequence is not supported")
            decls.append(self.element(child))
        return tuple(decls)


# -- walking a document ------------------------------------------------------------------------


def _split(tag: str) -> tuple[str, str]:
    ns, _, local = tag.rpartition(" ")
    return ns, local


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_value(type_name: str, text: str) -> bool:
    """Whether ``text`` is a value of the XSD simple type (after whitespace collapsing)."""
    if type_name == "string":
        return True
    value = text.strip(" \t\r\n")
    if type_name in _BOUNDS:
        if not _INTEGER.fullmatch(value):
            return False
        limit: int = 2 ** (_BOUNDS[type_name] - 1)
        return -limit <= int(value) < limit
    if type_name == "boolean":
        return value in ("true", "false", "1", "0")
    if type_name == "decimal":
        return _DECIMAL.fullmatch(value) is not None
    if type_name == "dateTime":
        match = _DATETIME.fullmatch(value)
        if match is None:
            return False
        year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
        if year < 1 or not 1 <= month <= 12:
            return False
        days = 29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]
        hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
        if not (1 <= day <= days and hour <= 23 and minute <= 59 and second <= 59):
            return False
        if match["sign"]:
            tz_hours, tz_minutes = int(match["tzh"]), int(match["tzm"])
            if tz_minutes > 59 or tz_hours * 60 + tz_minutes > 14 * 60:
                return False
        return True
    raise ValueError(type_name)


class _Frame:
    """An open element: its declaration and how far its children have come."""

    __slots__ = ("count", "decl", "index", "nil", "path", "text")

    def __init__(self, decl: ElementDecl | None, path: str, nil: bool = False) -> None:
        self.decl = decl
        self.path = path
        self.index = 0  # the particle the next child is matched against
        self.count = 0  # how many times particle ``index`` has occurred
        self.nil = nil
        self.text: list[str] = []


class _Walker:
    """expat handlers that check a SOAP envelope against a :class:`Schema`."""

    def __init__(self, schema: Schema, soap_namespace: str) -> None:
        self.schema = schema
        self.soap = soap_namespace
        self.parser: Any = None
        self.stack: list[_Frame] = []
        self.depth = 0  # elements open, the envelope's included
        self.skipping = 0  # depth of a Header being skipped, 0 when not skipping
        self.seen_body = False
        self.operation: str | None = None

    def fail(self, message: str, path: str) -> SchemaViolation:
        parser = self.parser
        return SchemaViolation(
            message, path, (parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)
        )

    # -- events ----------------------------------------------------------------------------

    def doctype(self, *_: object) -> None:
        raise self.fail("A DTD is not allowed in a SOAP message.", "Envelope")

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.skipping:
            return
        ns, local = _split(tag)
        if self.depth == 1:
            if (ns, local) != (self.soap, "Envelope"):
                raise self.fail(f"The root element is {local!r}, not a SOAP Envelope.", local)
            return
        if self.depth == 2:
            self._envelope_child(ns, local)
            return
        if self.depth == 3:
            self._body_child(ns, local, attributes)
            return
        parent = self.stack[-1]
        path = f"{parent.path}/{local}"
        if ns != self.schema.namespace:
            where = f"namespace {ns!r}" if ns else "no namespace"
            raise self.fail(
                f"Element {path!r} is in {where}; the service's elements are in "
                f"{self.schema.namespace!r}.",
                path,
            )
        decl = self._match_child(parent, local, path)
        self.stack.append(_Frame(decl, path, self._nil(decl, attributes, path)))

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.skipping:
            if self.depth < self.skipping:  # the Header closed
                self.skipping = 0
            return
        if self.depth == 0:
            if not self.seen_body:
                raise self.fail("The Envelope has no Body.", "Envelope")
            return
        if self.depth == 1:
            if self.operation is None:
                raise self.fail("The SOAP Body holds no element.", "Body")
            return
        frame = self.stack.pop()
        decl = frame.decl
        assert decl is not None
        if frame.nil:
            if frame.text and "".join(frame.text).strip():
                raise self.fail(f"Element {frame.path!r} is xsi:nil and must be empty.", frame.path)
            return
        if decl.children is None:
            text = "".join(frame.text)
            if not valid_value(decl.type, text):
                raise self.fail(
                    f"Element {frame.path!r} holds {text[:40]!r}, which is not a valid xs:"
                    f"{decl.type}: expected {_EXPECTED[decl.type]}.",
                    frame.path,
                )
            return
        self._missing(frame, before=None)

    def text(self, data: str) -> None:
        if self.skipping:
            return
        if not self.stack:
            if data.strip(" \t\r\n"):
                raise self.fail("Text is not expected outside the operation's element.", "Body")
            return
        frame = self.stack[-1]
        decl = frame.decl
        assert decl is not None
        if decl.children is not None and not frame.nil:
            if data.strip(" \t\r\n"):
                raise self.fail(
                    f"Element {frame.path!r} holds elements, not text "
                    f"(found {data.strip()[:40]!r}).",
                    frame.path,
                )
            return
        frame.text.append(data)

    # -- the envelope ----------------------------------------------------------------------

    def _envelope_child(self, ns: str, local: str) -> None:
        if ns == self.soap and local == "Header" and not self.seen_body:
            self.skipping = self.depth
            return
        if ns == self.soap and local == "Body" and not self.seen_body:
            self.seen_body = True
            return
        raise self.fail(
            f"Element {local!r} is not expected in the Envelope: it holds an optional Header, "
            "then the Body.",
            local,
        )

    def _body_child(self, ns: str, local: str, attributes: dict[str, str]) -> None:
        if self.operation is not None:
            raise self.fail(
                f"Element {local!r} is not expected: the Body holds one element, "
                f"{self.operation!r}, only.",
                local,
            )
        decl = self.schema.elements.get(local)
        if ns != self.schema.namespace or decl is None:
            raise self.fail(
                f"Element {local!r} in namespace {ns!r} is not an element of the WSDL.", local
            )
        self.operation = local
        self.stack.append(_Frame(decl, local, self._nil(decl, attributes, local)))

    # -- children --------------------------------------------------------------------------

    def _nil(self, decl: ElementDecl, attributes: dict[str, str], path: str) -> bool:
        raw = attributes.get(f"{XSI_NS} nil")
        if raw is None:
            return False
        value = raw.strip()
        if value not in ("true", "false", "1", "0"):
            raise self.fail(f"Element {path!r} has xsi:nil={raw!r}: expected true or false.", path)
        nil = value in ("true", "1")
        if nil and not decl.nillable:
            raise self.fail(
                f"Element {path!r} is xsi:nil, but the WSDL does not declare it nillable: "
                f"give it a value ({_EXPECTED.get(decl.type, 'its content')}).",
                path,
            )
        return nil

    def _match_child(self, parent: _Frame, local: str, path: str) -> ElementDecl:
        decl = parent.decl
        assert decl is not None
        if parent.nil:
            raise self.fail(f"Element {parent.path!r} is xsi:nil and must be empty.", path)
        if decl.children is None:
            raise self.fail(
                f"Element {parent.path!r} is an xs:{decl.type} and holds no elements "
                f"(found {local!r}).",
                path,
            )
        children = decl.children
        while parent.index < len(children):
            particle = children[parent.index]
            if particle.name == local:
                if particle.max_occurs is not None and parent.count >= particle.max_occurs:
                    raise self.fail(
                        f"Element {path!r} occurs more than {particle.max_occurs} time(s) in "
                        f"{parent.path!r}, which the WSDL allows (maxOccurs="
                        f'"{particle.max_occurs}").',
                        path,
                    )
                parent.count += 1
                return particle
            self._missing(parent, before=local, only_current=True)
            parent.index += 1
            parent.count = 0
        earlier = [c.name for c in children]
        hint = "it is out of order" if local in earlier else f"{parent.path!r} has no such element"
        raise self.fail(
            f"Element {path!r} is not expected here ({hint}): {parent.path!r} holds, in this "
            f"order: {', '.join(c.describe() for c in children)}.",
            path,
        )

    def _missing(self, frame: _Frame, *, before: str | None, only_current: bool = False) -> None:
        """Raise if a required particle from ``frame.index`` on has not occurred often enough
        (only the current one when ``only_current``)."""
        decl = frame.decl
        assert decl is not None
        assert decl.children is not None
        children = decl.children
        last = frame.index + 1 if only_current else len(children)
        for index in range(frame.index, min(last, len(children))):
            particle = children[index]
            count = frame.count if index == frame.index else 0
            if count < particle.min_occurs:
                path = f"{frame.path}/{particle.name}"
                where = f"before {before!r}" if before else f"at the end of {frame.path!r}"
                nil = '; with no value, send it as xsi:nil="true"' if particle.nillable else ""
                raise self.fail(
                    f"Element {path!r} is missing ({where}): the WSDL requires it "
                    f'(minOccurs="{particle.min_occurs}"){nil}.',
                    path,
                )


@functools.cache
def service_schema() -> Schema:
    """The schema of the WSDL the sandbox serves, read once."""
    text = resources.files(__package__).joinpath("SmsService.wsdl").read_text(encoding="utf-8")
    return Schema.from_wsdl(text)


__all__ = ["ElementDecl", "Schema", "SchemaViolation", "service_schema", "valid_value"]
