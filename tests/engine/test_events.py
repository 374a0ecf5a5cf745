"""Job events: progress updates and event-driven transitions, only from the task's owner; worker and
blueprint events announced to the callbacks and the job's webhook."""

from typing import Any

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory
from tests.webhook_receiver import Receiver
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


async def test_worker_events_reach_the_callbacks_and_the_jobs_webhook(
    orchestrator: OrchestratorFactory,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def on_event(worker_id: str, event: dict[str, Any]) -> None:
        seen.append((worker_id, event))

    async with Receiver() as hook, orchestrator(preview_blueprint()) as orch:
        orch.engine.on_worker_event.append(on_event)
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("render")
        job_id = await orch.create_job("/api/v1/jobs/render", webhook_url=hook.url)
        task = await worker.poll_until_task()
        await worker.event(task, "progress", {"progress": 0.5})
        [delivered] = await hook.events(1, "worker_event:")
    assert delivered["event"] == "worker_event:progress"
    assert (delivered["job_id"], delivered["result"]) == (job_id, {"progress": 0.5})
    [(source, event)] = seen
    assert (source, event["event_type"], event["job_id"]) == ("w1", "progress", job_id)


def announcing_blueprint(fail_first: bool) -> Blueprint:
    bp = Blueprint(name="announce", api_version="v1", api_endpoint="/jobs/announce")
    attempts = {"n": 0}

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        attempts["n"] += 1
        actions.send_event("progress", {"progress": 0.25, "message": "a quarter"})
        actions.send_event("thumbnail_ready", {"attempt": attempts["n"]}, metadata={"kind": "png"})
        if fail_first and attempts["n"] == 1:
            raise RuntimeError("flaky, once")
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


async def test_a_handlers_events_are_announced_once_its_step_is_committed(
    orchestrator: OrchestratorFactory,
) -> None:
    """``send_event`` from a handler: progress lands on the job in the step's own commit, and
    every event is announced like a worker's, except those of an attempt that failed."""
    seen: list[tuple[str, dict[str, Any]]] = []

    async def on_event(source: str, event: dict[str, Any]) -> None:
        seen.append((source, event))

    async with Receiver() as hook, orchestrator(announcing_blueprint(fail_first=True)) as orch:
        orch.engine.on_worker_event.append(on_event)
        job_id = await orch.create_job("/api/v1/jobs/announce", webhook_url=hook.url)
        doc = await orch.wait_for(job_id)
        delivered = await hook.events(2, "worker_event:")
    assert (doc["status"], doc["progress"], doc["progress_message"]) == ("finished", 0.25, "a quarter")
    assert [d["event"] for d in delivered] == ["worker_event:progress", "worker_event:thumbnail_ready"]
    assert delivered[1]["result"] == {"attempt": 2}, "the failed attempt's events are not announced"
    assert delivered[1]["metadata"] == {"kind": "png"}
    assert [(source, event["event_type"]) for source, event in seen] == [
        ("blueprint:announce", "progress"),
        ("blueprint:announce", "thumbnail_ready"),
    ]
