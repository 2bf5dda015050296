"""Random, prefixed credentials; hashes at rest; constant-time comparison.

appSecrets and access tokens carry 256 bits of randomness, so a plain SHA-256 is a safe at-rest form
(no key to lose, nothing to brute-force). Human passwords are low-entropy and use argon2id instead
(``imsp.auth.passwords``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

APP_ID_PREFIX = "hb"
SECRET_PREFIX = "hbs_"  # noqa: S105 - a prefix, not a secret
TOKEN_PREFIX = "hbt_"  # noqa: S105 - a prefix, not a secret


def new_app_id() -> str:
    """A 20-character appId, e.g. ``hb3f9c0a1d5e7b2c4d6e``."""
    return APP_ID_PREFIX + secrets.token_hex(9)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """The at-rest form of a high-entropy secret or token (hex SHA-256)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, stored_digest: str) -> bool:
    """Constant-time check of ``value`` against a stored digest."""
    return hmac.compare_digest(digest(value), stored_digest)
