"""RetryPolicy runs the first attempt outside tenacity; what a retry does must not change."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from notify_devino.errors import ConnectionFailedError, RequestTimeoutError
from notify_devino.retrying import Attempt, RetryPolicy, RetrySettings


def policy(**settings: float) -> RetryPolicy:
    return RetryPolicy(RetrySettings(wait_initial_seconds=0.01, **settings), channel="sms")


async def test_a_transient_failure_is_retried_with_the_attempt_numbers_and_the_log() -> None:
    attempts: list[int] = []

    async def exchange(attempt: Attempt) -> str:
        attempts.append(attempt.number)
        if attempt.number < 3:
            raise ConnectionFailedError("refused", request_sent=False)
        return "ok"

    with structlog.testing.capture_logs() as logs:
        assert await policy(attempts=3).call("GetBalance", exchange, idempotent=True) == "ok"
    assert attempts == [1, 2, 3]
    assert [(e["event"], e["attempt"]) for e in logs] == [
        ("retry_scheduled", 1),
        ("retry_scheduled", 2),
    ]


async def test_success_and_final_errors_take_one_attempt() -> None:
    attempts: list[int] = []

    async def sent_then_lost(attempt: Attempt) -> str:
        attempts.append(attempt.number)
        raise RequestTimeoutError("no reply", request_sent=True)

    with pytest.raises(RequestTimeoutError):
        await policy().call("SendMessage", sent_then_lost, idempotent=False)
    assert attempts == [1]  # a send that may be out is never repeated

    async def fine(attempt: Attempt) -> int:
        return attempt.number

    assert await policy().call("GetBalance", fine, idempotent=True) == 1


async def test_the_deadline_counts_from_the_first_attempt() -> None:
    attempts: list[int] = []

    async def slow_failure(attempt: Attempt) -> str:
        attempts.append(attempt.number)
        attempt.start(1.0)  # the request leaves: the deadline starts
        await asyncio.sleep(0.2)
        raise ConnectionFailedError("refused", request_sent=False)

    with pytest.raises(ConnectionFailedError):
        await policy(attempts=5, deadline_seconds=0.1).call(
            "GetBalance", slow_failure, idempotent=True
        )
    assert attempts == [1]  # 0.2 s into a 0.1 s deadline: no second attempt
