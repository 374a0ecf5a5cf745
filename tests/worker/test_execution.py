import asyncio
from typing import Any

from avtomatika.protocol.models import ResultResponse, SkillInfo, TaskPayload, TaskResult, WorkerEventPayload
from avtomatika.worker.errors import TransientError
from avtomatika.worker.execution import TaskExecutor
from avtomatika.worker.skills import SkillRegistry, make_skill

from .fake_orchestrator import eventually


class RecordingTransport:
    """Stands in for ``Transport``: records results and events instead of sending them."""

    def __init__(self) -> None:
        self.results: list[TaskResult] = []
        self.events: list[WorkerEventPayload] = []

    async def send_result(self, result: TaskResult) -> ResultResponse:
        self.results.append(result)
        return ResultResponse(status="accepted")

    async def send_event(self, event: WorkerEventPayload) -> None:
        self.events.append(event)


def payload(task_id: str, task_type: str = "work") -> TaskPayload:
    return TaskPayload(job_id=f"job-{task_id}", task_id=task_id, type=task_type)


def executor_with(handler: Any, capacity: int = 2) -> tuple[TaskExecutor, RecordingTransport, list[bool]]:
    registry = SkillRegistry()
    registry.add(make_skill(SkillInfo(name="work"), handler))
    transport = RecordingTransport()
    load_changes: list[bool] = []
    executor: TaskExecutor

    def on_load_change() -> None:
        load_changes.append(executor.at_capacity)

    executor = TaskExecutor(registry, transport, "w-1", capacity, on_load_change)  # type: ignore[arg-type]
    return executor, transport, load_changes


async def test_a_task_runs_and_its_result_is_reported() -> None:
    async def handler(params: dict[str, Any]) -> dict[str, Any]:
        return {"echo": params}

    executor, transport, _ = executor_with(handler)
    executor.submit(TaskPayload(job_id="j", task_id="t", type="work", params={"a": 1}))
    await eventually(lambda: transport.results)
    result = transport.results[0]
    assert (result.task_id, result.worker_id, result.status, result.data) == (
        "t",
        "w-1",
        "success",
        {"echo": {"a": 1}},
    )
    await eventually(lambda: executor.task_ids == [])


async def test_an_unknown_skill_is_a_permanent_failure() -> None:
    async def handler() -> None: ...

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t", task_type="ocr"))
    await eventually(lambda: transport.results)
    error = transport.results[0].error
    assert error is not None
    assert not isinstance(error, str)
    assert error.code == "PERMANENT_ERROR"
    assert "'ocr' is not registered on worker 'w-1'" in error.message


async def test_a_raised_task_error_is_reported_with_its_code() -> None:
    async def handler() -> None:
        raise TransientError("gpu busy")

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    await eventually(lambda: transport.results)
    assert transport.results[0].status == "failure"
    assert transport.results[0].error is not None


async def test_capacity_is_tracked_and_announced_when_it_changes() -> None:
    release = asyncio.Event()

    async def handler() -> None:
        await release.wait()

    executor, transport, load_changes = executor_with(handler, capacity=2)
    executor.submit(payload("a"))
    assert not executor.at_capacity
    executor.submit(payload("b"))
    assert executor.at_capacity
    assert sorted(executor.task_ids) == ["a", "b"]
    waiting = asyncio.create_task(executor.wait_for_slot())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, 1)
    await eventually(lambda: len(transport.results) == 2)
    assert load_changes == [True, False]


async def test_a_duplicate_delivery_is_not_run_twice() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def handler(task_id: str) -> None:
        calls.append(task_id)
        await release.wait()

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    executor.submit(payload("t"))
    release.set()
    await eventually(lambda: transport.results)
    await asyncio.sleep(0.02)
    assert calls == ["t"]
    assert len(transport.results) == 1


async def test_cancelling_a_task_cancels_its_handler_and_reports_cancelled() -> None:
    seen: list[str] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    await asyncio.sleep(0.01)
    assert executor.cancel("t")
    await eventually(lambda: transport.results)
    assert seen == ["cancelled"]
    assert transport.results[0].status == "cancelled"
    assert not executor.cancel("t")
    assert not executor.cancel("unknown")


async def test_drain_waits_for_running_tasks() -> None:
    async def handler() -> str:
        await asyncio.sleep(0.1)
        return "done"

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    await executor.drain(grace_seconds=5)
    assert [r.data for r in transport.results] == ["done"]


async def test_drain_cancels_what_outlives_the_grace_period() -> None:
    async def handler() -> None:
        await asyncio.sleep(30)

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    await executor.drain(grace_seconds=0.05)
    assert [r.status for r in transport.results] == ["cancelled"]
    assert executor.task_ids == []


async def test_progress_posts_a_progress_event_targeting_the_task() -> None:
    async def handler(progress: Any) -> None:
        await progress(0.5, "half way")

    executor, transport, _ = executor_with(handler)
    executor.submit(payload("t"))
    await eventually(lambda: transport.results)
    [event] = transport.events
    assert (event.event_type, event.payload) == ("progress", {"progress": 0.5, "message": "half way"})
    assert (event.worker_id, event.origin_worker_id) == ("w-1", "w-1")
    assert (event.target_job_id, event.target_task_id) == ("job-t", "t")
