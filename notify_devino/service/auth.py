"""Bearer tokens with scopes (send, read, admin), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from .settings import Scope, TokenSettings


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: the token's name (never the token) and its scopes."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


ANONYMOUS = Caller("anonymous", frozenset(Scope))
"""The caller when authentication is off: it may do everything."""


class Authenticator:
    """Finds the caller of an ``Authorization: Bearer <token>`` header.

    Every configured token is compared, each with :func:`hmac.compare_digest`, so the time
    taken says nothing about which token came close.
    """

    def __init__(self, tokens: Sequence[TokenSettings]) -> None:
        self._tokens = [
            (
                (t.token.get_secret_value() if t.token else "").encode(),
                Caller(t.name, frozenset(t.scopes)),
            )
            for t in tokens
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def caller(self, header: str | None) -> Caller | None:
        """The caller the header names, or None (missing, malformed or unknown token)."""
        if not self._tokens:
            return ANONYMOUS
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        given = value.strip().encode()
        found = None
        for secret, caller in self._tokens:
            if hmac.compare_digest(given, secret) and found is None:
                found = caller
        return found


__all__ = ["ANONYMOUS", "Authenticator", "Caller"]
