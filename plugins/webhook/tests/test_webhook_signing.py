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
KEY = "3f8a0c5e1b9d4e7f8a6b2c1d0e9f8a7b"
# computed apart from this code, as the README shows a receiver author:
#   printf '%s' '1795891234.3f8a0c5e1b9d4e7f8a6b2c1d0e9f8a7b.{"text":"db-1 is down"}' \
#     | openssl dgst -sha256 -hmac 'whsec-example-secret-123'
KNOWN = "v2=5b18338149b89e1bade47097195fcf2de725d7ff36e335ca8b39bbaa9386e6f6"
# the same without the key: the old v1 scheme, which a receiver must no longer accept
V1 = "v1=15ab255b1ccfd38d4c236c81ffc3c036315f5cd8f2fe970e5351170536e1197c"


def check(
    body: bytes = BODY,
    timestamp: str | None = "1795891234",
    header: str | None = KNOWN,
    key: str | None = KEY,
    now: float = 1795891234,
    secrets: str | list[str] = SECRET,
) -> int:
    return verify(secrets, body, timestamp, header, idempotency_key=key, clock=lambda: now)


def test_the_signature_is_the_documented_hmac() -> None:
    assert signature(SECRET, 1795891234, KEY, BODY) == KNOWN
    headers = signed_headers(SECRET, BODY, idempotency_key=KEY, now=1795891234.9)
    assert headers == {
        "X-Notify-Timestamp": "1795891234",
        "X-Notify-Signature": KNOWN,
        "Idempotency-Key": KEY,
    }


def test_a_good_request_checks_out() -> None:
    assert check(now=1795891234 + 299) == 1795891234
    both = f"v2=deadbeef, {KNOWN}"  # several signatures while a secret is replaced
    assert check(header=both, secrets=["old-secret-xxxxxxxx", SECRET])


@pytest.mark.parametrize(
    ("body", "timestamp", "header", "key", "now", "fragment"),
    [
        (BODY + b" ", "1795891234", KNOWN, KEY, 1795891234, "no signature matches"),
        (BODY, "1795891235", KNOWN, KEY, 1795891234, "no signature matches"),  # moved timestamp
        (BODY, "1795891234", KNOWN, KEY[::-1], 1795891234, "no signature matches"),  # new key
        (BODY, "1795891234", KNOWN, None, 1795891234, "missing"),
        (BODY, "1795891234", KNOWN, "", 1795891234, "missing"),
        (BODY, "1795891234", V1, KEY, 1795891234, "no signature matches"),  # the key unsigned
        (BODY, "1795891234", KNOWN, KEY, 1795891234 + 301, "more than 300 s from now"),  # replay
        (BODY, "1795891234", KNOWN, KEY, 1795891234 - 301, "more than 300 s from now"),
        (BODY, "1795891234", KNOWN.upper(), KEY, 1795891234, "no signature matches"),
        (BODY, "1795891234", KNOWN.replace("v2=", "v0="), KEY, 1795891234, "no signature"),
        (BODY, "17958912.34", KNOWN, KEY, 1795891234, "malformed timestamp"),
        (BODY, "١٧٩٥٨٩١٢٣٤", KNOWN, KEY, 1795891234, "malformed timestamp"),
        (BODY, "9" * 5000, KNOWN, KEY, 1795891234, "malformed timestamp"),  # no int() of it
        (BODY, None, KNOWN, KEY, 1795891234, "missing"),
        (BODY, "1795891234", None, KEY, 1795891234, "missing"),
        (BODY, "1795891234", "v2=ы", KEY, 1795891234, "no signature matches"),
    ],
)
def test_a_bad_request_is_refused_with_the_reason(
    body: bytes,
    timestamp: str | None,
    header: str | None,
    key: str | None,
    now: float,
    fragment: str,
) -> None:
    with pytest.raises(SignatureError, match=fragment) as info:
        check(body, timestamp, header, key, now)
    assert len(str(info.value)) < 200  # a hostile header is not echoed whole


@settings(deadline=None)  # a loaded CI machine must not fail it on time
@given(
    secret=st.text(min_size=1),
    body=st.binary(),
    timestamp=st.integers(0, 10**12 - 1),  # at most the 12 digits a receiver reads
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64),
)
def test_every_body_signed_checks_out_and_any_change_does_not(
    secret: str, body: bytes, timestamp: int, key: str
) -> None:
    header = signature(secret, timestamp, key, body)
    mac = hmac.new(secret.encode(), f"{timestamp}.{key}.".encode() + body, hashlib.sha256)
    assert header == "v2=" + mac.hexdigest()

    def check(body: bytes, key: str) -> int:
        return verify(
            secret, body, str(timestamp), header, idempotency_key=key, clock=lambda: timestamp
        )

    assert check(body, key) == timestamp
    with pytest.raises(SignatureError):
        check(body + b"x", key)
    with pytest.raises(SignatureError):
        check(body, key + "x")
