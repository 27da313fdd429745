"""Participants' link tokens and case-order seeds: secrets, of which only hashes are stored."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32  # 256 bits: unguessable


def new_token() -> str:
    """A fresh URL token for a participant's link."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Only token hashes are stored: a leaked database doesn't hand out participants' links."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def secret_order_seed() -> int:
    """A case-order seed nobody can guess from anyone else's (a bot under simulation uses its own stream)."""
    return secrets.randbits(31)
