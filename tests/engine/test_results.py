"""Worker results are applied exactly once, only from the task's owner, only while current."""

import asyncio
from typing import Any

from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


async def test_duplicate_results_posted_concurrently_are_applied_once(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo", {"x": 1})
        task = await worker.poll_until_task()
        replies = await asyncio.gather(*(worker.result(task, data={"n": i}) for i in range(20)))
        doc = await orch.wait_for(job_id)
    assert all(status == 200 for status, _ in replies)
    transitions = [body.get("transition") for _, body in replies]
    assert transitions.count("success_transition") == 1
    assert transitions.count("already_applied") == 19
    assert doc["status"] == "finished"
    assert len(doc["results"]) == 1
    assert doc["transition_count"] == 2
    assert doc["path"] == ["start", "done"]


async def test_result_from_another_worker_is_refused(orchestrator: OrchestratorFactory, backend: Any) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        owner = WireWorker(orch.session, orch.url, "owner")
        thief = WireWorker(orch.session, orch.url, "thief")
        await owner.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await owner.poll_until_task()
        status, body = await thief.result(task, data={"forged": True})
        assert (status, body["status"], body["reason"]) == (200, "ignored", "worker_mismatch")
        assert (await orch.job(job_id))["status"] == "waiting_for_worker"
        await owner.result(task, data={"real": True})
        doc = await orch.wait_for(job_id)
    assert doc["state_history"] == {"real": True}


async def test_late_result_of_a_timed_out_task_is_refused(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(timeout_seconds=0.3), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        first = await worker.poll_until_task()
        # The first attempt overruns its 0.3 s execution timeout; the watcher re-dispatches it.
        second = await worker.poll_until_task()
        assert second["task_id"] != first["task_id"]
        _, late = await worker.result(first, data={"late": True})
        assert (late["status"], late["reason"]) == ("ignored", "stale_task")
        await worker.result(second, data={"fresh": True})
        doc = await orch.wait_for(job_id)
    assert doc["state_history"] == {"fresh": True}
    assert doc["results"][-1]["task_id"] == second["task_id"]


async def test_a_replayed_failure_does_not_touch_the_retry(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        first = await worker.poll_until_task()
        error = {"code": "TRANSIENT_ERROR", "message": "x"}
        _, body = await worker.result(first, status="failure", error=error)
        assert body["transition"] == "failure_handled"
        second = await worker.poll_until_task()
        assert second["task_id"] != first["task_id"]
        _, replay = await worker.result(first, status="failure", error=error)
        assert replay["transition"] == "already_applied"
        await worker.result(second, data={"fresh": True})
        doc = await orch.wait_for(job_id)
    assert [r["status"] for r in doc["results"]] == ["failure", "success"]


async def test_unknown_result_status_fails_the_job(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()
        _, body = await worker.result(task, status="needs_review")
        doc = await orch.wait_for(job_id)
    assert body["transition"] == "unhandled_status_failure"
    assert doc["status"] == "failed"
    assert "needs_review" in doc["error_message"]


async def test_result_for_unknown_job_is_ignored(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        _, body = await worker.result({"job_id": "nope", "task_id": "nope"})
    assert (body["status"], body["reason"]) == ("ignored", "job_not_found")


async def test_permanent_failures_cost_reputation_and_successes_earn_it_back(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(echo_blueprint(), REPUTATION_PENALTY_TASK_FAILURE=0.25) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()
        await worker.result(task, status="failure", error={"code": "PERMANENT_ERROR", "message": "x"})
        assert (await orch.engine.storage.get_worker("w1")).reputation == 0.75  # type: ignore[union-attr]
        await orch.create_job("/api/v1/jobs/echo")
        await worker.result(await worker.poll_until_task(), data={})
        assert (await orch.engine.storage.get_worker("w1")).reputation == 0.751  # type: ignore[union-attr]
