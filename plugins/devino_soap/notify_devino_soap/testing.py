"""pytest fixtures for the Devino sandbox, registered as the ``devino_sandbox`` pytest plugin.

- ``sandbox_config``: a :class:`SandboxConfig` with fast delivery (gateway 0.05 s, sent 0.1 s,
  delivered 0.2 s) and three accounts: ``demo`` / ``demo-password`` (balance 1000),
  ``other`` / ``other-password`` (1000) and ``poor`` / ``poor-password`` (balance 1.00).
  The rate limit is on (10 requests/s, answered with a fault), as on the live service, and
  so is strict mode (every request checked against the WSDL's schema); override this fixture
  to change anything.
- ``sandbox_clock``: a :class:`ManualClock` starting at the current time (whole seconds).
- ``devino_sandbox``: a started :class:`Sandbox` on 127.0.0.1 (free port) on the real clock;
  closed after the test. Point a client at ``devino_sandbox.url``.
- ``devino_sandbox_manual_clock``: the same on ``sandbox_clock``; move time with
  ``sandbox_clock.advance(timedelta(...))``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from .emulator import Account, DeliveryTimings, ManualClock, Sandbox, SandboxConfig

TEST_ACCOUNTS = (
    Account(login="demo", password="demo-password", balance=Decimal("1000")),
    Account(login="other", password="other-password", balance=Decimal("1000")),
    Account(login="poor", password="poor-password", balance=Decimal("1.00")),
)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        strict=True,
        accounts=list(TEST_ACCOUNTS),
        delivery=DeliveryTimings(gateway=0.05, sent=0.1, delivered=0.2),
    )


@pytest.fixture
def sandbox_clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def devino_sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_config) as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def devino_sandbox_manual_clock(
    sandbox_config: SandboxConfig, sandbox_clock: ManualClock
) -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_config, clock=sandbox_clock) as sandbox:
        yield sandbox
