"""Idempotency keys of job creation: a client that sends one create again (its reply was lost,
its request timed out) with the same ``Idempotency-Key`` gets the job the first one made."""

import hashlib
from typing import Any

from avtomatika.core.codec import encode_sorted, to_builtins
from avtomatika.errors import InvalidRequest
from avtomatika.protocol.constants import IDEMPOTENCY_KEY_HEADER
from avtomatika.storage.base import IdempotencyClaim

MAX_KEY_LENGTH = 255


def _bad_key(problem: str) -> InvalidRequest:
    return InvalidRequest(f"{IDEMPOTENCY_KEY_HEADER} header {problem}", {"header": IDEMPOTENCY_KEY_HEADER})


def parse_key(raw: str) -> str:
    """The header's value, if it is 1 to ``MAX_KEY_LENGTH`` printable ASCII characters."""
    if not raw:
        raise _bad_key("must not be empty")
    if len(raw) > MAX_KEY_LENGTH:
        raise _bad_key(f"is {len(raw)} characters long; at most {MAX_KEY_LENGTH}")
    if not all(" " <= char <= "~" for char in raw):
        raise _bad_key("must be printable ASCII characters only")
    return raw


def fingerprint(blueprint: str, request: Any) -> str:
    """A stable hash of what defines the job: its blueprint and the request's fields, as
    canonical JSON (sorted keys), so the same request sent again with keys in another order
    matches."""
    canonical = encode_sorted([blueprint, to_builtins(request)])
    return hashlib.sha256(canonical).hexdigest()


def claim(client_id: str, key: str, job_fingerprint: str, ttl: float) -> IdempotencyClaim:
    """A claim on ``key`` for ``client_id`` only: another client's identical key is another key.
    The length prefix keeps every (client, key) pair distinct whatever characters they hold."""
    return IdempotencyClaim(f"{len(client_id)}:{client_id}:{key}", job_fingerprint, ttl)
