"""Worker events: progress updates and event-driven transitions, only from the task's owner."""

from typing import Any

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory
from tests.wire import WireWorker


def preview_blueprint() -> Blueprint:
    bp = Blueprint(name="render", api_version="v1", api_endpoint="/jobs/render")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task(
            "render",
            {},
            transitions={"success": "done"},
            event_transitions={"preview_ready": "preview"},
        )

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    @bp.handler(is_end=True)
    async def preview(state_history: dict[str, Any]) -> None:
        state_history["seen_preview"] = True

    return bp


async def test_progress_events_update_the_job(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(preview_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("render")
        job_id = await orch.create_job("/api/v1/jobs/render")
        task = await worker.poll_until_task()
        status, body = await worker.event(task, "progress", {"progress": 0.4, "message": "40%"})
        assert (status, body) == (200, {"status": "event_accepted"})
        doc = await orch.job(job_id)
        stranger = WireWorker(orch.session, orch.url, "w2")
        await stranger.event(task, "progress", {"progress": 0.9})
        after = await orch.job(job_id)
    assert (doc["progress"], doc["progress_message"]) == (0.4, "40%")
    assert after["progress"] == 0.4


async def test_mapped_event_moves_the_job_and_supersedes_the_task(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(preview_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("render")
        job_id = await orch.create_job("/api/v1/jobs/render")
        task = await worker.poll_until_task()
        await worker.event(task, "preview_ready", {"preview_url": "https://x/p.png"})
        doc = await orch.wait_for(job_id)
        _, late = await worker.result(task, data={"final": True})
    assert (doc["status"], doc["current_state"]) == ("finished", "preview")
    assert doc["state_history"] == {"preview_url": "https://x/p.png", "seen_preview": True}
    assert late["status"] == "ignored"


async def test_malformed_event_is_rejected(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(preview_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        body = worker.sign(
            {"worker_id": "w1", "event_type": "progress"}, exclude=("security", "bubbling_chain")
        )
        async with orch.session.post(f"{orch.url}/_worker/events", json=body, headers=worker.headers) as r:
            assert r.status == 400
            assert "event_id" in (await r.json())["message"]
