"""The outbox's own helpers: notification ids and group keys."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from typing import Any

import pytest

from notify_devino.service.outbox import NotificationRequest, group_key, new_notification_id


def test_notification_ids_are_uuids_of_version_7_in_the_order_made() -> None:
    ids = []
    for _ in range(3):
        ids += [new_notification_id() for _ in range(500)]
        time.sleep(0.002)  # the next ones in a later millisecond
    parsed = [uuid.UUID(i) for i in ids]
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert [str(p) for p in parsed] == ids  # the canonical text, lower case
    assert len(set(ids)) == len(ids)
    ms = [p.int >> 80 for p in parsed]
    assert ms == sorted(ms)
    assert abs(ms[-1] - time.time_ns() // 1_000_000) < 5_000
    assert ids[0] < ids[-1]  # text order follows time too (across milliseconds)


def _random_bits(notification_id: str) -> int:
    """The id's 74 random bits: rand_a (12 bits after the version) and rand_b (62 at the end)."""
    value = uuid.UUID(notification_id).int
    return (value >> 64 & 0xFFF) << 62 | value & ((1 << 62) - 1)


def test_the_random_bits_of_ids_are_not_shared_by_threads() -> None:
    """Each thread reads the system's random bytes on its own, so ids made at once in two
    threads are all distinct in their random part, not only as a whole."""
    made: list[list[str]] = [[], []]

    def make(into: list[str]) -> None:
        into += [new_notification_id() for _ in range(2000)]

    threads = [threading.Thread(target=make, args=(m,)) for m in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bits = [_random_bits(i) for m in made for i in m]
    assert len(set(bits)) == len(bits) == 4000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_does_not_repeat_the_ids_its_parent_makes_next() -> None:
    new_notification_id()  # the pool holds bytes not yet used
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, json.dumps([new_notification_id() for _ in range(50)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)
    parent = [new_notification_id() for _ in range(50)]
    assert not {_random_bits(i) for i in child} & {_random_bits(i) for i in parent}


def _group_key_as_computed(channel: str, payload: dict[str, Any]) -> str:
    shared = {k: v for k, v in payload.items() if k not in ("route", "channels", "fallback_after")}
    shared["metadata"] = {
        k: v for k, v in shared.get("metadata", {}).items() if k != "notification_id"
    }
    canonical = json.dumps([channel, shared], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def test_group_keys_kept_for_a_payload_are_the_ones_computed() -> None:
    base = {"text": "db-1 down", "sender": None, "local_send_at": None, "validity_seconds": None}
    payloads: list[dict[str, Any]] = [
        {**base, "metadata": {}},
        {**base, "metadata": {"severity": "critical"}},
        {**base, "metadata": {"severity": "warning"}},
        {**base, "metadata": {"severity": "critical", "notification_id": "n1"}},  # an old row
        {**base, "text": "db-2 down", "metadata": {}, "route": "r", "channels": ["sms"]},
        {**base, "metadata": {"nested": ["not", "hashable"]}},
    ]
    for _ in range(2):  # computed, then kept
        for payload in payloads:
            for channel in ("sms", "backup"):
                assert group_key(channel, payload) == _group_key_as_computed(channel, payload)
    keys = {group_key("sms", p) for p in payloads}
    assert len(keys) == 5  # the old row's id is not part of its key


def test_a_request_digest_is_the_sorted_json_of_its_meaning() -> None:
    """Digests are kept with idempotency keys for a day: their text must not change."""
    a = NotificationRequest.model_validate({"text": "x", "addresses": ["+79031234567"]})
    b = NotificationRequest.model_validate({"addresses": ["+79031234567"], "text": "x", "tags": []})
    expected = hashlib.sha256(
        json.dumps(a.model_dump(mode="json"), sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    assert a.digest() == b.digest() == expected
    assert (
        NotificationRequest.model_validate({"text": "y", "addresses": ["+1"]}).digest() != expected
    )
