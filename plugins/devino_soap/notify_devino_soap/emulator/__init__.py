"""The Devino sandbox: a faithful emulator of Devino's SmsService SOAP API, for tests and demos.

- :mod:`.config`: :class:`SandboxConfig` and :func:`load_sandbox_config` (YAML);
- :mod:`.clock`: :class:`SystemClock` and :class:`ManualClock`;
- :mod:`.state`: :class:`SandboxState`, the clock-driven bookkeeping, no HTTP;
- :mod:`.faults`: fault injection (:class:`FaultsConfig`, :class:`FaultInjector`);
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
from .faults import (
    FAULT_KINDS,
    PROCESSED_KINDS,
    FaultInjector,
    FaultKind,
    FaultRule,
    FaultsConfig,
    InjectedFault,
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
    "FAULT_KINDS",
    "PROCESSED_KINDS",
    "Account",
    "AccountState",
    "Clock",
    "DeliveryTimings",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "FaultTexts",
    "FaultsConfig",
    "IncomingRecord",
    "InjectedFault",
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
