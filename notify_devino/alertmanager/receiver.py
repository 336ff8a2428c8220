"""``POST /v1/alertmanager`` and ``POST /v1/alertmanager/{route}``: Alertmanager's webhook.

What Alertmanager does with the answer decides whether an alert can be lost: it retries a 5xx
and a connection error (with backoff, until the group's next flush, then again at every
group_interval), and never retries anything else. So:

- **200** only after the notification is committed to the outbox (it will be sent, and
  followed along its route, whatever happens to this process);
- **503** with ``Retry-After`` when it could not be committed (the store cannot commit, the
  outbox is full, the service is shutting down): Alertmanager retries;
- **500** for a problem of this side's configuration (the route named in the URL does not
  exist, the route has no recipients, a template fails): Alertmanager keeps retrying until it is
  fixed, and the alert is not lost;
- **4xx** only for a request that can never succeed: not JSON, not a version 4 payload (400),
  missing or wrong credentials (401), with a body saying what was wrong.

**Deduplication.** A retry after an answer that was lost, and the second member of a highly
available pair, post the same notification again. Its key is the receiver, the group key, the
status and the sorted (fingerprint, status, startsAt) of its alerts, kept for
``alertmanager.dedup_window_seconds``: within it a repeat is answered 200 and sends nothing.
New alerts in the group, a resolution and a repeat after ``repeat_interval`` (longer than the
window) are new notifications.

**Auth.** Alertmanager's ``http_config`` sends ``authorization`` (a bearer token) or
``basic_auth``. A request passes with ``alertmanager.bearer_token``, with
``alertmanager.basic_auth``, or with a service token that has the ``send`` scope; with none of
them configured the endpoint is open (as the rest of the service is then).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from ..config import Config
from ..errors import InvalidInputError, NotifyError
from ..routing import resolve_contacts, select_route
from ..types import Estimate
from .matchers import route_for_labels
from .payload import PayloadError, WebhookMessage, parse_payload
from .templates import AlertTemplate, TemplateError

log = structlog.get_logger(__name__)

DEDUP_SCOPE = "alertmanager"
ALERT_KEY = "alert_key"
"""The metadata key naming the alert group a notification is about (what an ack halts)."""
ACK_CODE_KEY = "ack_code"
MAX_BODY_BYTES = 4 * 1024 * 1024
"""Alertmanager sends every alert of a group in one body (``max_alerts`` caps it)."""


def alert_key(message: WebhookMessage) -> str:
    """The alert group, across its notifications: the receiver and the group key."""
    raw = json.dumps([message.receiver, message.group_key], ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def dedup_key(message: WebhookMessage) -> str:
    raw = json.dumps(message.dedup_key_parts(), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def digits(address: str) -> str:
    """An address as the key of its acknowledgement codes: a phone number's digits only, so a
    reply from ``79031234567`` finds the codes sent to ``+7 903 123-45-67``."""
    found = "".join(c for c in address if c.isdigit())
    return found or address


@dataclass(frozen=True, slots=True)
class Plan:
    """What a webhook notification becomes."""

    route: str | None
    contacts: list[str]
    channel: str
    """The first channel of the route: the template's budget is counted on it."""
    ack_channel: str | None
    """The route's first channel that reads replies; None: no acknowledgement code."""
    ack_addresses: dict[str, str | None]
    """Address (digits) -> contact name, on ``ack_channel``."""


class ConfigProblem(NotifyError):
    """This side's configuration cannot take the notification (answered 500)."""


