"""Fault injection: the sandbox misbehaving on purpose, like a flaky provider, reproducibly.

Rules come from the ``faults:`` section of the sandbox config, or from a test through
:attr:`Sandbox.faults <notify_devino_soap.emulator.server.Sandbox.faults>`::

    faults:
      seed: 7                      # the same seed and the same requests: the same faults
      rules:
        - {kind: http_503, operation: SendMessage, probability: 0.05}
        - {kind: delay, operation: "*", requests: [3, 10], delay_seconds: 2}

    sandbox.faults.add("close_after_processing", operation="SendMessage", requests=[1])

A rule applies to the requests of one operation (``*``: any), and fires either with a
``probability`` (drawn from a :class:`random.Random` seeded with ``seed``) or on a schedule of
``requests``: ordinals, from 1, among the requests that rule applies to. ``times`` caps how
often it fires. Rules are tried in order; the first that fires decides the request. Requests
the sandbox cannot read, and those the real rate limit refuses, are never faulted.

The kinds, and whether the request is *processed* (a send stored and charged) or not:

=========================  ==========  ======================================================
kind                       processed   what the client gets
=========================  ==========  ======================================================
``receiver_fault``         no          HTTP 500, SOAP ``Receiver`` fault with the text
                                       ``fault_texts.temporarily_unavailable`` (``... try
                                       again later``): the service refusing, for now
``http_503``               no          HTTP 503, plain text, ``Retry-After`` if
                                       ``retry_after_seconds`` is set
``close_before_response``  no          the connection closed after the request was read,
                                       before any response
``close_after_processing`` yes         the connection closed without a response: the message
                                       exists and is charged, the client never hears of it
``delay``                  yes         the normal reply, ``delay_seconds`` late (longer than
                                       the client's timeout: the client gives up first)
``not_xml``                no          HTTP 200 with a plain-text body (an intermediary's page)
``truncated``              yes         the normal reply cut in half (HTTP 200, consistent
                                       length, XML that ends mid-element)
``session_expired``        no          the caller's session is expired early, then the
                                       request is handled: the service's own expired-session
                                       fault. Never applies to ``GetSessionID``
``rate_limited``           no          the rate-limit answer configured in ``rate_limit``
                                       (a fault, or HTTP 429/503 with ``Retry-After``)
=========================  ==========  ======================================================
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .schema import service_schema

FaultKind = Literal[
    "receiver_fault",
    "http_503",
    "close_before_response",
    "close_after_processing",
    "delay",
    "not_xml",
    "truncated",
    "session_expired",
    "rate_limited",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
PROCESSED_KINDS: frozenset[FaultKind] = frozenset({"close_after_processing", "delay", "truncated"})
"""The kinds after which the request has been handled as usual (a send stored and charged)."""


class FaultRule(BaseModel):
    """One rule: which requests, what fault, how often."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: FaultKind
    operation: str = Field(default="*", description="an operation name, or * for any")
    probability: float | None = Field(default=None, ge=0, le=1)
    requests: list[int] | None = Field(
        default=None, description="1-based ordinals among the requests the rule applies to"
    )
    times: int | None = Field(default=None, ge=1, description="fire at most this often")
    delay_seconds: float = Field(default=5.0, gt=0, description="for kind delay")
    retry_after_seconds: float | None = Field(
        default=None, ge=0, description="for kind http_503: the Retry-After header, if any"
    )

    @field_validator("operation")
    @classmethod
    def _known(cls, operation: str) -> str:
        operations = service_schema().operations  # the WSDL's, read once
        if operation != "*" and operation not in operations:
            raise ValueError(
                f"unknown operation {operation!r}; expected * or one of "
                + ", ".join(sorted(operations))
            )
        return operation

    @field_validator("requests")
    @classmethod
    def _ordinals(cls, requests: list[int] | None) -> list[int] | None:
        if requests is not None and any(n < 1 for n in requests):
            raise ValueError("request ordinals start at 1")
        return requests

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultRule:
        if (self.probability is None) == (self.requests is None):
            raise ValueError("give exactly one of probability or requests (a schedule)")
        return self

    def applies_to(self, operation: str) -> bool:
        if self.kind == "session_expired" and operation == "GetSessionID":
            return False  # a login has no session to expire
        return self.operation in ("*", operation)


