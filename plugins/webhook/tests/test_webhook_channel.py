"""The ``webhook`` channel against a real aiohttp receiver on loopback that checks every
signature, through the public dispatcher: what arrives, and what each failure becomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import structlog

from notify_devino.config import Config
from notify_devino.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionFailedError,
    InvalidInputError,
    ProviderFaultError,
    RateLimitedError,
    RequestTimeoutError,
)
from notify_devino.plugins import PluginManager
from notify_devino.testing import DispatcherFactory
from notify_devino.types import SendOutcome
from notify_devino_webhook.receiver import WebhookReceiver
from notify_devino_webhook.testing import TEST_SECRET, ReceiverFactory

ConfigMaker = Callable[..., Config]


async def test_a_signed_json_post_per_recipient(
    make_webhook_receiver: ReceiverFactory,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    receiver = await make_webhook_receiver()
    config = hooks_config(
        url=receiver.url("/default"),
        targets={"ops-bot": receiver.url("/ops"), "chat": receiver.url("/chat")},
        headers={"Authorization": "Bearer token-123456"},
    )
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send(
        "db-1: диск заполнен",
        to=["ops-bot", "chat", "alice"],
        metadata={"severity": "critical", "notification_id": "n-42"},
    )
    assert result.ok
    assert receiver.rejections == []
    by_path = {d.path: d for d in receiver.deliveries}
    assert set(by_path) == {"/ops", "/chat", "/default"}
    ops = by_path["/ops"]
    assert ops.payload == {
        "version": 1,
        "id": ops.key,
        "notification_id": "n-42",
        "channel": "hooks",
        "recipient": "ops-bot",
        "text": "db-1: диск заполнен",
        "sender": None,
        "metadata": {"severity": "critical", "notification_id": "n-42"},
        "created_at": ops.payload["created_at"],
    }
    assert abs(datetime.fromisoformat(ops.payload["created_at"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert by_path["/default"].payload["recipient"] == "alice"
    assert ops.headers["Authorization"] == "Bearer token-123456"
    assert ops.headers["Content-Type"] == "application/json; charset=utf-8"
    assert abs(ops.timestamp - time.time()) < 60
    # the message ID is the idempotency key; the address is the name, never the URL
    assert [(r.address, r.message_ids) for r in result.recipients] == [
        ("ops-bot", (ops.key,)),
        ("chat", (by_path["/chat"].key,)),
        ("alice", (by_path["/default"].key,)),
    ]
    assert len({d.key for d in receiver.deliveries}) == 3


async def test_the_same_notification_sent_again_carries_the_same_key(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(hooks_config(url=webhook_receiver.url()), plugins=plugins)
    labels = {"notification_id": "alert-7"}
    first = await dispatcher.send("x", to=["a"], metadata=labels)
    again = await dispatcher.send("x", to=["a"], metadata=labels)
    other = await dispatcher.send("x", to=["a"])
    assert first.message_ids == again.message_ids != other.message_ids
    assert len(webhook_receiver.deliveries) == 2  # the resend was recognised, not processed
    assert webhook_receiver.duplicates == list(first.message_ids)


async def test_a_receiver_with_another_secret_refuses_and_nothing_is_retried(
    make_webhook_receiver: ReceiverFactory,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    receiver = await make_webhook_receiver("another-secret-0123456789")
    dispatcher = await notify_dispatcher(hooks_config(url=receiver.url()), plugins=plugins)
    result = await dispatcher.send("x", to=["a"])
    error = result.recipients[0].error
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(error, AuthenticationError)
    assert error.http_status == 401
    assert receiver.rejections == ["no signature matches"]
    assert receiver.requests == 1


async def test_a_captured_request_cannot_be_replayed_later(
    make_webhook_receiver: ReceiverFactory,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    skew = [0.0]
    receiver = await make_webhook_receiver(clock=lambda: time.time() + skew[0])
    dispatcher = await notify_dispatcher(hooks_config(url=receiver.url()), plugins=plugins)
    assert (await dispatcher.send("pay the invoice", to=["a"])).ok
    (captured,) = receiver.deliveries
    replay_headers = {
        name: captured.headers[name]
        for name in ("X-Notify-Timestamp", "X-Notify-Signature", "Idempotency-Key")
    }
    async with aiohttp.ClientSession() as attacker:
        skew[0] = 301  # five minutes and a second later
        async with attacker.post(receiver.url(), data=captured.body, headers=replay_headers) as r:
            assert r.status == 401
        forged = captured.body.replace(b"pay the invoice", b"pay me instead!")
        skew[0] = 0
        async with attacker.post(receiver.url(), data=forged, headers=replay_headers) as r:
            assert r.status == 401
    assert receiver.rejections == [
        f"timestamp {captured.timestamp} is more than 300 s from now",
        "no signature matches",
    ]
    assert len(receiver.deliveries) == 1


async def test_a_refusal_to_come_back_later_is_retried(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    webhook_receiver.script(429, retry_after=0)
    webhook_receiver.script(503, retry_after=0)
    dispatcher = await notify_dispatcher(hooks_config(url=webhook_receiver.url()), plugins=plugins)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.send("x", to=["a"])
    assert result.ok
    assert webhook_receiver.requests == 3
    assert len(webhook_receiver.deliveries) == 1
    retries = [e for e in logs if e["event"] == "retry_scheduled"]
    assert [e["error"] for e in retries] == ["RateLimitedError", "RateLimitedError"]


async def test_a_request_that_may_have_been_processed_is_not_retried_by_default(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    webhook_receiver.script(500, processed=True)
    webhook_receiver.script(503)  # no Retry-After: it may have been processed
    webhook_receiver.script(200, processed=True, delay=2)
    config = hooks_config(url=webhook_receiver.url(), timeout_seconds=0.3)
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    results = [await dispatcher.send("x", to=[name]) for name in ("a", "b", "c")]
    assert [r.recipients[0].outcome for r in results] == [SendOutcome.UNKNOWN] * 3
    errors = [r.recipients[0].error for r in results]
    assert [getattr(e, "http_status", None) for e in errors] == [500, 503, None]
    assert isinstance(errors[0], ProviderFaultError)
    assert isinstance(errors[2], RequestTimeoutError)
    assert errors[2].request_sent
    assert webhook_receiver.requests == 3  # one each: nothing resent
    assert len(webhook_receiver.deliveries) == 2


async def test_a_receiver_that_deduplicates_gets_retries_and_processes_each_once(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    webhook_receiver.script(500, processed=True)
    webhook_receiver.script(200, processed=True, delay=2)
    webhook_receiver.script(502)
    config = hooks_config(
        url=webhook_receiver.url(), timeout_seconds=0.3, receiver_deduplicates=True
    )
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    results = [await dispatcher.send("x", to=[name]) for name in ("a", "b", "c")]
    assert all(r.ok for r in results)
    assert [d.payload["recipient"] for d in webhook_receiver.deliveries] == ["a", "b", "c"]
    assert webhook_receiver.duplicates == [*results[0].message_ids, *results[1].message_ids]
    assert webhook_receiver.requests == 6


async def test_refusals_fail_at_once(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    webhook_receiver.script(404)
    webhook_receiver.script(302)
    webhook_receiver.script(429, retry_after=3600)  # longer than the policy waits
    dispatcher = await notify_dispatcher(hooks_config(url=webhook_receiver.url()), plugins=plugins)
    results = [await dispatcher.send("x", to=[name]) for name in ("a", "b", "c")]
    assert [r.recipients[0].outcome for r in results] == [SendOutcome.FAILED] * 3
    errors = [r.recipients[0].error for r in results]
    assert [getattr(e, "http_status", None) for e in errors] == [404, 302, 429]
    assert isinstance(errors[2], RateLimitedError)
    assert errors[2].retry_after == 3600
    assert webhook_receiver.requests == 3
    assert webhook_receiver.deliveries == []


async def test_a_receiver_that_cannot_be_reached_is_retried_then_fails(
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
    unused_tcp_port: int,
) -> None:
    config = hooks_config(url=f"http://127.0.0.1:{unused_tcp_port}/hook")
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    with structlog.testing.capture_logs() as logs:
        result = await dispatcher.send("x", to=["a"])
    error = result.recipients[0].error
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(error, ConnectionFailedError)
    assert not error.request_sent
    assert [e["attempt"] for e in logs if e["event"] == "retry_scheduled"] == [1, 2]


async def test_inputs_a_webhook_cannot_take(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    config = hooks_config(targets={"ops": webhook_receiver.url()})
    dispatcher = await notify_dispatcher(config, plugins=plugins)
    result = await dispatcher.send("x", to=["ops", "nobody", "ops"])
    assert [r.outcome for r in result.recipients] == [
        SendOutcome.ACCEPTED,
        SendOutcome.FAILED,
        SendOutcome.ACCEPTED,
    ]
    assert isinstance(result.recipients[1].error, InvalidInputError)
    assert "'nobody' is not a webhook target" in str(result.recipients[1].error)
    assert len(webhook_receiver.deliveries) == 1  # the same target twice is posted once
    with pytest.raises(InvalidInputError, match="cannot be held"):
        await dispatcher.send("x", to=["ops"], send_at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidInputError, match="cannot be written as JSON"):
        await dispatcher.send("half a character: \ud800", to=["ops"])
    assert webhook_receiver.requests == 1


async def test_the_secret_and_secret_headers_are_masked_in_every_log_line(
    plugins: PluginManager, hooks_config: ConfigMaker, notify_dispatcher: DispatcherFactory
) -> None:
    from notify_devino.logconfig import REDACTED, redact_secrets

    headers = {"Authorization": "Bearer token-123456", "X-Environment": "production"}
    config = hooks_config(url="http://127.0.0.1:9/hook", headers=headers)
    await notify_dispatcher(config, plugins=plugins)  # the channel registers its secrets
    with structlog.testing.capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger("anything").warning(
            "leak", detail=f"signed with {TEST_SECRET}; sent Bearer token-123456 to production"
        )
    assert logs[0]["detail"] == f"signed with {REDACTED}; sent {REDACTED} to production"


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"secret": TEST_SECRET}, "give url, targets, or both"),
        ({"url": "http://x.test/h", "secret": "short"}, "channels.hooks.settings.secret"),
        ({"url": "ftp://x.test/h", "secret": TEST_SECRET}, "channels.hooks.settings.url"),
        (
            {"targets": {"a": "x.test"}, "secret": TEST_SECRET},
            "channels.hooks.settings.targets.a",
        ),
    ],
)
async def test_bad_settings_fail_at_start_with_their_yaml_path(
    plugins: PluginManager,
    notify_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
    settings: dict[str, object],
    fragment: str,
) -> None:
    config = notify_config({"hooks": {"type": "webhook", "settings": settings}})
    with pytest.raises(ConfigError) as info:
        await notify_dispatcher(config, plugins=plugins)
    assert fragment in str(info.value)


def test_the_plugin_is_found_through_its_installed_entry_point() -> None:
    manager = PluginManager(autoload=True)
    info = {p.name: p for p in manager.plugins()}["webhook"]
    assert info.distribution == "notify-devino-webhook"
    assert info.channel_types == ("webhook",)
    assert info.hooks == ("notify_register_channel_types", "notify_send")


async def test_retry_after_dates_and_garbage_never_lose_another_recipients_result(
    make_webhook_receiver: ReceiverFactory,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    answers = {
        "ok": (200, None),
        # RFC 9110 allows the asctime form of an HTTP date (no zone: it is GMT)
        "asctime": (429, in_an_hour.strftime("%a %b %d %H:%M:%S %Y")),
        "imf": (503, in_an_hour.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        "garbage": (503, "²"),
        "overflow": (429, "99999999999999999999 Dec 2026 10:15:00 GMT"),
    }
    targets = {}
    receivers = {}
    for name, (status, retry_after) in answers.items():
        receiver = receivers[name] = await make_webhook_receiver()
        targets[name] = receiver.url()
        if status != 200:
            for _ in range(3):
                receiver.script(status, retry_after=retry_after)
    dispatcher = await notify_dispatcher(hooks_config(targets=targets), plugins=plugins)
    result = await dispatcher.send("db-1 is down", to=list(answers))
    by_name = {r.recipient: r for r in result.recipients}
    assert by_name["ok"].outcome is SendOutcome.ACCEPTED
    assert by_name["ok"].message_ids == (receivers["ok"].deliveries[0].key,)
    for name in ("asctime", "imf"):  # a date an hour ahead: longer than the policy waits
        error = by_name[name].error
        assert by_name[name].outcome is SendOutcome.FAILED
        assert isinstance(error, RateLimitedError)
        assert error.retry_after is not None
        assert 3500 < error.retry_after <= 3600
        assert receivers[name].requests == 1
    # a 503 whose Retry-After cannot be read says nothing of what the receiver did
    garbage = by_name["garbage"]
    assert garbage.outcome is SendOutcome.UNKNOWN
    assert isinstance(garbage.error, ProviderFaultError)
    assert garbage.error.http_status == 503
    assert receivers["garbage"].requests == 1
    # a 429 is a refusal whatever its Retry-After says: retried, then failed
    overflow = by_name["overflow"]
    assert overflow.outcome is SendOutcome.FAILED
    assert isinstance(overflow.error, RateLimitedError)
    assert overflow.error.retry_after is None
    assert receivers["overflow"].requests == 3


async def test_a_replay_with_another_idempotency_key_is_refused(
    webhook_receiver: WebhookReceiver,
    plugins: PluginManager,
    hooks_config: ConfigMaker,
    notify_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = await notify_dispatcher(hooks_config(url=webhook_receiver.url()), plugins=plugins)
    assert (await dispatcher.send("pay the invoice", to=["a"])).ok
    (captured,) = webhook_receiver.deliveries
    headers = {
        name: captured.headers[name]
        for name in ("Content-Type", "X-Notify-Timestamp", "X-Notify-Signature")
    }
    async with aiohttp.ClientSession() as attacker:  # within the timestamp's tolerance
        replay = {**headers, "Idempotency-Key": "a-key-the-receiver-has-not-seen"}
        async with attacker.post(webhook_receiver.url(), data=captured.body, headers=replay) as r:
            assert r.status == 401
        same = {**headers, "Idempotency-Key": captured.key}
        async with attacker.post(webhook_receiver.url(), data=captured.body, headers=same) as r:
            assert r.status == 200  # the same request again: answered, not processed twice
    assert len(webhook_receiver.deliveries) == 1
    assert webhook_receiver.rejections == ["no signature matches"]
    assert webhook_receiver.duplicates == [captured.key]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"X-Notify-Timestamp": "9" * 5000}, None, 401),
        ({"X-Notify-Timestamp": "١٧٩٥٨٩١٢٣٤"}, None, 401),
        ({"Idempotency-Key": ""}, None, 400),
        ({}, b"\xff not json", 400),
        ({}, b"[1, 2]", 400),
    ],
)
async def test_bad_requests_get_a_4xx_never_a_500(
    webhook_receiver: WebhookReceiver,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
) -> None:
    from notify_devino_webhook.signing import signed_headers

    payload = body if body is not None else b'{"text":"x"}'
    signed = signed_headers(TEST_SECRET, payload, idempotency_key="k-1")
    async with (
        aiohttp.ClientSession() as client,
        client.post(webhook_receiver.url(), data=payload, headers={**signed, **headers}) as r,
    ):
        assert r.status == status
    assert webhook_receiver.deliveries == []
    assert len(webhook_receiver.rejections) == 1
