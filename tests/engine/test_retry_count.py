"""The job document's ``retry_count``: every retry made in the current state, handler re-runs and
task retries alike; entering a new state starts it again at 0 (as the published release does)."""

from typing import Any

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import Orchestrator, OrchestratorFactory
from tests.sample_blueprints import echo_blueprint, fan_out_blueprint
from tests.wire import WireWorker

TRANSIENT = {"code": "TRANSIENT_ERROR", "message": "busy"}


def raises_once_then_dispatches() -> Blueprint:
    bp = Blueprint(name="shaky", api_version="v1", api_endpoint="/jobs/shaky")
    calls = {"n": 0}

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first run fails")
        actions.dispatch_task("echo", {}, transitions={"success": "done"})

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


async def fail_once(worker: WireWorker) -> None:
    await worker.result(await worker.poll_until_task(), status="failure", error=TRANSIENT)


async def retry_count_when_waiting(orch: Orchestrator, job_id: str, status: str) -> int:
    doc = await orch.wait_for(job_id, statuses=(status,))
    assert doc["status"] == status
    return int(doc["retry_count"])


async def test_each_worker_failure_retried_counts_once(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend, JOB_MAX_RETRIES=2) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        await fail_once(worker)
        await fail_once(worker)
        assert await retry_count_when_waiting(orch, job_id, "waiting_for_worker") == 2
        await fail_once(worker)  # the budget is spent: quarantined after 2 retries
        doc = await orch.wait_for(job_id)
    assert (doc["status"], doc["retry_count"]) == ("quarantined", 2)


async def test_handler_and_task_retries_add_up_and_a_new_state_resets(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(raises_once_then_dispatches(), JOB_MAX_RETRIES=3) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/shaky")
        await fail_once(worker)
        assert await retry_count_when_waiting(orch, job_id, "waiting_for_worker") == 2
        await worker.result(await worker.poll_until_task(), data={"ok": True})
        doc = await orch.wait_for(job_id)
    assert (doc["status"], doc["retry_count"]) == ("finished", 0)


async def test_retries_of_every_branch_count(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(fan_out_blueprint(), JOB_MAX_RETRIES=3) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("square")
        job_id = await orch.create_job("/api/v1/jobs/fan", {"numbers": [1, 2, 3]})
        first, second = await worker.poll_until_task(), await worker.poll_until_task()
        await worker.result(first, status="failure", error=TRANSIENT)
        await worker.result(second, status="failure", error=TRANSIENT)
        assert await retry_count_when_waiting(orch, job_id, "waiting_for_parallel_tasks") == 2
