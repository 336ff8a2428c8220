"""Every ```python block of README.md and docs/*.md runs as printed (issue 10.25).

Each block runs as a program of its own (``__name__ == "__main__"``, a namespace of its own), in
a worker thread, so that its ``asyncio.run`` has a loop of its own while the Devino sandbox
fixture serves from the test's. The current directory holds a ``notify-devino.yaml`` pointed at
that sandbox, and ``DEVINO_SANDBOX_URL`` names it. A block that configures the process's logging
runs in a fresh interpreter instead, so it cannot change how the rest of the suite logs.

A block that is only a fragment says so just before it in the Markdown, with
``<!-- not-run: why -->``; a block with ``file=NAME`` is a file of the plugin tutorial, which
``tests/test_plugin_tutorial.py`` builds and runs as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*\S.*?-->\s*\Z", re.DOTALL)

CONFIG = """\
version: 1
default_channel: sms
status: {poll_interval_seconds: 0.1, wait_timeout_seconds: 10}
channels:
  sms:
    type: devino_soap
    settings:
      url: ${DEVINO_SANDBOX_URL}
      login: demo
      password: demo-password
      sender: ALERTS
contacts:
  alice: {sms: "+79031234567"}
  bob: {sms: "+79161234567"}
groups:
  oncall: [alice, bob]
routes:
  critical: [sms]
"""


def examples() -> list[tuple[str, str]]:
    """:return: (where, code) of every block that runs; a marker without a reason is refused."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            info, code = match.groups()
            if "file=" in info:
                continue
            before = text[: match.start()].rstrip()
            if "<!--" in before[-300:] and before.endswith("-->"):
                assert NOT_RUN.search(before[-300:]), f"{doc.name}: a marker must say not-run: why"
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{doc.relative_to(ROOT)}:{line}", code))
    return found


EXAMPLES = examples()


def test_the_main_examples_are_run() -> None:
    """The examples a newcomer copies first are not marked away."""
    where = [w.split(":")[0] for w, _ in EXAMPLES]
    assert where.count("README.md") >= 1
    assert where.count("docs/library.md") >= 4  # send/wait/inbox, notify, send_stream, logging
    assert "docs/devino.md" in where
    assert "docs/service.md" in where


CONFIGURES_LOGGING = re.compile(r"configure_logging\(|logging\.basicConfig\(")


def run_here(where: str, code: str) -> str:
    """Run ``code`` as ``python -c`` would; :return: what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, where, "exec"), {"__name__": "__main__"})
    return printed.getvalue()


async def run_apart(code: str, cwd: Path, url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=cwd,
        env={**os.environ, "DEVINO_SANDBOX_URL": url, "NOTIFY_DEVINO_CONFIG": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.devino
@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
async def test_the_python_example_runs_as_printed(
    where: str,
    code: str,
    devino_sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "notify-devino.yaml").write_text(CONFIG)
    if CONFIGURES_LOGGING.search(code):
        status, output = await run_apart(code, tmp_path, devino_sandbox.url)
        assert status == 0, output
        return
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVINO_SANDBOX_URL", devino_sandbox.url)
    monkeypatch.delenv("NOTIFY_DEVINO_CONFIG", raising=False)
    await asyncio.wait_for(asyncio.to_thread(run_here, where, code), 30)


def test_what_a_user_reads_points_at_nothing_outside_the_repository() -> None:
    """Every document a user reads links only to files of this repository, names no path of
    the machine it was written on, and the project carries its own reference of the Devino
    API: each operation of the sandbox's WSDL is in docs/devino-api.md (issue 10.25)."""
    readable = [
        *DOCS,
        ROOT / "DEVELOPERS.md",
        ROOT / "benchmarks" / "README.md",
        *sorted(ROOT.glob("plugins/*/README.md")),
        *sorted((ROOT / "config").glob("*.yaml")),
    ]
    for path in readable:
        text = path.read_text(encoding="utf-8")
        for outside in ("../shared", "/work/", "/tmp/"):
            assert outside not in text, f"{path.relative_to(ROOT)} names {outside}"
        for target in re.findall(r"\]\(([^)#\s]+)", text):  # Markdown links
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (path.parent / target).exists(), (
                f"{path.relative_to(ROOT)} links to {target}, which is not in the repository"
            )
    wsdl = ROOT / "plugins/devino_soap/notify_devino_soap/emulator/SmsService.wsdl"
    operations = set(re.findall(r'<wsdl:operation name="(\w+)"', wsdl.read_text("utf-8")))
    reference = (ROOT / "docs" / "devino-api.md").read_text(encoding="utf-8")
    assert len(operations) == 8
    assert [op for op in sorted(operations) if f"| `{op}` |" not in reference] == []
