"""The contract every store engine passes (parametrised by ``store_factory`` in conftest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from notify_devino.service.states import SendPolicy, State, TransitionError
from notify_devino.service.store import (
    Change,
    Inbound,
    NewDelivery,
    NewNotification,
    Store,
    StoreFull,
    SubmitKey,
    SubmitOutcome,
    Work,
)

from .conftest import StoreFactory

NOW = datetime.now(UTC)


def note(nid: str, text: str = "disk full") -> NewNotification:
    return NewNotification(id=nid, text=text, request={"text": text}, created_at=NOW)


def dlv(address: str, *, due: datetime | None = None, channel: str = "sms") -> NewDelivery:
    return NewDelivery(
        channel=channel,
        address=address,
        due_at=due or NOW - timedelta(seconds=1),
        group_key=f"{channel}:g",
        payload={"text": "disk full"},
    )


def key(k: str, h: str | None = "h1", ttl: float = 3600) -> SubmitKey:
    return SubmitKey("idempotency", k, h, NOW + timedelta(seconds=ttl))


async def test_migrations_run_on_open_and_data_survives_a_restart(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    assert await store.schema_version() >= 1
    await store.submit(note("n1"), [dlv("+79030000001"), dlv("+79030000002")])
    await store.aclose()
    again = await store_factory()
    stored = await again.get_notification("n1")
    assert stored is not None
    assert [d.address for d in stored.deliveries] == ["+79030000001", "+79030000002"]
    assert await again.schema_version() >= 1


async def test_submit_stores_the_notification_its_deliveries_and_their_first_transition(
    store: Store,
) -> None:
    result = await store.submit(note("n1"), [dlv("+79030000001")], response={"id": "n1"})
    assert result.outcome is SubmitOutcome.CREATED
    assert result.notification_id == "n1"
    stored = await store.get_notification("n1")
    assert stored is not None
    assert stored.text == "disk full"
    assert stored.request == {"text": "disk full"}
    (delivery,) = stored.deliveries
    assert delivery.state is State.QUEUED
    assert delivery.payload == {"text": "disk full"}
    assert [(t.from_state, t.to_state) for t in stored.transitions] == [(None, State.QUEUED)]
    assert await store.get_notification("missing") is None


async def test_a_key_replays_the_first_response_and_conflicts_on_another_hash(
    store: Store,
) -> None:
    first = await store.submit(note("n1"), [dlv("+7903")], key=key("k"), response={"id": "n1"})
    assert first.outcome is SubmitOutcome.CREATED
    replay = await store.submit(note("n2"), [dlv("+7903")], key=key("k"), response={"id": "n2"})
    assert replay.outcome is SubmitOutcome.REPLAY
    assert replay.notification_id == "n1"
    assert replay.response == {"id": "n1"}
    conflict = await store.submit(note("n3"), [dlv("+7903")], key=key("k", "h2"))
    assert conflict.outcome is SubmitOutcome.CONFLICT
    assert conflict.notification_id == "n1"
    assert await store.get_notification("n2") is None
    assert await store.get_notification("n3") is None
    # Another scope is another key.
    other = SubmitKey("alertmanager", "k", None, NOW + timedelta(hours=1))
    assert (
        await store.submit(note("n4"), [dlv("+7903")], key=other)
    ).outcome is SubmitOutcome.CREATED


async def test_a_deduplication_key_replays_whatever_the_request(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7903")], key=key("group", None))
    again = await store.submit(note("n2", "other text"), [dlv("+7904")], key=key("group", None))
    assert again.outcome is SubmitOutcome.REPLAY
    assert again.notification_id == "n1"


async def test_an_expired_key_creates_anew_and_purge_forgets_it(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7903")], key=key("k", ttl=-1))
    again = await store.submit(note("n2"), [dlv("+7903")], key=key("k", ttl=-1))
    assert again.outcome is SubmitOutcome.CREATED
    assert await store.purge_keys() == 1
    assert await store.purge_keys() == 0


async def test_concurrent_submits_with_one_key_create_one_notification(store: Store) -> None:
    results = await asyncio.gather(
        *(
            store.submit(note(f"n{i}"), [dlv("+7903")], key=key("k"), response={"id": f"n{i}"})
            for i in range(10)
        )
    )
    created = [r for r in results if r.outcome is SubmitOutcome.CREATED]
    assert len(created) == 1
    assert {r.notification_id for r in results} == {created[0].notification_id}
    assert len(await store.list_deliveries()) == 1


async def test_submits_committed_together_see_each_other(store: Store) -> None:
    """Submits that wait together (an engine may commit them as one) answer as if one after
    another: a key the first took replays or conflicts for the next, and the bound counts
    what the earlier ones queued."""
    results = await asyncio.gather(
        store.submit(note("n1"), [dlv("+7901")], key=key("k"), response={"id": "n1"}),
        store.submit(note("n2"), [dlv("+7902")], key=key("k"), response={"id": "n2"}),
        store.submit(note("n3"), [dlv("+7903")], key=key("k", "h2")),
        store.submit(note("n4"), [dlv("+7904"), dlv("+7905")], max_active=3),
        store.submit(note("n5"), [dlv("+7906")], max_active=3),
        return_exceptions=True,
    )
    outcomes = [getattr(r, "outcome", type(r)) for r in results]
    assert outcomes == [
        SubmitOutcome.CREATED,
        SubmitOutcome.REPLAY,
        SubmitOutcome.CONFLICT,
        SubmitOutcome.CREATED,
        StoreFull,
    ]
    assert [getattr(r, "notification_id", None) for r in results[:3]] == ["n1"] * 3
    assert results[1].response == {"id": "n1"}  # type: ignore[union-attr]
    stored = sorted(d.address for d in await store.list_deliveries())
    assert stored == ["+7901", "+7904", "+7905"]


async def test_max_active_refuses_with_store_full_and_keeps_nothing(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902")], max_active=3)
    with pytest.raises(StoreFull):
        await store.submit(note("n2"), [dlv("+7903"), dlv("+7904")], max_active=3)
    assert await store.get_notification("n2") is None
    assert await store.active_count() == 2


async def test_max_active_sees_room_that_sends_freed_and_steps_that_a_route_added(
    store: Store,
) -> None:
    """The bound holds to the row, whatever an engine does to avoid counting every active row
    at every submit: room freed by a send is there at once, and a route's next step counts."""
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902"), dlv("+7903")], max_active=3)
    with pytest.raises(StoreFull):
        await store.submit(note("n2"), [dlv("+7904")], max_active=3)
    rows = await store.claim(Work.SEND, owner="w", lease_seconds=30, limit=2)
    await store.apply(
        [Change(r.id, expect=State.CLAIMED, to=State.SENDING) for r in rows], owner="w"
    )
    await store.apply(
        [Change(r.id, expect=State.SENDING, to=State.ACCEPTED, message_ids=["m"]) for r in rows],
        owner="w",
    )
    await store.submit(note("n3"), [dlv("+7905"), dlv("+7906")], max_active=3)  # 1 + 2
    with pytest.raises(StoreFull):
        await store.submit(note("n4"), [dlv("+7907")], max_active=3)
    nxt = NewDelivery("email", "a@example.org", NOW, "email:g", {"text": "x"}, step=1)
    await store.apply([], owner="w", create=[("n1", nxt)])  # a route's next step: 4 now
    with pytest.raises(StoreFull):
        await store.submit(note("n5"), [dlv("+7908")], max_active=4)
    assert await store.active_count() == 4


