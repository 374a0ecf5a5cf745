import asyncio
from typing import Any

import aiohttp
import pytest

from avtomatika.worker import OrchestratorError, SkillDefinitionError, TransientError

from .conftest import MakeWorker
from .fake_orchestrator import FakeOrchestrator, eventually


def test_the_skill_decorator_returns_the_function_unchanged(make_worker: MakeWorker) -> None:
    worker = make_worker()

    async def resize(params: dict[str, Any]) -> int:
        return 1

    assert worker.skill("resize")(resize) is resize
    with pytest.raises(SkillDefinitionError):
        worker.skill("resize")(resize)


async def test_a_task_is_run_and_reported(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("resize")
    async def resize(params: dict[str, Any], progress: Any) -> dict[str, Any]:
        await progress(0.5, "half way")
        return {"width": params["width"] // 2}

    async with worker:
        task_id = fake_orchestrator.queue_task("resize", {"width": 640})
        await eventually(lambda: fake_orchestrator.result_for(task_id))
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert (result["status"], result["data"], result["worker_id"]) == ("success", {"width": 320}, "w-1")
    assert fake_orchestrator.events[0]["payload"] == {"progress": 0.5, "message": "half way"}
    assert fake_orchestrator.rejections == []


async def test_a_handler_exception_is_reported_with_its_error_code(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("flaky")
    def flaky() -> None:
        raise TransientError("try again", details={"attempt": 1})

    async with worker:
        task_id = fake_orchestrator.queue_task("flaky")
        await eventually(lambda: fake_orchestrator.result_for(task_id))
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "failure"
    assert result["error"] == {"code": "TRANSIENT_ERROR", "message": "try again", "details": {"attempt": 1}}


async def test_stop_lets_running_tasks_finish_then_goes_offline(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker()

    @worker.skill("slow")
    async def slow() -> str:
        await asyncio.sleep(0.3)
        return "finished"

    await worker.start()
    task_id = fake_orchestrator.queue_task("slow")
    await eventually(lambda: fake_orchestrator.tasks.empty() and fake_orchestrator.polls_in_flight == 1)
    await worker.stop()
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["data"] == "finished"
    assert fake_orchestrator.heartbeats[-1]["status"] == "offline"
    assert "busy" in [h["status"] for h in fake_orchestrator.heartbeats]
    polls = fake_orchestrator.poll_count
    await asyncio.sleep(0.1)
    assert fake_orchestrator.poll_count == polls


async def test_stop_cancels_tasks_that_outlive_the_shutdown_timeout(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    worker = make_worker(shutdown_timeout=0.1)

    @worker.skill("endless")
    async def endless() -> None:
        await asyncio.sleep(30)

    await worker.start()
    task_id = fake_orchestrator.queue_task("endless")
    await eventually(lambda: fake_orchestrator.tasks.empty())
    await asyncio.sleep(0.05)
    await worker.stop()
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["status"] == "cancelled"


async def test_an_injected_session_is_left_open(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
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


async def test_a_refused_registration_raises(
    fake_orchestrator: FakeOrchestrator, make_worker: MakeWorker
) -> None:
    fake_orchestrator.register_status = 403
    worker = make_worker()
    with pytest.raises(OrchestratorError) as raised:
        await worker.start()
    assert raised.value.status == 403
