"""The store contract for alert acknowledgement codes and named cursors (every engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notify_devino.service.store import NoFreeCode

from .conftest import StoreFactory

NOW = datetime.now(UTC)
LABELS = {"alertname": "DiskFull", "instance": "db-1"}


async def test_a_code_is_shared_by_the_recipients_and_kept_by_the_group(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    code = await store.open_alert_code("g1", {"+7901": "ann", "+7902": None}, LABELS, now=NOW)
    assert len(code) == 4
    assert code.isdigit()
    assert code[0] != "0"
    again = await store.open_alert_code("g1", {"+7901": "ann", "+7903": "cy"}, LABELS)
    assert again == code  # a repeat, or new alerts in the group: the same code
    rows = await store.alert_codes("g1")
    assert sorted((r.address, r.code, r.contact) for r in rows) == [
        ("+7901", code, "ann"),
        ("+7902", code, None),
        ("+7903", code, "cy"),
    ]
    assert rows[0].labels == LABELS
    assert rows[0].opened_at == NOW


async def test_codes_are_unique_among_the_open_alerts_of_an_address(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    codes = {
        await store.open_alert_code(f"g{i}", {"+7901": None}, LABELS, digits=3) for i in range(900)
    }
    assert len(codes) == 900  # every 3-digit code once
    with pytest.raises(NoFreeCode):
        await store.open_alert_code("g-full", {"+7901": None}, LABELS, digits=3)
    # another address has all codes free
    assert await store.open_alert_code("g-other", {"+7902": None}, LABELS, digits=3)
    # a closed alert frees its code, which may be given again
    (freed,) = [r.code for r in await store.alert_codes("g5")]
    await store.close_alert("g5")
    assert await store.open_alert_code("g-new", {"+7901": None}, LABELS, digits=3) == freed


async def test_a_group_avoids_a_code_one_of_its_recipients_uses(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    first = await store.open_alert_code("a", {"+7901": None}, LABELS)
    for _ in range(20):  # a random pick: never the code +7901 holds for another alert
        store_b = await store.open_alert_code("b", {"+7902": None, "+7901": None}, LABELS)
        assert store_b != first
        await store.close_alert("b")


async def test_acknowledge_close_and_reopen(store_factory: StoreFactory) -> None:
    store = await store_factory()
    code = await store.open_alert_code("g1", {"+7901": "ann", "+7902": "ben"}, LABELS)
    assert [r.code for r in await store.open_alert_codes("+7901")] == [code]
    first, rows = await store.acknowledge_alert("g1", "ann", now=NOW)
    assert first
    assert {(r.acked_by, r.acked_at) for r in rows} == {("ann", NOW)}
    second, _ = await store.acknowledge_alert("g1", "ben")
    assert not second  # already acknowledged: by ann, at NOW
    assert await store.acknowledged_alert_keys() == {"g1"}
    await store.set_alert_silence("g1", "sil-1")
    closed = await store.close_alert("g1", now=NOW + timedelta(minutes=5))
    assert {(r.address, r.silence_id) for r in closed} == {("+7901", "sil-1"), ("+7902", "sil-1")}
    assert all(r.closed_at == NOW + timedelta(minutes=5) for r in closed)
    assert await store.close_alert("g1") == []
    assert await store.open_alert_codes("+7901") == []
    assert await store.acknowledged_alert_keys() == set()
    late, _ = await store.acknowledge_alert("g1", "ann")
    assert not late  # closed: nothing to acknowledge
    # the group fires again: open, not acknowledged, no silence
    await store.open_alert_code("g1", {"+7901": "ann"}, LABELS)
    (row, _other) = await store.alert_codes("g1")
    assert row.closed_at is None
    assert row.acked_at is None
    assert row.silence_id is None


async def test_codes_and_cursors_survive_a_restart(store_factory: StoreFactory) -> None:
    store = await store_factory()
    code = await store.open_alert_code("g1", {"+7901": None}, LABELS)
    await store.acknowledge_alert("g1", "+7901")
    assert await store.cursor("acks") == 0
    await store.set_cursor("acks", 7)
    await store.set_cursor("acks", 3)  # never moves back
    await store.aclose()
    again = await store_factory()
    assert await again.cursor("acks") == 7
    assert [r.code for r in await again.open_alert_codes("+7901")] == [code]
    assert await again.acknowledged_alert_keys() == {"g1"}
