"""The one error hierarchy: every error names what a user must fix.

Each class carries the HTTP ``status`` and error ``code`` it is answered with; the server's
middleware turns any of them into ``{"error": code, "message": …, "details": …}`` in one place,
so route handlers raise and never translate. This module imports nothing of the package: it is
the bottom layer every other one may raise from.
"""

import math
from typing import Any


class AvtomatikaError(Exception):
    """Base of every error this package raises on purpose.

    A class without its own ``status`` is a fault of the orchestrator (500): its message is
    logged, not shown to the caller.
    """

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After``) the answer carries."""
        return {}


class InvalidRequest(AvtomatikaError):
    """A request's body, query or header is unusable; the message names the field."""

    status = 400
    code = "bad_request"


class Unauthorized(AvtomatikaError):
    """A client or worker token is missing or wrong."""

    status = 401
    code = "unauthorized"


class AuthError(Unauthorized):
    """Authentication failed: the message names the header or token that was refused."""


class Forbidden(AvtomatikaError):
    """The caller is known but may not do this (it speaks for another worker)."""

    status = 403
    code = "forbidden"


class SignatureError(Forbidden):
    """A worker message's signature or timestamp is wrong or missing."""


class NotFound(AvtomatikaError):
    """The job, worker, blueprint or endpoint a request names does not exist."""

    status = 404
    code = "not_found"


class JobNotFound(NotFound):
    """No job with this id is visible to the caller (other clients' jobs included)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} not found")
        self.job_id = job_id


class UnknownWorker(NotFound):
    """The worker is not registered (never, or its record expired): it must register again."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"Worker '{worker_id}' not found; register again")
        self.worker_id = worker_id


class Conflict(AvtomatikaError):
    """The request is valid but contradicts the current state."""

    status = 409
    code = "conflict"


class JobStateConflict(Conflict):
    """The job is not in a status that allows the operation."""


class IdempotencyKeyReused(Conflict):
    """An ``Idempotency-Key`` came back with a request other than the one it was first sent with;
    ``job_id`` is the job the key was claimed for."""

    code = "idempotency_key_reused"

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message, {"job_id": job_id})
        self.job_id = job_id


class StorageUnavailable(AvtomatikaError, ConnectionError):
    """Storage did not answer within its retry budget; the same request may be sent again.

    The HTTP API answers it with 503 and ``Retry-After``; background loops wait and go on.
    """

    status = 503
    code = "storage_unavailable"

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message, {"retry_after": math.ceil(retry_after)})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(math.ceil(self.retry_after))}


class BlueprintError(AvtomatikaError, ValueError):
    """A blueprint definition is invalid; the message names the blueprint, state and problem."""


class ConditionError(BlueprintError):
    """A ``.when()`` condition does not parse."""


class ActionError(AvtomatikaError, RuntimeError):
    """A handler used the ``actions`` object wrongly (a second action, bad arguments)."""


class ConfigError(AvtomatikaError, ValueError):
    """A configuration value (environment variable or file key) is invalid."""