async def test_claim_send_takes_due_rows_once_earliest_first(store: Store) -> None:
    later = NOW + timedelta(hours=1)
    await store.submit(
        note("n1"),
        [
            dlv("+7902", due=NOW - timedelta(seconds=1)),
            dlv("+7901", due=NOW - timedelta(seconds=5)),
            dlv("+7909", due=later),
        ],
    )
    first, second = await asyncio.gather(
        store.claim(Work.SEND, owner="a", lease_seconds=30, limit=1),
        store.claim(Work.SEND, owner="b", lease_seconds=30, limit=5),
    )
    claimed = [*first, *second]
    assert sorted(d.address for d in claimed) == ["+7901", "+7902"]
    assert all(d.state is State.CLAIMED for d in claimed)
    assert all(d.attempts == 1 for d in claimed)
    assert {d.lease_owner for d in first} | {d.lease_owner for d in second} == {"a", "b"}
    assert all(d.lease_expires_at is not None for d in claimed)
    assert await store.claim(Work.SEND, owner="c", lease_seconds=30, limit=5) == []
    due = await store.next_due(Work.SEND)
    assert due is not None
    assert abs((due - later).total_seconds()) < 0.01
    assert [
        d.address
        for d in await store.claim(
            Work.SEND, owner="c", lease_seconds=30, limit=5, now=later + timedelta(seconds=1)
        )
    ] == ["+7909"]


