"""Registration, heartbeats, polling and commands, exercised through ``Worker``."""

import asyncio
import socket

import pytest

from avtomatika.protocol.models import InstalledArtifact, Resources

from .conftest import MakeWorker
from .fake_orchestrator import FakeOrchestrator, eventually


async def test_start_registers_with_the_advertised_contract(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker(
        worker_type="gpu",
        max_concurrent_tasks=3,
        websocket=True,
        resources=Resources(cpu_cores=8, ram_gb=32.0),
        installed_software={"ffmpeg": "6.1"},
        installed_artifacts=[InstalledArtifact(name="whisper", version="3")],
        cost_per_skill={"resize": 0.02},
        extra={"region": "eu"},
    )

    @worker.skill(
        "resize", input_schema={"type": "object"}, output_statuses=["needs_review"], description="d"
    )
    async def resize() -> None: ...

    await worker.start()
    [registration] = fake_orchestrator.registrations
    assert registration["worker_id"] == "w-1"
    assert registration["worker_type"] == "gpu"
    [skill] = registration["supported_skills"]
    assert (skill["name"], skill["input_schema"], skill["output_statuses"]) == (
        "resize",
        {"type": "object"},
        ["needs_review"],
    )
    assert registration["resources"]["max_concurrent_tasks"] == 3
    assert registration["resources"]["cpu_cores"] == 8
    assert registration["installed_software"] == {"ffmpeg": "6.1"}
    assert registration["installed_artifacts"][0]["name"] == "whisper"
    capabilities = registration["capabilities"]
    assert capabilities["hostname"] == socket.gethostname()
    assert capabilities["cost_per_skill"] == {"resize": 0.02}
    assert capabilities["extra"] == {"region": "eu", "websockets": True}
    assert registration["skills_hash"]
    # Announced idle right away, without repeating the unchanged skill list.
    first = fake_orchestrator.heartbeats[0]
    assert (first["status"], first["current_tasks"], first["supported_skills"]) == ("idle", [], None)
    assert first["skills_hash"] == registration["skills_hash"]
    assert fake_orchestrator.rejections == []


async def test_no_poll_is_outstanding_at_capacity_and_polling_resumes_when_a_slot_frees(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    release = asyncio.Event()
    worker = make_worker(max_concurrent_tasks=1)

    @worker.skill("hold")
    async def hold() -> None:
        await release.wait()

    async with worker:
        first = fake_orchestrator.queue_task("hold")
        await eventually(lambda: fake_orchestrator.tasks.empty() and fake_orchestrator.polls_in_flight == 0)
        polls = fake_orchestrator.poll_count
        await asyncio.sleep(0.3)
        assert fake_orchestrator.poll_count == polls
        await eventually(lambda: fake_orchestrator.heartbeats[-1]["status"] == "busy")
        assert fake_orchestrator.heartbeats[-1]["current_tasks"] == [first]
        release.set()
        await eventually(lambda: fake_orchestrator.result_for(first))
        await eventually(lambda: fake_orchestrator.polls_in_flight == 1)
        await eventually(lambda: fake_orchestrator.heartbeats[-1]["status"] == "idle")
    assert fake_orchestrator.max_polls_in_flight == 1


async def test_tasks_run_concurrently_up_to_the_limit(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    running = 0
    peak = 0

    worker = make_worker(max_concurrent_tasks=3)

    @worker.skill("work")
    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1

    async with worker:
        ids = [fake_orchestrator.queue_task("work") for _ in range(6)]
        await eventually(lambda: all(fake_orchestrator.result_for(i) for i in ids))
    assert peak == 3


async def test_a_heartbeat_404_makes_the_worker_register_again(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    async with make_worker():
        fake_orchestrator.known_workers.clear()  # as after an fake_orchestrator restart
        await eventually(lambda: len(fake_orchestrator.registrations) == 2)
        await eventually(
            lambda: fake_orchestrator.heartbeats[-1]["worker_id"] in fake_orchestrator.known_workers
        )


async def test_cancel_task_ids_in_a_heartbeat_reply_cancel_the_running_task(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    seen: list[str] = []
    worker = make_worker()

    @worker.skill("long")
    async def long() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async with worker:
        task_id = fake_orchestrator.queue_task("long")
        await eventually(lambda: task_id in fake_orchestrator.heartbeats[-1]["current_tasks"])
        fake_orchestrator.cancel_on_next_heartbeat = [task_id]
        await eventually(lambda: fake_orchestrator.result_for(task_id))
    assert seen == ["cancelled"]
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_a_websocket_cancel_command_cancels_the_running_task(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker(websocket=True, heartbeat_interval=30.0)

    @worker.skill("long")
    async def long() -> None:
        await asyncio.sleep(30)

    async with worker:
        task_id = fake_orchestrator.queue_task("long")
        await eventually(lambda: fake_orchestrator.sockets and fake_orchestrator.tasks.empty())
        await asyncio.sleep(0.05)
        await fake_orchestrator.send_command(
            {"command": "cancel_task", "task_id": task_id, "job_id": task_id}
        )
        await eventually(lambda: fake_orchestrator.result_for(task_id), within=2)
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_a_full_sync_request_resends_the_skill_list(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("a")
    async def a() -> None: ...

    async with worker:
        fake_orchestrator.require_full_sync_once = True
        await eventually(lambda: fake_orchestrator.heartbeats[-1]["supported_skills"] is not None)
        assert [s["name"] for s in fake_orchestrator.heartbeats[-1]["supported_skills"]] == ["a"]
        await eventually(lambda: fake_orchestrator.heartbeats[-1]["supported_skills"] is None)


async def test_a_skill_added_while_running_is_announced(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()
    async with worker:

        @worker.skill("late")
        async def late() -> None: ...

        await eventually(lambda: fake_orchestrator.heartbeats[-1]["supported_skills"] is not None)
        assert fake_orchestrator.heartbeats[-1]["supported_skills"][0]["name"] == "late"


async def test_registration_is_retried_while_the_orchestrator_fails(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("avtomatika.worker.runtime.Backoff", lambda initial, maximum: _FastBackoff())
    fake_orchestrator.register_status = 503
    worker = make_worker()
    starting = asyncio.create_task(worker.start())
    await asyncio.sleep(0.1)
    assert not starting.done()
    fake_orchestrator.register_status = None
    await asyncio.wait_for(starting, 2)
    assert len(fake_orchestrator.registrations) == 1


class _FastBackoff:
    def next_delay(self) -> float:
        return 0.01

    def reset(self) -> None: ...
