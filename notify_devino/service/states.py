"""The state machine of one delivery: one recipient of one notification on one channel.

::

    queued -> claimed -> sending -> accepted -> delivered | undelivered | expired | late
                 |          |    \\-> failed
                 v          |     \\-> unknown
              queued        v
                  (at_least_once recovery) queued

``sending`` is committed *before* the request leaves, so a crash leaves evidence of what may
have gone out. A request refused unprocessed goes back to ``claimed`` while it waits for its
retry (nothing of it is out), and to ``sending`` again as the retry leaves. A delivery in a
final state never changes again; the route's next step, when there is one, is a new delivery
on the next channel (its ``step`` one higher).

The allowed transitions are data (:data:`TRANSITIONS`); every store checks each change against
them and keeps every transition with its time.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    QUEUED = "queued"
    """Waiting to be sent (``due_at`` says from when)."""
    CLAIMED = "claimed"
    """Taken by a worker (it holds the lease); nothing has left yet."""
    SENDING = "sending"
    """Committed before the request left: the provider may have it."""
    ACCEPTED = "accepted"
    """The provider took it and gave message IDs; followed until final."""
    FAILED = "failed"
    """The provider did not take it (bad address, refused): nothing went out."""
    UNKNOWN = "unknown"
    """The request may have reached the provider; no answer came back. Never resent under
    ``at_most_once``."""
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    """The provider took it, then reported it failed."""
    EXPIRED = "expired"
    """The provider took it, then reported it expired."""
    LATE = "late"
    """Taken but not delivered within the route's ``fallback_after_seconds``: the route moved
    on to its next channel. It may still arrive."""

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset(
    {State.FAILED, State.UNKNOWN, State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.LATE}
)
"""States a delivery never leaves."""

ACTIVE = frozenset({State.QUEUED, State.CLAIMED, State.SENDING})
"""States that count towards the outbox depth (not yet handed to the provider)."""

TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.CLAIMED, State.FAILED}),
    State.CLAIMED: frozenset({State.SENDING, State.QUEUED, State.FAILED}),
    # sending -> claimed: the request was refused unprocessed and waits for its retry
    State.SENDING: frozenset(
        {State.ACCEPTED, State.FAILED, State.UNKNOWN, State.QUEUED, State.CLAIMED}
    ),
    State.ACCEPTED: frozenset({State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.LATE}),
    **{state: frozenset() for state in FINAL},
}
"""Every allowed change, from -> the states it may go to."""

NEEDS_NEXT_STEP = frozenset(
    {State.FAILED, State.UNKNOWN, State.UNDELIVERED, State.EXPIRED, State.LATE}
)
"""Final states after which a route tries its next channel, if it has one."""


class SendPolicy(enum.StrEnum):
    """What crash recovery does with a delivery found ``sending`` with no answer."""

    AT_MOST_ONCE = "at_most_once"
    """Mark it unknown: never resent (the default: a duplicate SMS costs money)."""
    AT_LEAST_ONCE = "at_least_once"
    """Queue it again: it may arrive twice."""


class TransitionError(ValueError):
    """A change the state machine does not allow (from a state to one it cannot go to)."""

    def __init__(self, delivery_id: int, current: State, target: State) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none, final"
        super().__init__(
            f"delivery {delivery_id} cannot go from {current.value} to {target.value} "
            f"(allowed: {allowed})"
        )
        self.delivery_id, self.current, self.target = delivery_id, current, target


def check(delivery_id: int, current: State, target: State) -> None:
    """Raise :class:`TransitionError` unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        raise TransitionError(delivery_id, current, target)


__all__ = [
    "ACTIVE",
    "FINAL",
    "NEEDS_NEXT_STEP",
    "TRANSITIONS",
    "SendPolicy",
    "State",
    "TransitionError",
    "check",
]
