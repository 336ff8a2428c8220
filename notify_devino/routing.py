"""Contacts, routes and fallback: how :meth:`Dispatcher.notify
<notify_devino.dispatcher.Dispatcher.notify>` gets one notification to people.

The configuration names people (``contacts:``, each with an address per channel name), lists of
them (``groups:``) and routes (``routes:``: which notifications go over which channels, in what
order). :func:`deliver` expands the names given to contacts, picks the route, and runs one
*chain* per contact along the route's channels:

1. a channel the contact has no address for is skipped;
2. the notification is sent on the channel; if the send failed, or its outcome is unknown, the
   next channel is tried at once;
3. when the channel took the message, it is followed through the channel's status
   (:meth:`Dispatcher.status`, so through the ``notify_status`` hook, and observers hear of
   every change): delivered ends the chain; a failed or expired message, or one not delivered
   within the route's ``fallback_after_seconds`` (default ``status.wait_timeout_seconds``),
   moves on to the next channel;
4. a taken message ends the chain without being followed on the route's last channel (there
   is nothing to fall back to), on a channel that reports no status, and on a route with
   ``follow: false``.

Sends that several chains ask of one channel in the same turn of the event loop (the first
step of every contact, say) go out as one notification with several recipients: an SMS to a
group of thirty is one request, not thirty.

An unknown outcome moves on to the next channel: an alert whose SMS may or may not have gone
out is sent by email as well, so it may arrive twice, once per medium. Nothing is ever sent twice
on the same channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import Config, RouteConfig
from .errors import (
    ChannelError,
    ConfigError,
    DispatcherStateError,
    InvalidInputError,
    UnexpectedError,
)
from .logconfig import get_logger
from .types import (
    ChannelAttempt,
    ContactResult,
    DeliveryState,
    MessageStatus,
    NotifyResult,
    RecipientResult,
    RouteOutcome,
    SendOutcome,
)

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

log = get_logger(__name__)

NOTIFICATION_ID_KEY = "notification_id"
"""The metadata key of the ID a routed notification carries on every channel. A channel that can
pass an ID on (a webhook's ``Idempotency-Key``) derives it from this."""


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """The channels a notification is tried on, in order.

    :param name: the route's name; None when no route matched and the default channel is used.
    :param channels: configured channel names, in the order they are tried.
    :param fallback_after: seconds a taken message has to be delivered before the next channel
        is tried; None to not follow delivery (``follow: false``, or the default channel).
    """

    name: str | None
    channels: tuple[str, ...]
    fallback_after: float | None


def resolve_contacts(config: Config, names: Iterable[str]) -> list[str]:
    """The contacts that ``names`` (contact and group names) stand for: groups expanded, each
    contact once, in the order first named.

    :raises InvalidInputError: a name is neither a contact nor a group.
    """
    found: dict[str, None] = {}

    def add(name: str) -> None:
        if name in config.contacts:
            found[name] = None
        elif name in config.groups:
            for member in config.groups[name]:
                add(member)
        else:
            known = sorted([*config.contacts, *config.groups])
            raise InvalidInputError(
                f"{name!r} is neither a contact nor a group",
                field="to",
                value=name,
                expected="one of " + (", ".join(known) if known else "(none configured)"),
            )

    for name in names:
        add(name)
    if not found:
        raise ValueError("a notification needs at least one recipient")
    return list(found)


def select_route(
    config: Config,
    *,
    severity: str | None = None,
    tags: Iterable[str] = (),
    route: str | None = None,
) -> RoutePlan:
    """The route named ``route``, else the first route (in file order) that matches the
    severity and tags, else the default channel alone.

    :raises InvalidInputError: ``route`` names no configured route.
    :raises ConfigError: nothing matches and no default channel is configured.
    """
    tag_set = frozenset(tags)
    if route is not None:
        chosen = config.routes.get(route)
        if chosen is None:
            raise InvalidInputError(
                f"no route named {route!r}",
                field="route",
                value=route,
                expected="one of " + (", ".join(config.routes) or "(none configured)"),
            )
        return _plan(config, route, chosen)
    for name, candidate in config.routes.items():
        if candidate.match is not None and candidate.match.matches(severity, tag_set):
            return _plan(config, name, candidate)
    if config.default_channel is None:
        raise ConfigError(
            f"no route matches severity={severity!r}, tags={sorted(tag_set)} and no "
            "default_channel is configured: add a route with 'match: {}' or a default_channel"
        )
    return RoutePlan(None, (config.default_channel,), None)


def _plan(config: Config, name: str, route: RouteConfig) -> RoutePlan:
    after = None
    if route.follow:
        after = route.fallback_after_seconds or config.status.wait_timeout_seconds
    return RoutePlan(name, tuple(route.channels), after)


class _Batcher:
    """Gathers the sends that chains ask of one channel in the same turn of the event loop
    into one notification with several recipients."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        text: str,
        metadata: Mapping[str, str],
        tasks: asyncio.TaskGroup,
    ) -> None:
        self._dispatcher = dispatcher
        self._text = text
        self._metadata = metadata
        self._tasks = tasks
        self._queued: dict[str, list[tuple[str, asyncio.Future[RecipientResult]]]] = {}

    async def send(self, channel: str, address: str) -> RecipientResult:
        future: asyncio.Future[RecipientResult] = asyncio.get_running_loop().create_future()
        queue = self._queued.get(channel)
        if queue is None:
            queue = self._queued[channel] = []
            self._tasks.create_task(self._flush(channel))
        queue.append((address, future))
        return await future

    async def _flush(self, channel: str) -> None:
        await asyncio.sleep(0)  # every chain of this turn has queued its send by now
        queue = self._queued.pop(channel)
        addresses = [address for address, _ in queue]
        try:
            result = await self._dispatcher.send(
                self._text, to=addresses, channel=channel, metadata=self._metadata
            )
            answers = list(result.recipients)
        except (ChannelError, DispatcherStateError) as exc:
            # Refused before anything was sent (a text too long for SMS, a refused login): the
            # core lets a send raise only an error that proves nothing was processed.
            error = (
                exc if isinstance(exc, ChannelError) else ChannelError(str(exc), channel=channel)
            )
            answers = [RecipientResult(a, a, SendOutcome.FAILED, error=error) for a in addresses]
        except Exception as exc:  # unexpected: it may have sent
            log.exception("route_send_crashed", channel=channel, recipients=len(addresses))
            error = UnexpectedError.of(exc, channel=channel)
            answers = [RecipientResult(a, a, SendOutcome.UNKNOWN, error=error) for a in addresses]
        for (_, future), answer in zip(queue, answers, strict=True):
            future.set_result(answer)


class _Router:
    """One routed notification: a chain per contact along the plan's channels."""

    def __init__(self, dispatcher: Dispatcher, plan: RoutePlan, batcher: _Batcher) -> None:
        self.dispatcher = dispatcher
        self.config = dispatcher.config
        self.plan = plan
        self.batcher = batcher
        plugins = dispatcher.plugins
        self.follows = {
            name: plan.fallback_after is not None
            and index + 1 < len(plan.channels)
            and "status" in plugins.channel_hooks(self.config.channels[name].type).operations
            for index, name in enumerate(plan.channels)
        }

    async def chain(self, contact: str) -> ContactResult:
        addresses = self.config.contacts[contact]
        attempts: list[ChannelAttempt] = []
        for index, channel in enumerate(self.plan.channels):
            address = addresses.get(channel)
            if address is None:
                reason = f"{contact} has no {channel} address"
                attempts.append(ChannelAttempt(channel, None, RouteOutcome.SKIPPED, reason=reason))
                continue
            attempt = await self.settle(channel, address, await self.batcher.send(channel, address))
            attempts.append(attempt)
            if attempt.reason is None:
                break
            log.warning(
                "route_fallback" if index + 1 < len(self.plan.channels) else "route_exhausted",
                route=self.plan.name,
                contact=contact,
                channel=channel,
                outcome=attempt.outcome.value,
                reason=attempt.reason,
            )
        return _contact_result(contact, attempts)

    async def settle(self, channel: str, address: str, sent: RecipientResult) -> ChannelAttempt:
        """What became of one send: follow it when the route asks and the channel can tell."""
        if sent.outcome is SendOutcome.FAILED:
            return ChannelAttempt(
                channel, address, RouteOutcome.FAILED, sent, reason=f"failed: {sent.error}"
            )
        if sent.outcome is SendOutcome.UNKNOWN:
            reason = f"outcome unknown: {sent.error}"
            return ChannelAttempt(channel, address, RouteOutcome.UNKNOWN, sent, reason=reason)
        if not self.follows[channel] or not sent.message_ids:
            return ChannelAttempt(channel, address, RouteOutcome.ACCEPTED, sent)
        assert self.plan.fallback_after is not None
        statuses, error = await self.follow(channel, sent.message_ids, self.plan.fallback_after)
        delivered = [s for s in statuses if s.state is DeliveryState.DELIVERED]
        if len(delivered) == len(sent.message_ids):
            return ChannelAttempt(channel, address, RouteOutcome.DELIVERED, sent, statuses)
        undelivered = [s for s in statuses if s.final and s.state is not DeliveryState.DELIVERED]
        if undelivered:
            s = undelivered[0]
            provider = f" ({s.name})" if s.name else (f" (code {s.code})" if s.code else "")
            return ChannelAttempt(
                channel,
                address,
                RouteOutcome.UNDELIVERED,
                sent,
                statuses,
                reason=f"{s.state.value}{provider}",
            )
        reason = f"not delivered within {self.plan.fallback_after:g} s"
        if error is not None and len(statuses) < len(sent.message_ids):
            reason = str(error)
        return ChannelAttempt(channel, address, RouteOutcome.LATE, sent, statuses, reason=reason)

    async def follow(
        self, channel: str, message_ids: Sequence[str], within: float
    ) -> tuple[tuple[MessageStatus, ...], ChannelError | None]:
        """Read the messages' status until all are final, one fails, or ``within`` runs out.

        :return: the last status read of each ID (those ever read), and the last error met.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        interval = self.config.status.poll_interval_seconds
        latest: dict[str, MessageStatus] = {}
        error: ChannelError | None = None
        while True:
            try:
                for status in await self.dispatcher.status(list(message_ids), channel=channel):
                    latest[status.message_id] = status
            except ChannelError as exc:  # a status read failed; the message may still arrive
                error = ChannelError(f"status not readable: {exc}", channel=channel)
                log.warning("route_status_failed", channel=channel, error=str(exc))
            except DispatcherStateError as exc:  # the dispatcher is closing: stop following
                return tuple(latest.values()), ChannelError(
                    f"status not followed: {exc}", channel=channel
                )
            except Exception as exc:  # a plugin's bug: stop following, move on to the next channel
                log.exception("route_status_crashed", channel=channel)
                return tuple(latest.values()), ChannelError(
                    f"status not readable: unexpected {type(exc).__name__}: {exc}", channel=channel
                )
            statuses = [latest[i] for i in message_ids if i in latest]
            done = len(statuses) == len(message_ids) and all(s.final for s in statuses)
            if done or any(s.final and s.state is not DeliveryState.DELIVERED for s in statuses):
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(interval, remaining))
        return tuple(latest[i] for i in message_ids if i in latest), error


def _contact_result(contact: str, attempts: Sequence[ChannelAttempt]) -> ContactResult:
    tried = [a for a in attempts if a.outcome is not RouteOutcome.SKIPPED]
    if tried and tried[-1].outcome in (RouteOutcome.DELIVERED, RouteOutcome.ACCEPTED):
        return ContactResult(contact, tried[-1].outcome, tried[-1].channel, tuple(attempts))
    late = [a for a in tried if a.outcome is RouteOutcome.LATE]
    if late:  # taken, not confirmed, and no later channel took it: it may still arrive
        return ContactResult(contact, RouteOutcome.ACCEPTED, late[-1].channel, tuple(attempts))
    if any(a.outcome is RouteOutcome.UNKNOWN for a in tried):
        return ContactResult(contact, RouteOutcome.UNKNOWN, None, tuple(attempts))
    return ContactResult(contact, RouteOutcome.FAILED, None, tuple(attempts))


async def deliver(
    dispatcher: Dispatcher,
    text: str,
    *,
    to: Iterable[str] | str,
    severity: str | None = None,
    tags: Iterable[str] = (),
    route: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> NotifyResult:
    """Send ``text`` to contacts and groups along a route, falling back channel by channel.

    See :meth:`Dispatcher.notify <notify_devino.dispatcher.Dispatcher.notify>`.
    """
    config = dispatcher.config
    names = [to] if isinstance(to, str) else list(to)
    contacts = resolve_contacts(config, names)
    tag_list = tuple(dict.fromkeys(tags))
    plan = select_route(config, severity=severity, tags=tag_list, route=route)
    labels = {
        NOTIFICATION_ID_KEY: uuid.uuid4().hex,
        **({"severity": severity} if severity else {}),
        **({"tags": ",".join(tag_list)} if tag_list else {}),
        **({"route": plan.name} if plan.name else {}),
        **(metadata or {}),
    }
    log.info(
        "route_selected",
        route=plan.name,
        channels=list(plan.channels),
        contacts=contacts,
        severity=severity,
        tags=list(tag_list),
        notification_id=labels[NOTIFICATION_ID_KEY],
    )
    started = asyncio.get_running_loop().time()
    async with asyncio.TaskGroup() as tasks:
        router = _Router(dispatcher, plan, _Batcher(dispatcher, text, labels, tasks))
        chains = [tasks.create_task(router.chain(contact)) for contact in contacts]
    results = tuple(chain.result() for chain in chains)
    log.info(
        "notification_routed",
        route=plan.name,
        notification_id=labels[NOTIFICATION_ID_KEY],
        carried_by={r.contact: r.carried_by for r in results},
        outcomes={r.contact: r.outcome.value for r in results},
        elapsed_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
    )
    return NotifyResult(
        text=text,
        route=plan.name,
        notification_id=labels[NOTIFICATION_ID_KEY],
        severity=severity,
        tags=tag_list,
        recipients=results,
    )


__all__ = ["NOTIFICATION_ID_KEY", "RoutePlan", "deliver", "resolve_contacts", "select_route"]
