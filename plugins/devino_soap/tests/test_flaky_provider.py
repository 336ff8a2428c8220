"""How the Devino channel survives each fault the sandbox injects, under each send policy.

Every test counts what the sandbox itself recorded: the requests it got, and the messages it
stored (and charged). A read is retried whatever went wrong; a send is retried only when the
fault proves it was not processed, unless ``send_policy: at_least_once`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import (
    ChannelError,
    ConnectionFailedError,
    ParseError,
    RequestTimeoutError,
    SessionExpiredError,
    TemporaryFaultError,
)
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome
from notify_devino_soap.emulator import (
    PROCESSED_KINDS,
    FaultKind,
    RateLimit,
    Sandbox,
    SandboxConfig,
)

NUMBER = "79031234567"
TIMEOUT = 0.5
"""The client's timeout; an injected delay is four times as long."""

REFUSALS: tuple[FaultKind, ...] = ("receiver_fault", "http_503", "rate_limited", "session_expired")
"""Faults that prove the request was not processed: a send may be retried after them."""
UNANSWERED: dict[FaultKind, type[ChannelError]] = {
    "close_before_response": ConnectionFailedError,
    "close_after_processing": ConnectionFailedError,
    "delay": RequestTimeoutError,
    "not_xml": ParseError,
    "truncated": ParseError,
}
"""Faults after which the client cannot know whether the request was processed."""


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    # The real limit is off, so only what a test injects refuses anything; an injected
    # rate_limited answers with the configured HTTP 429 and a Retry-After of 1 s.
    limit = RateLimit(enabled=False, response="http_429", retry_after_seconds=1)
    return devino_sandbox_config.model_copy(update={"rate_limit": limit})


@pytest.fixture
def configure(devino_sandbox: Sandbox, make_config: Callable[..., Config]) -> Callable[..., Config]:
    def configure(policy: str = "at_most_once", **retry: Any) -> Config:
        settings = {
            "attempts": 3,
            "wait_initial_seconds": 0.01,
            "wait_max_seconds": 2,
            "send_policy": policy,
            **retry,
        }
        return make_config(devino_sandbox.url, timeout_seconds=TIMEOUT, retry=settings)

    return configure


def requests_of(sandbox: Sandbox, operation: str) -> int:
    return sum(1 for r in sandbox.requests if r.operation == operation)


def inject(sandbox: Sandbox, kind: FaultKind, operation: str, requests: list[int]) -> None:
    sandbox.faults.add(kind, operation=operation, requests=requests, delay_seconds=4 * TIMEOUT)


@pytest.mark.parametrize("kind", [*REFUSALS, *UNANSWERED])
async def test_a_read_is_retried_after_any_fault(
    kind: FaultKind,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    configure: Callable[..., Config],
) -> None:
    inject(devino_sandbox, kind, "GetBalance", [1])
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        with capture_logs() as logs:
            balance = await dispatcher.balance()
    assert balance.amount == 1000
    assert requests_of(devino_sandbox, "GetBalance") == 2
    assert devino_sandbox.faults.injected == {kind: 1}
    if kind == "session_expired":  # renewed by a new login, not by the retry policy
        assert requests_of(devino_sandbox, "GetSessionID") == 2
        assert not [e for e in logs if e["event"] == "retry_scheduled"]
    else:
        (retry,) = [e for e in logs if e["event"] == "retry_scheduled"]
        assert retry["operation"] == "GetBalance"
        assert retry["attempt"] == 1
        assert retry["channel"] == "sms"
        assert retry["wait_s"] >= (1 if kind == "rate_limited" else 0)


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
@pytest.mark.parametrize("kind", REFUSALS)
async def test_a_send_is_retried_after_a_refusal(
    kind: FaultKind,
    policy: str,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    configure: Callable[..., Config],
) -> None:
    inject(devino_sandbox, kind, "SendMessage", [1])
    async with Dispatcher(configure(policy), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.ACCEPTED
    assert requests_of(devino_sandbox, "SendMessage") == 2
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 1}  # sent once


@pytest.mark.parametrize("kind", UNANSWERED)
async def test_at_most_once_a_send_without_an_answer_is_unknown(
    kind: FaultKind,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    configure: Callable[..., Config],
) -> None:
    inject(devino_sandbox, kind, "SendMessage", [1])
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.UNKNOWN
    assert type(recipient.error) is UNANSWERED[kind]
    assert recipient.error.operation == "SendMessage"
    assert recipient.error.may_have_been_processed()
    assert requests_of(devino_sandbox, "SendMessage") == 1  # never resent
    processed = kind in PROCESSED_KINDS
    assert devino_sandbox.state.sends_per_destination() == ({NUMBER: 1} if processed else {})


@pytest.mark.parametrize("kind", UNANSWERED)
async def test_at_least_once_resends_and_may_deliver_twice(
    kind: FaultKind,
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    configure: Callable[..., Config],
) -> None:
    inject(devino_sandbox, kind, "SendMessage", [1])
    async with Dispatcher(configure("at_least_once"), plugins=devino_plugins) as dispatcher:
        with capture_logs() as logs:
            result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.ACCEPTED
    assert requests_of(devino_sandbox, "SendMessage") == 2
    twice = kind in PROCESSED_KINDS  # the first request was processed: delivered twice
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 2 if twice else 1}
    (retry,) = [e for e in logs if e["event"] == "retry_scheduled"]
    assert retry["may_duplicate"] is True
    assert [e["event"] for e in logs if e["event"] == "send_repeated_after_unknown_outcome"] == [
        "send_repeated_after_unknown_outcome"
    ]


