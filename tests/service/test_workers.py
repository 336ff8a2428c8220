"""The workers against the Devino sandbox over HTTP, on a real SQLite file: batching, the state
machine end to end, crash recovery, route fallback timers and the inbox across restarts."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from notify_devino.config import parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.plugins import PluginManager
from notify_devino.service.outbox import NotificationRequest, Outbox
from notify_devino.service.settings import ServiceSettings
from notify_devino.service.states import SendPolicy, State
from notify_devino.service.store import Change, Delivery, SqliteStore, Store, StoreUnavailable, Work
from notify_devino.service.workers import Service
from notify_devino.testing import EventRecorder
from notify_devino_webhook.channel import idempotency_key
from notify_devino_webhook.receiver import WebhookReceiver
from notify_devino_webhook.testing import TEST_SECRET

from .harness import eventually, running, sandbox_config

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

pytestmark = pytest.mark.devino


@pytest.fixture
def plugins(notify_events: EventRecorder, notify_plugin_manager: PluginManager) -> PluginManager:
    notify_plugin_manager.load_entrypoints()
    return notify_plugin_manager


def sends(sandbox: Sandbox) -> list[object]:
    return [r for r in sandbox.requests if r.operation == "SendMessage"]


async def all_final(store: Store, count: int | None = None) -> bool:
    rows = await store.list_deliveries(limit=100_000)
    return bool(rows) and (count is None or len(rows) == count) and all(d.state.final for d in rows)


async def test_identical_texts_due_together_share_one_request_and_are_followed_to_delivery(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    path = tmp_path / "outbox.db"
    async with running(config, path, plugins, start=False) as service:
        for i in range(5):
            await service.outbox.submit(
                NotificationRequest(
                    text="db-1 down", addresses=[f"+7903000000{i}", f"+7903111000{i}"]
                )
            )
        await service.start()
        await eventually(lambda: all_final(service.store, 10))
        rows = await service.store.list_deliveries()
    assert len(sends(devino_sandbox)) == 1  # 5 notifications, 10 numbers: one request
    assert {d.state for d in rows} == {State.DELIVERED}
    assert all(len(d.message_ids) == 1 for d in rows)
    stored = {m.destination for m in devino_sandbox.state.messages()}
    assert stored == {d.address.lstrip("+") for d in rows}
    async with SqliteStore(path) as store:
        note = await store.get_notification(rows[0].notification_id)
        assert note is not None
        assert [t.to_state for t in note.transitions if t.delivery_id == rows[0].id] == [
            State.QUEUED,
            State.CLAIMED,
            State.SENDING,
            State.ACCEPTED,
            State.DELIVERED,
        ]


async def test_each_send_carries_its_notification_id_to_the_channel(
    plugins: PluginManager, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    """A row's payload leaves the id out (one text to many recipients is then one stored
    string), and the sender gives the channel the row's own: here the webhook body's
    ``notification_id`` and the idempotency key made from it, which a resend repeats."""
    config = parse_config(
        textwrap.dedent(
            f"""
            version: 1
            default_channel: hooks
            channels:
              hooks:
                type: webhook
                settings: {{url: "{webhook_receiver.url()}", secret: {TEST_SECRET}}}
            """
        ),
        source="<test>",
        env={},
    )
    async with running(config, tmp_path / "outbox.db", plugins) as service:
        submitted = [
            await service.outbox.submit(NotificationRequest(text=f"db-{i} down", addresses=["ops"]))
            for i in range(2)
        ]
        await eventually(lambda: asyncio.sleep(0, len(webhook_receiver.deliveries) == 2))
        rows = await service.store.list_deliveries()
    ids = {s.notification_id for s in submitted}
    assert {d.payload["notification_id"] for d in webhook_receiver.deliveries} == ids
    assert {d.key for d in webhook_receiver.deliveries} == {
        idempotency_key(nid, "hooks", "ops") for nid in ids
    }
    assert all("notification_id" not in r.payload["metadata"] for r in rows)


async def test_a_submit_cancelled_while_it_commits_is_committed_and_sent(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """The group commit is the store's own task: a caller that gives up waiting does not take
    the notification with it. The sender, not woken, finds it at its next poll."""
    request = NotificationRequest(text="db-1 down", addresses=["+79031234567"])
    async with running(
        sandbox_config(devino_sandbox.url), tmp_path / "outbox.db", plugins
    ) as service:
        task = asyncio.create_task(service.outbox.submit(request, idempotency_key="c1"))
        await asyncio.sleep(0)  # the submit waits on the store's group commit
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: all_final(service.store, 1))
        again = await service.outbox.submit(request, idempotency_key="c1")
    assert again.replayed
    assert len(sends(devino_sandbox)) == 1


async def test_a_full_batch_due_ends_the_linger_and_a_partial_one_waits(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """The sender waits for a burst to end so that one text shares a request, but not once a
    whole request's worth is due: then waiting merges nothing and only delays the send."""
    from notify_devino_soap.rules import MAX_ADDRESSES_PER_CALL

    config = sandbox_config(devino_sandbox.url)
    settings = ServiceSettings.model_validate(
        {"workers": {"linger_seconds": 3, "max_linger_seconds": 6}}
    )
    loop = asyncio.get_running_loop()

    async def sent(count: int) -> bool:
        return len(sends(devino_sandbox)) >= count

    devino_sandbox.state.accounts["demo"].balance = Decimal(100_000)
    async with running(config, tmp_path / "o.db", plugins, settings=settings) as service:
        await asyncio.sleep(0.2)  # the sender is idle, waiting for work
        started = loop.time()
        full = [f"+7903{i:07d}" for i in range(MAX_ADDRESSES_PER_CALL)]
        await service.outbox.submit(NotificationRequest(text="db-1 down", addresses=full))
        await eventually(lambda: sent(1), timeout=10)
        assert loop.time() - started < 2  # not the 3 s linger

        async def answered() -> set[State]:
            states = {d.state for d in await service.store.list_deliveries(limit=2000)}
            return states if states <= {State.ACCEPTED, State.DELIVERED} else set()

        await eventually(answered)  # every recipient accepted by the sandbox

        started = loop.time()
        await service.outbox.submit(NotificationRequest(text="db-2 down", addresses=full[:10]))
        await eventually(lambda: sent(2), timeout=10)
        assert loop.time() - started >= 2.5  # a partial batch waits out the linger


