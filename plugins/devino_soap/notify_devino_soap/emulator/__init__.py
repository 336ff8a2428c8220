"""The Devino sandbox: a faithful emulator of Devino's SmsService SOAP API, for tests and demos.

- :mod:`.config`: :class:`SandboxConfig` and :func:`load_sandbox_config` (YAML);
- :mod:`.clock`: :class:`SystemClock` and :class:`ManualClock`;
- :mod:`.state`: :class:`SandboxState`, the clock-driven bookkeeping, no HTTP;
- :mod:`.server`: :class:`Sandbox`, the aiohttp server, and :func:`run_sandbox` for the CLI.

Everything the live service leaves undocumented is a setting, and the defaults say so.
"""

from .clock import Clock, ManualClock, SystemClock
from .config import (
    Account,
    DeliveryTimings,
    FaultTexts,
    RateLimit,
    SandboxConfig,
    load_sandbox_config,
)
from .server import RequestRecord, Sandbox, run_sandbox
from .state import (
    AccountState,
    IncomingRecord,
    MessageStateRecord,
    SandboxFault,
    SandboxState,
    StatisticsRecord,
)

__all__ = [
    "Account",
    "AccountState",
    "Clock",
    "DeliveryTimings",
    "FaultTexts",
    "IncomingRecord",
    "ManualClock",
    "MessageStateRecord",
    "RateLimit",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "SandboxFault",
    "SandboxState",
    "StatisticsRecord",
    "SystemClock",
    "load_sandbox_config",
    "run_sandbox",
]
