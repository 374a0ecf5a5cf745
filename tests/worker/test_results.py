import dataclasses
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avtomatika.protocol.constants import ErrorCode
from avtomatika.protocol.models import TaskPayload
from avtomatika.worker.errors import InvalidInputError, PermanentError, TaskError, TransientError
from avtomatika.worker.results import (
    cancelled_result,
    error_from_exception,
    result_from_exception,
    result_from_return,
)

PAYLOAD = TaskPayload(job_id="job-1", task_id="task-1", type="resize")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def test_result_names_the_job_task_and_worker() -> None:
    result = result_from_return(PAYLOAD, "w-1", 1)
    assert (result.job_id, result.task_id, result.worker_id) == ("job-1", "task-1", "w-1")


@pytest.mark.parametrize("value", [None, 42, "text", [1, 2], {"width": 640}, {}])
def test_a_value_that_is_not_an_envelope_is_the_data(value: object) -> None:
    result = result_from_return(PAYLOAD, "w-1", value)
    assert result.status == "success"
    assert result.data == value
    assert result.error is None


@given(json_values)
def test_any_non_envelope_value_is_reported_unchanged(value: object) -> None:
    if isinstance(value, dict) and ({"status", "data"} & value.keys()):
        return
    assert result_from_return(PAYLOAD, "w-1", value).data == value


def test_envelope_with_status_and_data() -> None:
    result = result_from_return(PAYLOAD, "w-1", {"status": "needs_review", "data": {"score": 0.4}})
    assert result.status == "needs_review"
    assert result.data == {"score": 0.4}


def test_envelope_status_defaults_to_success_and_carries_metadata() -> None:
    result = result_from_return(PAYLOAD, "w-1", {"data": [1], "metadata": {"gpu": "h200"}})
    assert (result.status, result.data, result.metadata) == ("success", [1], {"gpu": "h200"})


def test_envelope_with_only_a_status_has_no_data() -> None:
    result = result_from_return(PAYLOAD, "w-1", {"status": "skipped"})
    assert (result.status, result.data) == ("skipped", None)


@pytest.mark.parametrize(
    "value",
    [
        {"status": "done", "items": [1, 2]},
        {"data": 1, "extra": 2},
        {"status": 200},
        {"data": 1, "metadata": "not-a-dict"},
    ],
)
def test_a_malformed_envelope_is_a_permanent_error_naming_the_problem(value: dict[str, object]) -> None:
    result = result_from_return(PAYLOAD, "w-1", value)
    assert result.status == "failure"
    assert result.error is not None
    assert not isinstance(result.error, str)
    assert result.error.code == ErrorCode.PERMANENT_ERROR
    assert "resize" in result.error.message
    assert "{'data': {...}}" in result.error.message


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TransientError("gpu busy"), ErrorCode.TRANSIENT_ERROR),
        (PermanentError("model missing"), ErrorCode.PERMANENT_ERROR),
        (InvalidInputError("width < 0"), ErrorCode.INVALID_INPUT_ERROR),
        (TaskError("RESOURCE_EXHAUSTED_ERROR", "oom"), "RESOURCE_EXHAUSTED_ERROR"),
    ],
)
def test_task_errors_keep_their_code_and_message(exc: TaskError, code: str) -> None:
    result = result_from_exception(PAYLOAD, "w-1", exc)
    assert result.status == "failure"
    assert result.error is not None
    assert not isinstance(result.error, str)
    assert (result.error.code, result.error.message) == (code, exc.message)


def test_task_error_details_travel() -> None:
    error = error_from_exception(InvalidInputError("bad width", details={"field": "width"}))
    assert error.details == {"field": "width"}


@pytest.mark.parametrize("exc", [ValueError("bad"), RuntimeError("boom"), KeyError("k")])
def test_any_other_exception_is_transient_and_names_its_type(exc: Exception) -> None:
    error = error_from_exception(exc)
    assert error.code == ErrorCode.TRANSIENT_ERROR
    assert error.message.startswith(type(exc).__name__)


def test_dataclasses_and_other_msgspec_types_become_json_builtins() -> None:
    @dataclasses.dataclass
    class Box:
        width: int
        made: datetime.date

    result = result_from_return(PAYLOAD, "w-1", Box(640, datetime.date(2026, 1, 2)))
    assert result.data == {"width": 640, "made": "2026-01-02"}


def test_a_value_that_cannot_be_json_is_a_permanent_error() -> None:
    result = result_from_return(PAYLOAD, "w-1", {"handle": object()})
    assert result.error is not None
    assert not isinstance(result.error, str)
    assert result.error.code == ErrorCode.PERMANENT_ERROR
    assert "cannot be sent as JSON" in result.error.message


def test_cancelled_result() -> None:
    result = cancelled_result(PAYLOAD, "w-1")
    assert (result.status, result.data, result.error) == ("cancelled", None, None)
