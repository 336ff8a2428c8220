"""Hand-written webhook bodies, field for field as Alertmanager's webhook notifier encodes them
(``notify/webhook``: the template data, then ``version``, ``groupKey``, ``truncatedAlerts``)."""

from __future__ import annotations

import json
from typing import Any

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def alert(
    name: str = "DiskFull",
    *,
    status: str = "firing",
    fingerprint: str = "5f9e7a1c2b3d4e6f",
    starts_at: str = "2026-12-01T09:00:00.123456789Z",
    ends_at: str = GO_ZERO_TIME,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, **(labels or {})},
        "annotations": annotations if annotations is not None else {},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def body_v025(alerts: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    """What Alertmanager 0.25 (Debian 12) posts: no notification_reason, no routeLabels."""
    alerts = alerts if alerts is not None else [alert()]
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body = {
        "receiver": "sms",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": "{}:{alertname=" + json.dumps(alerts[0]["labels"]["alertname"]) + "}",
        "truncatedAlerts": 0,
    }
    body.update(over)
    return body


def body_latest(alerts: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    """What the newest Alertmanager posts: notification_reason and routeLabels as well."""
    body = body_v025(alerts)
    out: dict[str, Any] = {}
    for key, value in body.items():  # Go's field order: reason after alerts, routeLabels after
        out[key] = value
        if key == "alerts":
            out["notification_reason"] = "first notification"
        if key == "commonAnnotations":
            out["routeLabels"] = {"team": "db"}
    out.update(over)
    return out


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
