"""The published worker SDK (avtomatika-worker 1.0b13), unmodified, against our orchestrator."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Orchestrator, OrchestratorFactory
from tests.integration.sdk import sdk_worker
from tests.sample_blueprints import echo_blueprint, fan_out_blueprint


async def test_sdk_worker_completes_a_dispatch_task_job(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch, sdk_worker(orch.url, "sdk-echo"):
        job_id = await orch.create_job("/api/v1/jobs/echo", {"video": "a.mp4"})
        doc = await orch.wait_for(job_id, timeout=30)
    assert doc["status"] == "finished"
    assert doc["current_state"] == "done"
    assert doc["state_history"]["echo"] == {"video": "a.mp4"}
    assert doc["results"][0]["worker_id"] == "sdk-echo"


async def test_sdk_workers_complete_a_dispatch_parallel_job(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with (
        orchestrator(fan_out_blueprint(), storage=backend) as orch,
        sdk_worker(orch.url, "sdk-a"),
        sdk_worker(orch.url, "sdk-b"),
    ):
        job_id = await orch.create_job("/api/v1/jobs/fan", {"numbers": [1, 2, 3, 4, 5]})
        doc = await orch.wait_for(job_id, timeout=30)
    assert doc["status"] == "finished"
    assert doc["state_history"]["total"] == 1 + 4 + 9 + 16 + 25
    assert doc["state_history"]["branches"] == 5
    assert doc["state_history"]["runs"] == 1


async def test_sdk_transient_failure_is_retried(orchestrator: OrchestratorFactory) -> None:
    async with (
        orchestrator(echo_blueprint("flaky", task_type="flaky")) as orch,
        sdk_worker(orch.url, "sdk-flaky"),
    ):
        job_id = await orch.create_job("/api/v1/jobs/flaky")
        doc = await orch.wait_for(job_id, timeout=30)
    assert doc["status"] == "finished"
    assert [r["status"] for r in doc["results"]] == ["failure", "success"]
    assert doc["results"][0]["error"]["code"] == "TRANSIENT_ERROR"


@pytest.mark.parametrize("websocket", ["false", "true"])
async def test_cancel_reaches_the_sdk_worker(
    orchestrator: OrchestratorFactory, tmp_path: Path, websocket: str
) -> None:
    """Through the heartbeat reply (cancel_task_ids), or the WebSocket command when connected."""
    heartbeat = "30" if websocket == "true" else "1"
    async with (
        orchestrator(echo_blueprint("slow", task_type="sleep")) as orch,
        sdk_worker(
            orch.url,
            "sdk-slow",
            CANCEL_MARKER_DIR=str(tmp_path),
            WORKER_ENABLE_WEBSOCKETS=websocket,
            HEARTBEAT_INTERVAL=heartbeat,
        ),
    ):
        job_id = await orch.create_job("/api/v1/jobs/slow", {"seconds": 60})
        task_id = await _running_task(orch, job_id)
        await _eventually(lambda: (tmp_path / f"{task_id}.started").exists(), "the SDK handler to start")
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 200
        await _eventually(lambda: (tmp_path / task_id).exists(), "the SDK handler to be cancelled")
        doc = await orch.job(job_id)
    assert doc["status"] == "cancelled"
    assert doc["tasks"] == []


async def _running_task(orch: Orchestrator, job_id: str) -> str:
    async def picked_up() -> str | None:
        doc = await orch.job(job_id)
        if not doc["tasks"]:
            return None
        task_id = str(doc["tasks"][0]["task_id"])
        record = (await orch.engine.storage.get_tasks([task_id]))[0]
        return task_id if record is not None and record.state == "running" else None

    for _ in range(300):
        task_id = await picked_up()
        if task_id:
            return task_id
        await asyncio.sleep(0.05)
    raise AssertionError("task never picked up")


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
