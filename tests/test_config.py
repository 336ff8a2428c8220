"""Configuration: secrets, validation, and errors that name the file, line, path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from notify_devino.config import find_config, load_config, parse_config
from notify_devino.errors import ConfigError

GOOD = """\
version: 1
default_channel: sms
channels:
  sms:
    type: devino_soap
    settings:
      login: alerts
      password: ${DEVINO_PASSWORD}
      url: ${DEVINO_URL:-https://ws.devinotele.com/SmsService.asmx}
"""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str
    password: SecretStr
    url: str = "x"
    timeout_seconds: float = 30


def test_env_references_are_interpolated_with_defaults() -> None:
    config = parse_config(GOOD, env={"DEVINO_PASSWORD": "s3cret"})
    settings = config.channel_settings("sms", Settings)
    assert settings.password.get_secret_value() == "s3cret"
    assert settings.url == "https://ws.devinotele.com/SmsService.asmx"
    assert config.default_channel == "sms"


def test_missing_secret_names_variable_path_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD, source="alerts.yaml", env={})
    err = info.value
    assert err.path == "channels.sms.settings.password"
    assert err.line == 8
    assert "DEVINO_PASSWORD is not set" in str(err)
    assert str(err).startswith("alerts.yaml:8: channels.sms.settings.password:")


def test_secret_from_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("password: ${DEVINO_PASSWORD}", "password_file: pw")
    )
    config = load_config(tmp_path / "c.yaml", env={})
    assert config.channel_settings("sms", Settings).password.get_secret_value() == "from-file"


def test_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("password: ${DEVINO_PASSWORD}", "password_file: nope")
    )
    config = load_config(tmp_path / "c.yaml", env={})
    with pytest.raises(
        ConfigError, match=r"cannot read secret file .*nope.*: No such file"
    ) as info:
        config.channel_settings("sms", Settings)
    assert info.value.path == "channels.sms.settings.password_file"
    assert info.value.line == 8


def test_password_and_password_file_together_is_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("password: ${DEVINO_PASSWORD}", "password: a\n      password_file: pw")
    config = parse_config(text, env={})
    with pytest.raises(ConfigError, match="give password or password_file, not both"):
        config.channel_settings("sms", Settings)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("version: [1\n", 2, "malformed YAML"),
        ("version: 1\nchannels:\n  sms: {type: x\n", 4, "malformed YAML"),
        ("- a\n- b\n", 1, "expected a mapping at the top level"),
        ("", 1, "got an empty file"),
        ("version: 2\nchannels:\n  sms: {type: x}\n", 1, "version: got 2, expected 1"),
        ("version: 1\nchannels: {}\n", 2, "channels:"),
        (
            "version: 1\nchannels:\n  sms: {type: x, extra: 1}\n",
            3,
            "channels.sms.extra: is not a known setting",
        ),
        (
            "version: 1\ndefault_channel: mail\nchannels:\n  sms: {type: x}\n",
            2,
            "default_channel 'mail' is not one",
        ),
        ("version: 1\nchannels:\n  SMS!: {type: x}\n", 2, "channel name 'SMS!' is not valid"),
    ],
)
def test_bad_configs_say_where_and_what(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bad.yaml", env={})
    assert fragment in str(info.value)
    assert info.value.line == line
    assert str(info.value).startswith("bad.yaml")


def test_plugin_settings_errors_name_the_settings_path_and_line() -> None:
    text = GOOD + "      timeout_seconds: soon\n      colour: red\n"
    config = parse_config(text, source="c.yaml", env={"DEVINO_PASSWORD": "x"})
    with pytest.raises(ConfigError) as info:
        config.channel_settings("sms", Settings)
    message = str(info.value)
    assert "line 10: channels.sms.settings.timeout_seconds" in message
    assert "'soon'" in message
    assert "line 11: channels.sms.settings.colour: is not a known setting" in message
    assert message.startswith("c.yaml: 2 problems:")


def test_missing_file_and_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFY_DEVINO_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no configuration file found"):
        find_config()
    (tmp_path / "notify-devino.yaml").write_text(GOOD)
    assert find_config() == Path("notify-devino.yaml")
    monkeypatch.setenv("NOTIFY_DEVINO_CONFIG", "elsewhere.yaml")
    assert find_config() == Path("elsewhere.yaml")
    assert find_config("explicit.yaml") == Path("explicit.yaml")


def test_example_configs_in_the_repository_are_valid() -> None:
    root = Path(__file__).parents[1] / "config"
    config = load_config(
        root / "notify-devino.example.yaml",
        env={
            "DEVINO_LOGIN": "a",
            "DEVINO_PASSWORD": "x",
            "SMTP_PASSWORD": "y",
            "WEBHOOK_SECRET": "z",
        },
    )
    assert list(config.channels) == ["sms", "email", "chatops"]
    assert config.routes["critical"].channels == ["sms", "email"]
    assert config.contacts["alice"] == {"sms": "+79031234567", "email": "alice@example.com"}
    demo = load_config(
        root / "demo.yaml", env={"DEVINO_SANDBOX_URL": "http://127.0.0.1:1/SmsService.asmx"}
    )
    assert demo.default_channel == "sms"


ROUTING = """\
version: 1
channels:
  sms: {type: x}
  email: {type: y}
contacts:
  alice:
    sms: +79031234567
    email: alice@example.com
groups:
  oncall: [alice]
routes:
  critical: [sms, email]
  rest:
    match: {}
    channels: [email]
"""


def test_contacts_groups_and_routes_are_read() -> None:
    config = parse_config(ROUTING, env={})
    assert config.contacts == {"alice": {"sms": "79031234567", "email": "alice@example.com"}}
    assert config.groups == {"oncall": ["alice"]}
    critical, rest = config.routes["critical"], config.routes["rest"]
    assert critical.channels == ["sms", "email"]
    assert critical.match is not None
    assert critical.match.severity == ["critical"]
    assert rest.match is not None
    assert rest.match.matches("anything", ())


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        (
            "    email: alice@",
            "    fax: alice@",
            8,
            "contacts.alice.fax: 'fax' is not a configured",
        ),
        (
            "  alice:\n    sms: +790",
            "  alice: {}\n  x:\n    sms: +790",
            6,
            "contacts.alice: a contact",
        ),
        ("[alice]", "[alice, bob]", 10, "groups.oncall[1]: 'bob' is neither a contact nor a group"),
        ("  oncall: [alice]", "  oncall: [team]\n  team: [oncall]", 10, "oncall -> team -> oncall"),
        ("  oncall: [alice]", "  alice: [alice]", 10, "'alice' is both a contact and a group"),
        (
            "[sms, email]",
            "[sms, fax]",
            12,
            "routes.critical.channels[1]: 'fax' is not a configured",
        ),
        ("[email]", "[email, email]", 15, "routes.rest.channels[1]: 'email' is listed twice"),
        ("[email]", "[]", 15, "routes.rest.channels: List should have at least 1 item"),
        ("match: {}", "match: {colour: red}", 14, "routes.rest.match.colour: is not a known"),
        ("match: {}", "fallback_after_seconds: -1", 14, "greater than 0"),
        (
            "match: {}",
            "follow: false\n    fallback_after_seconds: 5",
            13,
            "routes.rest: fallback_after_seconds needs follow: true",
        ),
    ],
)
def test_routing_mistakes_name_their_line_and_path(
    old: str, new: str, line: int, fragment: str
) -> None:
    assert old in ROUTING
    with pytest.raises(ConfigError) as info:
        parse_config(ROUTING.replace(old, new), source="r.yaml", env={})
    assert fragment in str(info.value)
    assert info.value.line == line
    assert str(info.value).startswith("r.yaml:")
