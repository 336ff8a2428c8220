"""The settings of an ``smtp`` channel, as YAML gives them under ``settings:``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from notify_devino.retrying import RetrySettings

from .message import TEMPLATE_FIELDS, check_template, parse_mailbox

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class SmtpSettings(BaseModel):
    """One SMTP submission server and how messages to it look.

    ``password`` may come from a file with ``password_file:``, or from the environment with
    ``password: ${SMTP_PASSWORD}``.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="the SMTP server's host name or address")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: 587 (starttls), 465 (tls), 25 (none)"
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection, and refuse a server that cannot; "
        "tls: TLS from the first byte (SMTPS); none: no encryption (a local relay)",
    )
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    verify_tls: bool = Field(default=True, description="check the server's certificate and name")
    ca_file: str | None = Field(
        default=None, description="PEM file of the CA that signed the server's certificate"
    )
    sender: str = Field(description='the From address: "Alerts <alerts@example.com>"')
    reply_to: str | None = None
    subject: str = Field(
        default="{first_line}",
        description="a template: " + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS),
    )
    html: bool = Field(default=True, description="add an HTML part beside the plain text")
    html_template: str | None = Field(
        default=None,
        description="the HTML part: a template with {body} (the text as HTML) and the subject's "
        "fields, all HTML-escaped",
    )
    helo_name: str | None = Field(
        default=None, description="the name sent in EHLO; default: this machine's host name"
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="per SMTP command")
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"CA file {value!r} does not exist")
        return str(Path(value).expanduser()) if value is not None else None

    @field_validator("sender", "reply_to")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mailbox(value)  # raises ValueError with the reason
        return value

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str) -> str:
        check_template(value, TEMPLATE_FIELDS)
        return value

    @field_validator("html_template")
    @classmethod
    def _html_template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value, ("body", *TEMPLATE_FIELDS))
        return value

    @model_validator(mode="after")
    def _login(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password to log in, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError(
                "logging in over an unencrypted connection would send the password in clear: "
                "use security: starttls or tls"
            )
        return self
