"""The signature scheme, as the README documents it for receivers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_devino_webhook.signing import SignatureError, signature, signed_headers, verify

SECRET = "whsec-example-secret-123"
BODY = b'{"text":"db-1 is down"}'
# computed apart from this code, as the README shows a receiver author:
#   printf '%s' '1795891234.{"text":"db-1 is down"}' \
#     | openssl dgst -sha256 -hmac 'whsec-example-secret-123'
KNOWN = "v1=15ab255b1ccfd38d4c236c81ffc3c036315f5cd8f2fe970e5351170536e1197c"


def test_the_signature_is_the_documented_hmac() -> None:
    assert signature(SECRET, 1795891234, BODY) == KNOWN
    headers = signed_headers(SECRET, BODY, now=1795891234.9)
    assert headers == {"X-Notify-Timestamp": "1795891234", "X-Notify-Signature": KNOWN}


def test_a_good_request_checks_out() -> None:
    assert verify(SECRET, BODY, "1795891234", KNOWN, clock=lambda: 1795891234 + 299) == 1795891234
    both = f"v1=deadbeef, {KNOWN}"  # several signatures while a secret is replaced
    assert verify(
        ["old-secret-xxxxxxxx", SECRET], BODY, "1795891234", both, clock=lambda: 1795891234
    )


@pytest.mark.parametrize(
    ("body", "timestamp", "header", "now", "fragment"),
    [
        (BODY + b" ", "1795891234", KNOWN, 1795891234, "no signature matches"),
        (BODY, "1795891235", KNOWN, 1795891234, "no signature matches"),  # moved timestamp
        (BODY, "1795891234", KNOWN, 1795891234 + 301, "more than 300 s from now"),  # replay
        (BODY, "1795891234", KNOWN, 1795891234 - 301, "more than 300 s from now"),
        (BODY, "1795891234", KNOWN.upper(), 1795891234, "no signature matches"),
        (BODY, "1795891234", KNOWN.replace("v1=", "v0="), 1795891234, "no signature matches"),
        (BODY, "17958912.34", KNOWN, 1795891234, "malformed timestamp"),
        (BODY, "١٧٩٥٨٩١٢٣٤", KNOWN, 1795891234, "malformed timestamp"),
        (BODY, None, KNOWN, 1795891234, "missing"),
        (BODY, "1795891234", None, 1795891234, "missing"),
        (BODY, "1795891234", "v1=ы", 1795891234, "no signature matches"),
    ],
)
def test_a_bad_request_is_refused_with_the_reason(
    body: bytes, timestamp: str | None, header: str | None, now: float, fragment: str
) -> None:
    with pytest.raises(SignatureError, match=fragment):
        verify(SECRET, body, timestamp, header, clock=lambda: now)


@settings(deadline=None)  # a loaded CI machine must not fail it on time
@given(secret=st.text(min_size=1), body=st.binary(), timestamp=st.integers(0, 2**40))
def test_every_body_signed_checks_out_and_any_change_does_not(
    secret: str, body: bytes, timestamp: int
) -> None:
    header = signature(secret, timestamp, body)
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert header == "v1=" + mac.hexdigest()
    assert verify(secret, body, str(timestamp), header, clock=lambda: timestamp) == timestamp
    with pytest.raises(SignatureError):
        verify(secret, body + b"x", str(timestamp), header, clock=lambda: timestamp)
