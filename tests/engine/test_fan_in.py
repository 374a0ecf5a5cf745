"""Fan-in is exact: the aggregator runs once, after every branch, with every branch's result."""

import asyncio
from typing import Any

from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import fan_out_blueprint
from tests.wire import WireWorker


async def test_200_way_fan_in_with_concurrent_results(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(fan_out_blueprint(), storage=backend) as orch:
        workers = [WireWorker(orch.session, orch.url, f"w{i}") for i in range(4)]
        for worker in workers:
            await worker.register("square", capacity=100)
        job_id = await orch.create_job("/api/v1/jobs/fan", {"numbers": list(range(200))})
        await orch.wait_for(job_id, statuses=("waiting_for_parallel_tasks",))
        tasks: list[tuple[WireWorker, dict]] = []  # type: ignore[type-arg]
        for worker in workers:
            while (task := await worker.poll()) is not None:
                tasks.append((worker, task))
                if len(tasks) == 200:
                    break
        assert len(tasks) == 200
        replies = await asyncio.gather(
            *(w.result(t, data={"value": t["params"]["n"] ** 2}) for w, t in tasks),
            *(w.result(t, data={"value": t["params"]["n"] ** 2}) for w, t in tasks[:50]),  # duplicates
        )
        doc = await orch.wait_for(job_id)
    assert all(status == 200 for status, _ in replies)
    assert doc["status"] == "finished"
    assert doc["state_history"]["runs"] == 1
    assert doc["path"] == ["start", "collect", "done"]
    assert doc["state_history"]["branches"] == 200
    assert doc["state_history"]["total"] == sum(n * n for n in range(200))


async def test_failed_branch_is_reported_to_the_aggregator(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(fan_out_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("square", capacity=10)
        job_id = await orch.create_job("/api/v1/jobs/fan", {"numbers": [2, 3]})
        first, second = await worker.poll_until_task(), await worker.poll_until_task()
        await worker.result(first, status="failure", error={"code": "PERMANENT_ERROR", "message": "bad gpu"})
        await worker.result(second, data={"value": second["params"]["n"] ** 2})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert doc["state_history"]["branches"] == 2
    assert doc["state_history"]["total"] == second["params"]["n"] ** 2
    statuses = sorted(r["status"] for r in doc["aggregation_results"].values())
    assert statuses == ["failure", "success"]


async def test_a_branch_missing_its_dispatch_deadline_is_reported_to_the_aggregator(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(fan_out_blueprint(), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("square", capacity=10)
        job_id = await orch.create_job("/api/v1/jobs/fan", {"numbers": [2, 3]}, dispatch_timeout=0.5)
        taken = await worker.poll_until_task()  # the other branch is never polled
        await worker.result(taken, data={"value": taken["params"]["n"] ** 2})
        doc = await orch.wait_for(job_id, timeout=10)
    assert (doc["status"], doc["path"]) == ("finished", ["start", "collect", "done"])
    assert doc["state_history"]["branches"] == 2
    assert doc["state_history"]["total"] == taken["params"]["n"] ** 2
    missed = [r for r in doc["aggregation_results"].values() if r["status"] == "failure"]
    assert len(missed) == 1
    assert missed[0]["error"]["code"] == "TIMEOUT_ERROR"
    assert "dispatch deadline" in missed[0]["error"]["message"]
