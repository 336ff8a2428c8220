"""Configuration: secrets, validation, and errors that name the file, line, path and expectation."""

from __future__ import annotations

import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, SecretStr

import notify_devino.config as config_module
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
    # the first problem's place, for programs; the text says where each one is
    assert (info.value.path, info.value.line) == ("channels.sms.settings.timeout_seconds", 10)


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


# -- bounded reading: every hostile file is a ConfigError naming file, line and expectation ----

SECRET_FILE_CONFIG = GOOD.replace("password: ${DEVINO_PASSWORD}", "password_file: PATH")


def _secret_file_error(tmp_path: Path, secret: str | Path) -> ConfigError:
    (tmp_path / "c.yaml").write_text(SECRET_FILE_CONFIG.replace("PATH", str(secret)))
    config = load_config(tmp_path / "c.yaml", env={})
    with pytest.raises(ConfigError) as info:
        config.channel_settings("sms", Settings)
    assert info.value.source == str(tmp_path / "c.yaml")
    assert info.value.line == 8
    assert info.value.path == "channels.sms.settings.password_file"
    return info.value


def _peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
    except ConfigError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


ALIAS_BOMB = (
    "version: 1\n"
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n" for n in range(8)
    )
    + "channels: {sms: {type: x, settings: {deep: *i}}}\n"
)


@pytest.mark.usefixtures("loader")
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 600  # a billion values, spelled in under 600 bytes
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bomb.yaml", env={})
    assert str(info.value).startswith(f"{tmp_path / 'bomb.yaml'}:")
    assert "expected at most 100,000 values added by aliases" in str(info.value)
    assert info.value.line is not None
    assert _peak_bytes(lambda: load_config(tmp_path / "bomb.yaml", env={})) < 4 * 1024 * 1024


def test_a_few_aliases_are_fine() -> None:
    text = GOOD + "      retry: &retry {attempts: 2}\n  backup:\n    type: y\n"
    text += "    settings: {retry: *retry}\n"
    config = parse_config(text, env={"DEVINO_PASSWORD": "x"})
    assert config.channels["backup"].settings == {"retry": {"attempts": 2}}


@pytest.mark.usefixtures("loader")
def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="alias refers to a collection that contains it") as info:
        parse_config("version: 1\nchannels: &c\n  sms: {type: x, settings: {loop: *c}}\n", env={})
    assert info.value.line is not None


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    line = '  p{:07d}: {{sms: "+79030000000"}}\n'
    body = "version: 1\nchannels: {sms: {type: x}}\ncontacts:\n"
    with (tmp_path / "big.yaml").open("w") as out:
        out.write(body)
        for n in range(10 * 1024 * 1024 // len(line.format(0))):
            out.write(line.format(n))
    assert (tmp_path / "big.yaml").stat().st_size > 10_000_000
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "big.yaml", env={})
    assert "is larger than 4 MiB; expected a regular file of at most 4 MiB" in str(info.value)
    assert info.value.source == str(tmp_path / "big.yaml")
    assert info.value.line is not None
    assert info.value.line > 100_000  # where the cap is passed
    assert _peak_bytes(lambda: load_config(tmp_path / "big.yaml", env={})) < 4 * 1024 * 1024


def test_yaml_text_over_the_size_cap_is_refused() -> None:
    with pytest.raises(ConfigError, match="longer than 4 MiB"):
        parse_config("version: 1\n" + "# padding\n" * 500_000, env={})


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_secret_file_is_refused(tmp_path: Path, device: str) -> None:
    error = _secret_file_error(tmp_path, device)
    assert f"secret file '{device}' is a character device, not a regular file" in str(error)
    assert "expected a regular file of at most 64 KiB holding the secret" in str(error)


def test_a_huge_sparse_secret_file_is_refused_unread(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with sparse.open("wb") as out:
        out.truncate(1024**3)
    error = _secret_file_error(tmp_path, sparse)
    assert "is larger than 64 KiB" in str(error)
    assert _peak_bytes(lambda: _secret_file_error(tmp_path, sparse)) < 4 * 1024 * 1024


def test_a_fifo_without_writer_as_secret_file_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    errors: list[BaseException] = []
    worker = threading.Thread(
        target=lambda: errors.append(_secret_file_error(tmp_path, fifo)), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # the old code blocks in open(): let it go before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=10)
        pytest.fail("reading a FIFO with no writer hung")
    assert len(errors) == 1
    assert "is a FIFO (named pipe), not a regular file" in str(errors[0])


def test_a_secret_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes("пароль".encode("cp1251"))
    error = _secret_file_error(tmp_path, tmp_path / "pw")
    assert "is not UTF-8 text; expected the secret as UTF-8 text" in str(error)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    assert "is empty" in str(_secret_file_error(tmp_path, tmp_path / "pw"))


def test_a_config_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_bytes(GOOD.replace("alerts", "алерты").encode("cp1251"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text .*; expected UTF-8") as info:
        load_config(tmp_path / "c.yaml", env={})
    assert info.value.line == 7


def test_a_fifo_as_config_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_config(tmp_path / "c.yaml", env={})


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hostile document through both loaders: libyaml's, and the pure-Python one that
    PyYAML falls back to without it."""
    if request.param == "pure-python":
        monkeypatch.setattr(config_module, "_Loader", config_module._make_loader(yaml.SafeLoader))
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize("depth", [100_000, 65])
def test_deep_nesting_is_refused(depth: int) -> None:
    text = "version: 1\nchannels: {sms: {type: x}}\ndeep: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="deep.yaml", env={})
    assert info.value.line == 3
    assert "nest" in str(info.value)
    assert "expected collections nested at most 64" in str(info.value)


@pytest.mark.usefixtures("loader")
def test_a_five_thousand_digit_integer_is_refused() -> None:
    text = GOOD + "      timeout_seconds: " + "9" * 5000 + "\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml", env={})
    assert info.value.line == 10
    assert "an integer of 5000 characters; expected a number of at most 100 digits" in str(
        info.value
    )


@pytest.mark.usefixtures("loader")
def test_an_impossible_date_is_a_config_error_with_its_line() -> None:
    with pytest.raises(ConfigError, match="cannot read this value") as info:
        parse_config("version: 1\nchannels: {sms: {type: x}}\nwhen: 2026-02-31\n", env={})
    assert info.value.line == 3


@pytest.mark.usefixtures("loader")
def test_a_duplicated_key_is_refused() -> None:
    text = GOOD + "      password: other\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml", env={"DEVINO_PASSWORD": "x"})
    assert info.value.line == 10
    assert "key 'password' appears twice (first on line 8); expected each key once" in str(
        info.value
    )


def test_merge_keys_may_override() -> None:
    text = "version: 1\nchannels:\n  a: &a {type: x}\n  sms: {<<: *a, type: y}\n"
    assert parse_config(text, env={}).channels["sms"].type == "y"
