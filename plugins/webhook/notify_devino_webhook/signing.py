"""The signature of a webhook request, and how a receiver checks it.

Every request carries::

    X-Notify-Timestamp: 1795891234
    X-Notify-Signature: v2=5b18338149b89e1bade47097195fcf2de725d7ff36e335ca8b39bbaa9386e6f6
    Idempotency-Key: 3f8a0c5e1b9d4e7f8a6b2c1d0e9f8a7b

- the timestamp is the Unix time (whole seconds, UTC) at which this attempt was made;
- the idempotency key is the same on every attempt of one message (and on a resend of the
  same notification, when the caller gives it a ``notification_id``): a receiver that has
  processed a key answers 2xx again without processing it twice;
- the signature is ``v2=`` and the lower-case hex HMAC-SHA256, keyed with the UTF-8 bytes of
  the shared secret, of the timestamp's ASCII digits, one ``.``, the idempotency key, one
  ``.`` and the raw request body, byte for byte as received (before any JSON parsing)::

      hex(HMAC_SHA256(secret, timestamp + "." + idempotency_key + "." + body))

The signature covers everything a receiver acts on: the body, the moment (so a captured
request cannot be replayed after the tolerance) and the key it deduplicates on (so a replay
within the tolerance under another key is refused, instead of processed a second time). The
first scheme, ``v1``, signed the timestamp and the body only; it is no longer sent nor accepted.

A receiver recomputes the signature, compares it in constant time, and refuses a timestamp
further than its tolerance (5 minutes is usual) from its own clock. The header may carry
several comma-separated ``v2=`` signatures (while a secret is being replaced); one that matches
is enough. :func:`verify` does all of this.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

SIGNATURE_HEADER = "X-Notify-Signature"
TIMESTAMP_HEADER = "X-Notify-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v2"
DEFAULT_TOLERANCE = 300.0
MAX_TIMESTAMP_DIGITS = 12
"""A Unix time in seconds has 10 digits until the year 2286; more is no timestamp."""
_ECHO = 40
"""At most this much of a malformed header goes into an error message."""


class SignatureError(ValueError):
    """A webhook request whose signature, timestamp or idempotency key does not check out."""


def signature(secret: str, timestamp: int | str, idempotency_key: str, body: bytes) -> str:
    """The ``v2=<hex>`` header value for ``body`` sent at ``timestamp`` (Unix seconds) under
    ``idempotency_key``."""
    signed = f"{timestamp}.{idempotency_key}.".encode() + body
    mac = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(
    secret: str, body: bytes, *, idempotency_key: str, now: float | None = None
) -> dict[str, str]:
    """The timestamp, signature and idempotency key headers of one attempt to send ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, idempotency_key, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }


def _echo(value: str) -> str:
    return repr(value if len(value) <= _ECHO else value[:_ECHO] + "...")


def verify(
    secrets: str | Iterable[str],
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    idempotency_key: str | None,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
) -> int:
    """Check a received request; for receivers written in Python.

    :param secrets: the shared secret, or several (old and new, while replacing it).
    :param body: the raw request body.
    :param timestamp: the ``X-Notify-Timestamp`` header.
    :param signature_header: the ``X-Notify-Signature`` header.
    :param idempotency_key: the ``Idempotency-Key`` header.
    :param tolerance: the largest accepted distance, in seconds, between the timestamp and
        ``clock()``.
    :return: the timestamp.
    :raises SignatureError: a header is missing or malformed, the timestamp is too old (or too
        far ahead), or no signature matches. Its message quotes at most the start of a
        malformed header.
    """
    if not timestamp or not signature_header or not idempotency_key:
        raise SignatureError("missing timestamp, signature or idempotency key header")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise SignatureError(
            f"malformed timestamp {_echo(timestamp)}; expected Unix seconds in ASCII digits"
        )
    moment = int(timestamp)
    if abs(clock() - moment) > tolerance:
        raise SignatureError(f"timestamp {moment} is more than {tolerance:g} s from now")
    given = [
        value.strip()
        for value in signature_header.split(",")
        if value.strip().startswith(f"{SCHEME}=")
    ]
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [signature(key, timestamp, idempotency_key, body) for key in keys]
    if not any(
        hmac.compare_digest(g.encode("utf-8", "replace"), e.encode("ascii"))
        for g in given
        for e in expected
    ):
        raise SignatureError("no signature matches")
    return moment