async def test_claim_can_be_limited_to_channels(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("a@example.org", channel="email")])
    got = await store.claim(Work.SEND, owner="a", lease_seconds=30, limit=5, channels=["email"])
    assert [d.channel for d in got] == ["email"]


async def _sent(store: Store, owner: str = "w") -> int:
    await store.submit(note("n1"), [dlv("+7901")])
    (claimed,) = await store.claim(Work.SEND, owner=owner, lease_seconds=30, limit=1)
    applied = await store.apply(
        [Change(claimed.id, expect=State.CLAIMED, to=State.SENDING, release=False)], owner=owner
    )
    assert [d.state for d in applied.changed] == [State.SENDING]
    return claimed.id


async def test_apply_walks_the_state_machine_and_keeps_every_transition(store: Store) -> None:
    did = await _sent(store)
    poll = NOW + timedelta(seconds=2)
    applied = await store.apply(
        [
            Change(
                did,
                expect=State.SENDING,
                to=State.ACCEPTED,
                message_ids=["m1", "m2"],
                due_at=poll,
                fallback_at=NOW + timedelta(seconds=60),
            )
        ],
        owner="w",
    )
    (accepted,) = applied.changed
    assert accepted.message_ids == ("m1", "m2")
    assert accepted.accepted_at is not None
    assert accepted.lease_owner is None
    assert accepted.fallback_at is not None
    followed = await store.claim(
        Work.FOLLOW, owner="f", lease_seconds=30, limit=5, now=poll + timedelta(seconds=1)
    )
    assert [d.id for d in followed] == [did]
    assert followed[0].state is State.ACCEPTED
    done = await store.apply(
        [Change(did, expect=State.ACCEPTED, to=State.DELIVERED, provider_state="Delivered")],
        owner="f",
    )
    (delivered,) = done.changed
    assert delivered.state is State.DELIVERED
    assert delivered.final_at is not None
    assert delivered.due_at is None
    assert delivered.provider_state == "Delivered"
    stored = await store.get_notification("n1")
    assert stored is not None
    assert [t.to_state for t in stored.transitions] == [
        State.QUEUED,
        State.CLAIMED,
        State.SENDING,
        State.ACCEPTED,
        State.DELIVERED,
    ]
    assert all(t.at.tzinfo is not None for t in stored.transitions)


async def test_apply_skips_a_row_that_moved_on_or_that_another_owner_holds(store: Store) -> None:
    did = await _sent(store, owner="w")
    stale = await store.apply([Change(did, expect=State.CLAIMED, to=State.SENDING)], owner="w")
    assert stale.skipped == (did,)
    assert stale.changed == ()
    foreign = await store.apply([Change(did, expect=State.SENDING, to=State.ACCEPTED)], owner="x")
    assert foreign.skipped == (did,)


async def test_apply_refuses_a_transition_the_machine_forbids_and_applies_nothing(
    store: Store,
) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902")])
    a, b = await store.claim(Work.SEND, owner="w", lease_seconds=30, limit=5)
    with pytest.raises(TransitionError):
        await store.apply(
            [
                Change(a.id, expect=State.CLAIMED, to=State.SENDING),
                Change(b.id, expect=State.CLAIMED, to=State.DELIVERED),
            ],
            owner="w",
        )
    states = {d.id: d.state for d in await store.list_deliveries()}
    assert states == {a.id: State.CLAIMED, b.id: State.CLAIMED}


async def test_apply_creates_a_route_next_step_with_its_changes(store: Store) -> None:
    did = await _sent(store)
    nxt = NewDelivery(
        "email", "a@example.org", NOW, "email:g", {"text": "x"}, contact="ann", step=1
    )
    applied = await store.apply(
        [Change(did, expect=State.SENDING, to=State.FAILED, error="bad number")],
        owner="w",
        create=[("n1", nxt)],
    )
    (created,) = applied.created
    assert (created.channel, created.step, created.contact, created.state) == (
        "email",
        1,
        "ann",
        State.QUEUED,
    )
    assert applied.changed[0].error == "bad number"


