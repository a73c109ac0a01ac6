"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def verify_meta_signature(app_secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is the HMAC-SHA256 of `body` under `app_secret`.

    Computed over the raw bytes, before any parsing (Meta signs the bytes it sent, escaped
    unicode and all). Compared in constant time, as bytes: `hmac.compare_digest` raises
    TypeError on non-ASCII `str`, so a hostile header must not reach it as text.
    """
    if not header or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX) :].strip().encode("ascii", errors="replace").lower()
    expected = hmac.new(app_secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, given)


def sign(app_secret: bytes, body: bytes) -> str:
    """The header value Meta would send for `body` (used by `simulate`, tests and benchmarks)."""
    return PREFIX + hmac.new(app_secret, body, hashlib.sha256).hexdigest()
