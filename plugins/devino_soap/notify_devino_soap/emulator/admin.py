"""The sandbox's admin routes: what a test or a demo uses to play the other side of the
service (a phone that replies, sessions that expire) and to see what the sandbox saw.

``POST /admin/incoming``
    JSON ``{"source", "destination", "text", "created_at"?, "login"?}`` stores an incoming SMS
    (``created_at``: ISO 8601, naive = UTC, default now; ``login``: the only account that sees
    it, default every account). 201 with the stored message as JSON; 400 with
    ``{"error": ...}`` on bad input.
``POST /admin/expire-sessions``
    Expires every session now. 200 ``{"expired": <sessions that were alive>}``.
``GET /admin/requests``
    The request log (:attr:`Sandbox.requests <.server.Sandbox.requests>`) as a JSON list.
``GET /admin/messages``
    Every stored segment with its current state, as a JSON list.

Admin routes are neither rate-limited, nor checked by strict mode, nor logged in the request
log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .state import IncomingRecord, SandboxState
from .wire import format_datetime, format_decimal, parse_datetime

if TYPE_CHECKING:
    from .server import RequestRecord


class AdminRoutes:
    """The admin routes over a sandbox's state and its request log (read when asked, so a
    log the sandbox replaces is still the one shown)."""

    def __init__(
        self, state: SandboxState, requests: Callable[[], Sequence[RequestRecord]]
    ) -> None:
        self.state = state
        self._requests = requests

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/admin/incoming", self._admin_incoming)
        app.router.add_post("/admin/expire-sessions", self._admin_expire_sessions)
        app.router.add_get("/admin/requests", self._admin_requests)
        app.router.add_get("/admin/messages", self._admin_messages)

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
        return web.json_response(incoming_json(record), status=201)

    async def _admin_expire_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.state.expire_sessions()})

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return web.json_response([record.to_json() for record in self._requests()])

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


def incoming_json(record: IncomingRecord) -> dict[str, Any]:
    return {
        "source": record.source_address,
        "destination": record.destination_address,
        "text": record.data,
        "created_at": format_datetime(record.created_date_utc),
        "login": record.login,
    }


__all__ = ["AdminRoutes", "incoming_json"]
