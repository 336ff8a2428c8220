"""The sandbox's settings, its YAML file, and its clocks."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from notify_devino.errors import ConfigError
from notify_devino_soap.emulator import (
    DeliveryTimings,
    ManualClock,
    SandboxConfig,
    SystemClock,
    load_sandbox_config,
)

REPO = Path(__file__).resolve().parents[3]


def test_defaults_work() -> None:
    config = SandboxConfig()
    (account,) = config.accounts
    assert (account.login, account.password, account.balance) == (
        "demo",
        "demo-password",
        Decimal("1000.00"),
    )
    assert config.prices == {"7": Decimal("1.50"), "default": Decimal("3.00")}
    assert config.session_lifetime_minutes == 120
    assert config.message_id_start == 579700854169272358
    assert config.failing_numbers["79990000001"] == "rejected"
    assert config.failing_numbers["79990000002"] == "bad_address"
    assert config.failing_numbers["79990000003"] == "never_delivered"
    assert config.rate_limit.requests_per_second == 10
    assert config.rate_limit.response == "fault"
    assert config.fault_texts.invalid_login == "Invalid user login or password"
    assert "password" not in repr(account).replace("login", "")


def test_repository_file_matches_the_defaults() -> None:
    config = load_sandbox_config(REPO / "config" / "sandbox.yaml")
    defaults = SandboxConfig()
    for name in SandboxConfig.model_fields:
        if name not in ("accounts", "delivery"):
            assert getattr(config, name) == getattr(defaults, name), name
    assert config.accounts[0] == defaults.accounts[0]
    assert [a.login for a in config.accounts] == ["demo", "demo2"]
    assert config.delivery == DeliveryTimings(gateway=0.3, sent=0.8, delivered=1.5)


def test_prices_longest_prefix_wins() -> None:
    config = SandboxConfig(prices={"7": 1.5, "7903": 1.1, "49": 2, "default": 3})
    assert config.price_for("79031234567") == Decimal("1.10")
    assert config.price_for("79141234567") == Decimal("1.50")
    assert config.price_for("4915112345678") == Decimal("2.00")
    assert config.price_for("380501234567") == Decimal("3.00")


def test_time_zones() -> None:
    config = SandboxConfig()
    assert config.time_zone_for("79141234567").key == "Asia/Vladivostok"
    assert config.time_zone_for("79121234567").key == "Asia/Yekaterinburg"
    assert config.time_zone_for("79131234567").key == "Asia/Novosibirsk"
    assert config.time_zone_for("79031234567").key == "Europe/Moscow"
    assert config.time_zone_for("77011234567").key == "Asia/Almaty"
    assert config.time_zone_for("4915112345678").key == "UTC"
    custom = SandboxConfig(time_zones={"49": "Europe/Berlin"})
    assert custom.time_zone_for("4915112345678").key == "Europe/Berlin"
    assert custom.time_zone_for("79141234567").key == "Europe/Moscow"


def test_failing_numbers_are_normalised() -> None:
    config = SandboxConfig(failing_numbers={"+7 (999) 123-45-67": "rejected"})
    assert config.failing_numbers == {"79991234567": "rejected"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sandbox.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "path", "line", "words"),
    [
        ("delivery:\n  gateway: 1\n  sent: fast\n", "delivery.sent", 3, "valid number"),
        ("delivery:\n  gateway: 5\n  sent: 1\n", "delivery", 1, "must not decrease"),
        ("prices:\n  '7': 1\n", "prices", 1, "'default'"),
        ("time_zones:\n  '7914': Mars/Olympus\n", "time_zones", 1, "IANA"),
        ("failing_numbers:\n  '123': rejected\n", "failing_numbers", 1, "not a valid phone"),
        ("failing_numbers:\n  '79990000001': lost\n", "failing_numbers.79990000001", 2, "rejected"),
        (
            "accounts:\n  - login: a\n    password: b\n    balanse: 3\n",
            "accounts[0].balanse",
            4,
            "is not a known setting",
        ),
        ("rate_limit:\n  response: http_418\n", "rate_limit.response", 2, "http_429"),
        ("version: 2\n", "version", 1, "1"),
    ],
)
def test_errors_name_path_and_line(
    tmp_path: Path, text: str, path: str, line: int, words: str
) -> None:
    file = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_sandbox_config(file)
    error = caught.value
    assert (error.path, error.line, error.source) == (path, line, str(file))
    assert words in str(error)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sandbox config '.*missing.yaml' does not exist"):
        load_sandbox_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="malformed YAML") as caught:
        load_sandbox_config(write(tmp_path, "accounts: [\n"))
    assert caught.value.line is not None
    with pytest.raises(ConfigError, match="mapping"):
        load_sandbox_config(write(tmp_path, "- 1\n"))


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_sandbox_config(write(tmp_path, "# nothing\n")) == SandboxConfig()


def test_yaml_does_not_construct_objects(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_sandbox_config(write(tmp_path, "version: !!python/object/apply:os.getcwd []\n"))


def test_manual_clock() -> None:
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    assert clock.advance(timedelta(minutes=5)) == start + timedelta(minutes=5)
    with pytest.raises(ValueError, match="advances"):
        clock.advance(timedelta(seconds=-1))
    clock.set(datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    assert clock.now() == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 1, 1))
    assert ManualClock().now().tzinfo is UTC


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
