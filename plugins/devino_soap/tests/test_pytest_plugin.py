"""The plugin's pytest plugin (``notify_devino_soap.testing``, entry point ``devino_sandbox``)
is loaded into every pytest session of an environment that has the plugin installed: it must
not break one without pytest-asyncio, and says what to install when its async fixtures are
asked for there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# pytest run with the plugin as the only plugin, and pytest_asyncio made unimportable.
RUN_WITHOUT_PYTEST_ASYNCIO = """
import sys
sys.modules["pytest_asyncio"] = None  # import pytest_asyncio raises ImportError
import pytest
sys.exit(pytest.main(["-p", "notify_devino_soap.testing", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def run_pytest_without_pytest_asyncio(
    tmp_path: Path, tests: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_host.py").write_text(textwrap.dedent(tests))
    return subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_PYTEST_ASYNCIO, "-q", "-rA", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_a_session_without_pytest_asyncio_still_runs(tmp_path: Path) -> None:
    result = run_pytest_without_pytest_asyncio(
        tmp_path,
        """
        def test_unrelated():
            assert True

        def test_the_sync_fixtures_work(devino_sandbox_config, devino_sandbox_clock):
            assert devino_sandbox_config.strict
            assert devino_sandbox_clock.now().tzinfo is not None

        def test_the_async_fixture_says_what_to_install(devino_sandbox):
            pass
        """,
    )
    out = result.stdout + result.stderr
    assert "2 passed" in out, out
    assert "1 error" in out, out
    assert "pytest-asyncio" in out, out
    assert "pip install pytest-asyncio" in out, out
    assert "ImportError" not in out.replace("ModuleNotFoundError", ""), out
