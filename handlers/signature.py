"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def _given_digest(header: str | None) -> bytes | None:
    """The hex digest a header claims, as ASCII bytes; None when it is not `sha256=...`.

    Bytes, not text: `hmac.compare_digest` raises TypeError on non-ASCII `str`, so a hostile
    header must not reach it as text.
    """
    if not header or not header.startswith(PREFIX):
        return None
    return header[len(PREFIX) :].strip().encode("ascii", errors="replace").lower()


def verify_meta_signature(app_secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is the HMAC-SHA256 of `body` under `app_secret`.

    Computed over the raw bytes, before any parsing (Meta signs the bytes it sent, escaped
    unicode and all), and compared in constant time.
    """
    given = _given_digest(header)
    if given is None:
        return False
    expected = hmac.digest(app_secret, body, hashlib.sha256).hex().encode()
    return hmac.compare_digest(expected, given)


class SignatureCheck:
    """The same check, fed the body piece by piece as it comes off the socket.

    The HMAC is then done when the last byte arrives, and no step needs the whole body in one
    piece: `verify_meta_signature(secret, b"".join(pieces), header)` equals feeding `pieces`
    to `update` and calling `matches`.
    """

    __slots__ = ("_given", "_mac")

    def __init__(self, app_secret: bytes, header: str | None) -> None:
        self._given = _given_digest(header)
        self._mac = hmac.new(app_secret, digestmod=hashlib.sha256)

    def update(self, piece: bytes) -> None:
        self._mac.update(piece)

    def matches(self) -> bool:
        """True when the bytes fed so far are what the header signed (constant-time compare)."""
        if self._given is None:
            return False
        return hmac.compare_digest(self._mac.hexdigest().encode(), self._given)


def sign(app_secret: bytes, body: bytes) -> str:
    """The header value Meta would send for `body` (used by `simulate`, tests and benchmarks)."""
    return PREFIX + hmac.new(app_secret, body, hashlib.sha256).hexdigest()
