"""The plugin manager: loads plugins, validates what they register, and is the only place hooks
are called from (through the typed wrappers below).

Plugins are found through the ``notify_devino`` entry-point group. Autoloading can be turned off
(``autoload=False`` or ``NOTIFY_DEVINO_DISABLE_PLUGIN_AUTOLOAD=1``) and single plugins blocked
(``block=[...]`` or ``NOTIFY_DEVINO_BLOCK_PLUGINS=a,b``). A plugin that fails to import is logged
and skipped, so one broken plugin does not take the others down.

Each hook implementation is called on its own, never through pluggy's relay: an operation hook
only on the plugin that registered the channel's type (:class:`ChannelHooks`, one record per
channel type), an observer on every plugin with its failure isolated. So no plugin has to ask
whether a channel is its own, and a hook wrapper, which would never run, is refused when it is
registered.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import (
    ChannelError,
    DepartureRefused,
    InvalidInputError,
    PluginError,
    UnexpectedError,
    UnsupportedOperationError,
)
from .hookspecs import PROJECT_NAME, Channel, ChannelType
from .logconfig import get_logger
from .types import (
    Balance,
    Estimate,
    InboundMessage,
    MessageStatus,
    Notification,
    RecipientResult,
    SendOutcome,
    SendResult,
    Statistics,
    StatusChange,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import click

    from .alertmanager.acks import Acknowledgement
    from .config import Config
    from .dispatcher import Dispatcher

log = get_logger(__name__)

AUTOLOAD_ENV_VAR = "NOTIFY_DEVINO_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV_VAR = "NOTIFY_DEVINO_BLOCK_PLUGINS"
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")
OPERATION_HOOKS: Mapping[str, str] = {
    "send": "notify_send",
    "status": "notify_status",
    "inbox": "notify_inbox",
    "balance": "notify_balance",
    "statistics": "notify_statistics",
    "estimate": "notify_estimate",
}
"""Each operation a channel may answer, and the hook that answers it."""
OPERATIONS = frozenset(OPERATION_HOOKS)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``notify-devino plugins`` shows about one registered plugin."""

    name: str
    distribution: str | None
    version: str | None
    channel_types: tuple[str, ...]
    hooks: tuple[str, ...]


@dataclass(slots=True)
class _Loaded:
    distribution: str | None = None
    version: str | None = None