class Unavailable(NotifyError):
    """The notification cannot be committed now (answered 503)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


Submit = Callable[[WebhookMessage, Plan, str, str | None], Awaitable[Mapping[str, Any]]]


def template_for(config: Config, route: str | None) -> AlertTemplate:
    """The compiled template and budget of a route (None: no route).

    :raises TemplateError: the template does not compile.
    """
    settings = config.alertmanager.route(route)
    return AlertTemplate(
        settings.template,
        max_segments=settings.max_segments or config.alertmanager.max_segments,
        transliterate=bool(settings.transliterate),
        name=f"route {route}" if route else "the default route",
    )


class AlertmanagerReceiver:
    """The webhook handler. The service gives it what it needs:

    :param config: the configuration (``alertmanager:``, routes, contacts).
    :param estimate: counts a text on a channel (``Dispatcher.estimate``).
    :param channel_operations: channel name -> the operations its type answers.
    :param submit: commits the notification (message, plan, text, ack code) and returns the
        response body; raises :class:`Unavailable` when it cannot commit now.
    :param open_code: gives the group's acknowledgement code for the plan's addresses.
    :param on_resolved: called after a resolved group's notification is committed.
    :param service_tokens: the service's bearer tokens with the ``send`` scope.
    """

    def __init__(
        self,
        config: Config,
        *,
        estimate: Callable[[str, str], Awaitable[Estimate]],
        channel_operations: Mapping[str, frozenset[str]],
        submit: Submit,
        open_code: Callable[[WebhookMessage, Plan], Awaitable[str]] | None = None,
        on_resolved: Callable[[WebhookMessage], Awaitable[None]] | None = None,
        service_tokens: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.settings = config.alertmanager
        self._estimate = estimate
        self._operations = channel_operations
        self._submit = submit
        self._open_code = open_code
        self._on_resolved = on_resolved
        self._tokens = [t.encode() for t in service_tokens]
        self._templates: dict[str | None, AlertTemplate] = {}

    # -- wiring ----------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/alertmanager", self.handle)
        app.router.add_post("/v1/alertmanager/{route}", self.handle)

    def template(self, route: str | None) -> AlertTemplate:
        if route not in self._templates:
            self._templates[route] = template_for(self.config, route)
        return self._templates[route]

    # -- auth ------------------------------------------------------------------------------------

    def _auth_configured(self) -> bool:
        s = self.settings
        return bool(s.bearer_token or s.basic_auth or self._tokens)

    def authorized(self, header: str | None) -> bool:
        """Whether the ``Authorization`` header passes (constant-time comparisons)."""
        if not self._auth_configured():
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            given = value.encode()
            wanted = list(self._tokens)
            if self.settings.bearer_token is not None:
                wanted.append(self.settings.bearer_token.get_secret_value().encode())
            ok = False
            for token in wanted:  # compare with every one: the time says nothing of which
                ok |= hmac.compare_digest(given, token)
            return ok
        if scheme.lower() == "basic" and self.settings.basic_auth is not None:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            basic = self.settings.basic_auth
            user_ok = hmac.compare_digest(user.encode(), basic.username.encode())
            password_ok = hmac.compare_digest(
                password.encode(), basic.password.get_secret_value().encode()
            )
            return user_ok and password_ok
        return False

    # -- the request -----------------------------------------------------------------------------

    @staticmethod
    def _error(
        status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> web.Response:
        body = {"error": {"code": code, "message": message, **extra}}
        return web.json_response(body, status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authorized(request.headers.get("Authorization")):
            log.warning("alertmanager_unauthorized", remote=request.remote)
            return self._error(
                401,
                "unauthorized",
                "missing or wrong credentials: send the configured bearer token or basic auth",
                headers={"WWW-Authenticate": 'Bearer realm="notify-devino", Basic'},
            )
        body = await request.read()
        try:
            message = parse_payload(body)
        except PayloadError as exc:
            log.warning("alertmanager_payload_refused", problems=len(exc.problems))
            return self._error(
                400,
                "invalid_payload",
                str(exc),
                problems=[{"field": f or "(body)", "message": p} for f, p in exc.problems],
            )
        try:
            answer = await self.accept(message, request.match_info.get("route"))
        except Unavailable as exc:
            return self._error(
                503, "unavailable", str(exc), headers={"Retry-After": str(exc.retry_after)}
            )
        except ConfigProblem as exc:
            log.error("alertmanager_config_problem", error=str(exc), group=message.group_key)
            return self._error(500, "configuration", str(exc))
        return web.json_response(dict(answer))

    def plan(self, message: WebhookMessage, url_route: str | None) -> Plan:
        """The route, contacts and channels of a notification.

        :raises ConfigProblem: the URL's route does not exist, or nobody is to get it.
        """
        config = self.config
        if url_route is not None:
            if url_route not in config.routes:
                raise ConfigProblem(
                    f"the URL names route {url_route!r}, which is not configured (routes: "
                    f"{', '.join(config.routes) or 'none'})"
                )
            route: str | None = url_route
        else:
            route = route_for_labels(config, message.common_labels)
        to = self.settings.route(route).to or []
        if not to:
            where = f"alertmanager.routes.{route}.to" if route else "alertmanager.to"
            raise ConfigProblem(
                f"nobody to send alert group {message.group_key} to: set {where} (or "
                "alertmanager.to) to contacts or groups"
            )
        try:
            contacts = resolve_contacts(config, to)
        except InvalidInputError as exc:
            raise ConfigProblem(f"alertmanager recipients: {exc}") from None
        if route is not None:
            channels = list(select_route(config, route=route).channels)
        else:
            default = config.default_channel
            if default is None:
                raise ConfigProblem(
                    f"no route takes alert group {message.group_key} (labels "
                    f"{dict(message.common_labels)}) and no default_channel is configured"
                )
            channels = [default]
        ack_channel = next((c for c in channels if "inbox" in self._operations.get(c, ())), None)
        addresses: dict[str, str | None] = {}
        if ack_channel is not None:
            for contact in contacts:
                address = config.contacts[contact].get(ack_channel)
                if address:
                    addresses[digits(str(address))] = contact
        return Plan(route, contacts, channels[0], ack_channel, addresses)

    async def accept(self, message: WebhookMessage, url_route: str | None) -> Mapping[str, Any]:
        """Commit the notification a webhook body becomes; :return: the response body."""
        plan = self.plan(message, url_route)
        code: str | None = None
        acks = self.settings.ack
        if (
            message.status == "firing"
            and acks.enabled
            and plan.ack_addresses
            and self._open_code is not None
        ):
            code = await self._open_code(message, plan)
        template = self.template(plan.route)

        async def estimate(text: str) -> Estimate:
            return await self._estimate(text, plan.channel)

        try:
            rendered = await template.render(message, estimate, ack_code=code, route=plan.route)
        except TemplateError as exc:
            raise ConfigProblem(str(exc)) from None
        if not rendered.fits or rendered.warnings:
            log.warning(
                "alert_text_warnings",
                route=plan.route,
                segments=rendered.estimate.segments,
                budget=rendered.max_segments,
                warnings=list(rendered.warnings),
            )
        answer = await self._submit(message, plan, rendered.text, code)
        log.info(
            "alertmanager_notification_accepted",
            route=plan.route,
            status=message.status,
            alerts=len(message.alerts),
            reason=message.notification_reason,
            notification_id=answer.get("id"),
            replayed=answer.get("replayed", False),
            segments=rendered.estimate.segments,
        )
        if message.status == "resolved" and self._on_resolved is not None:
            await self._on_resolved(message)
        return answer


def openapi_paths(error_ref: str = "#/components/schemas/Error") -> dict[str, Any]:
    """The receiver's routes for the service's OpenAPI document."""

    def answer(description: str, retry: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": error_ref}}},
        }
        if retry:
            out["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        return out

    accepted = {
        "description": "committed to the outbox (replayed: true for a duplicate)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "replayed"],
                    "properties": {"id": {"type": "string"}, "replayed": {"type": "boolean"}},
                }
            }
        },
    }
    operation = {
        "summary": "Alertmanager's webhook (payload version 4); answered after the commit",
        "security": [{"bearer": []}, {"basic": []}, {}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "responses": {
            "200": accepted,
            "400": answer("not JSON, or not a version 4 payload (each bad field named)"),
            "401": answer("missing or wrong credentials"),
            "500": answer("this side's configuration cannot take it (Alertmanager retries)"),
            "503": answer("not committed now: store down, outbox full, shutting down", True),
        },
    }
    route = {"name": "route", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/v1/alertmanager": {"post": {"operationId": "postAlertmanager", **operation}},
        "/v1/alertmanager/{route}": {
            "post": {"operationId": "postAlertmanagerRoute", "parameters": [route], **operation}
        },
    }


__all__ = [
    "ACK_CODE_KEY",
    "ALERT_KEY",
    "DEDUP_SCOPE",
    "AlertmanagerReceiver",
    "ConfigProblem",
    "Plan",
    "Unavailable",
    "alert_key",
    "dedup_key",
    "digits",
]
