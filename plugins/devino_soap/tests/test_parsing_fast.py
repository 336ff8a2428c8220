"""The client's reply parser builds the dicts xmltodict gives with the same options (less the
``@xmlns`` entries it adds, which nothing reads), on generated documents: any prefix, default
and other namespaces, attributes, nil, text around children, entities, repeated elements."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xmltodict
from hypothesis import given
from hypothesis import strategies as st

from notify_devino_soap import parsing

NAMESPACES = [
    parsing.SOAP11_NS,
    parsing.SOAP12_NS,
    parsing.DEVINO_NS,
    "http://example.com/other",
]
NAMES = ["Envelope", "Body", "string", "IncomingMessage", "State", "Data", "x"]
texts = st.text(st.sampled_from("ab 1\n\t&<>\"'é🙂"), max_size=6)


@st.composite
def element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(st.sampled_from(NAMES))
    prefix = draw(st.sampled_from(["", "p:", "q:"]))
    declarations = " ".join(
        f'xmlns{":" + p[:-1] if p else ""}="{draw(st.sampled_from(NAMESPACES))}"'
        for p in dict.fromkeys([prefix, draw(st.sampled_from(["", "p:", "q:"]))])
    )
    attributes = ""
    if draw(st.booleans()):
        attributes += f' xmlns:xsi="{parsing.XSI_NS}" xsi:nil={quoteattr(draw(texts))}'
    if draw(st.booleans()):
        attributes += f" plain={quoteattr(draw(texts))}"
    children = (
        draw(st.lists(element(depth + 1), max_size=3)) if depth < 3 and draw(st.booleans()) else []
    )
    parts = [escape(draw(texts))]
    for child in children:
        parts += [child, escape(draw(texts))]
    body = "".join(parts)
    tag = prefix + name
    return (
        f"<{tag} {declarations}{attributes}>{body}</{tag}>"
        if body or draw(st.booleans())
        else f"<{tag} {declarations}{attributes} />"
    )


def without_xmlns(value: Any) -> Any:
    """xmltodict's dicts less its ``@xmlns`` entries: an element that was a dict only for
    them is what it is without (None when empty, its text when it has only text)."""
    if isinstance(value, dict):
        node = {k: without_xmlns(v) for k, v in value.items() if k != "@xmlns"}
        if not node:
            return None
        return node["#text"] if set(node) == {"#text"} else node
    if isinstance(value, list):
        return [without_xmlns(v) for v in value]
    return value


@given(element())
def test_the_same_dicts_as_xmltodict(document: str) -> None:
    body = ('<?xml version="1.0" encoding="utf-8"?>' + document).encode()
    expected = xmltodict.parse(
        body,
        process_namespaces=True,
        namespaces=parsing._NAMESPACES,
        force_list=parsing._FORCE_LIST,
        strip_whitespace=False,
    )
    assert parsing.parse_xml(body) == without_xmlns(expected)
