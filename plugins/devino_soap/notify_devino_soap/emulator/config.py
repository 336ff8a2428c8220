"""The sandbox's settings: accounts, tariffs, delivery timings, failing numbers, time zones,
the rate limit, the fault texts and the faults to inject.

``SandboxConfig()`` is a working sandbox with one account (``demo`` / ``demo-password``, balance
1000). ``config/sandbox.yaml`` in the repository is the same, commented, plus a second account
and the demo's fast timings. What the live service does is documented in the repository's
``docs/devino-api.md``; everything it leaves undocumented (fault texts, the rate-limit response,
how a number maps to a time zone) is a setting here, and none of the defaults claims to be the
real thing.

A file looks like this (every key optional)::

    version: 1
    accounts:
      - {login: demo, password: demo-password, balance: 1000}
    prices: {"7": 1.50, default: 3.00}
    delivery: {gateway: 0.3, sent: 0.8, delivered: 1.5}
    failing_numbers: {"79990000001": rejected}
    time_zones: {"7914": Asia/Vladivostok}
    rate_limit: {requests_per_second: 10, response: http_429}
    faults: {seed: 7, rules: [{kind: http_503, operation: SendMessage, probability: 0.05}]}

``faults`` is described in :mod:`.faults`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from notify_devino.config import YamlDocument

from .faults import FaultsConfig
from .rules import RuleBroken, normalize_destination

FailureKind = Literal["rejected", "bad_address", "never_delivered", "rejected_by_devino"]
"""How a failing number fails, after the ``sent`` timing:

