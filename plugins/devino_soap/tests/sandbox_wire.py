"""Hand-written SOAP envelopes for the sandbox tests: what a client puts on the wire, built
without the project's own client so the sandbox is tested against the documents, not against
our reading of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import xmltodict

NS = "http://ws.devinosms.com"
NS11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

CONTENT_TYPES = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}


def envelope(version: str, body: str) -> bytes:
    """A request envelope the way the documentation's samples write it."""
    if version == "1.1":
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<soap:Envelope xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:soap="{NS11}">\n  <soap:Body>\n    {body}\n  </soap:Body>\n</soap:Envelope>'
        ).encode()
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<soap12:Envelope xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:soap12="{NS12}">\n  <soap12:Body>\n    {body}\n  </soap12:Body>\n'
        "</soap12:Envelope>"
    ).encode()


def children(params: dict[str, Any]) -> str:
    """Child elements: a str/int is text, a list is ArrayOfString, a dict nests, None is left
    out, ``NIL`` writes xsi:nil."""
    out = []
    for name, value in params.items():
        if value is None:
            continue
        if value is NIL:
            out.append(f'<{name} xsi:nil="true" />')
        elif isinstance(value, list):
            items = "".join(f"<string>{escape(str(v))}</string>" for v in value)
            out.append(f"<{name}>{items}</{name}>")
        elif isinstance(value, dict):
            out.append(f"<{name}>{children(value)}</{name}>")
        else:
            out.append(f"<{name}>{escape(str(value))}</{name}>")
    return "".join(out)


NIL = object()


def operation(name: str, **params: Any) -> str:
    return f'<{name} xmlns="{NS}">{children(params)}</{name}>'


@dataclass
class Reply:
    status: int
    headers: Any
    text: str
    operation: str | None

    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = xmltodict.parse(
            self.text,
            process_namespaces=True,
            namespaces={NS11: "soap", NS12: "soap", NS: "", XSI: "xsi"},
            force_list=("string", "IncomingMessage"),
        )
        return parsed

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.doc()["soap:Envelope"]["soap:Body"]
        return body

    @property
    def result(self) -> Any:
        assert self.status == 200, self.text
        return self.body()[f"{self.operation}Response"][f"{self.operation}Result"]

    @property
    def ids(self) -> list[int]:
        return [int(v) for v in self.result["string"]]

    @property
    def fault(self) -> tuple[str, str]:
        """(code, reason) in the SOAP 1.2 vocabulary for either version."""
        fault = self.body()["soap:Fault"]
        if "faultcode" in fault:
            code = {"soap:Server": "soap:Receiver", "soap:Client": "soap:Sender"}.get(
                fault["faultcode"], fault["faultcode"]
            )
            return code, fault["faultstring"]
        return fault["soap:Code"]["soap:Value"], fault["soap:Reason"]["soap:Text"]["#text"]


class Wire:
    """Posts hand-written envelopes to a sandbox in one SOAP version."""

    def __init__(self, http: aiohttp.ClientSession, url: str, version: str) -> None:
        self.http = http
        self.url = url
        self.version = version

    def headers(self, op: str | None) -> dict[str, str]:
        if self.version == "1.1":
            headers = {"Content-Type": CONTENT_TYPES["1.1"]}
            if op is not None:
                headers["SOAPAction"] = f'"{NS}/{op}"'
            return headers
        return {"Content-Type": CONTENT_TYPES["1.2"]}

    async def post(
        self, body: str | bytes, *, op: str | None, headers: dict[str, str] | None = None
    ) -> Reply:
        data = body if isinstance(body, bytes) else envelope(self.version, body)
        async with self.http.post(self.url, data=data, headers=headers or self.headers(op)) as r:
            return Reply(r.status, r.headers, await r.text(), op)

    async def call(self, op: str, **params: Any) -> Reply:
        return await self.post(operation(op, **params), op=op)

    async def login(self, login: str = "demo", password: str = "demo-password") -> str:
        reply = await self.call("GetSessionID", login=login, password=password)
        session_id: str = reply.result
        return session_id

    async def send(self, session_id: str, numbers: list[str], text: str, **message: Any) -> Reply:
        """SendMessage with every element of ``Message`` in the WSDL's order, as a generated
        client writes it: DelayUntilUtc nil (send now), ReceiptRequested false, Validity 0
        (the default) unless given."""
        return await self.call(
            "SendMessage",
            sessionID=session_id,
            message={
                "Data": text,
                "DelayUntilUtc": message.pop("DelayUntilUtc", NIL),
                "DestinationAddresses": numbers,
                "SourceAddress": message.pop("SourceAddress", "TESTSENDER"),
                "ReceiptRequested": message.pop("ReceiptRequested", "false"),
                "Validity": message.pop("Validity", 0),
                **message,
            },
        )

    async def state(self, session_id: str, message_id: int) -> dict[str, Any]:
        reply = await self.call("GetMessageState", sessionID=session_id, messageID=message_id)
        result: dict[str, Any] = reply.result
        return result
