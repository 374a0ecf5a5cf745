import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from avtomatika.errors import ConfigError
from avtomatika.protocol.models import InstalledArtifact, Resources
from avtomatika.worker import OrchestratorError, SkillDefinitionError, TransientError, Worker

from .fake_orchestrator import TOKEN, FakeOrchestrator, eventually

MakeWorker = Callable[..., Worker]


@pytest.fixture
async def make_worker(orchestrator: FakeOrchestrator) -> AsyncIterator[MakeWorker]:
    workers: list[Worker] = []

    def make(**options: Any) -> Worker:
        settings: dict[str, Any] = {
            "worker_id": "w-1",
            "heartbeat_interval": 0.2,
            "poll_timeout": 1.0,
            "shutdown_timeout": 2.0,
            "websocket": False,
        } | options
        worker = Worker(orchestrator.url, TOKEN, **settings)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop()


def test_the_skill_decorator_returns_the_function_unchanged(make_worker: MakeWorker) -> None:
    worker = make_worker()

    async def resize(params: dict[str, Any]) -> int:
        return 1

    assert worker.skill("resize")(resize) is resize
    with pytest.raises(SkillDefinitionError):
        worker.skill("resize")(resize)


async def test_start_registers_with_the_advertised_contract(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
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
    [registration] = orchestrator.registrations
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
    first = orchestrator.heartbeats[0]
    assert (first["status"], first["current_tasks"], first["supported_skills"]) == ("idle", [], None)
    assert first["skills_hash"] == registration["skills_hash"]
    assert orchestrator.rejections == []


async def test_a_task_is_run_and_reported(orchestrator: FakeOrchestrator, make_worker: MakeWorker) -> None:
    worker = make_worker()

    @worker.skill("resize")
    async def resize(params: dict[str, Any], progress: Any) -> dict[str, Any]:
        await progress(0.5, "half way")
        return {"width": params["width"] // 2}

    async with worker:
        task_id = orchestrator.queue_task("resize", {"width": 640})
        await eventually(lambda: orchestrator.result_for(task_id))
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert (result["status"], result["data"], result["worker_id"]) == ("success", {"width": 320}, "w-1")
    assert orchestrator.events[0]["payload"] == {"progress": 0.5, "message": "half way"}
    assert orchestrator.rejections == []


async def test_a_handler_exception_is_reported_with_its_error_code(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("flaky")
    def flaky() -> None:
        raise TransientError("try again", details={"attempt": 1})

    async with worker:
        task_id = orchestrator.queue_task("flaky")
        await eventually(lambda: orchestrator.result_for(task_id))
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "failure"
    assert result["error"] == {"code": "TRANSIENT_ERROR", "message": "try again", "details": {"attempt": 1}}


async def test_no_poll_is_outstanding_at_capacity_and_polling_resumes_when_a_slot_frees(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    release = asyncio.Event()
    worker = make_worker(max_concurrent_tasks=1)

    @worker.skill("hold")
    async def hold() -> None:
        await release.wait()

    async with worker:
        first = orchestrator.queue_task("hold")
        await eventually(lambda: orchestrator.tasks.empty() and orchestrator.polls_in_flight == 0)
        polls = orchestrator.poll_count
        await asyncio.sleep(0.3)
        assert orchestrator.poll_count == polls
        await eventually(lambda: orchestrator.heartbeats[-1]["status"] == "busy")
        assert orchestrator.heartbeats[-1]["current_tasks"] == [first]
        release.set()
        await eventually(lambda: orchestrator.result_for(first))
        await eventually(lambda: orchestrator.polls_in_flight == 1)
        await eventually(lambda: orchestrator.heartbeats[-1]["status"] == "idle")
    assert orchestrator.max_polls_in_flight == 1


async def test_tasks_run_concurrently_up_to_the_limit(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
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
        ids = [orchestrator.queue_task("work") for _ in range(6)]
        await eventually(lambda: all(orchestrator.result_for(i) for i in ids))
    assert peak == 3


async def test_a_heartbeat_404_makes_the_worker_register_again(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    async with make_worker():
        orchestrator.known_workers.clear()  # as after an orchestrator restart
        await eventually(lambda: len(orchestrator.registrations) == 2)
        await eventually(lambda: orchestrator.heartbeats[-1]["worker_id"] in orchestrator.known_workers)


async def test_cancel_task_ids_in_a_heartbeat_reply_cancel_the_running_task(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
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
        task_id = orchestrator.queue_task("long")
        await eventually(lambda: task_id in orchestrator.heartbeats[-1]["current_tasks"])
        orchestrator.cancel_on_next_heartbeat = [task_id]
        await eventually(lambda: orchestrator.result_for(task_id))
    assert seen == ["cancelled"]
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_a_websocket_cancel_command_cancels_the_running_task(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker(websocket=True, heartbeat_interval=30.0)

    @worker.skill("long")
    async def long() -> None:
        await asyncio.sleep(30)

    async with worker:
        task_id = orchestrator.queue_task("long")
        await eventually(lambda: orchestrator.sockets and orchestrator.tasks.empty())
        await asyncio.sleep(0.05)
        await orchestrator.send_command({"command": "cancel_task", "task_id": task_id, "job_id": task_id})
        await eventually(lambda: orchestrator.result_for(task_id), within=2)
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_a_full_sync_request_resends_the_skill_list(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("a")
    async def a() -> None: ...

    async with worker:
        orchestrator.require_full_sync_once = True
        await eventually(lambda: orchestrator.heartbeats[-1]["supported_skills"] is not None)
        assert [s["name"] for s in orchestrator.heartbeats[-1]["supported_skills"]] == ["a"]
        await eventually(lambda: orchestrator.heartbeats[-1]["supported_skills"] is None)


async def test_a_skill_added_while_running_is_announced(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()
    async with worker:

        @worker.skill("late")
        async def late() -> None: ...

        await eventually(lambda: orchestrator.heartbeats[-1]["supported_skills"] is not None)
        assert orchestrator.heartbeats[-1]["supported_skills"][0]["name"] == "late"


async def test_stop_lets_running_tasks_finish_then_goes_offline(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("slow")
    async def slow() -> str:
        await asyncio.sleep(0.3)
        return "finished"

    await worker.start()
    task_id = orchestrator.queue_task("slow")
    await eventually(lambda: orchestrator.tasks.empty() and orchestrator.polls_in_flight == 1)
    await worker.stop()
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert result["data"] == "finished"
    assert orchestrator.heartbeats[-1]["status"] == "offline"
    assert "busy" in [h["status"] for h in orchestrator.heartbeats]
    polls = orchestrator.poll_count
    await asyncio.sleep(0.1)
    assert orchestrator.poll_count == polls


async def test_stop_cancels_tasks_that_outlive_the_shutdown_timeout(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker(shutdown_timeout=0.1)

    @worker.skill("endless")
    async def endless() -> None:
        await asyncio.sleep(30)

    await worker.start()
    task_id = orchestrator.queue_task("endless")
    await eventually(lambda: orchestrator.tasks.empty())
    await asyncio.sleep(0.05)
    await worker.stop()
    result = orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_an_injected_session_is_left_open(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    async with aiohttp.ClientSession() as session:
        worker = make_worker(session=session)
        await worker.start()
        await worker.stop()
        assert not session.closed


async def test_start_twice_is_refused_and_stop_is_idempotent(make_worker: MakeWorker) -> None:
    worker = make_worker()
    await worker.start()
    with pytest.raises(RuntimeError, match="already started"):
        await worker.start()
    await worker.stop()
    await worker.stop()


async def test_a_refused_registration_raises(orchestrator: FakeOrchestrator, make_worker: MakeWorker) -> None:
    orchestrator.register_status = 403
    worker = make_worker()
    with pytest.raises(OrchestratorError) as raised:
        await worker.start()
    assert raised.value.status == 403


async def test_registration_is_retried_while_the_orchestrator_fails(
    orchestrator: FakeOrchestrator, make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("avtomatika.worker.runtime.Backoff", lambda initial, maximum: _FastBackoff())
    orchestrator.register_status = 503
    worker = make_worker()
    starting = asyncio.create_task(worker.start())
    await asyncio.sleep(0.1)
    assert not starting.done()
    orchestrator.register_status = None
    await asyncio.wait_for(starting, 2)
    assert len(orchestrator.registrations) == 1


class _FastBackoff:
    def next_delay(self) -> float:
        return 0.01

    def reset(self) -> None: ...


def test_from_env_reads_the_documented_variables() -> None:
    worker = Worker.from_env(
        {
            "AVTOMATIKA_URL": "http://127.0.0.1:9",
            "AVTOMATIKA_WORKER_TOKEN": "t",
            "AVTOMATIKA_WORKER_ID": "gpu-1",
            "AVTOMATIKA_MAX_CONCURRENT_TASKS": "4",
        },
        heartbeat_interval=1.0,
    )
    assert (worker.worker_id, worker.settings.max_concurrent_tasks) == ("gpu-1", 4)
    assert (worker.settings.token, worker.settings.heartbeat_interval) == ("t", 1.0)


def test_from_env_defaults_and_overrides() -> None:
    env = {"AVTOMATIKA_URL": "http://127.0.0.1:9", "AVTOMATIKA_WORKER_TOKEN": "t"}
    worker = Worker.from_env(env)
    assert worker.worker_id.startswith("worker-")
    assert worker.settings.max_concurrent_tasks == 10
    assert Worker.from_env(env, worker_id="explicit").worker_id == "explicit"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AVTOMATIKA_URL, AVTOMATIKA_WORKER_TOKEN"),
        (
            {
                "AVTOMATIKA_URL": "http://h",
                "AVTOMATIKA_WORKER_TOKEN": "t",
                "AVTOMATIKA_MAX_CONCURRENT_TASKS": "x",
            },
            "x",
        ),
    ],
)
def test_from_env_names_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Worker.from_env(env)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_id": "bad id!"}, "worker_id 'bad id!'"),
        ({"max_concurrent_tasks": 0}, "max_concurrent_tasks"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"orchestrator_url": "127.0.0.1:8080"}, "orchestrator_url"),
        ({"token": ""}, "token"),
    ],
)
def test_invalid_settings_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"orchestrator_url": "http://127.0.0.1:9", "token": "t"} | options
    with pytest.raises(ConfigError, match=message):
        Worker(**arguments)
