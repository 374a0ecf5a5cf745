"""The published SDK keeps all its slots through thousands of tasks (no cancel of finished tasks)."""

import asyncio
from typing import Any

import pytest

from avtomatika.engine import fleet
from avtomatika.engine.services import Services
from avtomatika.protocol.models import Heartbeat, HeartbeatResponse
from tests.conftest import OrchestratorFactory
from tests.integration.sdk import sdk_worker
from tests.sample_blueprints import echo_blueprint

JOBS = 2000
CONCURRENCY = 8


async def test_sdk_slots_never_leak(
    orchestrator: OrchestratorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats race results all the time here (0.2 s interval plus the SDK's load-change beats);
    the SDK's own heartbeats show its in-flight count filling all slots and draining to zero."""
    in_flight: list[int] = []
    cancels: list[str] = []
    real = fleet.heartbeat

    async def recording(services: Services, worker_id: str, hb: Heartbeat | None) -> HeartbeatResponse:
        response = await real(services, worker_id, hb)
        if hb is not None and hb.status != "offline":
            in_flight.append(len(hb.current_tasks or []))
        cancels.extend(response.cancel_task_ids or [])
        return response

    monkeypatch.setattr(fleet, "heartbeat", recording)
    async with (
        orchestrator(echo_blueprint("nap", task_type="sleep"), WORKER_POLL_TIMEOUT_SECONDS=2) as orch,
        sdk_worker(orch.url, "sdk-slots", concurrency=CONCURRENCY, HEARTBEAT_INTERVAL="0.2"),
    ):
        # Created in a burst, so a backlog keeps every slot of the worker busy.
        gate = asyncio.Semaphore(64)

        async def create(i: int) -> str:
            async with gate:
                return await orch.create_job("/api/v1/jobs/nap", {"seconds": 0.05, "i": i})

        job_ids = await asyncio.gather(*(create(i) for i in range(JOBS)))
        docs: list[dict[str, Any]] = []
        for job_id in job_ids:
            docs.append(await orch.wait_for(job_id, timeout=120))
        seen = len(in_flight)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if len(in_flight) > seen + 2 and in_flight[-1] == 0:
                break
    assert [d["status"] for d in docs] == ["finished"] * JOBS
    assert cancels == []
    assert max(in_flight) == CONCURRENCY, "the SDK never used all its slots"
    assert in_flight[-1] == 0, f"slots still held after every job finished: {in_flight[-5:]}"