class ChannelHooks:
    """The operation hooks of one channel type: its plugin's own implementations, called
    directly, with the send contract enforced. Get one from
    :meth:`PluginManager.channel_hooks`.

    :ivar channel_type: the type, its ``operations`` resolved.
    :ivar plugin: the name of the plugin that registered it.
    """

    __slots__ = ("_impls", "channel_type", "plugin")

    def __init__(
        self,
        channel_type: ChannelType,
        plugin: str,
        impls: Mapping[str, tuple[Callable[..., Any], Sequence[str]]],
    ) -> None:
        self.channel_type = channel_type
        self.plugin = plugin
        self._impls = dict(impls)

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._impls)

    def _call(self, operation: str, channel: Channel, **kwargs: Any) -> Awaitable[Any]:
        result = None
        if operation in self._impls:
            function, argnames = self._impls[operation]
            kwargs["channel"] = channel  # an implementation may take fewer than the spec gives
            result = function(**{k: v for k, v in kwargs.items() if k in argnames})
        if result is None:
            raise UnsupportedOperationError(
                f"channel {channel.name!r} does not support {operation} (its plugin "
                f"{self.plugin!r} does not implement {OPERATION_HOOKS[operation]})",
                channel=channel.name,
            )
        return result  # type: ignore[no-any-return]

    async def send(self, channel: Channel, notification: Notification) -> SendResult:
        """The owner's ``notify_send``, held to the contract: it raises InvalidInputError (the
        notification refused as a whole), DepartureRefused (the caller's own, from
        :func:`~notify_devino.departure.departing`) and channel errors that prove nothing was
        processed;
        anything else it may raise becomes an *unknown* outcome for every recipient, logged as
        ``send_contract_broken``, so nothing that may have been sent is reported as an error."""
        try:
            result = await self._call("send", channel, notification=notification)
        except (InvalidInputError, DepartureRefused):
            raise  # refused before any request: nothing was sent
        except ChannelError as exc:
            if not exc.may_have_been_processed():
                raise  # nothing was processed: the error is the truth
            return self._unknown(channel, notification, exc, exc)
        except Exception as exc:  # a bug in the plugin: the request may be out
            error = UnexpectedError.of(
                exc,
                channel=channel.name,
                where=f"channel {channel.name!r} (plugin {self.plugin!r})",
            )
            return self._unknown(channel, notification, error, exc)
        if not isinstance(result, SendResult) or len(result.recipients) != len(
            notification.recipients
        ):
            what = (
                f"for {len(result.recipients)} of {len(notification.recipients)} recipients"
                if isinstance(result, SendResult)
                else f"a {type(result).__name__}, not a SendResult"
            )
            error = UnexpectedError(
                f"channel {channel.name!r} (plugin {self.plugin!r}) answered {what}",
                error_type=type(result).__name__,
                channel=channel.name,
            )
            return self._unknown(channel, notification, error, None)
        return result

    def _unknown(
        self,
        channel: Channel,
        notification: Notification,
        error: ChannelError,
        raised: BaseException | None,
    ) -> SendResult:
        log.error(
            "send_contract_broken",
            channel=channel.name,
            plugin=self.plugin,
            recipients=len(notification.recipients),
            error=f"{type(raised or error).__name__}: {raised or error}",
            exc_info=raised,
        )
        return SendResult(
            channel.name,
            notification,
            tuple(
                RecipientResult(r, r, SendOutcome.UNKNOWN, error=error)
                for r in notification.recipients
            ),
        )

    def status(
        self, channel: Channel, message_ids: Sequence[str]
    ) -> Awaitable[Sequence[MessageStatus]]:
        return self._call("status", channel, message_ids=message_ids)

    def inbox(
        self, channel: Channel, since: datetime, until: datetime
    ) -> Awaitable[Sequence[InboundMessage]]:
        return self._call("inbox", channel, since=since, until=until)

    def balance(self, channel: Channel) -> Awaitable[Balance]:
        return self._call("balance", channel)

    def statistics(self, channel: Channel, start: datetime, end: datetime) -> Awaitable[Statistics]:
        return self._call("statistics", channel, start=start, end=end)

    def estimate(self, channel: Channel, text: str, recipients: int) -> Awaitable[Estimate]:
        return self._call("estimate", channel, text=text, recipients=recipients)


@dataclass(slots=True)
class _State:
    dists: dict[str, _Loaded] = field(default_factory=dict)
    channel_types: dict[str, ChannelHooks] | None = None


