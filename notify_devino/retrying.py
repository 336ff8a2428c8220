"""Classified retries for channel plugins, built once per channel with tenacity.

A channel wraps each exchange with the provider in :meth:`RetryPolicy.call`. What is retried
depends on whether the operation is *idempotent*:

- idempotent (reads: state, balance, statistics, inbox, a login) retry every error whose
  :meth:`~notify_devino.errors.ChannelError.is_transient` says so;
- non-idempotent (sends) retry only errors that prove the request was not processed: a
  :class:`~notify_devino.errors.TransportError` with ``request_sent=False`` (connection refused)
  and a :class:`~notify_devino.errors.RateLimitedError` (the provider refused it). A timeout or a
  reset after the request was written is never retried: the message may be out.

Waits grow exponentially with jitter, never below a ``Retry-After`` the provider gave; a
``Retry-After`` longer than ``wait_max_seconds`` is not waited for (the error surfaces with it).
Each retry is one ``retry_scheduled`` log event.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from .errors import ChannelError, RateLimitedError, TransportError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# tenacity 9.2 renamed wait_exponential_jitter's first wait from ``initial`` to ``multiplier``.
_FIRST_WAIT = (
    "multiplier"
    if "multiplier" in inspect.signature(wait_exponential_jitter.__init__).parameters
    else "initial"
)


class RetrySettings(BaseModel):
    """How a channel retries transient failures (``retry:`` in a channel's settings)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, le=10, description="attempts per call, first included")
    wait_initial_seconds: float = Field(default=0.5, gt=0, description="the first backoff")
    wait_max_seconds: float = Field(
        default=10.0, gt=0, description="the longest backoff, and the longest Retry-After honoured"
    )
    deadline_seconds: float | None = Field(
        default=None, gt=0, description="give up once this long has passed since the first attempt"
    )


class RetryPolicy:
    """The retry policy of one channel: two tenacity templates, built once, copied per call.

    :param settings: attempts, backoff and deadline.
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

        stop: stop_base = stop_after_attempt(settings.attempts)
        if settings.deadline_seconds is not None:
            stop = stop | stop_after_delay(settings.deadline_seconds)
        common: dict[str, Any] = {"stop": stop, "wait": wait, "reraise": True}
        self._idempotent = AsyncRetrying(retry=retry_if_exception(self.may_retry_read), **common)
        self._once = AsyncRetrying(retry=retry_if_exception(self.may_retry_send), **common)

    def _retry_after_ok(self, exc: BaseException) -> bool:
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= self.settings.wait_max_seconds

    def may_retry_read(self, exc: BaseException) -> bool:
        """Idempotent operations: anything transient."""
        return isinstance(exc, ChannelError) and exc.is_transient() and self._retry_after_ok(exc)

    def may_retry_send(self, exc: BaseException) -> bool:
        """Non-idempotent operations: only what proves the request was not processed."""
        if isinstance(exc, TransportError):
            return not exc.request_sent
        return isinstance(exc, RateLimitedError) and self._retry_after_ok(exc)

    def _log(self, operation: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "retry_scheduled",
                channel=self.channel,
                operation=operation,
                attempt=state.attempt_number,
                wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
                error=type(exc).__name__ if exc is not None else None,
            )

        return before_sleep

    async def call(
        self, operation: str, exchange: Callable[[int], Awaitable[T]], *, idempotent: bool
    ) -> T:
        """Run ``exchange(attempt_number)`` under the policy; the last error is re-raised.

        The first attempt runs bare: tenacity is entered only after it failed with an error the
        policy retries, so a call that succeeds, or fails for good, pays nothing for retries
        (copying a template and iterating it cost ~23 us a call, ~7% of a whole SOAP call).
        tenacity then sees that first failure as its own first attempt, timed from when it
        started, so waits, stops, deadlines and ``retry_scheduled`` events are unchanged.
        """
        started = time.monotonic()
        try:
            return await exchange(1)
        except Exception as exc:
            retryable = self.may_retry_read if idempotent else self.may_retry_send
            if self.settings.attempts == 1 or not retryable(exc):
                raise
            first: Exception | None = exc
        template = self._idempotent if idempotent else self._once
        async for attempt in template.copy(before_sleep=self._log(operation)):
            with attempt:
                if first is not None:
                    error, first = first, None
                    attempt.retry_state.start_time = started  # a deadline counts from attempt 1
                    raise error
                return await exchange(attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover
