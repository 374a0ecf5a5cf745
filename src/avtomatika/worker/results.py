"""Turning what a handler returned or raised into the RXON ``TaskResult`` it is reported as.

The return-value rule (the one place it is decided):

* a ``dict`` with a ``"status"`` or ``"data"`` key is an *envelope*: ``status`` (default
  ``"success"``) names the outcome the blueprint's ``transitions`` map, ``data`` is merged into
  the job's ``state_history``, and an optional ``metadata`` dict is merged into the job's
  metadata; any other key in an envelope is a handler bug and reported as ``PERMANENT_ERROR``
  (rather than silently dropped) — wrap such a dict as ``{"data": {...}}``;
* any other ``dict`` is the data itself: ``{"width": 640}`` means ``{"data": {"width": 640}}``;
* any other value ``v`` (including ``None``) means ``{"data": v}``.

Values are first converted to JSON builtins, so dataclasses, msgspec Structs, datetimes and the
like are welcome; a value that cannot be sent as JSON is reported as ``PERMANENT_ERROR``.

Exceptions: a :class:`~avtomatika.worker.errors.TaskError` is reported with its own code;
anything else as ``TRANSIENT_ERROR``, so the orchestrator retries it.
"""

from typing import Any

from avtomatika.core.codec import to_builtins
from avtomatika.protocol import models
from avtomatika.protocol.constants import ErrorCode, ResultStatus
from avtomatika.worker.errors import TaskError

ENVELOPE_KEYS = frozenset({"status", "data", "metadata"})


def result_from_return(payload: models.TaskPayload, worker_id: str, value: Any) -> models.TaskResult:
    """The result reporting a handler's return ``value`` (see the module docstring for the rule)."""
    try:
        value = to_builtins(value)
    except TypeError as exc:
        message = f"skill '{payload.type}' returned a value that cannot be sent as JSON: {exc}"
        return failure_result(payload, worker_id, models.TaskError(ErrorCode.PERMANENT_ERROR, message))
    if not (isinstance(value, dict) and ("status" in value or "data" in value)):
        return _result(payload, worker_id, ResultStatus.SUCCESS, data=value)
    unknown = sorted(str(key) for key in value.keys() - ENVELOPE_KEYS)
    status = value.get("status", ResultStatus.SUCCESS)
    metadata = value.get("metadata")
    if unknown or not isinstance(status, str) or not isinstance(metadata, dict | None):
        message = (
            f"skill '{payload.type}' returned a malformed result envelope: status must be a string, "
            f"metadata a dict, and the only keys status/data/metadata (unknown: {unknown}); "
            "return {'data': {...}} to report a dict that has a 'status' or 'data' key"
        )
        return failure_result(payload, worker_id, models.TaskError(ErrorCode.PERMANENT_ERROR, message))
    return _result(payload, worker_id, status, data=value.get("data"), metadata=metadata)


def error_from_exception(exc: BaseException) -> models.TaskError:
    """The wire error for a handler exception: its own code for ``TaskError``, else transient."""
    if isinstance(exc, TaskError):
        return models.TaskError(code=exc.code, message=exc.message, details=exc.details)
    return models.TaskError(code=ErrorCode.TRANSIENT_ERROR, message=f"{type(exc).__name__}: {exc}")


def result_from_exception(
    payload: models.TaskPayload, worker_id: str, exc: BaseException
) -> models.TaskResult:
    return failure_result(payload, worker_id, error_from_exception(exc))


def failure_result(payload: models.TaskPayload, worker_id: str, error: models.TaskError) -> models.TaskResult:
    return _result(payload, worker_id, ResultStatus.FAILURE, error=error)


def cancelled_result(payload: models.TaskPayload, worker_id: str) -> models.TaskResult:
    """Sent when a running task was cancelled, so the orchestrator learns it stopped (protocol.md §8)."""
    return _result(payload, worker_id, ResultStatus.CANCELLED)


def _result(
    payload: models.TaskPayload,
    worker_id: str,
    status: str,
    *,
    data: Any = None,
    error: models.TaskError | None = None,
    metadata: dict[str, Any] | None = None,
) -> models.TaskResult:
    return models.TaskResult(
        job_id=payload.job_id,
        task_id=payload.task_id,
        worker_id=worker_id,
        status=str(status),
        data=data,
        error=error,
        metadata=metadata,
    )
