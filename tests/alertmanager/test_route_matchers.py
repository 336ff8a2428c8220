from __future__ import annotations

import pytest

from notify_devino.config import parse_config
from notify_devino.errors import ConfigError
from notify_devino.routing import select_route

BASE = """\
version: 1
channels:
  sms: {type: memory}
  email: {type: memory}
default_channel: sms
routes:
  db:
    matchers: ['team=~"db|infra"', 'severity="critical"']
    channels: [sms, email]
  critical: [sms]
"""


def test_a_route_reads_matchers() -> None:
    config = parse_config(BASE)
    assert config.routes["db"].matchers == ['team=~"db|infra"', 'severity="critical"']


def test_a_route_with_matchers_and_no_match_takes_no_plain_notification() -> None:
    config = parse_config(BASE)
    assert config.routes["db"].match is None
    assert select_route(config, severity="db").name is None  # the default channel
    assert select_route(config, severity="critical").name == "critical"


def test_a_bad_matcher_names_its_line() -> None:
    text = BASE.replace('severity="critical"', 'severity="critical')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="notify-devino.yaml")
    error = caught.value
    assert error.line == 8
    assert error.path == "routes.db.matchers"
    assert "closing double quote is missing" in str(error)


def test_alert_labels_pick_the_first_matching_route() -> None:
    from notify_devino.alertmanager.matchers import route_for_labels

    config = parse_config(BASE)
    assert route_for_labels(config, {"team": "infra", "severity": "critical"}) == "db"
    # db's matchers fail; 'critical' (no matchers) takes it by its severity label
    assert route_for_labels(config, {"team": "web", "severity": "critical"}) == "critical"
    assert route_for_labels(config, {"team": "web", "severity": "warning"}) is None