- ``rejected``: ends in 42 Error_Rejected;
- ``bad_address``: ends in 11 Error_Invalid_Destination_Address;
- ``rejected_by_devino``: ends in 48 Devino_Rejected;
- ``never_delivered``: stays -1 Sent until its validity runs out, then 46 Error_Expired.
"""

_MAX_INT64 = 2**63 - 1
_CENTS = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    """At least two decimals, so ``1.5`` from YAML reads back as ``1.50`` on the wire."""
    exponent = value.as_tuple().exponent
    return value.quantize(_CENTS) if isinstance(exponent, int) and exponent > -2 else value


class _Model(BaseModel):
    # Mutable on purpose: a test may flip a setting of a running sandbox
    # (``sandbox.config.rate_limit.enabled = False``); assignments are validated.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Account(_Model):
    """One customer account of the sandbox."""

    login: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)
    balance: Decimal = Decimal("1000")

    @field_validator("balance")
    @classmethod
    def _balance(cls, balance: Decimal) -> Decimal:
        if not balance.is_finite():
            raise ValueError("balance must be a number")
        return _money(balance)


class DeliveryTimings(_Model):
    """Seconds from the send moment (acceptance, or the scheduled time) to each state.

    ``gateway``: -30 Sending_To_Gateway (SubmittedDateUtc is set then); ``sent``: -1 Sent (a
    failing number reaches its error state here instead); ``delivered``: 0 Delivered.
    """

    gateway: float = Field(default=1.0, ge=0)
    sent: float = Field(default=2.0, ge=0)
    delivered: float = Field(default=4.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DeliveryTimings:
        if not self.gateway <= self.sent <= self.delivered:
            raise ValueError("timings must not decrease: gateway <= sent <= delivered")
        return self


class RateLimit(_Model):
    """The service's documented limit is 10 requests per second per client; what it answers
    past that is not documented, so the answer is a setting.

    A sliding one-second window per account (a request whose account cannot be told counts
    against one shared window), in real time (:func:`time.monotonic`). Only admitted requests
    fill the window. ``response``: ``fault`` is an HTTP 500 SOAP fault (Receiver, text
    ``fault_texts.rate_limited``); ``http_429`` / ``http_503`` is that status with a
    ``Retry-After`` header (whole seconds, rounded up) and a short text body.
    """

    enabled: bool = True
    requests_per_second: int = Field(default=10, ge=1)
    response: Literal["fault", "http_429", "http_503"] = "fault"
    retry_after_seconds: float = Field(default=1.0, ge=0)


class FaultTexts(_Model):
    """The reasons written after ``Server was unable to process request. ---> ``.

    Only ``invalid_login`` is known from the live service; the others follow the REST twin's
    wording where it has one, and are settings so a test can match whatever the real service
    turns out to say.
    """

    invalid_login: str = "Invalid user login or password"
    invalid_session: str = "Invalid session"
    expired_session: str = "SessionID expired"
    not_enough_credits: str = "Not enough credits"
    invalid_destination: str = "Invalid destination address"
    invalid_source: str = "Invalid source address"
    text_too_long: str = "Message is too long"
    too_many_addresses: str = "Too many destination addresses"
    statistics_range: str = "Date range is more than 3 months"
    argument_null: str = "Argument is null or empty"
    invalid_argument: str = "Invalid argument"
    rate_limited: str = "Too many requests"
    temporarily_unavailable: str = "Service is temporarily unavailable, try again later"
    """What an injected ``receiver_fault`` says (see :mod:`.faults`)."""


def _default_accounts() -> list[Account]:
    return [Account(login="demo", password="demo-password", balance=Decimal("1000.00"))]


def _default_prices() -> dict[str, Decimal]:
    return {"7": Decimal("1.50"), "default": Decimal("3.00")}


def _default_failing_numbers() -> dict[str, FailureKind]:
    return {
        "79990000001": "rejected",
        "79990000002": "bad_address",
        "79990000003": "never_delivered",
        "79990000004": "rejected_by_devino",
    }


# ILLUSTRATIVE, not authoritative. Russia's numbering plan assigns mobile (DEF) ranges to
# regions, but a number keeps its code when its owner moves operator or region, so any offline
# prefix table is approximate (docs/devino-api.md, "How the service finds a recipient's time zone").
# A +7 number that matches no longer prefix gets `default_time_zone` (Moscow); a number of any
# other country that matches nothing gets `foreign_time_zone` (UTC).
def _default_time_zones() -> dict[str, str]:
    return {
        "7914": "Asia/Vladivostok",  # DEF 914, Far East mobile ranges
        "7423": "Asia/Vladivostok",  # Primorsky Krai geographic code
        "7912": "Asia/Yekaterinburg",  # DEF 912, Urals mobile ranges
        "7343": "Asia/Yekaterinburg",  # Sverdlovsk Oblast geographic code
        "7913": "Asia/Novosibirsk",  # DEF 913, Siberia mobile ranges
        "7383": "Asia/Novosibirsk",  # Novosibirsk geographic code
        "7401": "Europe/Kaliningrad",  # Kaliningrad geographic code
        "76": "Asia/Almaty",  # +7 6xx / 7xx belong to Kazakhstan
        "77": "Asia/Almaty",
    }


def _check_prefix(prefix: str) -> str:
    if not prefix.isdigit() or not prefix.isascii():
        raise ValueError(f"prefix {prefix!r} must be digits only (country code first, no '+')")
    return prefix


def _check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{zone!r} is not an IANA time zone (e.g. Asia/Vladivostok)") from None
    return zone


class SandboxConfig(_Model):
    """Everything the sandbox can be told. Every field has a working default."""

    version: Literal[1] = 1
    strict: bool = True
    """Check every request body against the schema of the WSDL the sandbox serves (element
    order, ``minOccurs``, ``nillable``, the range of each XSD type) and answer a SOAP Client
    fault naming the first element that breaks it. ``false`` reads requests as leniently as
    ASMX: a missing value-type element takes its default, a missing nullable one is null."""
    accounts: list[Account] = Field(default_factory=_default_accounts, min_length=1)
    prices: dict[str, Decimal] = Field(default_factory=_default_prices)
    """Price of one segment by destination prefix (country code first); the longest prefix
    wins, ``default`` for the rest."""
    session_lifetime_minutes: int = Field(default=120, ge=1)
    message_retention_hours: int = Field(default=48, ge=1)
    """GetMessageState knows a message for this long after its creation, then answers 255."""
    delivery: DeliveryTimings = Field(default_factory=DeliveryTimings)
    failing_numbers: dict[str, FailureKind] = Field(default_factory=_default_failing_numbers)
    """Keyed by the number as the service stores it (``79990000001``); any accepted form of a
    number is normalised on load."""
    time_zones: dict[str, str] = Field(default_factory=_default_time_zones)
    """Prefix -> IANA zone for ``SendMessageByTimeZone*``; the longest prefix wins."""
    default_time_zone: str = "Europe/Moscow"
    """The zone of a +7 number no entry of ``time_zones`` matches."""
    foreign_time_zone: str = "UTC"
    """The zone of a non-+7 number no entry of ``time_zones`` matches."""
    message_id_start: int = Field(default=579700854169272358, ge=1, le=_MAX_INT64)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    fault_texts: FaultTexts = Field(default_factory=FaultTexts)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    """Faults to inject (none by default); a running sandbox's are in ``Sandbox.faults``."""

    @field_validator("accounts")
    @classmethod
    def _unique_logins(cls, accounts: list[Account]) -> list[Account]:
        seen: set[str] = set()
        for account in accounts:
            if account.login in seen:
                raise ValueError(f"login {account.login!r} appears twice")
            seen.add(account.login)
        return accounts

    @field_validator("prices")
    @classmethod
    def _prices(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        if "default" not in prices:
            raise ValueError("prices needs a 'default' entry (the price for any other number)")
        for prefix, price in prices.items():
            if prefix != "default":
                _check_prefix(prefix)
            if not price.is_finite() or price < 0:
                raise ValueError(f"price for {prefix!r} must be a number >= 0")
        return {prefix: _money(price) for prefix, price in prices.items()}

    @field_validator("failing_numbers")
    @classmethod
    def _failing(cls, numbers: dict[str, FailureKind]) -> dict[str, FailureKind]:
        normalised: dict[str, FailureKind] = {}
        for number, kind in numbers.items():
            try:
                normalised[normalize_destination(str(number))] = kind
            except RuleBroken:
                raise ValueError(
                    f"{number!r} is not a valid phone number for the sandbox "
                    "(an international number such as 79031234567)"
                ) from None
        return normalised

    @field_validator("time_zones")
    @classmethod
    def _zones(cls, zones: dict[str, str]) -> dict[str, str]:
        for prefix, zone in zones.items():
            _check_prefix(prefix)
            _check_zone(zone)
        return zones

    @field_validator("default_time_zone", "foreign_time_zone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return _check_zone(zone)

    def price_for(self, number: str) -> Decimal:
        """The price of one segment to ``number`` (normalised)."""
        return self.prices[_longest_prefix(self.prices, number) or "default"]

    def time_zone_for(self, number: str) -> ZoneInfo:
        """The recipient's zone for ``number`` (normalised), by the rules above."""
        prefix = _longest_prefix(self.time_zones, number)
        if prefix is not None:
            return ZoneInfo(self.time_zones[prefix])
        russian = number.startswith("7")
        return ZoneInfo(self.default_time_zone if russian else self.foreign_time_zone)


def _longest_prefix(table: Mapping[str, object], number: str) -> str | None:
    best: str | None = None
    for prefix in table:
        if prefix != "default" and number.startswith(prefix) and len(prefix) > len(best or ""):
            best = prefix
    return best


# -- loading -----------------------------------------------------------------------------------


def load_sandbox_config(path: str | Path) -> SandboxConfig:
    """Read a sandbox config file (YAML, ``safe_load``) and validate it.

    :raise ConfigError: naming the file, the YAML path and line of the bad value, and what was
        expected.
    """
    doc = YamlDocument.read(path, what="sandbox config")
    if doc.data is None:  # an empty file: every default
        return SandboxConfig()
    return doc.validate(SandboxConfig, doc.mapping("accounts, prices, delivery, ..."))
