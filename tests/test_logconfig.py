"""Logging: secret masking, and a library that stays silent until its host turns logging on."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import structlog

from notify_devino.logconfig import REDACTED, configure_logging, redact_secrets, register_secret

if TYPE_CHECKING:
    from notify_devino_soap.emulator import Sandbox


def test_a_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("inner-secret-1")  # registered first, and part of the next one
    register_secret("outer-inner-secret-1-tail")
    with structlog.testing.capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger("test").warning(
            "leak", detail="a outer-inner-secret-1-tail b inner-secret-1 c"
        )
    assert logs[0]["detail"] == f"a {REDACTED} b {REDACTED} c"


# -- a library is silent until its host configures logging ----------------------------------------

HOST = """\
import asyncio, logging, sys

MODE, URL, PASSWORD = sys.argv[1:4]
if MODE == "stdlib":
    logging.basicConfig(level=logging.INFO)
elif MODE == "structlog":
    from notify_devino.logconfig import configure_logging

    configure_logging("json", "info")

from notify_devino.config import parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino_soap import parsing

TEMPLATE = '''
version: 1
channels:
  sms: {type: devino_soap, settings: {url: "%s", login: demo, password: "%s",
        sender: ALERTS, retry: {attempts: 1}}}
'''


def parser_bug(result, *, operation):
    raise RuntimeError("parser bug")


async def main():
    async with Dispatcher(parse_config(TEMPLATE % (URL, PASSWORD), env={})) as good:
        sent = await good.send("hello", to=["+79031234567"])  # info events
        failed = await good.send("hello", to=["12"])  # a refused number
        parsing.message_ids_from = parser_bug  # log.exception, with a traceback
        unknown = await good.send("hello", to=["+79031234567"])
    async with Dispatcher(parse_config(TEMPLATE % (URL, "wrong-" + PASSWORD), env={})) as bad:
        refused = await bad.send("hello", to=["+79031234567"])  # warnings
    outcomes = [r.recipients[0].outcome.value for r in (sent, failed, unknown, refused)]
    sys.exit(0 if outcomes == ["accepted", "failed", "unknown", "failed"] else outcomes)


asyncio.run(main())
"""


async def run_host(mode: str, url: str, password: str) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOST,
        mode,
        url,
        password,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.devino
async def test_a_host_that_configures_no_logging_hears_nothing(devino_sandbox: Sandbox) -> None:
    code, out, err = await run_host("none", devino_sandbox.url, "demo-password")
    assert (code, out, err) == (0, "", "")


IN_PROCESS_SANDBOX = """\
import asyncio

from notify_devino.config import parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino_soap.emulator import Sandbox, SandboxConfig

TEMPLATE = '''
version: 1
channels:
  sms: {type: devino_soap, settings: {url: "%s", login: demo, password: demo-password,
        sender: ALERTS}}
'''


async def main():
    async with Sandbox(SandboxConfig()) as sandbox:  # started, session opened, accepted, ...
        sandbox.state.inject_incoming("79031234567", "ALERTS", "ack")
        async with Dispatcher(parse_config(TEMPLATE % sandbox.url, env={})) as dispatcher:
            await dispatcher.send("hello", to=["+79031234567", "12"])
            assert len(await dispatcher.inbox()) == 1


asyncio.run(main())
"""


@pytest.mark.devino
async def test_a_host_that_runs_the_sandbox_in_process_hears_nothing() -> None:
    """The sandbox is a library too (tests and the demo embed it): silent until configured."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        IN_PROCESS_SANDBOX,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert (process.returncode, out.decode(), err.decode()) == (0, "", "")


@pytest.mark.devino
@pytest.mark.parametrize("mode", ["stdlib", "structlog"])
async def test_a_host_that_configures_logging_gets_events_without_secrets(
    devino_sandbox: Sandbox, mode: str
) -> None:
    code, out, err = await run_host(mode, devino_sandbox.url, "demo-password")
    assert (code, out) == (0, "")
    for event in ("session_started", "soap_call", "session_login_failed", "send_outcome_unknown"):
        assert event in err
    assert "demo-password" not in err
    if mode == "stdlib":
        assert "INFO:notify_devino_soap.session:session_started channel='sms'" in err
        assert "RuntimeError: parser bug" in err
    else:
        assert all(line.startswith("{") for line in err.splitlines())
        assert '"exc_type": "RuntimeError", "exc_value": "parser bug"' in err


def test_standard_library_records_are_masked_once_configured(log_stream_restored: None) -> None:
    register_secret("stdlib-secret-314")
    stream = io.StringIO()
    configure_logging("json", "info", stream, cache=False)
    try:
        raise OSError("lost stdlib-secret-314")
    except OSError:
        logging.getLogger("aiohttp.client").exception("connection %s", "stdlib-secret-314")
    assert "connection [redacted]" in stream.getvalue()
    assert "OSError: lost [redacted]" in stream.getvalue()
    assert "stdlib-secret-314" not in stream.getvalue()


@pytest.fixture
def log_stream_restored() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