@pytest.mark.parametrize(
    ("policy", "sending_becomes"),
    [(SendPolicy.AT_MOST_ONCE, State.UNKNOWN), (SendPolicy.AT_LEAST_ONCE, State.QUEUED)],
)
async def test_recover_takes_back_what_a_dead_holder_left(
    store: Store, policy: SendPolicy, sending_becomes: State
) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902"), dlv("+7903")])
    a, b, c = await store.claim(Work.SEND, owner="dead", lease_seconds=1, limit=5)
    await store.apply(
        [
            Change(b.id, expect=State.CLAIMED, to=State.SENDING, release=False),
            Change(c.id, expect=State.CLAIMED, to=State.SENDING, release=False),
        ],
        owner="dead",
    )
    await store.apply(
        [Change(c.id, expect=State.SENDING, to=State.ACCEPTED, due_at=NOW)], owner="dead"
    )
    await store.claim(Work.FOLLOW, owner="dead", lease_seconds=1, limit=5)
    after = datetime.now(UTC) + timedelta(seconds=5)
    recovery = await store.recover(owner="me", policy=policy, now=after)
    assert recovery.requeued == (a.id,)
    if policy is SendPolicy.AT_MOST_ONCE:
        assert (recovery.unknown, recovery.resent) == ((b.id,), ())
    else:
        assert (recovery.unknown, recovery.resent) == ((), (b.id,))
    assert recovery.followed == (c.id,)
    states = {d.id: d for d in await store.list_deliveries()}
    assert states[a.id].state is State.QUEUED
    assert states[a.id].lease_owner is None
    assert states[b.id].state is sending_becomes
    assert states[c.id].state is State.ACCEPTED
    assert states[c.id].lease_owner is None
    # A queued row is due again at once; an unknown one is never claimed again.
    again = await store.claim(Work.SEND, owner="me", lease_seconds=30, limit=5, now=after)
    expected = {a.id} | ({b.id} if sending_becomes is State.QUEUED else set())
    assert {d.id for d in again} == expected
    assert (await store.recover(owner="me", policy=policy, now=after)).requeued == ()


async def test_extend_leases_only_for_the_holder(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7901")])
    (d,) = await store.claim(Work.SEND, owner="w", lease_seconds=1, limit=1)
    assert await store.extend_leases("other", [d.id], 60) == 0
    assert await store.extend_leases("w", [d.id], 60) == 1
    (now,) = await store.list_deliveries()
    assert now.lease_expires_at is not None
    assert now.lease_expires_at > datetime.now(UTC) + timedelta(seconds=30)


async def test_depth_counts_by_state_and_channel(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902"), dlv("a@b.c", channel="email")])
    await store.claim(Work.SEND, owner="w", lease_seconds=30, limit=1, channels=["sms"])
    depth = {(d.state, d.channel): d.count for d in await store.depth()}
    assert depth == {
        (State.CLAIMED, "sms"): 1,
        (State.QUEUED, "sms"): 1,
        (State.QUEUED, "email"): 1,
    }
    assert all(d.oldest is not None for d in await store.depth())
    assert await store.active_count() == 3


async def test_inbox_keeps_each_message_once_and_the_read_position(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    assert await store.inbox_position("sms") is None
    t = NOW.replace(microsecond=0)
    m1 = Inbound("sms", "+7901", "ALERTS", "ACK 1", t)
    m2 = Inbound("sms", "+7902", "ALERTS", "ACK 2", t + timedelta(seconds=1))
    first = await store.record_inbox("sms", [m1, m2], t + timedelta(seconds=2))
    assert [m.text for m in first] == ["ACK 1", "ACK 2"]
    # An overlapping read stores only what is new, and the position never goes back.
    m3 = Inbound("sms", "+7903", "ALERTS", "ACK 3", t + timedelta(seconds=3))
    second = await store.record_inbox("sms", [m2, m3], t + timedelta(seconds=1))
    assert [m.text for m in second] == ["ACK 3"]
    assert await store.inbox_position("sms") == t + timedelta(seconds=2)
    await store.aclose()
    store = await store_factory()
    everything = await store.inbox()
    assert [m.text for m in everything] == ["ACK 1", "ACK 2", "ACK 3"]
    assert [m.seq for m in everything] == sorted(m.seq for m in everything)
    assert [m.text for m in await store.inbox(after=everything[0].seq, limit=1)] == ["ACK 2"]
    assert everything[0].received_at == t


async def test_check_writable(store: Store) -> None:
    await store.check_writable()


async def test_list_deliveries_by_ids(store: Store) -> None:
    await store.submit(note("n1"), [dlv("+7901"), dlv("+7902"), dlv("+7903")])
    every = await store.list_deliveries()
    picked = await store.list_deliveries(ids=[every[2].id, every[0].id])
    assert [d.id for d in picked] == [every[0].id, every[2].id]
    assert await store.list_deliveries(ids=[]) == []
