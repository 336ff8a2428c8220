"""Building email messages from notifications: addresses, subject and HTML templates, MIME.

A notification becomes one message per recipient (nobody sees who else was alerted): a
``text/plain`` part, and with ``html`` a ``text/html`` alternative, both UTF-8. The subject
and the HTML part are templates (``str.format`` fields, nothing else) over these fields:

==================  ==========================================================================
``text``            the notification's text
``first_line``      its first non-blank line, at most 200 characters
``severity``        ``metadata["severity"]`` (set by ``Dispatcher.notify``), else empty
``tags``            ``metadata["tags"]`` (comma-separated), else empty
``route``           ``metadata["route"]``, else empty
``notification_id`` ``metadata["notification_id"]``, else empty
``channel``         the configured channel name
``body``            (HTML template only) the text as HTML: escaped, line breaks kept
==================  ==========================================================================

Every value that reaches a header has its line breaks folded to spaces, so no caller input
can add a header.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Mapping
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

TEMPLATE_FIELDS = ("text", "first_line", "severity", "tags", "route", "notification_id", "channel")
DEFAULT_HTML_TEMPLATE = (
    "<!DOCTYPE html>\n<html><body>\n"
    '<div style="font-family: sans-serif; white-space: normal">{body}</div>\n'
    "</body></html>\n"
)
MAX_SUBJECT = 200
WIRE_POLICY = policy.SMTP.clone(cte_type="7bit")
"""CRLF line ends and 7-bit bodies (quoted-printable or base64 for UTF-8 text), so a message
needs no 8BITMIME or SMTPUTF8 from the server."""

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def check_address(value: str) -> str:
    """An addr-spec (``alice@example.com``) as it goes on the wire; an internationalised
    domain is converted to its ASCII form.

    :raises ValueError: not an address this channel can send to, with the reason.
    """
    if not isinstance(value, str) or value != value.strip() or not value:
        raise ValueError(f"{value!r} is not an email address")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{value!r} is not an email address (no local@domain)")
    if not _LOCAL.fullmatch(local) or local.startswith(".") or ".." in local:
        raise ValueError(f"{value!r}: the part before @ must be plain ASCII")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{value!r}: {domain!r} is not a valid domain") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise ValueError(f"{value!r}: {domain!r} is not a valid domain")
    return f"{local}@{ascii_domain}"


def parse_mailbox(value: str) -> tuple[str, str]:
    """``"Alerts <alerts@example.com>"`` or ``alerts@example.com`` as (display name, address).

    :raises ValueError: not a single mailbox.
    """
    if "\r" in value or "\n" in value:
        raise ValueError("an address cannot contain a line break")
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        raise ValueError(f"{value!r} is not one email address")
    name, address = found[0]
    return name, check_address(address)


def check_template(template: str, fields: Iterable[str]) -> None:
    """Refuse a template that names a field not in ``fields`` or uses more than plain fields.

    :raises ValueError: what is wrong, and which fields exist.
    """
    known = tuple(fields)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is malformed: {exc}") from None
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field not in known:
            raise ValueError(
                f"template field {{{field}}} is not known; known: "
                + ", ".join("{" + f + "}" for f in known)
            )


def _one_line(value: str) -> str:
    return " ".join(value.split())


def template_fields(text: str, metadata: Mapping[str, str], channel: str) -> dict[str, str]:
    """The values a subject or HTML template can use."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > MAX_SUBJECT:
        first = first[: MAX_SUBJECT - 1] + "…"
    fields = {key: str(metadata.get(key, "")) for key in TEMPLATE_FIELDS}
    fields.update(text=text, first_line=first, channel=channel)
    return fields


def render_subject(template: str, fields: Mapping[str, str]) -> str:
    subject = _one_line(template.format_map(fields))
    return subject if len(subject) <= MAX_SUBJECT else subject[: MAX_SUBJECT - 1] + "…"


def render_html(template: str | None, fields: Mapping[str, str]) -> str:
    escaped = {key: html.escape(value) for key, value in fields.items()}
    escaped["body"] = "<br>\n".join(html.escape(line) for line in fields["text"].splitlines())
    return (template or DEFAULT_HTML_TEMPLATE).format_map(escaped)


def build_message(
    *,
    sender: tuple[str, str],
    recipient: str,
    subject: str,
    text: str,
    html_body: str | None,
    message_id: str,
    date: datetime,
    reply_to: tuple[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> EmailMessage:
    """One message to one recipient. ``labels`` become ``X-Notify-<Name>`` headers."""
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = _address(*sender)
    message["To"] = _address("", recipient)
    if reply_to is not None:
        message["Reply-To"] = _address(*reply_to)
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    for name, value in (labels or {}).items():
        if value:
            message[f"X-Notify-{name}"] = _one_line(value)
    message.set_content(text if text.endswith("\n") else text + "\n")
    if html_body is not None:
        message.add_alternative(html_body, subtype="html")
    return message


def _address(name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=_one_line(name), username=local, domain=domain)