async def test_a_steady_stream_of_one_text_is_not_sent_a_few_numbers_at_a_time(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """Notifications that keep coming while the sender works (one number each, faster than a
    claim takes) share requests: after a claim that took all that was due, the sender lingers
    as it does when woken from idle, instead of claiming the next few at once."""
    config = sandbox_config(devino_sandbox.url)
    devino_sandbox.state.accounts["demo"].balance = Decimal(100_000)
    count = 3000
    async with running(config, tmp_path / "o.db", plugins) as service:

        async def post(start: int) -> None:
            for i in range(start, count, 20):
                await service.outbox.submit(
                    NotificationRequest(text="db-1 down", addresses=[f"+7903{i:07d}"])
                )

        async def all_answered() -> bool:
            rows = await service.store.list_deliveries(limit=count + 1)
            done = {State.ACCEPTED, State.DELIVERED}
            return len(rows) == count and all(d.state in done for d in rows)

        await asyncio.gather(*(post(start) for start in range(20)))
        await eventually(all_answered, timeout=30)
    # A request carries up to 1,000 numbers: three full ones, and a few more where a claim
    # came as a linger ended. A request per claim of what came meanwhile would be dozens.
    assert len(sends(devino_sandbox)) <= 6


async def test_a_number_twice_in_one_notification_is_sent_once_and_bad_numbers_fail(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    async with running(config, tmp_path / "o.db", plugins) as service:
        await service.outbox.submit(
            NotificationRequest(
                text="x", addresses=["+79031234567", "+79031234567", "7903123", "+79990000001"]
            )
        )
        await eventually(lambda: all_final(service.store, 3))
        states = {d.address: d.state for d in await service.store.list_deliveries()}
    assert states == {
        "+79031234567": State.DELIVERED,
        "7903123": State.FAILED,
        "+79990000001": State.UNDELIVERED,
    }


async def _leave_crashed(path: Path) -> tuple[int, int]:
    """A store as a killed run leaves it: one claimed row, one sending, one accepted."""
    async with SqliteStore(path) as store:
        outbox = Outbox(store, sandbox_config("http://127.0.0.1:9/unused"))
        await outbox.submit(
            NotificationRequest(text="crash", addresses=["+79030000001", "+79030000002"])
        )
        a, b = await store.claim(Work.SEND, owner="dead", lease_seconds=600, limit=5)
        await store.apply(
            [Change(b.id, expect=State.CLAIMED, to=State.SENDING, release=False)], owner="dead"
        )
        return a.id, b.id


@pytest.mark.parametrize("policy", list(SendPolicy))
async def test_recovery_requeues_claimed_rows_and_never_resends_under_at_most_once(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path, policy: SendPolicy
) -> None:
    path = tmp_path / "o.db"
    claimed, sending = await _leave_crashed(path)
    config = sandbox_config(devino_sandbox.url)
    async with running(
        config, path, plugins, settings=ServiceSettings(send_policy=policy)
    ) as service:
        await eventually(lambda: all_final(service.store, 2))
        states = {d.id: d.state for d in await service.store.list_deliveries()}
    destinations = sorted(m.destination for m in devino_sandbox.state.messages())
    assert states[claimed] is State.DELIVERED
    if policy is SendPolicy.AT_MOST_ONCE:
        assert states[sending] is State.UNKNOWN
        assert destinations == ["79030000001"]
    else:
        assert states[sending] is State.DELIVERED
        assert destinations == ["79030000001", "79030000002"]


def moves(note: Any, delivery_id: int) -> list[tuple[State, datetime, str | None]]:
    return [(t.to_state, t.at, t.detail) for t in note.transitions if t.delivery_id == delivery_id]


async def send_one_to_the_end(service: Service) -> tuple[Delivery, list[tuple[State, str | None]]]:
    """Submit one text to one number, wait until it is final: its row and its moves (state,
    detail)."""
    submitted = await service.outbox.submit(
        NotificationRequest(text="db-1 down", addresses=["+79031234567"])
    )
    await eventually(lambda: all_final(service.store, 1))
    note = await service.store.get_notification(submitted.notification_id)
    assert note is not None
    (row,) = note.deliveries
    return row, [(m[0], m[2]) for m in moves(note, row.id)]


async def test_a_chunk_waits_for_its_rate_limit_slot_claimed_and_goes_sending_as_it_leaves(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """Two texts, two requests, one request per second: the second waits about a second for
    its slot. It waits ``claimed`` (a crash then queues it again, nothing having left) and is
    committed ``sending`` only once its slot is granted, before the request."""
    config = sandbox_config(devino_sandbox.url, rate=1)
    async with running(config, tmp_path / "o.db", plugins, start=False) as service:
        for text in ("db-1 down", "db-2 down"):
            await service.outbox.submit(NotificationRequest(text=text, addresses=["+79031234567"]))
        await service.start()
        await eventually(lambda: asyncio.sleep(0, len(sends(devino_sandbox)) == 1))
        waiting = {d.payload["text"]: d.state for d in await service.store.list_deliveries()}
        await eventually(lambda: all_final(service.store, 2))
        rows = await service.store.list_deliveries()
        notes = {d.id: await service.store.get_notification(d.notification_id) for d in rows}
    first, second_state = sorted(waiting.values(), key=lambda state: state is State.CLAIMED)
    assert first in (State.SENDING, State.ACCEPTED)  # its request is out
    assert second_state is State.CLAIMED  # waiting for its slot: nothing of it has left
    arrivals = [r.at for r in devino_sandbox.requests if r.operation == "SendMessage"]
    second = next(d for d in rows if waiting[d.payload["text"]] is State.CLAIMED)
    trail = moves(notes[second.id], second.id)
    assert [m[0] for m in trail] == [
        State.QUEUED,
        State.CLAIMED,
        State.SENDING,
        State.ACCEPTED,
        State.DELIVERED,
    ]
    claimed_at, sending_at = trail[1][1], trail[2][1]
    assert (sending_at - claimed_at).total_seconds() >= 0.8  # the wait for the slot
    assert sending_at <= arrivals[1]  # committed before its request arrived


async def test_a_request_refused_unprocessed_waits_claimed_for_its_retry(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """The provider refused the first attempt (a fault that proves nothing was processed): the
    delivery waits for the retry ``claimed``, so a crash then sends it again rather than
    marking it unknown, and goes ``sending`` again as the retry leaves."""
    devino_sandbox.faults.add("receiver_fault", operation="SendMessage", requests=[1])
    config = sandbox_config(devino_sandbox.url)
    async with running(config, tmp_path / "o.db", plugins) as service:
        row, trail = await send_one_to_the_end(service)
    assert row.state is State.DELIVERED
    assert len(sends(devino_sandbox)) == 2
    assert trail == [
        (State.QUEUED, None),
        (State.CLAIMED, None),
        (State.SENDING, None),
        (State.CLAIMED, "refused unprocessed: waiting for the retry"),
        (State.SENDING, None),
        (State.ACCEPTED, None),
        (State.DELIVERED, None),
    ]


class _FailsFirstSendingCommit(SqliteStore):
    """The real store, but the first commit of a chunk's ``sending`` fails (a disk error)."""

    failed = 0

    async def apply(self, changes: Any, **kwargs: Any) -> Any:
        if not self.failed and changes and all(c.to is State.SENDING for c in changes):
            type(self).failed += 1
            raise StoreUnavailable("disk I/O error (injected)")
        return await super().apply(changes, **kwargs)


async def test_a_send_the_outbox_cannot_record_does_not_leave_and_is_sent_later(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    async with running(
        config, tmp_path / "o.db", plugins, store_class=_FailsFirstSendingCommit
    ) as service:
        with capture_logs() as logs:
            row, trail = await send_one_to_the_end(service)
    assert _FailsFirstSendingCommit.failed == 1
    assert row.state is State.DELIVERED
    assert len(sends(devino_sandbox)) == 1  # nothing left while it could not be recorded
    assert trail == [
        (State.QUEUED, None),
        (State.CLAIMED, None),
        (State.QUEUED, "released: the send was not recorded"),
        (State.CLAIMED, None),
        (State.SENDING, None),
        (State.ACCEPTED, None),
        (State.DELIVERED, None),
    ]
    (refused,) = [e for e in logs if e["event"] == "send_not_recorded"]
    assert "disk I/O error" in refused["error"]


async def test_a_waiting_route_fallback_survives_a_restart_and_fires_on_time(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    path = tmp_path / "o.db"
    async with running(config, path, plugins) as service:
        await service.outbox.submit(
            NotificationRequest(text="db-1 down", to=["stuck"], severity="critical")
        )

        async def accepted() -> list[object]:
            return await service.store.list_deliveries(states=[State.ACCEPTED])

        (first,) = await eventually(accepted)
    assert first.fallback_at is not None
    assert first.accepted_at is not None
    assert abs((first.fallback_at - first.accepted_at).total_seconds() - 2) < 0.5
    # Stopped (a restart) while the timer waits; the next run fires it from the store.
    async with running(config, path, plugins) as service:

        async def backup() -> list[object]:
            return await service.store.list_deliveries(states=[State.DELIVERED])

        (done,) = await eventually(backup)
        rows = {d.channel: d for d in await service.store.list_deliveries()}
    assert rows["sms"].state is State.LATE
    assert done.channel == "backup"
    assert done.step == 1
    # Fired on time: not before the timer, and within a poll of it.
    assert done.created_at >= first.fallback_at
    assert done.created_at - first.fallback_at < timedelta(seconds=1.5)
    logins = sorted(m.login for m in devino_sandbox.state.messages())
    assert logins == ["demo", "other"]


async def test_replies_injected_across_restarts_are_read_exactly_once(
    devino_sandbox: Sandbox,
    plugins: PluginManager,
    notify_events: EventRecorder,
    tmp_path: Path,
) -> None:
    config = sandbox_config(devino_sandbox.url)
    path = tmp_path / "o.db"
    settings = ServiceSettings.model_validate({"workers": {"inbox_interval_seconds": 0.1}})
    texts = []
    for run in range(3):
        async with running(config, path, plugins, settings=settings) as service:
            for i in range(3):
                text = f"ACK {run}-{i}"
                texts.append(text)
                devino_sandbox.state.inject_incoming("79031234567", "ALERTS", text, login="demo")
                devino_sandbox.state.inject_incoming("79031234567", "BACKUP", text, login="other")

            async def read_all() -> bool:
                return len(await service.store.inbox(limit=1000)) == 2 * len(texts)

            await eventually(read_all)
    async with SqliteStore(path) as store:
        stored = await store.inbox(limit=1000)
    assert sorted((m.channel, m.text) for m in stored) == sorted(
        [("sms", t) for t in texts] + [("backup", t) for t in texts]
    )
    assert sorted((m.channel, m.text) for m in notify_events.inbound) == sorted(
        (m.channel, m.text) for m in stored
    )


@pytest.mark.parametrize(("delay", "reads_meanwhile"), [(2.5, 0), (4.5, 1)])
async def test_an_inbox_read_waits_for_the_sender_at_most_one_more_interval(
    devino_sandbox: Sandbox,
    plugins: PluginManager,
    tmp_path: Path,
    delay: float,
    reads_meanwhile: int,
) -> None:
    """A read takes one of the account's request slots, and the budget goes to sends first:
    while a send of the channel is under way the read due waits for it, but not for longer
    than one more interval (1.5 s here), so a reply is still read within two. (The other
    channel, another account, reads on.)"""
    config = sandbox_config(devino_sandbox.url)
    settings = ServiceSettings.model_validate({"workers": {"inbox_interval_seconds": 1.5}})
    devino_sandbox.faults.add(
        "delay", operation="SendMessage", probability=1.0, delay_seconds=delay
    )
    async with running(config, tmp_path / "o.db", plugins, settings=settings) as service:
        await asyncio.sleep(0.3)  # started: the first read is done
        await service.outbox.submit(NotificationRequest(text="x", addresses=["+79031234567"]))
        await eventually(lambda: all_final(service.store, 1), timeout=20)
        await asyncio.sleep(1.6)  # the sender idle again: the read deferred is made
    log = devino_sandbox.requests
    (send,) = [r for r in log if r.operation == "SendMessage"]
    reads = [r.monotonic for r in log if r.operation == "GetIncomingMessages" and r.login == "demo"]
    during = [t for t in reads if send.monotonic < t < send.monotonic + delay]
    assert len(during) == reads_meanwhile
    assert any(t > send.monotonic + delay for t in reads)  # and read again after the send


async def test_a_balance_read_waits_for_the_sends_under_way(
    devino_sandbox: Sandbox,
    plugins: PluginManager,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The balance is read every ``MAINTENANCE_SECONDS`` (0.5 s here); a read due while a send
    is under way waits for it, so the send's request slots are not taken by reads."""
    from notify_devino.service import workers

    monkeypatch.setattr(workers, "MAINTENANCE_SECONDS", 0.5)
    config = sandbox_config(devino_sandbox.url)
    devino_sandbox.faults.add("delay", operation="SendMessage", probability=1.0, delay_seconds=2.5)
    async with running(config, tmp_path / "o.db", plugins) as service:
        await asyncio.sleep(0.3)  # started: the first reads are done
        await service.outbox.submit(NotificationRequest(text="x", addresses=["+79031234567"]))
        await eventually(lambda: all_final(service.store, 1), timeout=20)
        await asyncio.sleep(1.2)  # the sender idle again: the reads go on
    log = devino_sandbox.requests
    (send,) = [r for r in log if r.operation == "SendMessage"]
    reads = [r.monotonic for r in log if r.operation == "GetBalance" and r.login == "demo"]
    assert [t for t in reads if send.monotonic < t < send.monotonic + 2.5] == []
    assert any(t < send.monotonic for t in reads)  # read before the send,
    assert any(t > send.monotonic + 2.5 for t in reads)  # and again after it


async def test_a_scheduled_notification_waits_in_the_outbox(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    async with running(config, tmp_path / "o.db", plugins) as service:
        await service.outbox.submit(
            NotificationRequest(text="later", addresses=["+79031234567"], send_at=at)
        )
        await asyncio.sleep(0.5)
        assert sends(devino_sandbox) == []
        await eventually(lambda: all_final(service.store, 1))
    (request,) = sends(devino_sandbox)
    assert request.at >= at  # type: ignore[attr-defined]


class _FlakyStore(SqliteStore):
    """A store whose first claim cannot commit (a full disk, a moment): a seam we own."""

    failed = False

    async def claim(self, *args: Any, **kwargs: Any) -> list[Delivery]:
        if not self.failed:
            self.failed = True
            raise StoreUnavailable("the disk is full, for a moment")
        return await super().claim(*args, **kwargs)


async def test_a_worker_that_fails_starts_again(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    config = sandbox_config(devino_sandbox.url)
    async with _FlakyStore(tmp_path / "o.db") as store, Dispatcher(config, plugins=plugins) as d:
        service = Service(config, ServiceSettings(), store, d)
        await service.outbox.submit(NotificationRequest(text="x", addresses=["+79031234567"]))
        await service.start()
        try:
            await eventually(lambda: all_final(store, 1))
        finally:
            await service.stop()
    assert store.failed


async def test_status_reads_wait_while_the_sender_has_work(
    devino_sandbox: Sandbox, plugins: PluginManager, tmp_path: Path
) -> None:
    """Sends and status reads share the account's request budget: a burst's sends go first,
    its status reads after them (the follower would otherwise poll between the sends)."""
    config = sandbox_config(devino_sandbox.url, poll=0.01)
    settings = ServiceSettings.model_validate(
        {"workers": {"max_in_flight": 1, "status_reads_per_second": 100}}
    )
    async with running(
        config, tmp_path / "outbox.db", plugins, settings=settings, start=False
    ) as s:
        for i in range(30):  # 30 texts: 30 requests, one after another
            await s.outbox.submit(
                NotificationRequest(text=f"check {i}", addresses=[f"+7903000{i:04d}"])
            )
        await s.start()
        await eventually(lambda: all_final(s.store, 30))
    operations = [r.operation for r in devino_sandbox.requests]
    assert operations.count("SendMessage") == 30
    last_send = max(i for i, op in enumerate(operations) if op == "SendMessage")
    assert "GetMessageState" not in operations[:last_send]
    assert "GetMessageState" in operations[last_send:]


def test_a_claim_is_cut_into_chunks_by_group_and_batch_size_an_address_once_each() -> None:
    """In claim order, each row goes to the first chunk of its group with room that does not
    hold its address yet (a number twice is sent in two requests, never twice in one)."""
    from types import SimpleNamespace

    claimed = ["k:a", "k:b", "k:a", "k:c", "k2:x", "k:d", "k:a", "k:e", "k:f"]
    rows = [
        SimpleNamespace(channel="sms", group_key=key, address=address)
        for key, address in (item.split(":") for item in claimed)
    ]
    fake = SimpleNamespace(_batch_size=lambda channel: 3)
    chunks = Service._chunks(fake, rows)  # type: ignore[arg-type]
    assert [[r.address for r in chunk] for chunk in chunks] == [
        ["a", "b", "c"],
        ["a", "d", "e"],
        ["x"],
        ["a", "f"],
    ]
