"""The hook specifications of notify-devino.

pluggy has no async hooks, so every hook is a plain ``def``. The operation hooks (send, status,
inbox, balance, statistics) are called for one channel at a time, and only on the plugin that
registered the channel's type: the implementation returns an awaitable, and never needs to ask
whether the channel is its own. What a channel type answers is what its plugin implements.
Observer hooks are called on every plugin, return None and must not block.

Every hook is called through the typed wrappers in :mod:`notify_devino.plugins`, never directly,
and each implementation is called on its own: hook wrappers (``wrapper=True``,
``hookwrapper=True``) are refused at registration, since they would never run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

from .types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    SendResult,
    Statistics,
    StatusChange,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import aiohttp
    import click
    from pydantic import BaseModel  # not at run time: every CLI start imports this module

    from .alertmanager.acks import Acknowledgement
    from .config import Config
    from .dispatcher import Dispatcher
    from .limits import LimiterFactory

PROJECT_NAME = "notify_devino"
"""The pluggy marker name and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What the dispatcher hands a channel it creates.

    :param name: the channel's name in the configuration (``sms``).
    :param session: the dispatcher's one aiohttp session; the channel must not close it.
    :param limiters: when given, a channel that keeps a provider account's request rate asks
        it for the account's limiter instead of making its own (several processes sharing
        one account; see :mod:`notify_devino.limits`).
    """

    name: str
    session: aiohttp.ClientSession
    limiters: LimiterFactory | None = None


@runtime_checkable
class Channel(Protocol):
    """A configured, running channel. Plugins return their own classes; the core needs only this."""

    name: str
    """The channel's name in the configuration."""

    async def start(self) -> None:
        """Called once when the dispatcher starts, inside its event loop."""

    async def aclose(self) -> None:
        """Release what the channel holds. Called once when the dispatcher closes."""


ChannelFactory = Callable[[ChannelContext, Any], Channel]
"""Builds a channel from its context and its validated settings (a settings_model instance)."""


@dataclass(frozen=True, slots=True)
class ChannelType:
    """A kind of channel a plugin provides, as returned by :func:`notify_register_channel_types`.

    :param name: the name YAML uses in ``type:`` (lower case, ``[a-z][a-z0-9_]*``).
    :param settings_model: the pydantic model that validates the channel's ``settings:``.
    :param factory: builds the channel; see :data:`ChannelFactory`.
    :param description: one line for ``notify-devino plugins``.
    :param operations: the operations the channel answers, a subset of send, status, inbox,
        balance, statistics and estimate. None (the default): every operation hook its plugin
        implements. A plugin with several channel types narrows one by naming its operations;
        naming one the plugin does not implement is an error. The plugin manager's
        :meth:`~notify_devino.plugins.PluginManager.channel_types` always gives the set.
    :param batch_size: the most recipients one send should carry when the dispatcher streams
        a bulk send (:meth:`~notify_devino.dispatcher.Dispatcher.send_stream`): the
        provider's per-request limit, say. None lets the dispatcher choose.
    :param announces_departure: the channel's send awaits
        :func:`notify_devino.departure.departing` just before each request that carries the
        recipients leaves (after its rate-limit slot is granted), so ``notify-devino serve``
        records them ``sending`` only then, and a crash while they wait sends them later
        instead of marking them unknown. False: the service records them ``sending`` before
        it calls the send.
    """

    name: str
    settings_model: type[BaseModel]
    factory: ChannelFactory
    description: str = ""
    operations: frozenset[str] | None = None
    batch_size: int | None = None
    announces_departure: bool = False


@hookspec
def notify_register_channel_types() -> Iterable[ChannelType]:
    """Called once when the plugin manager is set up, to learn the channel types plugins provide.

    :return: the channel types this plugin provides. A name claimed by two plugins is an error
        that names both.
    """
    raise NotImplementedError


@hookspec
def notify_register_commands(cli: click.Group) -> None:
    """Called when the ``notify-devino`` command line is built.

    :param cli: the top-level click group; add commands to it with ``cli.add_command``.
        A command name already taken is an error that names the plugin.
    """


