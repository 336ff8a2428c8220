"""The signature of a webhook request, and how a receiver checks it.

Every request carries::

    X-Notify-Timestamp: 1795891234
    X-Notify-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
    Idempotency-Key: 3f8a0c5e1b9d4e7f8a6b2c1d0e9f8a7b

- the timestamp is the Unix time (whole seconds, UTC) at which this attempt was made;
- the signature is ``v1=`` and the lower-case hex HMAC-SHA256, keyed with the UTF-8 bytes of
  the shared secret, of the timestamp's ASCII digits, one ``.`` and the raw request body, byte
  for byte as received (before any JSON parsing)::

      hex(HMAC_SHA256(secret, timestamp + "." + body))

- the idempotency key is the same on every attempt of one message (and on a resend of the
  same notification, when the caller gives it a ``notification_id``): a receiver that has
  processed a key answers 2xx again without processing it twice.

A receiver recomputes the signature, compares it in constant time, and refuses a timestamp
further than its tolerance (5 minutes is usual) from its own clock, so a captured request cannot
be replayed later. The header may carry several comma-separated ``v1=`` signatures (while a
secret is being replaced); one that matches is enough. :func:`verify` does all of this.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

SIGNATURE_HEADER = "X-Notify-Signature"
TIMESTAMP_HEADER = "X-Notify-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300.0


class SignatureError(ValueError):
    """A webhook request whose signature or timestamp does not check out."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1=<hex>`` header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers for one attempt to send ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secrets: str | Iterable[str],
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
) -> int:
    """Check a received request; for receivers written in Python.

    :param secrets: the shared secret, or several (old and new, while replacing it).
    :param body: the raw request body.
    :param timestamp: the ``X-Notify-Timestamp`` header.
    :param signature_header: the ``X-Notify-Signature`` header.
    :param tolerance: the largest accepted distance, in seconds, between the timestamp and
        ``clock()``.
    :return: the timestamp.
    :raises SignatureError: a header is missing or malformed, the timestamp is too old (or too
        far ahead), or no signature matches.
    """
    if not timestamp or not signature_header:
        raise SignatureError("missing timestamp or signature header")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureError(f"malformed timestamp {timestamp!r}")
    moment = int(timestamp)
    if abs(clock() - moment) > tolerance:
        raise SignatureError(f"timestamp {moment} is more than {tolerance:g} s from now")
    given = [
        value.strip()
        for value in signature_header.split(",")
        if value.strip().startswith(f"{SCHEME}=")
    ]
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [signature(key, timestamp, body) for key in keys]
    if not any(
        hmac.compare_digest(g.encode("utf-8", "replace"), e.encode("ascii"))
        for g in given
        for e in expected
    ):
        raise SignatureError("no signature matches")
    return moment