class PluginManager:
    """A notify-devino plugin manager; make one per dispatcher (and one per test).

    :param autoload: load plugins from entry points. None reads the environment: autoload unless
        ``NOTIFY_DEVINO_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value.
    :param block: entry-point names never to load or register (added to those in
        ``NOTIFY_DEVINO_BLOCK_PLUGINS``).
    :param plugins: plugin objects (modules, classes or instances) to register by hand.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        block: Iterable[str] = (),
        plugins: Iterable[object] = (),
    ) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._state = _State()
        env_block = os.environ.get(BLOCK_ENV_VAR, "")
        self.blocked = frozenset(block) | {b.strip() for b in env_block.split(",") if b.strip()}
        for name in self.blocked:
            self._pm.set_blocked(name)
        if autoload is None:
            autoload = not os.environ.get(AUTOLOAD_ENV_VAR)
        if autoload:
            self.load_entrypoints()
        for plugin in plugins:
            self.register(plugin)

    # -- loading ---------------------------------------------------------------------------------

    def load_entrypoints(self) -> list[str]:
        """Load every plugin of the ``notify_devino`` entry-point group that is not blocked.

        :return: the names of the plugins loaded now.
        """
        loaded = []
        for ep in importlib.metadata.entry_points(group=PROJECT_NAME):
            if ep.name in self.blocked or self._pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                log.error(
                    "plugin_load_failed",
                    plugin=ep.name,
                    value=ep.value,
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            self.register(plugin, name=ep.name)
            dist = ep.dist
            self._state.dists[ep.name] = _Loaded(
                dist.metadata["Name"] if dist else None, dist.version if dist else None
            )
            loaded.append(ep.name)
        return loaded

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object; its hook implementations are checked against the specs.

        :return: the name it was registered under.
        :raises PluginError: the name is taken, or a hook implementation does not match its spec.
        """
        try:
            registered = self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from None
        except pluggy.PluginValidationError as exc:
            label = name or self._pm.get_name(plugin) or repr(plugin)
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            raise PluginError(f"plugin {label!r} is invalid: {exc}", plugins=(label,)) from None
        if registered is None:  # blocked
            return name or ""
        label = self._pm.get_name(plugin) or ""
        wrappers = sorted(
            caller.name
            for caller in self._pm.get_hookcallers(plugin) or ()
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper)
        )
        if wrappers:
            self._pm.unregister(plugin)
            raise PluginError(
                f"plugin {label!r} is invalid: {', '.join(wrappers)} is a hook wrapper "
                "(wrapper=True or hookwrapper=True); notify-devino calls each hook "
                "implementation on its own, so a wrapper would never run. Implement the hook "
                "as a plain function (an observer such as notify_after_send sees every send)",
                plugins=(label,),
            )
        self._state.channel_types = None
        return label

    def unregister(self, name: str) -> None:
        self._pm.unregister(name=name)
        self._state.channel_types = None

    def is_registered(self, name: str) -> bool:
        return self._pm.get_plugin(name) is not None

    @property
    def hook(self) -> Any:
        """The raw pluggy hook relay; prefer the typed wrappers. Never call an operation hook
        through it: implementations answer for their own channel type only, and expect to be
        called with nothing else (use :meth:`channel_hooks`)."""
        return self._pm.hook

    def plugins(self) -> list[PluginInfo]:
        """The registered plugins, with their distribution, version, channel types and hooks."""
        types = self._channel_types()
        infos = []
        for name, plugin in sorted(self._pm.list_name_plugin()):
            if plugin is None:
                continue
            dist = self._state.dists.get(name, _Loaded())
            hooks = tuple(sorted(c.name for c in self._pm.get_hookcallers(plugin) or ()))
            owned = tuple(sorted(t for t, hooks_of in types.items() if hooks_of.plugin == name))
            infos.append(PluginInfo(name, dist.distribution, dist.version, owned, hooks))
        return infos

    # -- registration hooks ----------------------------------------------------------------------

    def channel_types(self) -> dict[str, ChannelType]:
        """Every channel type registered by a plugin, by name, with its ``operations``
        resolved (what its plugin implements); validated once and cached.

        :raises PluginError: a malformed registration, a name registered twice (naming both
            plugins), or a type naming an operation its plugin does not implement.
        """
        return {name: hooks.channel_type for name, hooks in self._channel_types().items()}

    def channel_type_owner(self, name: str) -> str:
        """The name of the plugin that registered channel type ``name``."""
        return self._channel_types()[name].plugin

    def channel_hooks(self, name: str) -> ChannelHooks:
        """The operation hooks of channel type ``name``: its plugin's implementations only.

        :raises KeyError: no plugin registered the type.
        """
        return self._channel_types()[name]

    def _channel_types(self) -> dict[str, ChannelHooks]:
        if self._state.channel_types is not None:
            return self._state.channel_types
        found: dict[str, ChannelHooks] = {}
        for impl in reversed(self.hook.notify_register_channel_types.get_hookimpls()):
            owner = impl.plugin_name
            implemented = self._operation_impls(impl.plugin)
            for spec in impl.function() or ():
                self._check_channel_type(spec, owner, frozenset(implemented))
                if spec.name in found:
                    raise PluginError(
                        f"channel type {spec.name!r} is registered by both plugin "
                        f"{found[spec.name].plugin!r} and plugin {owner!r}",
                        plugins=(found[spec.name].plugin, owner),
                    )
                operations = frozenset(implemented if spec.operations is None else spec.operations)
                found[spec.name] = ChannelHooks(
                    dataclasses.replace(spec, operations=operations),
                    owner,
                    {op: implemented[op] for op in operations},
                )
        owners = {hooks.plugin for hooks in found.values()}
        for hook_name in OPERATION_HOOKS.values():
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin_name not in owners:
                    log.warning(
                        "plugin_hook_unused",
                        plugin=impl.plugin_name,
                        hook=hook_name,
                        why="the plugin registers no channel type: operation hooks are called "
                        "only on the plugin that registered the channel's type",
                    )
        self._state.channel_types = found
        return found

    def _operation_impls(
        self, plugin: object
    ) -> dict[str, tuple[Callable[..., Any], Sequence[str]]]:
        """The operation hook functions ``plugin`` implements (and their argument names), by
        operation."""
        found: dict[str, tuple[Callable[..., Any], Sequence[str]]] = {}
        for operation, hook_name in OPERATION_HOOKS.items():
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin:
                    found[operation] = (impl.function, tuple(impl.argnames))
        return found

    @staticmethod
    def _check_channel_type(spec: object, owner: str, implemented: frozenset[str]) -> None:
        def bad(why: str) -> PluginError:
            return PluginError(
                f"plugin {owner!r} registered a bad channel type: {why}", plugins=(owner,)
            )

        if not isinstance(spec, ChannelType):
            raise bad(f"expected a ChannelType, got {type(spec).__name__}")
        if not isinstance(spec.name, str) or not _TYPE_NAME.fullmatch(spec.name):
            raise bad(f"name {spec.name!r} must match [a-z][a-z0-9_]*")
        from pydantic import BaseModel  # not at import: every CLI start imports this module

        if not (
            isinstance(spec.settings_model, type) and issubclass(spec.settings_model, BaseModel)
        ):
            raise bad(f"{spec.name}: settings_model must be a pydantic BaseModel subclass")
        if not callable(spec.factory):
            raise bad(f"{spec.name}: factory is not callable")
        if spec.batch_size is not None and (
            isinstance(spec.batch_size, bool)
            or not isinstance(spec.batch_size, int)
            or spec.batch_size < 1
        ):
            raise bad(f"{spec.name}: batch_size must be a whole number >= 1 or None")
        if not isinstance(spec.announces_departure, bool):
            raise bad(f"{spec.name}: announces_departure must be True or False")
        if spec.operations is None:
            return
        if not isinstance(spec.operations, frozenset | set):
            raise bad(f"{spec.name}: operations must be a frozenset of operation names or None")
        unknown = set(spec.operations) - OPERATIONS
        if unknown:
            raise bad(
                f"{spec.name}: unknown operations {sorted(unknown)}; known: {sorted(OPERATIONS)}"
            )
        missing = sorted(set(spec.operations) - implemented)
        if missing:
            hooks = ", ".join(OPERATION_HOOKS[op] for op in missing)
            raise bad(
                f"{spec.name}: operations name {', '.join(missing)}, but the plugin does not "
                f"implement {hooks}; implement it, or leave operations out (they default to "
                "the operation hooks the plugin implements)"
            )

    def register_commands(self, cli: click.Group) -> None:
        """Let every plugin add its commands to ``cli``; a taken command name names the plugin."""
        import click

        for impl in reversed(self.hook.notify_register_commands.get_hookimpls()):
            scratch = click.Group(name=cli.name)
            impl.function(cli=scratch)
            for name, command in scratch.commands.items():
                if name in cli.commands:
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} adds command {name!r}, which already exists",
                        plugins=(impl.plugin_name,),
                    )
                cli.add_command(command, name)

    def embedded_setup(self) -> AbstractAsyncContextManager[Config] | None:
        """A plugin's self-contained setup for ``serve`` without configuration, or None."""
        result: AbstractAsyncContextManager[Config] | None = self.hook.notify_embedded_setup()
        return result

    # -- lifecycle and observer hooks ------------------------------------------------------------

    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook implementation by implementation; one that raises is logged and
        the others still run. An observer can never change what happened."""
        for impl in reversed(getattr(self.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:
                log.error(
                    "observer_failed",
                    hook=hook_name,
                    plugin=impl.plugin_name,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def dispatcher_started(self, dispatcher: Dispatcher) -> None:
        self._observe("notify_dispatcher_started", dispatcher=dispatcher)

    def dispatcher_closing(self, dispatcher: Dispatcher) -> None:
        self._observe("notify_dispatcher_closing", dispatcher=dispatcher)

    def after_send(self, result: SendResult) -> None:
        self._observe("notify_after_send", result=result)

    def status_changed(self, change: StatusChange) -> None:
        self._observe("notify_status_changed", change=change)

    def inbound_message(self, message: InboundMessage) -> None:
        self._observe("notify_inbound_message", message=message)

    def alert_acknowledged(self, ack: Acknowledgement) -> None:
        self._observe("notify_alert_acknowledged", ack=ack)
