from __future__ import annotations

from pathlib import Path

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


def test_the_sections_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    from notify_devino.logconfig import redact

    secret_file = tmp_path / "pw"
    secret_file.write_text("basic-file-password-77\n")
    config = parse_config(
        BASE
        + "alertmanager:\n"
        + "  bearer_token: am-bearer-token-991\n"
        + f"  basic_auth: {{username: am, password_file: {secret_file}}}\n"
        + "  silence: {url: 'http://127.0.0.1:9093', bearer_token: am-silence-token-992}\n"
    )
    basic = config.alertmanager.basic_auth
    assert basic is not None
    assert basic.password.get_secret_value() == "basic-file-password-77"
    for secret in ("am-bearer-token-991", "basic-file-password-77", "am-silence-token-992"):
        assert secret not in repr(config.alertmanager)
        assert secret not in redact(f"a line with {secret} in it")
