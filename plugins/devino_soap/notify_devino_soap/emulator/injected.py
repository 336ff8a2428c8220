"""How an injected fault (see :mod:`.faults`) changes a request's answer.

:func:`refuse` gives the answer of the kinds that leave a request unprocessed (a fault, an HTTP
503 or 429, a page that is not XML, a connection closed before any answer) or expires the
caller's session first; :func:`spoil` the answer of the kinds that spoil the reply of a request
that was processed (a connection closed after processing, a reply cut in half). ``delay`` is
the server's: it waits outside the lock that orders answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from aiohttp import web

from .faults import FaultRule
from .state import SandboxFault, SandboxState
from .wire import CONTENT_TYPE_11, CONTENT_TYPE_12, Call, SoapVersion, envelope, fault_body, text_of


def hang_up(request: web.Request) -> None:
    """Close the request's connection: the client sees it drop, with no response."""
    transport = request.transport
    if transport is not None:
        transport.close()


def refuse(
    rule: FaultRule,
    request: web.Request,
    call: Call,
    version: SoapVersion,
    state: SandboxState,
    record: Callable[[int, str | None], None],
) -> web.Response | None:
    """The kinds that leave the request unprocessed: their response (recorded with
    ``record(status, text)``), or None for the kinds that go on to process it
    (``session_expired`` expires the caller's session first)."""
    if rule.kind == "session_expired":
        state.expire_session(text_of(call.params.get("d:sessionID")))
        return None
    limit = state.config.rate_limit
    if rule.kind == "receiver_fault" or (rule.kind == "rate_limited" and limit.response == "fault"):
        texts = state.config.fault_texts
        reason = (
            texts.temporarily_unavailable if rule.kind == "receiver_fault" else texts.rate_limited
        )
        fault = SandboxFault.processing(reason)
        content_type = CONTENT_TYPE_11 if version == "1.1" else CONTENT_TYPE_12
        record(500, fault.reason)
        return web.Response(
            status=500,
            body=envelope(version, fault_body(version, fault)),
            headers={"Content-Type": content_type},
        )
    if rule.kind in ("http_503", "rate_limited"):
        if rule.kind == "http_503":
            status, text, retry_after = 503, "Service Unavailable", rule.retry_after_seconds
        else:
            status = 429 if limit.response == "http_429" else 503
            text, retry_after = state.config.fault_texts.rate_limited, limit.retry_after_seconds
        headers = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
        record(status, text)
        return web.Response(status=status, text=text + "\n", headers=headers)
    if rule.kind == "not_xml":
        record(200, None)
        return web.Response(text="Service temporarily unavailable. Maintenance in progress.\n")
    if rule.kind == "close_before_response":
        record(0, None)
        hang_up(request)
        return web.Response(status=204)
    return None


def spoil(
    rule: FaultRule, request: web.Request, status: int, body: bytes, content_type: str
) -> web.Response | None:
    """The kinds that spoil the reply of a processed request: the response to give instead,
    or None to give the normal one (``session_expired``; ``delay`` is waited for by
    the server, outside the answering lock)."""
    if rule.kind == "close_after_processing":
        hang_up(request)
        return web.Response(status=204)
    if rule.kind == "truncated":
        cut = body[: len(body) // 2]
        return web.Response(status=status, body=cut, headers={"Content-Type": content_type})
    return None


__all__ = ["hang_up", "refuse", "spoil"]
