"""The settings of a ``devino_soap`` channel, as YAML gives them under ``settings:``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from notify_devino.errors import InvalidInputError
from notify_devino.retrying import RetrySettings

from .rules import check_sender

DEFAULT_URL = "https://ws.devinotele.com/SmsService.asmx"


class DevinoSettings(BaseModel):
    """Settings of one Devino account.

    ``password`` may come from a file with ``password_file:``, or from the environment with
    ``password: ${DEVINO_PASSWORD}``. ``retry:`` is a
    :class:`~notify_devino.retrying.RetrySettings` block (attempts, backoff, deadline, send
    policy). ``rate_limit_per_second`` is per account: every channel of the same login and URL
    in the process shares it.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default=DEFAULT_URL, pattern=r"^https?://", description="the SmsService.asmx endpoint"
    )
    login: str = Field(min_length=1)
    password: SecretStr
    sender: str | None = Field(default=None, description="default sender name or number")
    soap_version: Literal["1.1", "1.2"] = "1.2"
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    rate_limit_per_second: float = Field(default=10.0, gt=0)
    validity_minutes: int | None = Field(default=None, gt=0, description="default message lifetime")
    receipt_requested: bool = True
    currency: str | None = Field(default=None, description="shown beside the balance, e.g. RUB")
    price_per_segment: Decimal | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="your tariff for one SMS segment, for 'notify-devino estimate'",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "retry_attempts" in data:
            raise ValueError(
                "retry_attempts was replaced by a retry block: "
                f"retry: {{attempts: {data['retry_attempts']}}}"
            )
        return data

    @field_validator("sender")
    @classmethod
    def _sender_rules(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_sender(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("soap_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, float | int) else value
