"""The README's "What happens on failure" table, row by row, on memory and Redis: what a worker's
result status and error code do to the job, with and without a mapped ``failure`` transition."""

import asyncio
from typing import Any, NamedTuple

import pytest

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory
from tests.wire import WireWorker

MAX_RETRIES = 2
QUARANTINE_CODES = ("PERMANENT_ERROR", "SECURITY_ERROR", "DEPENDENCY_ERROR", "CONTRACT_VIOLATION_ERROR")
FAIL_CODES = ("INVALID_INPUT_ERROR", "INTEGRITY_MISMATCH_ERROR")
RETRIED_CODES = ("TRANSIENT_ERROR", "SOMETHING_NEW_ERROR", None)
"""Retried: the transient code, a code the orchestrator does not know, and a failure with no error."""


def table_blueprint(failure_mapped: bool) -> Blueprint:
    """start -> one 'echo' task; ``success`` -> done, ``reviewed`` -> reviewed and, if mapped,
    ``failure`` -> gave_up (all end states)."""
    bp = Blueprint(name="table", api_version="v1", api_endpoint="/jobs/table")
    transitions = {"success": "done", "reviewed": "reviewed"}
    if failure_mapped:
        transitions["failure"] = "gave_up"

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task("echo", {}, transitions=transitions)

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    @bp.handler(is_end=True)
    async def reviewed() -> None:
        return None

    if failure_mapped:

        @bp.handler(is_end=True)
        async def gave_up() -> None:
            return None

    return bp


class Row(NamedTuple):
    status: str
    code: str | None
    failure_mapped: bool
    attempts: int
    """How many times the worker is sent the task."""
    outcome: tuple[str, str]
    """The job's final (status, current_state)."""


def failure_rows() -> list[Any]:
    rows = []
    for mapped in (False, True):
        suffix = "-failure-mapped" if mapped else ""
        for code in RETRIED_CODES:
            outcome = ("finished", "gave_up") if mapped else ("quarantined", "start")
            row = Row("failure", code, mapped, MAX_RETRIES + 1, outcome)
            rows.append(pytest.param(row, id=f"{code or 'no-error'}-retried{suffix}"))
        for code in QUARANTINE_CODES:
            outcome = ("finished", "gave_up") if mapped else ("quarantined", "start")
            rows.append(pytest.param(Row("failure", code, mapped, 1, outcome), id=f"{code}{suffix}"))
        for code in FAIL_CODES:
            outcome = ("finished", "gave_up") if mapped else ("failed", "start")
            rows.append(pytest.param(Row("failure", code, mapped, 1, outcome), id=f"{code}{suffix}"))
    return rows


ROWS = [
    pytest.param(Row("success", None, False, 1, ("finished", "done")), id="success"),
    pytest.param(Row("reviewed", None, False, 1, ("finished", "reviewed")), id="custom-status-mapped"),
    pytest.param(Row("needs_review", None, False, 1, ("failed", "start")), id="status-not-mapped"),
    *failure_rows(),
]


@pytest.mark.parametrize("row", ROWS)
async def test_failure_table_row(orchestrator: OrchestratorFactory, backend: Any, row: Row) -> None:
    bp = table_blueprint(row.failure_mapped)
    async with orchestrator(bp, JOB_MAX_RETRIES=MAX_RETRIES, storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/table")
        error = None if row.code is None else {"code": row.code, "message": f"{row.code} here"}
        task_ids = []
        for _ in range(row.attempts):
            task = await worker.poll_until_task()
            task_ids.append(task["task_id"])
            status, body = await worker.result(task, status=row.status, data={"seen": 1}, error=error)
            assert (status, body["status"]) == (200, "accepted")
        doc = await orch.wait_for(job_id)
        reputation = (await orch.engine.storage.get_worker("w1")).reputation  # type: ignore[union-attr]
    assert (doc["status"], doc["current_state"]) == row.outcome, doc["error_message"]
    assert len(set(task_ids)) == row.attempts, "every retry is a new task"
    assert doc["tasks"] == [], "nothing is left to retry"
    assert [r["status"] for r in doc["results"]] == [row.status] * row.attempts
    if row.status == "failure":
        code = row.code or "TRANSIENT_ERROR"
        assert "seen" not in doc["state_history"], "a failure's data is not merged"
        if row.failure_mapped:
            assert doc["error_message"] is None
            assert doc["state_history"]["last_error"]["code"] == code
        else:
            assert "last_error" not in doc["state_history"]
            assert code in doc["error_message"]
            if row.attempts > 1:
                assert doc["retry_count"] == MAX_RETRIES
                assert f"after {row.attempts} attempts" in doc["error_message"]
        penalised = code in QUARANTINE_CODES
        assert (reputation < 1.0) == penalised, reputation
    elif row.outcome[0] == "finished":
        assert doc["state_history"] == {"seen": 1}
    else:
        assert row.status in doc["error_message"]


async def test_retries_back_off_exponentially(orchestrator: OrchestratorFactory) -> None:
    """Each retry of a transient failure waits twice as long as the one before (lower bounds:
    a retry is never sent early; under load it may come later)."""
    base = 0.2
    async with orchestrator(
        table_blueprint(failure_mapped=False), JOB_MAX_RETRIES=3, TASK_RETRY_BASE_DELAY_SECONDS=base
    ) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/table")
        loop = asyncio.get_running_loop()
        gaps = []
        failed_at = None
        for _ in range(4):
            task = await worker.poll_until_task()
            if failed_at is not None:
                gaps.append(loop.time() - failed_at)
            failed_at = loop.time()
            await worker.result(task, status="failure", error={"code": "TRANSIENT_ERROR", "message": "x"})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "quarantined"
    for retry, gap in enumerate(gaps):
        assert gap >= base * 2**retry * 0.9, gaps
    assert gaps[2] > gaps[0], gaps