@hookspec(firstresult=True)
def notify_send(channel: Channel, notification: Notification) -> Awaitable[SendResult] | None:
    """Called to send a notification over a channel of the plugin's own type.

    :param channel: the running channel the notification is routed to.
    :param notification: what to send; its ``channel`` is already resolved.
    :return: an awaitable of the per-recipient result. It raises
        :class:`~notify_devino.errors.InvalidInputError` when the notification as a whole breaks a
        rule (text too long, bad sender), before any request. Once it has sent anything it never
        raises: a recipient it could not serve is reported as failed (bad number, a fault) or
        unknown (the request may have been processed), so accepted messages are never lost.
        The core holds it to this: any other exception, or a channel error that says the
        request may have been processed, makes every recipient *unknown* (and is logged as
        ``send_contract_broken``) instead of reaching the caller. None: the channel does not
        send (the dispatcher raises UnsupportedOperationError).
    """


@hookspec(firstresult=True)
def notify_status(
    channel: Channel, message_ids: Sequence[str]
) -> Awaitable[Sequence[MessageStatus]] | None:
    """Called to read the state of sent messages.

    :param channel: the channel the messages were sent over.
    :param message_ids: provider message IDs, as returned in a :class:`SendResult`.
    :return: an awaitable of one status per ID, in order.
    """


@hookspec(firstresult=True)
def notify_inbox(
    channel: Channel, since: datetime, until: datetime
) -> Awaitable[Sequence[InboundMessage]] | None:
    """Called to read messages the account received between two moments (UTC, aware).

    :return: an awaitable of the messages, oldest first.
    """


@hookspec(firstresult=True)
def notify_balance(channel: Channel) -> Awaitable[Balance] | None:
    """Called to read the account balance of a channel that has one.

    :return: an awaitable of the balance.
    """


@hookspec(firstresult=True)
def notify_statistics(
    channel: Channel, start: datetime, end: datetime
) -> Awaitable[Statistics] | None:
    """Called to read the provider's delivery statistics for a period (UTC, aware).

    :return: an awaitable of the statistics.
    """


@hookspec(firstresult=True)
def notify_estimate(channel: Channel, text: str, recipients: int) -> Awaitable[Estimate] | None:
    """Called to learn what ``text`` would cost on a channel, before sending it; nothing is sent.

    :param channel: the running channel the text would go over.
    :param text: the message text.
    :param recipients: how many recipients the cost is for (at least 1).
    :return: an awaitable of the estimate.
    """


@hookspec(firstresult=True)
def notify_embedded_setup() -> AbstractAsyncContextManager[Config] | None:
    """Called when ``notify-devino serve`` starts with no configuration file, to run on a
    self-contained setup a newcomer can try at once.

    :return: from a plugin that can provide one (the Devino plugin: its sandbox, in-process, and
        the demo configuration), an async context manager that starts what the setup needs and
        yields the :class:`~notify_devino.config.Config` to use, and stops it on exit; None from
        every other plugin.
    """


@hookspec
def notify_dispatcher_started(dispatcher: Dispatcher) -> None:
    """Called once after a dispatcher has started every channel."""


@hookspec
def notify_dispatcher_closing(dispatcher: Dispatcher) -> None:
    """Called once when a dispatcher begins to close, before its channels are closed."""


@hookspec
def notify_after_send(result: SendResult) -> None:
    """Observer: called after every send, whatever its outcome.

    An exception raised here is logged and never changes the send's result.
    """


@hookspec
def notify_status_changed(change: StatusChange) -> None:
    """Observer: called when the dispatcher reads a status that differs from the last one it read
    for that message ID (or reads the first one)."""


@hookspec
def notify_inbound_message(message: InboundMessage) -> None:
    """Observer: called for every inbound message the dispatcher reads, once per read."""


@hookspec
def notify_alert_acknowledged(ack: Acknowledgement) -> None:
    """Observer: called once when someone acknowledges an alert group by SMS reply (the
    Alertmanager receiver of ``serve``), after the acknowledgement is stored.

    :param ack: the group, its code, who acknowledged it from which address, and when.
    """
