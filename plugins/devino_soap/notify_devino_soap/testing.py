"""pytest fixtures for the Devino sandbox, registered as the ``devino_sandbox`` pytest plugin.

- ``devino_sandbox_config``: a :class:`SandboxConfig` with fast delivery (gateway 0.05 s,
  sent 0.1 s, delivered 0.2 s) and three accounts: ``demo`` / ``demo-password`` (balance
  1000), ``other`` / ``other-password`` (1000) and ``poor`` / ``poor-password`` (balance 1.00).
  The rate limit is on (10 requests/s, answered with a fault), as on the live service, and
  so is strict mode (every request checked against the WSDL's schema); override this fixture
  to change anything.
- ``devino_sandbox_clock``: a :class:`ManualClock` at the current time (whole seconds).
- ``devino_sandbox``: a started :class:`Sandbox` on 127.0.0.1 (free port) on the real clock;
  closed after the test. Point a client at ``devino_sandbox.url``.
- ``devino_sandbox_manual_clock``: the same on ``devino_sandbox_clock``; move time with
  ``devino_sandbox_clock.advance(timedelta(...))``.

The plugin is loaded into every pytest session of an environment where notify-devino-soap is
installed, so every fixture name carries the ``devino_`` prefix. The two sandbox fixtures are
async and need pytest-asyncio; without it the plugin still loads, and a test that asks for one
of them errors with what to install.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from .emulator import Account, DeliveryTimings, ManualClock, Sandbox, SandboxConfig

try:
    import pytest_asyncio
except ImportError:  # the sync fixtures still work; the async ones say what is missing
    pytest_asyncio = None  # type: ignore[assignment]

NEEDS_PYTEST_ASYNCIO = (
    "the fixture {name!r} of notify-devino-soap's pytest plugin is async and needs "
    "pytest-asyncio, which is not installed: pip install pytest-asyncio"
)

TEST_ACCOUNTS = (
    Account(login="demo", password="demo-password", balance=Decimal("1000")),
    Account(login="other", password="other-password", balance=Decimal("1000")),
    Account(login="poor", password="poor-password", balance=Decimal("1.00")),
)


@pytest.fixture
def devino_sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        strict=True,
        accounts=list(TEST_ACCOUNTS),
        delivery=DeliveryTimings(gateway=0.05, sent=0.1, delivered=0.2),
    )


@pytest.fixture
def devino_sandbox_clock() -> ManualClock:
    return ManualClock()


def _missing_pytest_asyncio(name: str) -> Callable[..., Any]:
    def fixture() -> None:
        pytest.fail(NEEDS_PYTEST_ASYNCIO.format(name=name), pytrace=False)

    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def devino_sandbox(devino_sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
        async with Sandbox(devino_sandbox_config) as sandbox:
            yield sandbox

    @pytest_asyncio.fixture
    async def devino_sandbox_manual_clock(
        devino_sandbox_config: SandboxConfig, devino_sandbox_clock: ManualClock
    ) -> AsyncIterator[Sandbox]:
        async with Sandbox(devino_sandbox_config, clock=devino_sandbox_clock) as sandbox:
            yield sandbox

else:
    devino_sandbox = _missing_pytest_asyncio("devino_sandbox")
    devino_sandbox_manual_clock = _missing_pytest_asyncio("devino_sandbox_manual_clock")
