"""The settings of a ``webhook`` channel, as YAML gives them under ``settings:``."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

from notify_devino.retrying import RetrySettings

HttpUrl = Annotated[str, Field(pattern=r"^https?://[^/\s]+")]
SECRET_HEADER_WORDS = ("authorization", "token", "key", "secret", "signature", "cookie")
"""Extra headers whose names hold one of these carry secrets: never logged, masked in dumps."""


class WebhookSettings(BaseModel):
    """Where webhooks go and how they are signed.

    A recipient is the name of one of ``targets`` (its URL is used), or, when ``url`` is set,
    any other label (posted to ``url``, the label in the payload's ``recipient``).
    ``secret`` may come from a file with ``secret_file:``.
    """

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = Field(default=None, description="where recipients not in targets go")
    targets: dict[str, HttpUrl] = Field(default_factory=dict, description="recipient name -> URL")
    secret: SecretStr = Field(
        min_length=16, description="the HMAC-SHA256 key shared with receivers"
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # an Authorization header is a secret: never in a repr, masked in dumps
        description="extra headers on every request (Authorization, ...)",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, description="one whole request")
    receiver_deduplicates: bool = Field(
        default=False,
        description="the receivers process an Idempotency-Key once: a request that may have been "
        "processed (a timeout, a 5xx) is then retried too",
    )
    max_concurrency: int = Field(default=10, ge=1, le=100, description="requests in flight")
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_serializer("headers")
    def _mask_secret_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {
            name: "**********" if any(w in name.lower() for w in SECRET_HEADER_WORDS) else value
            for name, value in headers.items()
        }

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> Self:
        if self.url is None and not self.targets:
            raise ValueError("give url, targets, or both")
        return self
