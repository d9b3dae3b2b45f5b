"""Bearer keys, each with an optional allowlist: ``genstack serve``'s keys limited to some
collections and ``genstack mcp``'s keys limited to some tools keep and check them the same way.

A key is kept only as its SHA-256 digest, compared in constant time; its id (for logs, metrics and
rate limits) is derived from the digest, never from the key."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["Keys", "entry", "lookup"]

#: digest → (key id, the names the key may use, or None for all)
Keys = dict[str, tuple[str, "frozenset[str] | None"]]


def entry(key: str, allowed: frozenset[str] | None) -> tuple[str, tuple[str, frozenset[str] | None]]:
    """(digest, (key id, allowed)) of one key, for a :data:`Keys` mapping."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return digest, ("key-" + digest[:8], allowed)


def lookup(keys: Keys, token: str) -> tuple[str, frozenset[str] | None] | None:
    """(key id, allowed) of ``token``, or None for an empty or unknown one."""
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return next((v for d, v in keys.items() if hmac.compare_digest(d, digest)), None)
