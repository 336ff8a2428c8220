"""notify-devino: a plugin-based notification backend.

The core knows no channel. It defines the hook specifications (:mod:`notify_devino.hookspecs`),
the plugin manager, the typed values, the errors, YAML config, the dispatcher and the CLI;
channels come from plugins registered under the ``notify_devino`` entry-point group.
"""

from .errors import (
    AuthenticationError,
    ChannelError,
    ConfigError,
    ConnectionFailedError,
    DepartureRefused,
    DispatcherStateError,
    InsufficientFundsError,
    InvalidInputError,
    NotifyError,
    ParseError,
    PluginError,
    ProviderFaultError,
    RateLimitedError,
    RequestTimeoutError,
    SessionExpiredError,
    TemporaryFaultError,
    TransportError,
    UnexpectedError,
    UnknownChannelError,
    UnsupportedOperationError,
)
from .hookspecs import Channel, ChannelContext, ChannelType, hookimpl
from .types import (
    Balance,
    DeliveryState,
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

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Balance",
    "Channel",
    "ChannelContext",
    "ChannelError",
    "ChannelType",
    "ConfigError",
    "ConnectionFailedError",
    "DeliveryState",
    "DepartureRefused",
    "DispatcherStateError",
    "Estimate",
    "InboundMessage",
    "InsufficientFundsError",
    "InvalidInputError",
    "MessageStatus",
    "Notification",
    "NotifyError",
    "ParseError",
    "PluginError",
    "ProviderFaultError",
    "RateLimitedError",
    "RecipientResult",
    "RequestTimeoutError",
    "SendOutcome",
    "SendResult",
    "SessionExpiredError",
    "Statistics",
    "StatusChange",
    "TemporaryFaultError",
    "TransportError",
    "UnexpectedError",
    "UnknownChannelError",
    "UnsupportedOperationError",
    "hookimpl",
]
