"""Our worker against the real orchestrator (memory storage, loopback, free port)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from avtomatika.worker import TransientError, Worker
from tests.conftest import WORKER_TOKEN, Orchestrator, OrchestratorFactory

from .fake_orchestrator import eventually


def single_task_blueprint(task_type: str) -> Blueprint:
    """start -> one ``task_type`` task -> finished."""
    bp = Blueprint(name=task_type, api_version="v1", api_endpoint=f"/jobs/{task_type}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(task_type=task_type, params=initial_data, transitions={"success": "finished"})

    @bp.handler(is_end=True)
    async def finished() -> None:
        return None

    return bp


def parallel_blueprint() -> Blueprint:
    """start -> three ``square`` branches -> aggregator sums them -> finished."""
    bp = Blueprint(name="squares", api_version="v1", api_endpoint="/jobs/squares")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        tasks = [{"type": "square", "params": {"n": n}} for n in initial_data["numbers"]]
        actions.dispatch_parallel(tasks=tasks, aggregate_into="collect")

    @bp.aggregator
    async def collect(
        aggregation_results: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        state_history["branches"] = len(aggregation_results)
        state_history["total"] = sum(r["data"]["square"] for r in aggregation_results.values())
        actions.go_to("finished")

    @bp.handler(is_end=True)
    async def finished() -> None:
        return None

    return bp


def make_worker(orch: Orchestrator, worker_id: str, **options: Any) -> Worker:
    settings: dict[str, Any] = {
        "worker_id": worker_id,
        "heartbeat_interval": 0.2,
        "poll_timeout": 1.0,
        "shutdown_timeout": 5.0,
    } | options
    return Worker(orch.url, WORKER_TOKEN, **settings)


@asynccontextmanager
async def running(
    orchestrator: OrchestratorFactory, bp: Blueprint, register: Callable[[Worker], None], **options: Any
) -> AsyncIterator[tuple[Orchestrator, Worker]]:
    async with orchestrator(bp) as orch:
        worker = make_worker(orch, f"ours-{bp.name}", **options)
        register(worker)
        async with worker:
            yield orch, worker


async def test_a_dispatch_task_job_is_completed_by_our_worker(orchestrator: OrchestratorFactory) -> None:
    progress_seen: list[float] = []

    def register(worker: Worker) -> None:
        @worker.skill("resize", input_schema={"type": "object"})
        async def resize(params: dict[str, Any], progress: Any, deadline: float | None) -> dict[str, Any]:
            await progress(0.5, "half way")
            progress_seen.append(0.5)
            return {"width": params["width"] // 2}

    async with running(orchestrator, single_task_blueprint("resize"), register) as (orch, _):
        job_id = await orch.create_job("/api/v1/jobs/resize", {"width": 640})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert doc["current_state"] == "finished"
    assert doc["state_history"]["width"] == 320
    assert progress_seen == [0.5]


async def test_a_dispatch_parallel_job_is_completed_and_aggregated(orchestrator: OrchestratorFactory) -> None:
    def register(worker: Worker) -> None:
        @worker.skill("square")
        def square(params: dict[str, Any]) -> dict[str, Any]:
            return {"square": params["n"] ** 2}

    async with running(orchestrator, parallel_blueprint(), register, max_concurrent_tasks=2) as (orch, _):
        job_id = await orch.create_job("/api/v1/jobs/squares", {"numbers": [1, 2, 3]})
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert doc["state_history"]["branches"] == 3
    assert doc["state_history"]["total"] == 1 + 4 + 9


async def test_a_transient_error_is_retried_then_succeeds(orchestrator: OrchestratorFactory) -> None:
    attempts: list[str] = []

    def register(worker: Worker) -> None:
        @worker.skill("flaky")
        async def flaky(task_id: str) -> dict[str, Any]:
            attempts.append(task_id)
            if len(attempts) == 1:
                raise TransientError("GPU busy, try again")
            return {"attempts": len(attempts)}

    async with running(orchestrator, single_task_blueprint("flaky"), register) as (orch, _):
        job_id = await orch.create_job("/api/v1/jobs/flaky")
        doc = await orch.wait_for(job_id)
    assert doc["status"] == "finished"
    assert doc["state_history"]["attempts"] == 2
    assert len(attempts) == 2


@pytest.mark.parametrize(
    "channel",
    [
        # Only the heartbeat reply's cancel_task_ids can deliver it: no socket.
        {"websocket": False},
        # Heartbeats too rare to matter within the test: only the WebSocket command can.
        {"websocket": True, "heartbeat_interval": 60.0},
    ],
    ids=["heartbeat", "websocket"],
)
async def test_cancelling_a_job_cancels_the_running_handler(
    orchestrator: OrchestratorFactory, channel: dict[str, Any], worker_log: list[str]
) -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    def register(worker: Worker) -> None:
        @worker.skill("slow")
        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

    async with running(orchestrator, single_task_blueprint("slow"), register, **channel) as (orch, _):
        job_id = await orch.create_job("/api/v1/jobs/slow")
        await asyncio.wait_for(started.wait(), 10)
        if channel["websocket"]:
            await eventually(lambda: "command channel connected" in worker_log, within=5)
        async with orch.session.post(
            f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers
        ) as reply:
            assert reply.status == 200
        await eventually(lambda: outcome, within=5)
        doc = await orch.job(job_id)
    assert outcome == ["cancelled"]
    assert doc["status"] == "cancelled"


async def test_graceful_shutdown_finishes_in_flight_work(orchestrator: OrchestratorFactory) -> None:
    started = asyncio.Event()

    async with orchestrator(single_task_blueprint("render")) as orch:
        worker = make_worker(orch, "ours-render")

        @worker.skill("render")
        async def render() -> dict[str, Any]:
            started.set()
            await asyncio.sleep(0.5)
            return {"frames": 24}

        await worker.start()
        job_id = await orch.create_job("/api/v1/jobs/render")
        await asyncio.wait_for(started.wait(), 10)
        await worker.stop()
        doc = await orch.wait_for(job_id, timeout=5)
    assert doc["status"] == "finished"
    assert doc["state_history"]["frames"] == 24