async def test_at_least_once_a_refused_resend_leaves_the_outcome_unknown(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    # The first request was processed but not answered; the resends are refused. The message
    # is out, so the result must not say "failed" (safe to send again).
    inject(devino_sandbox, "close_after_processing", "SendMessage", [1])
    inject(devino_sandbox, "receiver_fault", "SendMessage", [2, 3])
    async with Dispatcher(configure("at_least_once"), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.UNKNOWN
    assert isinstance(recipient.error, ConnectionFailedError)
    assert any("TemporaryFaultError" in note for note in recipient.error.__notes__)
    assert requests_of(devino_sandbox, "SendMessage") == 3
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 1}


async def test_at_least_once_a_failed_login_after_an_unanswered_send_is_unknown(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    # The send goes out unanswered, its resend meets an expired session, and every login to
    # renew it loses its reply: the send's outcome is still unknown, not a failed login.
    inject(devino_sandbox, "close_after_processing", "SendMessage", [1])
    inject(devino_sandbox, "session_expired", "SendMessage", [2])
    inject(devino_sandbox, "close_after_processing", "GetSessionID", [2, 3, 4])
    async with Dispatcher(configure("at_least_once"), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.UNKNOWN
    assert recipient.error is not None
    assert recipient.error.operation == "SendMessage"
    assert any("ConnectionFailedError" in note for note in recipient.error.__notes__)
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 1}


async def test_a_refusal_that_outlasts_the_attempts_fails_with_its_type(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    devino_sandbox.faults.add("receiver_fault", operation="SendMessage", probability=1)
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.FAILED  # nothing was sent: safe to send again
    assert type(recipient.error) is TemporaryFaultError
    assert "temporarily unavailable" in (recipient.error.text or "")
    assert requests_of(devino_sandbox, "SendMessage") == 3
    assert devino_sandbox.state.messages() == []


async def test_a_login_that_fails_before_a_send_is_a_failure_not_unknown(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    # The login's replies are lost (it is processed: a session opens) every time; the send's
    # own request never leaves, so the send failed, whatever the login's error says.
    devino_sandbox.faults.add("close_after_processing", operation="GetSessionID", probability=1)
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    (recipient,) = result.recipients
    assert recipient.outcome is SendOutcome.FAILED
    assert isinstance(recipient.error, ConnectionFailedError)
    assert recipient.error.request_sent is True
    assert recipient.error.operation == "GetSessionID"
    assert requests_of(devino_sandbox, "GetSessionID") == 3
    assert requests_of(devino_sandbox, "SendMessage") == 0


async def test_a_session_expired_again_is_renewed_again_then_fails_cleanly(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    # A shared session may be expired again before a task's repeat reaches the service: two
    # renewals per call, then the fault stands (nothing was sent: failed, safe to resend).
    inject(devino_sandbox, "session_expired", "SendMessage", [1, 2, 4, 5, 6])
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        renewed_twice = await dispatcher.send("disk full", to=[NUMBER])
        given_up = await dispatcher.send("disk full", to=["79031234568"])
    assert renewed_twice.recipients[0].outcome is SendOutcome.ACCEPTED
    assert given_up.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(given_up.recipients[0].error, SessionExpiredError)
    assert devino_sandbox.state.sends_per_destination() == {NUMBER: 1}
    assert requests_of(devino_sandbox, "GetSessionID") == 1 + 2 + 2


async def test_retry_after_is_honoured(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    devino_sandbox.faults.add(
        "http_503", operation="SendMessage", requests=[1], retry_after_seconds=1
    )
    async with Dispatcher(configure(), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("disk full", to=[NUMBER])
    assert result.recipients[0].outcome is SendOutcome.ACCEPTED
    first, second = (r.monotonic for r in devino_sandbox.requests if r.operation == "SendMessage")
    assert second - first >= 0.95  # the sandbox's own clock


async def test_the_deadline_bounds_the_retries_of_a_read(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, configure: Callable[..., Config]
) -> None:
    devino_sandbox.faults.add("delay", operation="GetBalance", probability=1, delay_seconds=5)
    config = configure(attempts=10, deadline_seconds=TIMEOUT * 1.5)
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        with pytest.raises(RequestTimeoutError):
            await dispatcher.balance()
    assert 1 <= requests_of(devino_sandbox, "GetBalance") <= 3  # not 10


async def test_queueing_for_the_rate_limit_does_not_eat_the_deadline(
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    # Two requests a second (a login and a balance leave at once) and a 0.3 s deadline: the
    # later calls queue for a second or two before their first request, and still go out.
    config = make_config(
        devino_sandbox.url,
        rate_limit_per_second=2,
        retry={"deadline_seconds": 0.3, "wait_initial_seconds": 0.01},
    )
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        results = [await dispatcher.balance() for _ in range(4)]
    assert {b.amount for b in results} == {1000}
    assert [r.status for r in devino_sandbox.requests] == [200] * 5
    assert devino_sandbox.requests[-1].monotonic - devino_sandbox.requests[0].monotonic >= 2
