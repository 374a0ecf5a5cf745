"""Errors of the worker client.

Handlers raise :class:`TaskError` (or one of its subclasses) to choose the RXON error code
their failure is reported with; the orchestrator reacts per code (protocol.md §8): transient
failures are retried, permanent ones quarantine the job, invalid input fails it. Any other
exception a handler raises is reported as ``TRANSIENT_ERROR``.
"""

from typing import Any

from avtomatika.errors import AvtomatikaError
from avtomatika.protocol.constants import ErrorCode


class TaskError(AvtomatikaError):
    """A handler failure reported with an explicit error ``code``, ``message`` and ``details``."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class TransientError(TaskError):
    """A failure that may pass on a retry (a busy GPU, a flaky dependency): the task is re-dispatched."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(ErrorCode.TRANSIENT_ERROR, message, details)


class PermanentError(TaskError):
    """A failure no retry can fix: the orchestrator quarantines the job."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(ErrorCode.PERMANENT_ERROR, message, details)


class InvalidInputError(TaskError):
    """The task parameters are unusable: the orchestrator fails the job without retrying."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(ErrorCode.INVALID_INPUT_ERROR, message, details)


class SkillDefinitionError(AvtomatikaError):
    """A skill cannot be registered: duplicate name or a handler parameter that cannot be injected."""


class OrchestratorError(AvtomatikaError):
    """The orchestrator answered a worker request with an HTTP error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class WorkerUnknownError(OrchestratorError):
    """A heartbeat got 404: the orchestrator lost this worker's record, so the worker re-registers."""
