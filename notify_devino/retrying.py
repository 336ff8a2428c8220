"""Classified retries for channel plugins, built once per channel with tenacity.

A channel wraps each exchange with the provider in :meth:`RetryPolicy.call`. What is retried
depends on whether the operation is *idempotent*:

- idempotent (reads: state, balance, statistics, inbox, a login) retry every error whose
  :meth:`~notify_devino.errors.ChannelError.is_transient` says so;
- non-idempotent (sends), under the default ``send_policy: at_most_once``, retry only transient
  errors that prove the request was not processed
  (:meth:`~notify_devino.errors.ChannelError.may_have_been_processed` is False): a connection
  never made (``request_sent=False``), a rate-limit refusal, a fault the provider marks as
  temporary. A timeout, a reset after the request was written, an unreadable reply or a bare
  HTTP 5xx is never retried: the message may be out, and the caller gets the error (the
  channel reports the recipients' outcome as *unknown*);
- under ``send_policy: at_least_once`` a send retries every transient error, like a read. A
  message whose first request was processed but not answered is then sent twice (and paid
  twice); in exchange a message is not left *unknown* because of one lost reply. When such a
  resend then fails with an error that proves *it* was not processed, the earlier error is
  raised instead: the message may still be out, and its outcome is unknown.

Waits grow exponentially with jitter, never below a ``Retry-After`` the provider gave; a
``Retry-After`` longer than ``wait_max_seconds`` is not waited for (the error surfaces with it).
``deadline_seconds`` bounds the retrying of one call, counted from the moment its first request
is sent (time spent queueing for a rate limit before that is not the provider's fault): no wait
runs, and no attempt starts, past it, and a read's attempt is given only the time left. A
send's attempt is never cut short (that would turn a clean answer into an unknown outcome). The
exchange calls :meth:`Attempt.start` as its request is about to go (one that does not has its
deadline counted from the end of its first attempt). Each retry is one
``retry_scheduled`` log event (channel, operation, attempt, wait, error class).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from .errors import ChannelError, RateLimitedError
from .logconfig import get_logger

log = get_logger(__name__)

T = TypeVar("T")

SendPolicy = Literal["at_most_once", "at_least_once"]
"""What a send may do after an error that leaves its outcome unknown: ``at_most_once`` (never
send again; the default) or ``at_least_once`` (send again; may deliver, and charge, twice)."""

# tenacity 9.2 renamed wait_exponential_jitter's first wait from ``initial`` to ``multiplier``.
_FIRST_WAIT = (
    "multiplier"
    if "multiplier" in inspect.signature(wait_exponential_jitter.__init__).parameters
    else "initial"
)
_MIN_ATTEMPT_SECONDS = 0.01
"""The shortest time a read's attempt is given near the deadline (a zero timeout means none)."""


class RetrySettings(BaseModel):
    """How a channel retries transient failures (``retry:`` in a channel's settings)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, le=10, description="attempts per call, first included")
    wait_initial_seconds: float = Field(default=0.5, gt=0, description="the first backoff")
    wait_max_seconds: float = Field(
        default=10.0, gt=0, description="the longest backoff, and the longest Retry-After honoured"
    )
    deadline_seconds: float | None = Field(
        default=60.0,
        gt=0,
        description="no retry starts later than this after a call's first request; null: only "
        "attempts bound it",
    )
    send_policy: SendPolicy = Field(
        default="at_most_once",
        description="at_most_once: a send whose request may have been processed is not repeated "
        "(its outcome is unknown); at_least_once: it is (it may be delivered twice)",
    )


class _Budget:
    """The deadline of one call, started by its first request."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.ends_at: float | None = None

    def start(self) -> None:
        if self.seconds is not None and self.ends_at is None:
            self.ends_at = time.monotonic() + self.seconds

    def left(self) -> float | None:
        return None if self.ends_at is None else self.ends_at - time.monotonic()


class _StopAtDeadline(stop_base):
    """Stop when the next attempt would start past the call's deadline."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = self.budget.left()
        return left is not None and getattr(retry_state, "upcoming_sleep", 0.0) >= left


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a call, as the exchange sees it.

    :ivar number: 1 for the first attempt.
    :ivar idempotent: whether the call is a read (its attempts may be cut to the deadline).
    """

    number: int
    idempotent: bool = True
    _budget: _Budget = field(default_factory=lambda: _Budget(None), repr=False)

    def start(self, timeout: float) -> float | None:
        """The request is about to go: start the call's deadline (on the first request) and
        return the seconds this attempt may take, ``timeout`` or, for a read, what is left of
        the deadline if less. None when the deadline has passed: send nothing."""
        self._budget.start()
        left = self._budget.left()
        if left is None:
            return timeout
        if left <= 0:
            return None
        return min(timeout, max(left, _MIN_ATTEMPT_SECONDS)) if self.idempotent else timeout


