"""HMAC message signatures of RXON v1 (protocol.md §2.3).

The canonical form is the received JSON object with every ``null`` value and ``null``
list element removed recursively, the top-level ``security`` key dropped (and
``bubbling_chain`` for events), serialised with sorted keys and compact separators —
byte-identical to what the published worker SDK signs.
"""

import hashlib
import hmac
from typing import Any

from avtomatika.protocol.canonical import encode_sorted

PLACEHOLDER_TOKEN = "your-secret-worker-token"
"""The SDK's default token; it never signs with it, so neither do we."""


def strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value if v is not None]
    return value


def canonical_bytes(message: dict[str, Any], *, exclude: tuple[str, ...] = ("security",)) -> bytes:
    body = {k: v for k, v in message.items() if k not in exclude}
    return encode_sorted(strip_nulls(body))


def signature(secret: str, message: dict[str, Any], *, exclude: tuple[str, ...] = ("security",)) -> str:
    """Lower-case hex HMAC-SHA256 of the canonical form, keyed by the sender's credential."""
    return hmac.new(secret.encode(), canonical_bytes(message, exclude=exclude), hashlib.sha256).hexdigest()


def verify(
    secret: str, message: dict[str, Any], claimed: str, *, exclude: tuple[str, ...] = ("security",)
) -> bool:
    return hmac.compare_digest(signature(secret, message, exclude=exclude), claimed)


def signs_with(token: str | None) -> bool:
    """Whether a sender holding ``token`` is expected to sign (protocol.md §11 #1)."""
    return bool(token) and token != PLACEHOLDER_TOKEN
