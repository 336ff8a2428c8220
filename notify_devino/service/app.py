"""The HTTP API of ``notify-devino serve``, on aiohttp.web.

``make_app(config, settings)`` returns the application. Its resources (the store, the
dispatcher, the workers) are opened in ``cleanup_ctx`` in that order and closed in reverse,
each only if it opened. Every request gets an id (``X-Request-Id``, the caller's if it sent a
sane one) bound into structlog's context, so every log line of the request carries it; every
answer is JSON with that id, and no answer carries a stack trace or a secret. A full or failing
outbox answers 503 with ``Retry-After`` (never 429: Alertmanager drops a 4xx).

Routes (see the OpenAPI document at ``/v1/openapi.json``)::

    POST /v1/notifications        send      202 after the commit; Idempotency-Key
    GET  /v1/notifications/{id}   read      every recipient on every channel, with times
    GET  /v1/channels             read
    POST /v1/estimate             send
    GET  /v1/inbox?after=<seq>    read
    GET  /v1/openapi.json|yaml    public
    GET  /-/healthy, /-/ready     public
    GET  /metrics                 read
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..alertmanager import integration as alertmanager
from ..config import Config
from ..dispatcher import Dispatcher
from ..errors import InvalidInputError, NotifyError, UnsupportedOperationError
from ..plugins import PluginManager
from ..types import utc_now
from . import openapi
from .auth import Authenticator, Caller
from .metrics import CONTENT_TYPE, ServiceMetrics
from .outbox import IdempotencyConflict, NotificationRequest
from .settings import Scope, ServiceSettings
from .store import Delivery, Store, StoredNotification, StoreFull, StoreUnavailable, open_store
from .workers import Service

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
SCOPE_ATTR = "_notify_scope"
_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)
"""The name of the token the request came with (for the access log), never the token."""
STATE: web.AppKey[State] = web.AppKey("notify_devino_state")


@dataclass
class State:
    """What the handlers share, in the root application."""

    config: Config
    settings: ServiceSettings
    metrics: ServiceMetrics
    auth: Authenticator
    store: Store | None = None
    dispatcher: Dispatcher | None = None
    service: Service | None = None
    draining: bool = False
    in_flight_keys: set[str] = field(default_factory=set)

    def require_service(self) -> Service:
        if self.service is None or not self.service.started:
            raise _Unavailable("the service is starting")
        return self.service


class _Unavailable(Exception):
    """Answer 503 with Retry-After."""


def requires(scope: Scope) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        setattr(handler, SCOPE_ATTR, scope)
        return handler

    return mark


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_ENCODER.encode)


# -- middlewares ---------------------------------------------------------------------------------


_REQUEST_PREFIX = uuid.uuid4().hex[:12]
_request_counter = itertools.count(1)


def _new_request_id() -> str:
    """Unique within this process (a random prefix and a counter): no system call per request."""
    return f"{_REQUEST_PREFIX}-{next(_request_counter):x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request id, the query and token checks, the JSON error shape, the access log and
    the HTTP metrics: one middleware (each is another coroutine a request passes through)."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.match(given) else _new_request_id()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    _caller.set(None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    state = request.app[STATE]
    response: web.StreamResponse
    try:
        refused = _refusal(request, state)
        response = refused if refused is not None else await handler(request)
    except web.HTTPException as exc:
        code = exc.reason.lower().replace(" ", "_").replace("-", "_")
        message = {
            404: "no such resource",
            405: f"method {request.method} not allowed here",
            413: "the request body is too large",
        }.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = error_response(exc.status, code, message, headers=headers)
    except _Unavailable as exc:
        response = error_response(
            503,
            "unavailable",
            str(exc),
            headers={"Retry-After": str(state.settings.limits.retry_after_seconds)},
        )
    except Exception:
        log.exception("http_handler_crashed", method=request.method, path=request.path)
        response = error_response(
            500, "internal", f"internal error; quote request id {request_id} when reporting it"
        )
    response.headers["X-Request-Id"] = request_id
    route = request.match_info.route.resource
    template = route.canonical if route is not None else "unmatched"
    state.metrics.count_http_request(template, f"{response.status // 100}xx")
    log.info(
        "http_request",
        method=request.method,
        path=template,
        status=response.status,
        elapsed_ms=round((loop.time() - started) * 1000, 1),
        caller=_caller.get(),
        remote=request.remote,
    )
    structlog.contextvars.unbind_contextvars("request_id")
    return response


QUERY_PARAMETERS = {"/v1/inbox": frozenset({"after", "limit"})}
"""The query parameters each /v1 route takes; any other is refused (a misspelt one would
otherwise be silently ignored)."""


def _refusal(request: web.Request, state: State) -> web.Response | None:
    """The answer for a request refused before its handler: an unknown query parameter, a
    missing or unknown token, a token without the route's scope. None: let it through."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    if path.startswith("/v1/") and request.query:
        unknown = sorted(set(request.query) - QUERY_PARAMETERS.get(path, frozenset()))
        if unknown:
            allowed = ", ".join(sorted(QUERY_PARAMETERS.get(path, ()))) or "none"
            return error_response(
                400,
                "invalid_query",
                f"unknown query parameter(s): {', '.join(map(repr, unknown))} "
                f"(this route takes: {allowed})",
            )
    scope: Scope | None = getattr(request.match_info.handler, SCOPE_ATTR, None)
    if scope is None:
        return None
    caller: Caller | None = state.auth.caller(request.headers.get("Authorization"))
    if caller is None:
        return error_response(
            401,
            "unauthorized",
            "a bearer token is needed: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="notify-devino"'},
        )
    _caller.set(caller.name)
    if not caller.may(scope):
        return error_response(
            403, "forbidden", f"the token {caller.name!r} lacks the {scope.value!r} scope"
        )
    return None


