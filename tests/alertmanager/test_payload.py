from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notify_devino.alertmanager.payload import PayloadError, parse_payload

from .payloads import alert, body_latest, body_v025, encode


def test_a_025_body_reads_without_the_newer_fields() -> None:
    message = parse_payload(encode(body_v025()))
    assert message.version == "4"
    assert message.receiver == "sms"
    assert message.status == "firing"
    assert message.group_key == '{}:{alertname="DiskFull"}'
    assert message.notification_reason is None
    assert message.route_labels == {}
    assert message.truncated_alerts == 0
    (only,) = message.alerts
    assert only.name == "DiskFull"
    assert only.ends_at is None  # Go's zero time
    assert only.starts_at == datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)


def test_the_newest_body_reads_reason_and_route_labels() -> None:
    message = parse_payload(encode(body_latest()))
    assert message.notification_reason == "first notification"
    assert message.route_labels == {"team": "db"}


def test_unknown_fields_are_ignored_at_every_level() -> None:
    one = alert()
    one["someFutureField"] = {"x": 1}
    body = body_latest([one], futureTopLevel=[1, 2], truncatedAlerts=7)
    message = parse_payload(encode(body))
    assert message.truncated_alerts == 7
    assert len(message.alerts) == 1


def test_truncated_alerts_may_be_absent() -> None:
    body = body_v025()
    del body["truncatedAlerts"]
    assert parse_payload(body).truncated_alerts == 0


def test_null_label_sets_read_as_empty() -> None:
    one = alert()
    one["annotations"] = None
    message = parse_payload(body_v025([one], commonAnnotations=None))
    assert message.alerts[0].annotations == {}
    assert message.common_annotations == {}


def test_a_resolved_alert_keeps_its_end_and_offsets_are_kept() -> None:
    one = alert(
        status="resolved",
        starts_at="2026-12-01T12:00:00.5+03:00",
        ends_at="2026-12-01T12:05:00+03:00",
    )
    message = parse_payload(body_v025([one]))
    assert message.status == "resolved"
    assert message.resolved == message.alerts
    assert message.alerts[0].ends_at == datetime(2026, 12, 1, 9, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (encode({**body_v025(), "version": "3"}), 'version: got version "3"'),
        (encode({k: v for k, v in body_v025().items() if k != "version"}), "got no version"),
    ],
)
def test_a_body_that_is_not_a_v4_payload_says_why(body: bytes, needle: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(body)
    assert needle in str(caught.value)


def test_bad_fields_are_named_by_their_path() -> None:
    bad = alert(starts_at="yesterday")
    del bad["fingerprint"]
    body = body_v025([alert(), bad], status="burning")
    with pytest.raises(PayloadError) as caught:
        parse_payload(body)
    paths = {path for path, _ in caught.value.problems}
    assert paths == {"status", "alerts[1].startsAt", "alerts[1].fingerprint"}
    text = str(caught.value)
    assert "alerts[1].fingerprint: is required but missing" in text
    assert '"burning"' in text


def test_dedup_parts_ignore_order_and_change_with_what_matters() -> None:
    def parts(alerts: list[dict[str, object]], make=body_v025) -> object:  # type: ignore[no-untyped-def]
        return parse_payload(make(alerts, groupKey="{}:{}")).dedup_key_parts()

    a = alert("A", fingerprint="aa")
    b = alert("B", fingerprint="bb")
    first = parts([a, b])
    assert parts([b, a]) == first
    assert parts([a, b], body_latest) == first  # the reason is not part of it
    assert parts([alert("A", fingerprint="aa"), b]) == first
    c = alert("C", fingerprint="cc")
    assert parts([a, b, c]) != first
    refired = alert("A", fingerprint="aa", starts_at="2026-12-01T10:00:00Z")
    assert parts([refired, b]) != first
    resolved = alert("A", fingerprint="aa", status="resolved", ends_at="2026-12-01T09:30:00Z")
    assert parts([resolved, b]) != first
    other = parse_payload(body_v025([a, b], groupKey="{}:{}", receiver="pager"))
    assert other.dedup_key_parts() != first