class FaultsConfig(BaseModel):
    """The ``faults:`` section of a sandbox config: a seed and the rules (none by default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int | None = Field(default=None, description="None: a different draw every run")
    rules: list[FaultRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """One fault the sandbox injected.

    :ivar kind: what was done.
    :ivar operation: the operation of the request.
    :ivar ordinal: the request's ordinal among those its rule applies to.
    :ivar login: the account, when known.
    :ivar destinations: the destination addresses of a send, as the request gave them.
    """

    kind: FaultKind
    operation: str
    ordinal: int
    login: str | None
    destinations: tuple[str, ...]


class FaultInjector:
    """The running sandbox's rules, their counters, and what was injected.

    :param config: the rules and seed to start from.
    """

    def __init__(self, config: FaultsConfig | None = None) -> None:
        config = config if config is not None else FaultsConfig()
        self.rules: list[FaultRule] = [rule.model_copy() for rule in config.rules]
        self._rng = random.Random(config.seed)
        self._seen: list[int] = [0] * len(self.rules)
        self._fired: list[int] = [0] * len(self.rules)
        self.injected: Counter[str] = Counter()
        """How many faults were injected, by kind."""
        self.log: list[InjectedFault] = []
        """Every injected fault, in order."""

    def add(
        self,
        kind: FaultKind,
        *,
        operation: str = "*",
        probability: float | None = None,
        requests: Sequence[int] | None = None,
        times: int | None = None,
        delay_seconds: float = 5.0,
        retry_after_seconds: float | None = None,
    ) -> FaultRule:
        """Add a rule after the others (see the module's docstring) and return it."""
        rule = FaultRule(
            kind=kind,
            operation=operation,
            probability=probability,
            requests=list(requests) if requests is not None else None,
            times=times,
            delay_seconds=delay_seconds,
            retry_after_seconds=retry_after_seconds,
        )
        self.rules.append(rule)
        self._seen.append(0)
        self._fired.append(0)
        return rule

    def clear(self) -> None:
        """Remove every rule (what was injected so far stays counted)."""
        self.rules.clear()
        self._seen.clear()
        self._fired.clear()

    def seed(self, seed: int | None) -> None:
        """Restart the random draws from ``seed``."""
        self._rng = random.Random(seed)

    def draw(self, operation: str) -> tuple[FaultRule, int] | None:
        """The rule that fires for this request of ``operation``, with the request's ordinal
        among that rule's requests, or None. Every rule that applies counts the request."""
        chosen: tuple[FaultRule, int] | None = None
        for index, rule in enumerate(self.rules):
            if not rule.applies_to(operation):
                continue
            self._seen[index] += 1
            if chosen is not None or (rule.times is not None and self._fired[index] >= rule.times):
                continue
            ordinal = self._seen[index]
            if rule.requests is not None:
                fires = ordinal in rule.requests
            else:
                assert rule.probability is not None
                fires = self._rng.random() < rule.probability
            if fires:
                self._fired[index] += 1
                chosen = (rule, ordinal)
        return chosen

    def record(
        self,
        rule: FaultRule,
        ordinal: int,
        operation: str,
        login: str | None,
        destinations: tuple[str, ...],
    ) -> None:
        self.injected[rule.kind] += 1
        self.log.append(InjectedFault(rule.kind, operation, ordinal, login, destinations))

    @property
    def total(self) -> int:
        """How many faults were injected in all."""
        return sum(self.injected.values())


__all__ = [
    "FAULT_KINDS",
    "PROCESSED_KINDS",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "FaultsConfig",
    "InjectedFault",
]