# -- handlers ------------------------------------------------------------------------------------


ESTIMATE_MAX_BODY = 64 * 1024
MAX_CURSOR = 2**63 - 1


async def _read_json(request: web.Request, limit: int) -> Any:
    """The body as JSON, refused with 413 past ``limit`` bytes (a limit per route; the
    application's ``client_max_size`` is the largest of them)."""
    length = request.content_length
    if length is not None and length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=length)
    body: bytes | bytearray
    if length is not None:  # the parser stops at Content-Length: at most ``limit`` bytes
        body = await request.read()
    else:  # chunked: count as it comes
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest("invalid_json", f"the body is not JSON: {exc}") from None


class _BadRequest(Exception):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def _validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]


def _bad_request(exc: _BadRequest) -> web.Response:
    return error_response(400, exc.code, exc.message, **exc.extra)


@requires(Scope.SEND)
async def post_notification(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    retry = {"Retry-After": str(state.settings.limits.retry_after_seconds)}
    if state.draining:
        return error_response(503, "shutting_down", "the service is shutting down", headers=retry)
    service = state.require_service()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        return error_response(
            400,
            "invalid_idempotency_key",
            "the Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
        )
    try:
        data = await _read_json(request, state.settings.limits.max_body_bytes)
        if not isinstance(data, dict):
            raise _BadRequest("invalid_body", "the body must be a JSON object")
        try:
            body = NotificationRequest.model_validate(data)
        except ValidationError as exc:
            raise _BadRequest(
                "invalid_notification",
                "the notification is not valid",
                problems=_validation_problems(exc),
            ) from None
        if len(body.to) + len(body.addresses) > state.settings.limits.max_recipients:
            raise _BadRequest(
                "too_many_recipients",
                f"at most {state.settings.limits.max_recipients} recipients per notification",
            )
    except _BadRequest as exc:
        return _bad_request(exc)
    if key is not None:
        if key in state.in_flight_keys:
            return error_response(
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is being committed; retry shortly",
                headers={"Retry-After": "1"},
            )
        state.in_flight_keys.add(key)
    try:
        # A client hanging up does not cancel this (the runner's handler_cancellation is off),
        # and a cancelled submit is committed all the same: the store's group commit is a
        # task of its own. Only the sender's wake-up would be missed (its next poll finds it).
        submitted = await service.outbox.submit(body, idempotency_key=key)
    except IdempotencyConflict as exc:
        return error_response(
            422, "idempotency_key_reused", str(exc), notification_id=exc.notification_id
        )
    except InvalidInputError as exc:
        message = str(exc)
        if exc.field == "to":  # a phone number or email put in `to` is the usual slip
            message += "; `to` names contacts and groups, raw addresses go in `addresses`"
        return error_response(
            400, "invalid_notification", message, field=exc.field, expected=exc.expected
        )
    except StoreFull as exc:
        return error_response(503, "outbox_full", str(exc), headers=retry)
    except StoreUnavailable:
        log.exception("submit_failed")
        return error_response(
            503, "store_unavailable", "the outbox cannot commit now", headers=retry
        )
    except NotifyError as exc:
        return error_response(400, "invalid_notification", str(exc))
    finally:
        if key is not None:
            state.in_flight_keys.discard(key)
    headers = {"Location": f"/v1/notifications/{submitted.notification_id}"}
    if key is not None:
        headers["Idempotent-Replayed"] = "true" if submitted.replayed else "false"
    return json_response(dict(submitted.response), status=202, headers=headers)


def delivery_json(d: Delivery, transitions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": d.id,
        "channel": d.channel,
        "address": d.address,
        "contact": d.contact,
        "step": d.step,
        "state": d.state.value,
        "final": d.state.final,
        "message_ids": list(d.message_ids),
        "provider_state": d.provider_state,
        "error": d.error,
        "attempts": d.attempts,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "accepted_at": d.accepted_at,
        "fallback_at": d.fallback_at,
        "final_at": d.final_at,
        "transitions": transitions,
    }


def notification_json(n: StoredNotification) -> dict[str, Any]:
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for t in n.transitions:
        by_delivery.setdefault(t.delivery_id, []).append(
            {
                "from": None if t.from_state is None else t.from_state.value,
                "to": t.to_state.value,
                "at": t.at,
                "detail": t.detail,
            }
        )
    done = all(d.state.final for d in n.deliveries)
    return {
        "id": n.id,
        "text": n.text,
        "route": n.route,
        "created_at": n.created_at,
        "state": "done" if done else "in_progress",
        "request": n.request,
        "deliveries": [delivery_json(d, by_delivery.get(d.id, [])) for d in n.deliveries],
    }


@requires(Scope.READ)
async def get_notification(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    store = state.store
    if store is None:
        raise _Unavailable("the store is not open")
    found = await store.get_notification(request.match_info["id"])
    if found is None:
        return error_response(404, "not_found", "no notification with this id")
    body = notification_json(found)
    acks = await alertmanager.acknowledgements(store, found)
    if acks:
        body["acknowledgements"] = acks
    return json_response(body)


@requires(Scope.READ)
async def get_channels(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    service = state.require_service()
    out = []
    for name, channel in state.config.channels.items():
        spec = service.types.get(name)
        out.append(
            {
                "name": name,
                "type": channel.type,
                "default": name == state.config.default_channel,
                "operations": sorted(service.operations.get(name, ())),
                "batch_size": spec.batch_size if spec else None,
            }
        )
    return json_response({"channels": out, "routes": list(state.config.routes)})


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20_000)
    recipients: int = Field(default=1, ge=1, le=1_000_000)
    channel: str | None = None


@requires(Scope.SEND)
async def post_estimate(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    service = state.require_service()
    try:
        data = await _read_json(
            request, min(ESTIMATE_MAX_BODY, state.settings.limits.max_body_bytes)
        )
        try:
            body = EstimateRequest.model_validate(data)
        except ValidationError as exc:
            raise _BadRequest(
                "invalid_estimate",
                "the estimate request is not valid",
                problems=_validation_problems(exc),
            ) from None
    except _BadRequest as exc:
        return _bad_request(exc)
    if body.channel is not None and body.channel not in state.config.channels:
        return error_response(
            400,
            "invalid_estimate",
            f"no channel named {body.channel!r}",
            field="channel",
            expected="one of " + ", ".join(state.config.channels),
        )
    try:
        estimate = await service.dispatcher.estimate(
            body.text, recipients=body.recipients, channel=body.channel
        )
    except UnsupportedOperationError as exc:
        return error_response(400, "unsupported", str(exc))
    except NotifyError as exc:
        return error_response(400, "invalid_estimate", str(exc))
    return json_response(
        {
            "channel": estimate.channel,
            "segments": estimate.segments,
            "characters": estimate.characters,
            "recipients": estimate.recipients,
            "encoding": estimate.encoding,
            "cost": estimate.cost,
            "currency": estimate.currency,
            "warnings": list(estimate.warnings),
            "too_long": estimate.too_long,
        }
    )


@requires(Scope.READ)
async def get_inbox(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.store is None:
        raise _Unavailable("the store is not open")
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "100"))
        if not 0 <= after <= MAX_CURSOR or not 1 <= limit <= 1000:
            raise ValueError
    except ValueError:
        return error_response(
            400,
            "invalid_query",
            f"after must be a cursor (an integer from 0 to {MAX_CURSOR}), limit 1 to 1000",
        )
    records = await state.store.inbox(after=after, limit=limit)
    return json_response(
        {
            "messages": [
                {
                    "cursor": r.seq,
                    "channel": r.channel,
                    "sender": r.sender,
                    "recipient": r.recipient,
                    "text": r.text,
                    "received_at": r.received_at,
                }
                for r in records
            ],
            "next": records[-1].seq if records else after,
        }
    )


async def healthy(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "healthy"})


async def ready(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    problems = []
    if state.draining:
        problems.append("shutting down")
    if state.store is None:
        problems.append("the store is not open")
    else:
        try:
            await state.store.check_writable()
        except StoreUnavailable as exc:
            problems.append(str(exc))
    if state.service is None or not state.service.started:
        problems.append("the channels and workers are not started")
    if problems:
        return json_response({"status": "not_ready", "problems": problems}, status=503)
    return json_response({"status": "ready"})


@requires(Scope.READ)
async def metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.store is not None:
        await state.metrics.refresh(state.store, utc_now())
    return web.Response(body=state.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return json_response(openapi.document())


async def openapi_yaml(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=yaml.safe_dump(openapi.document(), sort_keys=False), content_type="application/yaml"
    )


# -- the application -----------------------------------------------------------------------------


def make_app(
    config: Config,
    settings: ServiceSettings | None = None,
    *,
    store: Store | None = None,
    plugins: PluginManager | None = None,
    owner: str | None = None,
) -> web.Application:
    """The service as an aiohttp application.

    :param settings: the service settings; default ``config.service`` or the defaults.
    :param store: an unopened store; default the one ``settings.store`` names.
    :param plugins: the plugin manager for the dispatcher.
    """
    settings = settings or config.service or ServiceSettings()
    state = State(
        config=config,
        settings=settings,
        metrics=ServiceMetrics(config.channels, config.routes),
        auth=Authenticator(settings.tokens if settings.auth else []),
    )
    app = web.Application(
        middlewares=[request_context],
        client_max_size=settings.limits.max_body_bytes,
    )
    app[STATE] = state
    target = store if store is not None else open_store(settings.store)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await target.open()
        state.store = target
        try:
            yield
        finally:
            state.store = None
            await target.aclose()

    async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
        assert state.store is not None
        limiters = state.store.rate_limiters(owner or f"serve-{os.getpid()}")
        dispatcher = Dispatcher(config, plugins=plugins, limiters=limiters)
        await dispatcher.start()
        state.dispatcher = dispatcher
        try:
            yield
        finally:
            state.dispatcher = None
            await dispatcher.aclose()

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        assert state.store is not None
        assert state.dispatcher is not None
        service = Service(
            config, settings, state.store, state.dispatcher, metrics=state.metrics, owner=owner
        )
        await service.start()
        state.service = service
        try:
            async with alertmanager.running(app, service):
                yield
        finally:
            await service.stop()

    async def on_shutdown(app: web.Application) -> None:
        state.draining = True
        log.info("service_draining")

    app.cleanup_ctx.extend([store_ctx, dispatcher_ctx, service_ctx])
    app.on_shutdown.append(on_shutdown)

    # One application, not a /v1 sub-application: a sub-application's routes are resolved
    # in two steps and its handlers wrapped once more for the middleware, which cost a POST
    # about a twentieth of what it costs above a bare aiohttp handler.
    app.router.add_post("/v1/notifications", post_notification)
    app.router.add_get("/v1/notifications/{id}", get_notification, allow_head=False)
    app.router.add_get("/v1/channels", get_channels, allow_head=False)
    app.router.add_post("/v1/estimate", post_estimate)
    app.router.add_get("/v1/inbox", get_inbox, allow_head=False)
    app.router.add_get("/v1/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/v1/openapi.yaml", openapi_yaml, allow_head=False)
    alertmanager.add_routes(app, config, retry_after=settings.limits.retry_after_seconds)
    app.router.add_get("/-/healthy", healthy, allow_head=False)
    app.router.add_get("/-/ready", ready, allow_head=False)
    app.router.add_get("/metrics", metrics, allow_head=False)
    if not state.auth.enabled:
        log.warning(
            "auth_disabled",
            reason="no tokens configured" if settings.auth else "auth: false",
            advice="anyone who can reach the port can send; listen on 127.0.0.1 only",
        )
    return app


__all__ = ["STATE", "State", "make_app"]
