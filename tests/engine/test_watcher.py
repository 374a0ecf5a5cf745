"""Deadlines: dispatch timeouts, execution timeouts and dead workers never strand a job."""

import asyncio
import logging
from typing import Any

import pytest

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


async def poll_while_alive(worker: WireWorker) -> dict[str, Any]:
    """Poll until a task comes, heartbeating meanwhile so the worker is not judged dead."""

    async def keep_alive() -> None:
        while True:
            await worker.heartbeat()
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(keep_alive())
    try:
        return await worker.poll_until_task()
    finally:
        beating.cancel()


async def test_task_not_picked_up_before_its_dispatch_deadline_fails_the_job(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(dispatch_timeout_seconds=0.3), storage=backend) as orch:
        await WireWorker(orch.session, orch.url, "idle").register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        doc = await orch.wait_for(job_id, timeout=5)
    assert doc["status"] == "failed"
    assert "dispatch deadline" in doc["error_message"]


async def test_no_worker_for_the_skill_fails_after_the_dispatch_timeout(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(echo_blueprint(dispatch_timeout_seconds=0.5)) as orch:
        job_id = await orch.create_job("/api/v1/jobs/echo")
        doc = await orch.wait_for(job_id, timeout=5)
    assert doc["status"] == "failed"
    assert "No worker took task 'echo'" in doc["error_message"]


async def test_a_job_waits_for_a_worker_that_registers_later(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        job_id = await orch.create_job("/api/v1/jobs/echo")
        await orch.wait_for(job_id, statuses=("waiting_for_worker",))
        worker = WireWorker(orch.session, orch.url, "late")
        await worker.register("echo")
        task = await worker.poll_until_task()
        await worker.result(task, data={"ok": True})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"


async def test_dead_worker_tasks_are_redispatched(orchestrator: OrchestratorFactory, backend: Any) -> None:
    async with orchestrator(
        echo_blueprint(), WORKER_HEALTH_CHECK_INTERVAL_SECONDS=0.5, storage=backend
    ) as orch:
        doomed = WireWorker(orch.session, orch.url, "doomed")
        await doomed.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        await doomed.poll_until_task()  # taken, then the worker goes silent
        survivor = WireWorker(orch.session, orch.url, "survivor")
        await survivor.register("echo")
        task = await poll_while_alive(survivor)
        await survivor.result(task, data={"rescued": True})
        doc = await orch.wait_for(job_id)
        async with orch.session.get(f"{orch.url}/api/v1/workers", headers=orch.headers) as r:
            workers = [w["worker_id"] for w in await r.json()]
    assert doc["status"] == "finished"
    assert doc["state_history"] == {"rescued": True}
    assert workers == ["survivor"]


async def test_queued_tasks_of_a_worker_signing_off_go_to_another_worker(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        leaving = WireWorker(orch.session, orch.url, "leaving")
        await leaving.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        await orch.wait_for(job_id, statuses=("waiting_for_worker",))
        staying = WireWorker(orch.session, orch.url, "staying")
        await staying.register("echo")
        status, _ = await leaving.heartbeat(status="offline")
        assert status == 200
        task = await staying.poll_until_task()
        await staying.result(task, data={"moved": True})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert doc["results"][0]["worker_id"] == "staying"


def give_up_blueprint(**dispatch: Any) -> Blueprint:
    """start -> one 'echo' task whose 'failure' transition goes to 'gave_up' (an end state)."""
    bp = Blueprint(name="give_up", api_version="v1", api_endpoint="/jobs/give_up")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task("echo", {}, transitions={"success": "done", "failure": "gave_up"}, **dispatch)

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    @bp.handler(is_end=True)
    async def gave_up() -> None:
        return None

    return bp


async def test_a_task_type_no_worker_serves_is_warned_about_once(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="avtomatika.engine.dispatcher")
    async with orchestrator(echo_blueprint(task_type="ehco")) as orch:
        first = await orch.create_job("/api/v1/jobs/echo")
        await orch.wait_for(first, statuses=("waiting_for_worker",))
        second = await orch.create_job("/api/v1/jobs/echo")
        await orch.wait_for(second, statuses=("waiting_for_worker",))
        await asyncio.sleep(0.6)  # the waiting tasks are placed again meanwhile
    warnings = [r.getMessage() for r in caplog.records if "No registered worker serves" in r.getMessage()]
    assert len(warnings) == 1
    assert "'ehco'" in warnings[0]


async def test_no_worker_for_the_skill_takes_the_failure_transition(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(give_up_blueprint(dispatch_timeout_seconds=0.5)) as orch:
        job_id = await orch.create_job("/api/v1/jobs/give_up")
        doc = await orch.wait_for(job_id, timeout=5)
    assert (doc["status"], doc["current_state"]) == ("finished", "gave_up")
    assert doc["state_history"]["last_error"]["code"] == "TIMEOUT_ERROR"
    assert "No worker took task 'echo'" in doc["state_history"]["last_error"]["message"]


async def test_a_task_not_picked_up_takes_the_failure_transition(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(give_up_blueprint(dispatch_timeout_seconds=0.3), storage=backend) as orch:
        await WireWorker(orch.session, orch.url, "idle").register("echo")
        job_id = await orch.create_job("/api/v1/jobs/give_up")
        doc = await orch.wait_for(job_id, timeout=5)
    assert (doc["status"], doc["current_state"]) == ("finished", "gave_up")
    assert "dispatch deadline" in doc["state_history"]["last_error"]["message"]


async def test_a_result_timeout_stops_the_worker_and_retries_then_quarantines(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    """A task picked up but not answered before the job's ``result_timeout`` fails like a
    transient error: its worker is told to stop, it is retried, and once the retries are spent
    the job is quarantined."""
    async with orchestrator(echo_blueprint(), JOB_MAX_RETRIES=1, storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo", result_timeout=0.4)
        first = await worker.poll_until_task()
        second = await worker.poll_until_task()  # the retry, once the first has timed out
        _, beat = await worker.heartbeat(current_tasks=[first["task_id"]])
        _, late = await worker.result(first, data={"late": True})
        doc = await orch.wait_for(job_id, timeout=10)
    assert second["task_id"] != first["task_id"]
    assert beat["cancel_task_ids"] == [first["task_id"]]
    assert (late["status"], late["reason"]) == ("ignored", "stale_task")
    assert doc["status"] == "quarantined"
    assert "TIMEOUT_ERROR" in doc["error_message"]
    assert "after 2 attempts" in doc["error_message"]
    assert "late" not in doc["state_history"]


async def test_a_result_timeout_takes_the_failure_transition_once_retries_are_spent(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(give_up_blueprint(result_timeout_seconds=0.3), JOB_MAX_RETRIES=0) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/give_up")
        await worker.poll_until_task()
        doc = await orch.wait_for(job_id, timeout=10)
    assert (doc["status"], doc["current_state"]) == ("finished", "gave_up")
    assert doc["state_history"]["last_error"]["code"] == "TIMEOUT_ERROR"


async def test_a_dead_workers_queued_task_goes_to_another_worker(
    orchestrator: OrchestratorFactory, backend: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A task still queued (never polled) on a worker that stops heartbeating is placed on
    another worker; stealing is off so that only the dead-worker path can move it."""
    caplog.set_level(logging.WARNING, logger="avtomatika.engine.watcher")
    async with orchestrator(
        echo_blueprint(),
        WORKER_HEALTH_CHECK_INTERVAL_SECONDS=0.5,
        WORK_STEALING_ENABLED=False,
        storage=backend,
    ) as orch:
        doomed = WireWorker(orch.session, orch.url, "doomed")
        await doomed.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while [t["worker_id"] for t in (await orch.job(job_id))["tasks"]] != ["doomed"]:
            assert loop.time() < deadline, "the task was never queued on the doomed worker"
            await asyncio.sleep(0.02)
        survivor = WireWorker(orch.session, orch.url, "survivor")
        await survivor.register("echo")
        task = await poll_while_alive(survivor)
        await survivor.result(task, data={"moved": True})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert [(r["worker_id"], r["status"]) for r in doc["results"]] == [("survivor", "success")]
    assert doc["retry_count"] == 0, "moving a task that never ran is not a retry"
    assert any("doomed missed its heartbeats" in r.getMessage() for r in caplog.records)
