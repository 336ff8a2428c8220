"""The plugin manager: entry points, blocking, validation of what plugins register, conflicts."""

from __future__ import annotations

import ast
import importlib
import sys
import textwrap
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import pytest
import structlog

from notify_devino import hookimpl, hookspecs
from notify_devino.config import parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import ConfigError, PluginError
from notify_devino.hookspecs import ChannelType
from notify_devino.plugins import PluginManager
from notify_devino_memory import MemoryPlugin, MemorySettings, _factory


def install_distribution(
    site: Path, name: str, module: str, source: str, entry_points: str
) -> None:
    """Install a distribution the way pip lays it out: a module and its .dist-info folder."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (info / "RECORD").write_text("")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("notify_test_")]:
        del sys.modules[name]


ROOT = Path(__file__).parents[1]
PLUGIN_PROJECTS = sorted((ROOT / "plugins").glob("*/pyproject.toml"))


def _project(pyproject: Path) -> object:
    marks = [pytest.mark.devino] if pyproject.parent.name == "devino_soap" else []
    return pytest.param(pyproject, id=pyproject.parent.name, marks=marks)


@pytest.mark.parametrize(
    "project",
    [_project(p) for p in [*PLUGIN_PROJECTS, ROOT / "tests" / "memory_plugin" / "pyproject.toml"]],
)
def test_every_plugin_of_the_repository_is_installed_and_found_by_its_entry_point(
    project: Path,
) -> None:
    meta = tomllib.loads(project.read_text())["project"]
    (entry_point,) = meta["entry-points"]["notify_devino"]
    info = {p.name: p for p in PluginManager(autoload=True).plugins()}[entry_point]
    assert (info.distribution, info.version) == (meta["name"], meta["version"])
    assert info.channel_types
    assert "notify_register_channel_types" in info.hooks


def test_an_installed_distribution_is_loaded_with_its_version(site: Path) -> None:
    install_distribution(
        site,
        "notify-test-pager",
        "notify_test_pager",
        """
        from pydantic import BaseModel
        from notify_devino import hookimpl, ChannelType

        class Settings(BaseModel):
            number: str

        @hookimpl
        def notify_register_channel_types():
            return [ChannelType("pager", Settings, lambda ctx, s: None, "a pager")]
        """,
        "[notify_devino]\npager = notify_test_pager\n",
    )
    manager = PluginManager(autoload=True)
    info = {p.name: p for p in manager.plugins()}["pager"]
    assert (info.distribution, info.version, info.channel_types) == (
        "notify-test-pager",
        "1.2.3",
        ("pager",),
    )


def test_a_plugin_that_fails_to_import_is_logged_and_skipped(site: Path) -> None:
    install_distribution(
        site,
        "notify-test-broken",
        "notify_test_broken",
        "raise ImportError('needs libfoo')\n",
        "[notify_devino]\nbroken = notify_test_broken\n",
    )
    with structlog.testing.capture_logs() as logs:
        manager = PluginManager(autoload=True)
    assert not manager.is_registered("broken")
    assert manager.is_registered("memory")  # the others are loaded
    failure = next(e for e in logs if e["event"] == "plugin_load_failed")
    assert failure["plugin"] == "broken"
    assert "needs libfoo" in failure["error"]


def test_autoload_can_be_disabled_and_plugins_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PluginManager(autoload=True).is_registered("memory")
    assert not PluginManager(autoload=False).is_registered("memory")
    assert not PluginManager(autoload=True, block=["memory"]).is_registered("memory")
    monkeypatch.setenv("NOTIFY_DEVINO_BLOCK_PLUGINS", "other, memory")
    assert not PluginManager(autoload=True).is_registered("memory")
    monkeypatch.delenv("NOTIFY_DEVINO_BLOCK_PLUGINS")
    monkeypatch.setenv("NOTIFY_DEVINO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert not PluginManager().is_registered("memory")


def _types_plugin(*types: ChannelType) -> object:
    class Plugin:
        @hookimpl
        def notify_register_channel_types(self) -> Iterable[ChannelType]:
            return list(types)

    return Plugin()


def test_a_channel_type_registered_twice_names_both_plugins() -> None:
    manager = PluginManager(autoload=False)
    manager.register(MemoryPlugin(), name="first")
    manager.register(_types_plugin(ChannelType("memory", MemorySettings, _factory)), name="second")
    with pytest.raises(PluginError) as info:
        manager.channel_types()
    assert "'first'" in str(info.value)
    assert "'second'" in str(info.value)
    assert set(info.value.plugins) == {"first", "second"}


class NotAModel:
    pass


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (ChannelType("Bad Name", MemorySettings, _factory), "must match"),
        (ChannelType("ok", NotAModel, _factory), "settings_model must be a pydantic"),  # type: ignore[arg-type]
        (ChannelType("ok", MemorySettings, "nope"), "factory is not callable"),  # type: ignore[arg-type]
        (
            ChannelType("ok", MemorySettings, _factory, operations=frozenset({"fax"})),
            "unknown operations",
        ),
        ("not a ChannelType", "expected a ChannelType"),
    ],
)
def test_malformed_registrations_name_the_plugin(spec: object, fragment: str) -> None:
    manager = PluginManager(autoload=False)
    manager.register(_types_plugin(spec), name="sloppy")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=fragment) as info:
        manager.channel_types()
    assert "'sloppy'" in str(info.value)


def test_a_hook_implementation_with_unknown_arguments_is_refused() -> None:
    class Wrong:
        @hookimpl
        def notify_send(self, channel: object, message: object) -> None:
            return None

    with pytest.raises(PluginError, match="wrong"):
        PluginManager(autoload=False).register(Wrong(), name="wrong")


def test_a_plugin_command_that_takes_an_existing_name_is_refused() -> None:
    class Commands:
        @hookimpl
        def notify_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("send", callback=lambda: None))

    manager = PluginManager(autoload=False, plugins=[Commands()])
    group = click.Group("x", commands={"send": click.Command("send")})
    with pytest.raises(PluginError, match="adds command 'send', which already exists"):
        manager.register_commands(group)


def test_a_config_naming_a_channel_type_nobody_provides_fails_at_start() -> None:
    config = parse_config(
        "version: 1\nchannels:\n  mail:\n    type: smtp\n", source="c.yaml", env={}
    )
    with pytest.raises(ConfigError) as info:
        Dispatcher(config, plugins=PluginManager(autoload=False, plugins=[MemoryPlugin()]))
    message = str(info.value)
    assert "channel 'mail' has type 'smtp', which no installed plugin provides" in message
    assert "available types: memory" in message
    assert info.value.line == 4


def test_every_hook_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "hooks.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("notify_")]
    assert len(hooks) >= 12
    for name in hooks:
        assert f"`{name}" in doc, f"{name} is not documented in docs/hooks.md"


def _code_strings(tree: ast.AST) -> Iterator[str]:
    """Every string constant of a module except documentation (docstrings, and the bare
    strings that document attributes)."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and id(node) not in docstrings:
            yield node.value


def test_the_core_names_no_channel_and_imports_no_plugin() -> None:
    channel_types = {t for p in PluginManager(autoload=True).plugins() for t in p.channel_types} | {
        "devino_soap",
        "smtp",
        "webhook",
    }
    for module in sorted((ROOT / "notify_devino").glob("*.py")):
        tree = ast.parse(module.read_text())
        for text in _code_strings(tree):
            named = [t for t in channel_types if t in text.lower()]
            assert not named, f"{module.name} names channel type {named} in {text!r}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not [n for n in names if n.startswith("notify_devino_")], module.name