class SendAttempts:
    """What the attempts of one send have shown so far, across retries and across the repeats a
    channel makes of its own (after renewing a session, say).

    Pass one to :meth:`RetryPolicy.call` for each repeat, and :meth:`settle` the error the send
    finally ends with.
    """

    def __init__(self) -> None:
        self.unanswered: ChannelError | None = None
        """The first error after which the send may have been processed, if any."""

    def record(self, exc: ChannelError) -> None:
        if self.unanswered is None and exc.may_have_been_processed():
            self.unanswered = exc

    def settle(self, final: ChannelError) -> ChannelError:
        """The error the send ends with: ``final``, unless an earlier attempt may have been
        processed and ``final`` does not say the same of the send (it proves only its own
        attempt was not processed, or it is the error of another request, such as a login);
        then that earlier error, with a note of the final one: the outcome is unknown."""
        earlier = self.unanswered
        if earlier is None or earlier is final:
            return final
        if final.may_have_been_processed() and final.operation == earlier.operation:
            return final  # the send's own later attempt is as unknown as the earlier one
        # The final error is a refusal, or comes from another request (the login that renewed
        # a session): it says nothing of the earlier attempt, which may be out.
        earlier.add_note(
            f"a later attempt failed with {type(final).__name__}: {final}; an earlier one may "
            "have been processed, so the outcome is unknown"
        )
        return earlier


class RetryPolicy:
    """The retry policy of one channel: two tenacity templates, built once, copied per call.

    :param settings: attempts, backoff, deadline and send policy.
    :param channel: the channel name for log events.
    """

    def __init__(self, settings: RetrySettings, *, channel: str | None = None) -> None:
        self.settings = settings
        self.channel = channel
        backoff = wait_exponential_jitter(
            **{_FIRST_WAIT: settings.wait_initial_seconds},
            max=settings.wait_max_seconds,
            jitter=settings.wait_initial_seconds,
        )

        def wait(state: RetryCallState) -> float:
            delay = float(backoff(state))
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            return delay

        self._attempts = stop_after_attempt(settings.attempts)
        common: dict[str, Any] = {"stop": self._attempts, "wait": wait, "reraise": True}
        self._idempotent = AsyncRetrying(retry=retry_if_exception(self.may_retry_read), **common)
        self._once = AsyncRetrying(retry=retry_if_exception(self.may_retry_send), **common)

    def _retry_after_ok(self, exc: BaseException) -> bool:
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= self.settings.wait_max_seconds

    def may_retry_read(self, exc: BaseException) -> bool:
        """Idempotent operations: anything transient."""
        return isinstance(exc, ChannelError) and exc.is_transient() and self._retry_after_ok(exc)

    def may_retry_send(self, exc: BaseException) -> bool:
        """Non-idempotent operations: under ``at_most_once`` only what is transient and proves
        the request was not processed; under ``at_least_once`` anything transient."""
        if not self.may_retry_read(exc):
            return False
        assert isinstance(exc, ChannelError)
        return self.settings.send_policy == "at_least_once" or not exc.may_have_been_processed()

    def _log(self, operation: str, *, idempotent: bool) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            fields: dict[str, Any] = {}
            if not idempotent and isinstance(exc, ChannelError) and exc.may_have_been_processed():
                fields["may_duplicate"] = True  # at_least_once resending an unanswered send
            log.warning(
                "retry_scheduled",
                channel=self.channel,
                operation=operation,
                attempt=state.attempt_number,
                wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
                error=type(exc).__name__ if exc is not None else None,
                **fields,
            )

        return before_sleep

    async def call(
        self,
        operation: str,
        exchange: Callable[[Attempt], Awaitable[T]],
        *,
        idempotent: bool,
        attempts: SendAttempts | None = None,
    ) -> T:
        """Run ``exchange(attempt)`` under the policy; the last error is re-raised.

        For a send, an error after which an earlier attempt may have been processed is settled
        by :meth:`SendAttempts.settle`: here, or, when the caller passes its own ``attempts``
        (it may repeat the call itself), by the caller once it is done.

        The first attempt runs bare: tenacity is entered only after it failed with an error the
        policy retries, so a call that succeeds, or fails for good, pays nothing for retries
        (copying a template and iterating it is a measurable share of a whole SOAP call: see
        ``python -m benchmarks cpu``).
        tenacity then sees that first failure as its own first attempt, so waits, stops,
        deadlines and ``retry_scheduled`` events are unchanged.
        """
        budget = _Budget(self.settings.deadline_seconds)
        history = attempts if attempts is not None else SendAttempts()

        async def attempt_once(number: int) -> T:
            try:
                result = await exchange(Attempt(number, idempotent, budget))
            except ChannelError as exc:
                if not idempotent:
                    history.record(exc)
                raise
            finally:
                budget.start()  # if the exchange did not say when its request left
            if history.unanswered is not None:
                log.warning(
                    "send_repeated_after_unknown_outcome",
                    channel=self.channel,
                    operation=operation,
                    attempt=number,
                    error=type(history.unanswered).__name__,
                )
            return result

        try:
            try:
                return await attempt_once(1)
            except Exception as exc:
                retryable = self.may_retry_read if idempotent else self.may_retry_send
                if self.settings.attempts == 1 or not retryable(exc):
                    raise
                first: Exception | None = exc
            template = self._idempotent if idempotent else self._once
            retrying = template.copy(
                stop=self._attempts | _StopAtDeadline(budget),
                before_sleep=self._log(operation, idempotent=idempotent),
            )
            async for attempt in retrying:
                with attempt:
                    if first is not None:
                        error, first = first, None
                        raise error
                    return await attempt_once(attempt.retry_state.attempt_number)
        except ChannelError as final:
            settled = final if attempts is not None else history.settle(final)
            if settled is final:
                raise
            raise settled  # noqa: B904 - its own cause (the lost reply) is what matters
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover


__all__ = ["Attempt", "RetryPolicy", "RetrySettings", "SendAttempts", "SendPolicy"]
