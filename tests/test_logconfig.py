"""Secret masking: a secret that contains another registered secret is masked whole."""

from __future__ import annotations

import structlog

from notify_devino.logconfig import REDACTED, redact_secrets, register_secret


def test_a_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("inner-secret-1")  # registered first, and part of the next one
    register_secret("outer-inner-secret-1-tail")
    with structlog.testing.capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger("test").warning(
            "leak", detail="a outer-inner-secret-1-tail b inner-secret-1 c"
        )
    assert logs[0]["detail"] == f"a {REDACTED} b {REDACTED} c"
