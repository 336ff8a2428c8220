"""Building messages: addresses, templates, MIME, and that no input can add a header."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_devino_smtp import message as mail


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("first.last+alerts@sub.example.co.uk", "first.last+alerts@sub.example.co.uk"),
        ("ops@пример.рф", "ops@xn--e1afmkfd.xn--p1ai"),
        ("root@localhost", "root@localhost"),
    ],
)
def test_addresses_as_they_go_on_the_wire(given_: str, expected: str) -> None:
    assert mail.check_address(given_) == expected


@pytest.mark.parametrize(
    ("given_", "fragment"),
    [
        ("", "is not an email address"),
        ("alice", "no local@domain"),
        ("@example.com", "no local@domain"),
        ("alice@", "no local@domain"),
        (" alice@example.com", "is not an email address"),
        ("alice smith@example.com", "plain ASCII"),
        ("алиса@example.com", "plain ASCII"),
        ("a..b@example.com", "plain ASCII"),
        ("alice@exa mple.com", "not a valid domain"),
        ("alice@-example.com", "not a valid domain"),
        ("a@example.com\r\nBcc: eve@example.com", "plain ASCII"),
    ],
)
def test_what_is_not_an_address_says_why(given_: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        mail.check_address(given_)


def test_mailboxes_with_display_names() -> None:
    assert mail.parse_mailbox("Alerts <alerts@example.com>") == ("Alerts", "alerts@example.com")
    assert mail.parse_mailbox("alerts@example.com") == ("", "alerts@example.com")
    with pytest.raises(ValueError, match="not one email address"):
        mail.parse_mailbox("a@example.com, b@example.com")
    with pytest.raises(ValueError, match="line break"):
        mail.parse_mailbox("Alerts\r\nBcc: x@y.z <alerts@example.com>")


def test_templates_may_only_name_known_fields() -> None:
    mail.check_template("[{severity}] {first_line:.40}", mail.TEMPLATE_FIELDS)
    with pytest.raises(ValueError, match=r"\{text\.__class__\} is not known"):
        mail.check_template("{text.__class__}", mail.TEMPLATE_FIELDS)
    with pytest.raises(ValueError, match=r"field \{\} is not known"):
        mail.check_template("{}", mail.TEMPLATE_FIELDS)
    with pytest.raises(ValueError, match="malformed"):
        mail.check_template("{severity", mail.TEMPLATE_FIELDS)


def test_fields_subject_and_html() -> None:
    fields = mail.template_fields(
        "\n  db-1 <down>  \nsecond line", {"severity": "critical", "colour": "red"}, "email"
    )
    assert fields["first_line"] == "db-1 <down>"
    assert fields["severity"] == "critical"
    assert fields["tags"] == ""
    assert "colour" not in fields
    assert mail.render_subject("[{severity}] {first_line}", fields) == "[critical] db-1 <down>"
    html = mail.render_html("<h1>{first_line}</h1>{body}", fields)
    assert html == "<h1>db-1 &lt;down&gt;</h1><br>\n  db-1 &lt;down&gt;  <br>\nsecond line"
    long = mail.template_fields("x" * 500, {}, "email")
    assert len(mail.render_subject("{text}", long)) == mail.MAX_SUBJECT


def _parse(data: bytes) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(data, policy=policy.default))


@settings(deadline=None)  # a loaded CI machine must not fail it on time
@given(
    text=st.text(min_size=1).filter(lambda t: t.strip()),
    severity=st.text(),
    subject_prefix=st.text(  # a template comes from YAML: no lone surrogates
        alphabet=st.characters(exclude_characters="{}", exclude_categories=["Cs"])
    ),
)
def test_any_text_arrives_intact_and_adds_no_header(
    text: str, severity: str, subject_prefix: str
) -> None:
    fields = mail.template_fields(text, {"severity": severity}, "email")
    message = mail.build_message(
        sender=("Alerts", "alerts@example.com"),
        recipient="alice@example.com",
        subject=mail.render_subject(subject_prefix + "{severity} {first_line}", fields),
        text=text,
        html_body=mail.render_html(None, fields),
        message_id="<1@example.com>",
        date=datetime(2026, 11, 28, tzinfo=UTC),
        labels={"Severity": severity},
    )
    data = message.as_bytes()
    assert data.isascii()
    parsed = _parse(data)
    assert sorted(parsed.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]
        + (["X-Notify-Severity"] if severity else [])
    )
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    expected = text if text.endswith("\n") else text + "\n"
    got = cast(EmailMessage, body).get_content()
    # line ends travel as CRLF; every other character is kept
    assert got.replace("\r\n", "\n") == expected.replace("\r\n", "\n").replace("\r", "\n")
