"""Job operations: cancellation, human approval, child blueprints, isolation between clients."""

from typing import Any

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import approval_blueprint, echo_blueprint
from tests.wire import WireWorker


async def test_cancel_reaches_the_worker_and_refuses_its_late_result(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "cancellation_request_accepted"
        # The cancelled task is named; an id the orchestrator never gave out is not.
        status, beat = await worker.heartbeat(current_tasks=[task["task_id"], "no-such-task"])
        assert status == 200
        assert beat["cancel_task_ids"] == [task["task_id"]]
        _, late = await worker.result(task, data={"too": "late"})
        assert (late["status"], late["reason"]) == ("ignored", "job_cancelled")
        doc = await orch.job(job_id)
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 409
    assert doc["status"] == "cancelled"
    assert doc["state_history"] == {}


async def test_cancel_withdraws_a_task_still_queued(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        await orch.wait_for(job_id, statuses=("waiting_for_worker",))
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 200
        assert await worker.poll() is None


async def test_human_approval(orchestrator: OrchestratorFactory, backend: Any) -> None:
    async with orchestrator(approval_blueprint(), storage=backend) as orch:
        job_id = await orch.create_job("/api/v1/jobs/review")
        await orch.wait_for(job_id, statuses=("waiting_for_human",))
        url = f"{orch.url}/_public/webhooks/approval/{job_id}"
        async with orch.session.post(url, json={"decision": "maybe"}, headers=orch.headers) as r:
            assert r.status == 400
        async with orch.session.post(url, json={"decision": "approved"}) as r:
            assert r.status == 401
        async with orch.session.post(url, json={"decision": "approved"}, headers=orch.headers) as r:
            assert r.status == 200
            assert await r.json() == {"status": "approval_received", "job_id": job_id}
        doc = await orch.wait_for(job_id)
        async with orch.session.post(url, json={"decision": "approved"}, headers=orch.headers) as r:
            assert r.status == 409
    assert (doc["status"], doc["current_state"]) == ("finished", "shipped")


def parent_and_child() -> tuple[Blueprint, Blueprint]:
    child = Blueprint(name="child")

    @child.handler(is_start=True)
    async def work(
        initial_data: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        if initial_data.get("explode"):
            raise RuntimeError("child failed")
        state_history["doubled"] = initial_data["n"] * 2
        actions.go_to("child_done")

    @child.handler(is_end=True)
    async def child_done() -> None:
        return None

    parent = Blueprint(name="parent", api_version="v1", api_endpoint="/jobs/parent")

    @parent.handler(is_start=True)
    async def spawn(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.run_blueprint("child", initial_data, transitions={"success": "ok", "failure": "not_ok"})

    @parent.handler(is_end=True)
    async def ok() -> None:
        return None

    @parent.handler(is_end=True)
    async def not_ok() -> None:
        return None

    return parent, child


async def test_child_blueprint_outcome_resumes_the_parent(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    parent, child = parent_and_child()
    async with orchestrator(parent, child, JOB_MAX_RETRIES=0, storage=backend) as orch:
        good = await orch.create_job("/api/v1/jobs/parent", {"n": 21})
        bad = await orch.create_job("/api/v1/jobs/parent", {"n": 1, "explode": True})
        good_doc, bad_doc = await orch.wait_for(good), await orch.wait_for(bad)
    assert good_doc["current_state"] == "ok"
    child_result = next(v for k, v in good_doc["state_history"].items() if k.startswith("sub_job_"))
    assert child_result["outcome"] == "success"
    assert child_result["state_history"] == {"doubled": 42}
    assert bad_doc["current_state"] == "not_ok"


async def test_clients_see_only_their_own_jobs(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(approval_blueprint()) as orch:
        from avtomatika.access.identity import Client

        orch.engine.services.clients.add("other-token", Client(id="other", plan="free", params={}))
        job_id = await orch.create_job("/api/v1/jobs/review")
        other = {"X-Client-Token": "other-token"}
        async with orch.session.get(f"{orch.url}/api/v1/jobs/{job_id}", headers=other) as r:
            assert r.status == 404
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=other) as r:
            assert r.status == 404
        async with orch.session.get(f"{orch.url}/api/v1/jobs", headers=other) as r:
            assert await r.json() == []
        async with orch.session.get(f"{orch.url}/api/v1/jobs?limit=10", headers=orch.headers) as r:
            assert [j["id"] for j in await r.json()] == [job_id]


async def test_a_failing_child_fails_a_parent_that_maps_no_failure(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    """Like a result status not in ``transitions``: a child outcome the parent does not map
    fails the parent, which records the child's result and names the outcome."""
    _, child = parent_and_child()
    parent = Blueprint(name="trusting", api_version="v1", api_endpoint="/jobs/trusting")

    @parent.handler(is_start=True)
    async def spawn(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.run_blueprint("child", initial_data, transitions={"success": "ok"})

    @parent.handler(is_end=True)
    async def ok() -> None:
        return None

    async with orchestrator(parent, child, JOB_MAX_RETRIES=0, storage=backend) as orch:
        job_id = await orch.create_job("/api/v1/jobs/trusting", {"n": 1, "explode": True})
        doc = await orch.wait_for(job_id)
        [(key, child_result)] = [(k, v) for k, v in doc["state_history"].items() if k.startswith("sub_job_")]
        child_doc = await orch.job(key.removeprefix("sub_job_").removesuffix("_result"))
    assert (doc["status"], doc["current_state"]) == ("failed", "spawn")
    assert "outcome 'failure'" in doc["error_message"]
    assert (child_result["outcome"], child_result["status"]) == ("failure", "quarantined")
    assert "child failed" in child_result["error_message"]
    assert child_doc["status"] == "quarantined"
