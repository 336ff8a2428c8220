"""A webhook receiver on 127.0.0.1 that checks what the webhook channel sends, the way a real
one should: the signature over timestamp, idempotency key and body, the timestamp's age (so a
captured request cannot be replayed), and the ``Idempotency-Key`` (a key it has processed is
answered again, never processed twice). A request it cannot take is answered 400 (malformed)
or 401 (not signed as it should be), never 500. Tests use it; it is also a reference for
writing a receiver::

    async with WebhookReceiver("a-shared-secret-of-16+") as receiver:
        settings = {"url": receiver.url(), "secret": "a-shared-secret-of-16+"}
        ...
        assert receiver.deliveries[0].payload["text"] == "db-1 is down"

Failures can be scripted: ``receiver.script(500)`` answers the next new request with a 500
without processing it; ``script(500, processed=True)`` processes it and answers 500 anyway;
``script(200, processed=True, delay=2)`` answers late.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .signing import (
    DEFAULT_TOLERANCE,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify,
)


@dataclass(frozen=True)
class Delivery:
    """A webhook the receiver processed (once per idempotency key)."""

    path: str
    key: str
    timestamp: int
    payload: dict[str, Any]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Answer:
    status: int
    processed: bool
    delay: float
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 and a free port; any path is accepted.

    :param secrets: the shared secret, or several (while replacing one).
    :param tolerance: seconds a timestamp may be away from ``clock()``.
    :param clock: the receiver's clock (Unix seconds).
    :ivar deliveries: what it processed, in order, once per idempotency key.
    :ivar requests: every request that reached it.
    :ivar rejections: why each refused request was refused.
    :ivar duplicates: the idempotency keys it was sent again after processing them.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        secrets: str | Iterable[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        self.tolerance = tolerance
        self.clock = clock
        self.deliveries: list[Delivery] = []
        self.requests = 0
        self.rejections: list[str] = []
        self.duplicates: list[str] = []
        self.port = 0
        self._answers: deque[_Answer] = deque()
        self._runner: web.AppRunner | None = None

    def script(
        self,
        status: int,
        *,
        processed: bool = False,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """How to answer the next request that checks out and carries a new key.

        :param retry_after: a ``Retry-After`` header: seconds, or the header's text as given
            (an HTTP date, or garbage a hostile receiver might send).
        :param headers: more headers of the answer.
        """
        answer_headers = dict(headers or {})
        if isinstance(retry_after, str):
            answer_headers["Retry-After"] = retry_after
        elif retry_after is not None:
            answer_headers["Retry-After"] = f"{retry_after:g}"
        self._answers.append(_Answer(status, processed, delay, answer_headers))

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            return self._reject(400, "no idempotency key")
        try:
            timestamp = verify(
                self.secrets,
                body,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                idempotency_key=key,
                tolerance=self.tolerance,
                clock=self.clock,
            )
        except SignatureError as exc:
            return self._reject(401, str(exc))
        try:
            payload = json.loads(body)
        except ValueError:  # not UTF-8 or not JSON (UnicodeDecodeError is a ValueError)
            return self._reject(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return self._reject(400, "the body is not a JSON object")
        if any(d.key == key for d in self.deliveries):
            self.duplicates.append(key)
            return web.json_response({"duplicate": True})
        answer = self._answers.popleft() if self._answers else _Answer(200, True, 0.0)
        if answer.processed:
            self.deliveries.append(
                Delivery(request.path, key, timestamp, payload, dict(request.headers), body)
            )
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.json_response(
            {"processed": answer.processed}, status=answer.status, headers=answer.headers
        )

    def _reject(self, status: int, why: str) -> web.Response:
        self.rejections.append(why)
        return web.Response(status=status, text=why)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, 0).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
