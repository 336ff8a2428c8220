"""The Alertmanager receiver and the acknowledgement reader inside ``notify-devino serve``.

:class:`AlertmanagerIntegration` ties the receiver (:mod:`.receiver`) and the reader
(:mod:`.acks`) to the service's outbox, store, dispatcher and workers. ``make_app`` creates
one, adds its routes and starts and stops it with the workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from aiohttp import web

from .. import hookimpl
from ..errors import InvalidInputError, UnsupportedOperationError
from ..types import Estimate, InboundMessage, utc_now
from .acks import Acknowledgement, AckReader, SilenceSink
from .payload import WebhookMessage
from .receiver import (
    ACK_CODE_KEY,
    ALERT_KEY,
    DEDUP_SCOPE,
    AlertmanagerReceiver,
    ConfigProblem,
    Plan,
    Unavailable,
    alert_key,
    dedup_key,
    template_for,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..service.store import StoredNotification
    from ..service.workers import Service

log = structlog.get_logger(__name__)

REPLY_SCOPE = "alertmanager-reply"
REPLY_KEY_TTL = timedelta(days=7)


class _InboxWaker:
    """Wakes the reader when the inbox worker stored a new inbound message."""

    def __init__(self, reader: AckReader) -> None:
        self._reader = reader

    @hookimpl
    def notify_inbound_message(self, message: InboundMessage) -> None:
        self._reader.wake()


class AlertmanagerIntegration:
    """The receiver and the ack reader over one running :class:`Service`.

    :param session: the HTTP session the silence sink uses (not closed here); None makes one.
    """

    def __init__(self, service: Service, *, session: aiohttp.ClientSession | None = None) -> None:
        self.service = service
        self.config = service.config
        self.settings = service.config.alertmanager
        self.closing = False
        self._session = session
        self._own_session = session is None
        tokens = [
            t.token.get_secret_value()
            for t in service.settings.tokens
            if t.token is not None and "send" in {s.value for s in t.scopes}
        ]
        self.receiver = AlertmanagerReceiver(
            self.config,
            estimate=self._estimate,
            channel_operations=dict(service.operations),
            submit=self._submit,
            open_code=self._open_code,
            on_resolved=self._resolved,
            service_tokens=tokens if service.settings.auth else (),
        )
        self.reader = AckReader(
            service.store,
            send_reply=self._send_reply,
            on_ack=self._acknowledged,
            confirm=self.settings.ack.confirm,
            on_closed=self._closed,
        )
        self._waker = _InboxWaker(self.reader)

    async def start(self) -> None:
        if self.settings.silence.url is not None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self.reader.silences = SilenceSink(self.settings.silence, self._session)
        halted = getattr(self.service, "halted", None)
        if halted is not None:
            halted.update(await self.service.store.acknowledged_alert_keys())
        plugins = self.service.dispatcher.plugins
        if not plugins.is_registered("alertmanager_acks"):
            plugins.register(self._waker, name="alertmanager_acks")
        if self.settings.ack.enabled:
            self.reader.start()

    async def stop(self) -> None:
        self.closing = True
        await self.reader.stop()
        plugins = self.service.dispatcher.plugins
        if plugins.is_registered("alertmanager_acks"):
            plugins.unregister("alertmanager_acks")
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- what the receiver needs -----------------------------------------------------------------

    async def _estimate(self, text: str, channel: str) -> Estimate:
        try:
            return await self.service.dispatcher.estimate(text, channel=channel)
        except UnsupportedOperationError:  # a channel with no notion of parts (email)
            return Estimate(channel=channel, segments=1, characters=len(text))

    async def _open_code(self, message: WebhookMessage, plan: Plan) -> str:
        from ..service.store import NoFreeCode, StoreError

        try:
            return await self.service.store.open_alert_code(
                alert_key(message),
                plan.ack_addresses,
                dict(message.common_labels),
                digits=self.settings.ack.code_digits,
            )
        except NoFreeCode as exc:
            raise ConfigProblem(str(exc)) from None
        except StoreError as exc:
            raise Unavailable(f"not queued, try again: {exc}", self._retry_after()) from None

    def _retry_after(self) -> int:
        return self.service.settings.limits.retry_after_seconds

    async def _submit(
        self, message: WebhookMessage, plan: Plan, text: str, code: str | None
    ) -> Mapping[str, Any]:
        from ..service.outbox import NotificationRequest
        from ..service.store import StoreError, StoreFull, StoreUnavailable, SubmitKey

        if self.closing:
            raise Unavailable("the service is shutting down", self._retry_after())
        metadata = {
            ALERT_KEY: alert_key(message),
            "alertmanager_status": message.status,
            "alertmanager_receiver": message.receiver[:200],
        }
        if code:
            metadata[ACK_CODE_KEY] = code
        request = NotificationRequest(
            text=text,
            to=plan.contacts,
            route=plan.route,
            channel=None if plan.route else plan.channel,
            metadata=metadata,
        )
        key = SubmitKey(
            DEDUP_SCOPE,
            dedup_key(message),
            None,
            utc_now() + timedelta(seconds=self.settings.dedup_window_seconds),
        )
        try:
            submitted = await self.service.outbox.submit(request, dedup=key)
        except InvalidInputError as exc:
            raise ConfigProblem(str(exc)) from None
        except (StoreFull, StoreUnavailable, StoreError) as exc:  # full, down, or closed
            log.warning("alertmanager_not_queued", error=str(exc))
            raise Unavailable(f"not queued, try again: {exc}", self._retry_after()) from None
        return {**submitted.response, "replayed": submitted.replayed}

    async def _resolved(self, message: WebhookMessage) -> None:
        key = alert_key(message)
        rows = await self.service.store.close_alert(key)
        halted = getattr(self.service, "halted", None)
        if halted is not None:
            halted.discard(key)
        if rows:
            await self.reader.resolved(rows)

    # -- what the reader needs -------------------------------------------------------------------

    async def _send_reply(self, channel: str, address: str, text: str, key: str) -> None:
        from ..service.outbox import NotificationRequest
        from ..service.store import SubmitKey

        await self.service.outbox.submit(
            NotificationRequest(text=text, addresses=[address], channel=channel),
            dedup=SubmitKey(REPLY_SCOPE, key, None, utc_now() + REPLY_KEY_TTL),
        )

    def _closed(self, key: str) -> None:
        halted = getattr(self.service, "halted", None)
        if halted is not None:
            halted.discard(key)

    def _acknowledged(self, ack: Acknowledgement) -> None:
        halted = getattr(self.service, "halted", None)
        if halted is not None:
            halted.add(ack.alert_key)
        self.service.dispatcher.plugins.alert_acknowledged(ack)


def check_settings(config: Config) -> None:
    """Fail at start, not at the first alert: every route's template renders a sample
    group, and the section names only configured routes, contacts and groups.

    :raises ConfigError: naming what is wrong.
    """
    from ..errors import ConfigError
    from ..routing import resolve_contacts
    from .templates import TemplateError, check_template

    settings = config.alertmanager
    for named in settings.routes:
        if named not in config.routes:
            raise ConfigError(
                f"no route named {named!r} in routes: "
                f"({', '.join(config.routes) or 'none configured'})",
                path=f"alertmanager.routes.{named}",
                line=config.line_of(("alertmanager", "routes", named)),
                source=config.source,
            )
    names: list[str | None] = [None, *settings.routes, *config.routes]
    for name in names:
        route = settings.route(name)
        where = f"alertmanager.routes.{name}" if name in settings.routes else "alertmanager"
        try:
            check_template(template_for(config, name))
        except TemplateError as exc:
            raise ConfigError(str(exc), path=where, source=config.source) from None
        if route.to:
            try:
                resolve_contacts(config, route.to)
            except InvalidInputError as exc:
                raise ConfigError(f"{where}.to: {exc}", source=config.source) from None


class AlertmanagerSlot:
    """Where the running integration is found by the routes (set in the application before it
    starts; the integration itself exists only while the workers run)."""

    def __init__(self) -> None:
        self.integration: AlertmanagerIntegration | None = None
        self.closing = False
        self.retry_after = 5


ALERTMANAGER: web.AppKey[AlertmanagerSlot] = web.AppKey("notify_devino_alertmanager")


def add_routes(app: web.Application, config: Config, *, retry_after: int = 5) -> None:
    """Add ``POST /v1/alertmanager[/{route}]`` to ``app``.

    :raises ConfigError: the ``alertmanager:`` section is wrong (see :func:`check_settings`).
    """
    check_settings(config)
    slot = AlertmanagerSlot()
    slot.retry_after = retry_after
    app[ALERTMANAGER] = slot
    app.router.add_post("/v1/alertmanager", handle)
    app.router.add_post("/v1/alertmanager/{route}", handle)

    async def on_shutdown(app: web.Application) -> None:
        slot.closing = True

    app.on_shutdown.append(on_shutdown)


async def handle(request: web.Request) -> web.StreamResponse:
    slot = request.app[ALERTMANAGER]
    integration = slot.integration
    if slot.closing or integration is None or integration.closing:
        why = "shutting down" if slot.closing else "starting"
        return web.json_response(
            {"error": {"code": "unavailable", "message": f"the service is {why}"}},
            status=503,
            headers={"Retry-After": str(slot.retry_after)},
        )
    return await integration.receiver.handle(request)


@contextlib.asynccontextmanager
async def running(app: web.Application, service: Service) -> AsyncIterator[AlertmanagerIntegration]:
    """The integration over ``service`` while the context lasts (inside the workers' one)."""
    slot = app[ALERTMANAGER]
    integration = AlertmanagerIntegration(service)
    await integration.start()
    slot.integration = integration
    try:
        yield integration
    finally:
        slot.integration = None
        await integration.stop()


async def acknowledgements(store: Any, notification: StoredNotification) -> list[dict[str, Any]]:
    """The acknowledgements of the alert group a notification is about (for its ``GET``)."""
    metadata = notification.request.get("metadata") or {}
    key = metadata.get(ALERT_KEY)
    if not key:
        return []
    rows = await store.alert_codes(key)
    return [
        {
            "code": r.code,
            "address": r.address,
            "contact": r.contact,
            "acknowledged_at": r.acked_at.isoformat() if r.acked_at else None,
            "acknowledged_by": r.acked_by,
            "silence_id": r.silence_id,
            "closed_at": r.closed_at.isoformat() if r.closed_at else None,
        }
        for r in rows
    ]


__all__ = [
    "ALERTMANAGER",
    "AlertmanagerIntegration",
    "AlertmanagerSlot",
    "acknowledgements",
    "add_routes",
    "handle",
    "running",
]
