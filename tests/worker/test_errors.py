import pytest

from avtomatika.errors import AvtomatikaError
from avtomatika.protocol.constants import ErrorCode
from avtomatika.worker.errors import (
    InvalidInputError,
    OrchestratorError,
    PermanentError,
    TaskError,
    TransientError,
    WorkerUnknownError,
)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (TransientError, ErrorCode.TRANSIENT_ERROR),
        (PermanentError, ErrorCode.PERMANENT_ERROR),
        (InvalidInputError, ErrorCode.INVALID_INPUT_ERROR),
    ],
)
def test_each_error_class_carries_its_protocol_code(cls: type[TaskError], code: ErrorCode) -> None:
    error = cls("message", details={"k": 1})
    assert isinstance(error, TaskError)
    assert isinstance(error, AvtomatikaError)
    assert (error.code, error.message, error.details, str(error)) == (code, "message", {"k": 1}, "message")


def test_orchestrator_error_names_the_request_and_status() -> None:
    error = WorkerUnknownError("PATCH", "/_worker/workers/w-1", 404, '{"error": "Worker not found"}')
    assert isinstance(error, OrchestratorError)
    assert error.status == 404
    assert "PATCH /_worker/workers/w-1 -> HTTP 404" in str(error)
