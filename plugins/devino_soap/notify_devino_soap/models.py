"""Typed results of the Devino SOAP operations, and the table of Devino's message states.

These are Devino's own shapes, one to one with the service's replies; the channel maps them onto
the channel-neutral values of :mod:`notify_devino.types`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from notify_devino.types import DeliveryState


class DevinoState(enum.IntEnum):
    """The message states Devino documents (``State`` of ``GetMessageState``).

    Member names are Devino's own, so ``DevinoState(0).name == "Delivered_To_Recipient"``.
    A reply may carry a code that is not here (clients in the wild meet -97, -98, -10, 69, 99):
    :func:`state_info` answers for any code and never fails.
    """

    Errors = -200
    Tarificated = -100
    Queued = -40
    Sending_To_Gateway = -30
    Sending_To_Recipient = -20
    ErrorSendingDateTimeInterpretation = -3
    LocalQueued = -2
    Sent = -1
    Delivered_To_Recipient = 0
    System_Error = 8
    Error_Invalid_Source_Address = 10
    Error_Invalid_Destination_Address = 11
    Error_Incompatible_Destination = 41
    Error_Rejected = 42
    Error_Expired = 46
    Deleted = 47
    Devino_Rejected = 48
    Unknown = 255


@dataclass(frozen=True, slots=True)
class StateInfo:
    """What this library knows of one state code.

    :ivar code: the code as the service sent it.
    :ivar name: Devino's name, or ``Unknown(<code>)`` for a code not in the documentation.
    :ivar is_final: True when the state will not change any more.
    :ivar delivery_state: the channel-neutral summary.
    :ivar known: False for a code the documentation does not list.
    """

    code: int
    name: str
    is_final: bool
    delivery_state: DeliveryState
    known: bool = True


_P, _S, _D, _F, _E, _U = (
    DeliveryState.PENDING,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.FAILED,
    DeliveryState.EXPIRED,
    DeliveryState.UNKNOWN,
)

# Final: 0 and every error state, -3 and -200 included. The other negative states are in
# progress. 255 (Unknown) is what the service answers for an unknown or old (> 48 h) ID: final,
# because asking again will not tell more.
_TABLE: dict[DevinoState, tuple[bool, DeliveryState]] = {
    DevinoState.Errors: (True, _F),
    DevinoState.Tarificated: (False, _P),
    DevinoState.Queued: (False, _P),
    DevinoState.Sending_To_Gateway: (False, _S),
    DevinoState.Sending_To_Recipient: (False, _S),
    DevinoState.ErrorSendingDateTimeInterpretation: (True, _F),
    DevinoState.LocalQueued: (False, _P),
    DevinoState.Sent: (False, _S),
    DevinoState.Delivered_To_Recipient: (True, _D),
    DevinoState.System_Error: (True, _F),
    DevinoState.Error_Invalid_Source_Address: (True, _F),
    DevinoState.Error_Invalid_Destination_Address: (True, _F),
    DevinoState.Error_Incompatible_Destination: (True, _F),
    DevinoState.Error_Rejected: (True, _F),
    DevinoState.Error_Expired: (True, _E),
    DevinoState.Deleted: (True, _E),
    DevinoState.Devino_Rejected: (True, _F),
    DevinoState.Unknown: (True, _U),
}

STATES: Mapping[int, StateInfo] = MappingProxyType(
    {
        int(state): StateInfo(int(state), state.name, final, summary)
        for state, (final, summary) in _TABLE.items()
    }
)
"""Every documented state code -> what it means."""


def state_info(code: int) -> StateInfo:
    """What a state code means; never fails.

    A code the documentation does not list is named ``Unknown(<code>)`` and follows the
    documented rule: negative codes are in progress, the others final.
    """
    known = STATES.get(code)
    if known is not None:
        return known
    return StateInfo(code, f"Unknown({code})", code >= 0, DeliveryState.UNKNOWN, known=False)


@dataclass(frozen=True, slots=True)
class MessageState:
    """The reply of ``GetMessageState`` for one message (segment) ID.

    Dates are aware UTC datetimes, or None when the service sent none (``xsi:nil``, or
    ``0001-01-01T00:00:00`` for ``TimeStampUtc``: .NET's ``DateTime.MinValue``).

    :ivar message_id: the ID asked about, as a decimal string.
    :ivar state: the service's code, kept even when unknown to this library.
    :ivar state_name: Devino's name for it, or ``Unknown(<code>)``.
    :ivar description: ``StateDescription``, verbatim.
    :ivar price: the price charged, when known.
    :ivar is_final: True when the state will not change any more.
    """

    message_id: str
    state: int
    state_name: str
    description: str | None
    creation_date_utc: datetime | None
    submitted_date_utc: datetime | None
    reported_date_utc: datetime | None
    time_stamp_utc: datetime | None
    price: Decimal | None
    is_final: bool

    @property
    def delivery_state(self) -> DeliveryState:
        """The channel-neutral summary of :attr:`state`."""
        return state_info(self.state).delivery_state


@dataclass(frozen=True, slots=True)
class DevinoStatistics:
    """The reply of ``GetStatistics``: message counts over a period, in the service's order."""

    sent: int
    delivered: int
    errors: int
    in_process: int
    expired: int
    rejected: int
    optimized: int
    tarificated: int
    total: int
    total_with_errors: int
    delivery_ratio: Decimal

    def counts(self) -> dict[str, int]:
        """The counters under Devino's own names, in the service's order."""
        return {
            "Sent": self.sent,
            "Delivered": self.delivered,
            "Errors": self.errors,
            "InProcess": self.in_process,
            "Expired": self.expired,
            "Rejected": self.rejected,
            "Optimized": self.optimized,
            "Tarificated": self.tarificated,
            "Total": self.total,
            "TotalWithErrors": self.total_with_errors,
        }


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message of ``GetIncomingMessages``: an SMS the account received."""

    data: str
    source_address: str
    destination_address: str
    created_date_utc: datetime


__all__ = [
    "STATES",
    "DevinoState",
    "DevinoStatistics",
    "IncomingMessage",
    "MessageState",
    "StateInfo",
    "state_info",
]
