"""The Devino sandbox: a faithful emulator of Devino's SmsService SOAP API, for tests and demos.

Split by job, as moto splits a service into models, responses and urls:

- :mod:`.config`: :class:`SandboxConfig` and :func:`load_sandbox_config` (YAML);
- :mod:`.clock`: :class:`SystemClock` and :class:`ManualClock`;
- :mod:`.state`: :class:`SandboxState`, the clock-driven bookkeeping, no HTTP (the models);
- :mod:`.rules`: the send rules as the provider checks them, apart from the client's;
- :mod:`.wire`: the SOAP codec: read a request, write a reply or a fault;
- :mod:`.schema`: strict mode, a walker over the served WSDL's schema;
- :mod:`.operations`: each operation's parameters to calls on the state, results to XML
  (the responses);
- :mod:`.ratelimit`: the sandbox's own sliding-window limiter;
- :mod:`.faults`: what to inject (:class:`FaultsConfig`, :class:`FaultInjector`);
  :mod:`.injected`: what an injected fault does to an answer;
- :mod:`.admin`: the admin routes (incoming SMS, expiring sessions, the logs);
- :mod:`.server`: :class:`Sandbox`, the aiohttp app, its routes and the way one request is
  answered, and :func:`run_sandbox` for the CLI (the urls).

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
