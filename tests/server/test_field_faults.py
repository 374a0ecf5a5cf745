"""Field faults the published SDK met: no leaked slots, no results lost to an outage."""

import asyncio
import time
from typing import Any

from avtomatika.storage.redis.backend import RedisStorage
from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.storage.conftest import started_redis, wait_for_server
from tests.wire import WireWorker


async def test_a_heartbeat_racing_a_result_cancels_nothing(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    """A finished task (its record dropped) and an unknown id are never named in cancel_task_ids."""
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()
        status, accepted = await worker.result(task, data={"ok": True})
        assert (status, accepted["status"]) == (200, "accepted")
        status, beat = await worker.heartbeat(current_tasks=[task["task_id"], "no-such-task"], status="busy")
        assert status == 200
        assert beat.get("cancel_task_ids") in (None, [])
        assert (await orch.wait_for(job_id))["status"] == "finished"


async def test_an_authentic_result_resent_after_the_replay_window_is_applied(
    orchestrator: OrchestratorFactory,
) -> None:
    """A result signed 75 s ago (a worker retrying through an outage) is applied, once."""
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()
        body = worker.sign(
            {
                "job_id": task["job_id"],
                "task_id": task["task_id"],
                "worker_id": "w1",
                "status": "success",
                "data": {"late": True},
            },
            timestamp=time.time() - 75,
        )
        url = f"{orch.url}/_worker/tasks/result"
        replies = []
        for _ in range(2):
            async with orch.session.post(url, json=body, headers=worker.headers) as r:
                assert r.status == 200, await r.text()
                replies.append((await r.json())["transition"])
        tampered = {**body, "data": {"late": False}}
        async with orch.session.post(url, json=tampered, headers=worker.headers) as r:
            assert r.status == 403
        doc = await orch.wait_for(job_id)
    assert replies == ["success_transition", "already_applied"]
    assert doc["status"] == "finished"
    assert doc["state_history"]["late"] is True


async def test_stale_heartbeats_and_registrations_stay_refused(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        old = time.time() - 75
        beat = worker.sign({"worker_id": "w1", "status": "idle", "current_tasks": []}, timestamp=old)
        async with orch.session.patch(
            f"{orch.url}/_worker/workers/w1", json=beat, headers=worker.headers
        ) as r:
            assert r.status == 403
            assert "expired" in (await r.json())["message"]
        reg = worker.sign({"worker_id": "w1", "supported_skills": [{"name": "echo"}]}, timestamp=old)
        async with orch.session.post(
            f"{orch.url}/_worker/workers/register", json=reg, headers=worker.headers
        ) as r:
            assert r.status == 403


# --- a storage outage as the HTTP API shows it ---------------------------------------------


async def test_a_storage_outage_is_a_503_with_retry_after_and_a_held_result_is_applied(
    orchestrator: OrchestratorFactory,
) -> None:
    """Client requests get 503 + Retry-After + a JSON error (never 500); a worker's result is
    held while Redis is down and applied once it is back, answered 200 as if nothing happened."""
    with started_redis() as (server, _):
        await wait_for_server(server.url)
        storage = RedisStorage.from_url(server.url, retry_seconds=0.3)
        async with orchestrator(echo_blueprint(), storage=storage) as orch:
            worker = WireWorker(orch.session, orch.url, "w1")
            await worker.register("echo")
            job_id = await orch.create_job("/api/v1/jobs/echo")
            task = await worker.poll_until_task()
            server.pause()
            async with orch.session.get(f"{orch.url}/api/v1/jobs/{job_id}", headers=orch.headers) as resp:
                assert resp.status == 503
                assert int(resp.headers["Retry-After"]) >= 1
                body = await resp.json()
            assert body["error"] == "storage_unavailable"
            assert "Redis" in body["message"]
            posting = asyncio.create_task(worker.result(task, data={"ok": True}))
            await asyncio.sleep(1.5)
            assert not posting.done(), "the result is held, not refused"
            server.resume()
            status, accepted = await asyncio.wait_for(posting, 10)
            assert (status, accepted["status"]) == (200, "accepted")
            assert (await orch.wait_for(job_id))["status"] == "finished"


# --- a worker that heartbeats but no longer polls -----------------------------------------

QUIET = {"WORKER_POLL_TIMEOUT_SECONDS": 0.3, "WORKER_POLL_GRACE_SECONDS": 0.5, "WORK_STEALING_ENABLED": False}


async def queued_on(storage: Any, worker_id: str, count: int) -> None:
    for _ in range(250):
        if (await storage.worker_loads([worker_id]))[0].queued == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} task(s) never queued on {worker_id}")


async def serve(worker: WireWorker, count: int) -> None:
    """Poll and answer ``count`` tasks."""
    for _ in range(count):
        task = await worker.poll_until_task(attempts=50)
        status, _ = await worker.result(task, data={"by": worker.worker_id})
        assert status == 200


async def test_queued_tasks_of_a_worker_that_stopped_polling_go_to_another(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend, **QUIET) as orch:
        wedged, healthy = (
            WireWorker(orch.session, orch.url, "wedged"),
            WireWorker(orch.session, orch.url, "ok"),
        )
        await wedged.register("echo")
        jobs = [await orch.create_job("/api/v1/jobs/echo") for _ in range(3)]
        await queued_on(backend, "wedged", 3)
        await healthy.register("echo")
        await wedged.heartbeat()  # alive, but its task channel is wedged
        await asyncio.wait_for(serve(healthy, 3), 15)
        for job_id in jobs:
            assert (await orch.wait_for(job_id))["status"] == "finished"
        # Nothing more is sent to it while it does not poll.
        later = await orch.create_job("/api/v1/jobs/echo")
        await asyncio.wait_for(serve(healthy, 1), 15)
        assert (await orch.wait_for(later))["status"] == "finished"
        assert [load.total for load in await backend.worker_loads(["wedged"])] == [0]


async def test_a_full_worker_that_does_not_poll_keeps_its_queue(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    """Not polling while every slot is taken is how a busy worker behaves: nothing moves."""
    async with orchestrator(echo_blueprint(), storage=backend, **QUIET) as orch:
        busy, other = WireWorker(orch.session, orch.url, "busy"), WireWorker(orch.session, orch.url, "other")
        await busy.register("echo", capacity=1)
        first = await orch.create_job("/api/v1/jobs/echo")
        running = await busy.poll_until_task()
        second = await orch.create_job("/api/v1/jobs/echo")
        await queued_on(backend, "busy", 1)
        await other.register("echo")
        await asyncio.sleep(2.5)  # several poll-silence limits
        loads = await backend.worker_loads(["busy"])
        assert [(load.queued, load.running) for load in loads] == [(1, 1)]
        assert await other.poll() is None
        assert (await busy.result(running, data={}))[0] == 200
        await asyncio.wait_for(serve(busy, 1), 15)
        for job_id in (first, second):
            assert (await orch.wait_for(job_id))["status"] == "finished"
