"""Running tasks: capacity, cancellation, and reporting each task's result exactly once.

Each task has two asyncio tasks: the *handler* (the user's code, the one that gets cancelled)
and its *supervisor*, which waits for the handler whatever its fate and reports the outcome.
Keeping them apart is what lets a cancelled task still send its ``cancelled`` result.
A task holds its slot until its result is delivered, so a struggling orchestrator slows intake.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from avtomatika.protocol.constants import ErrorCode
from avtomatika.protocol.models import TaskError, TaskPayload, TaskResult, WorkerEventPayload
from avtomatika.worker import results
from avtomatika.worker.errors import TaskError as HandlerTaskError
from avtomatika.worker.skills import Progress, SkillRegistry
from avtomatika.worker.transport import TRANSPORT_ERRORS, Transport

logger = logging.getLogger(__name__)

# After shutdown cancels the stragglers, how long their supervisors may take to report ``cancelled``.
CANCELLED_REPORT_GRACE_SECONDS: Final = 10.0


@dataclass(slots=True)
class _RunningTask:
    payload: TaskPayload
    handler: asyncio.Task[Any] | None
    supervisor: asyncio.Task[None] | None = None


class TaskExecutor:
    """Runs up to ``capacity`` tasks at once; ``on_load_change`` fires when it fills or frees up."""

    def __init__(
        self,
        registry: SkillRegistry,
        transport: Transport,
        worker_id: str,
        capacity: int,
        on_load_change: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._transport = transport
        self._worker_id = worker_id
        self._capacity = capacity
        self._on_load_change = on_load_change
        self._running: dict[str, _RunningTask] = {}
        self._slot_free = asyncio.Event()
        self._slot_free.set()

    @property
    def at_capacity(self) -> bool:
        return len(self._running) >= self._capacity

    @property
    def task_ids(self) -> list[str]:
        return list(self._running)

    async def wait_for_slot(self) -> None:
        await self._slot_free.wait()

    def submit(self, payload: TaskPayload) -> None:
        """Start ``payload``; a task id that is already running is a duplicate delivery and skipped."""
        if payload.task_id in self._running:
            logger.warning("task %s is already running; duplicate delivery ignored", payload.task_id)
            return
        skill = self._registry.find(payload.type)
        handler = None
        if skill is not None:
            handler = asyncio.create_task(
                skill.invoke(payload, self._progress_for(payload)),
                name=f"avtomatika-handler-{payload.task_id}",
            )
        entry = _RunningTask(payload, handler)
        self._running[payload.task_id] = entry
        entry.supervisor = asyncio.create_task(
            self._supervise(entry), name=f"avtomatika-task-{payload.task_id}"
        )
        self._update_load()

    def cancel(self, task_id: str) -> bool:
        """Cancel a running handler; its supervisor then reports the task ``cancelled``."""
        entry = self._running.get(task_id)
        if entry is None or entry.handler is None or entry.handler.done():
            return False
        entry.handler.cancel()
        return True

    async def drain(self, grace_seconds: float) -> None:
        """Let running tasks finish for up to ``grace_seconds``, then cancel and report the rest."""
        supervisors = {entry.supervisor for entry in self._running.values() if entry.supervisor is not None}
        if not supervisors:
            return
        _, pending = await asyncio.wait(supervisors, timeout=grace_seconds)
        if not pending:
            return
        logger.warning("shutdown timeout: cancelling %d unfinished task(s)", len(pending))
        for task_id in self.task_ids:
            self.cancel(task_id)
        _, stuck = await asyncio.wait(pending, timeout=CANCELLED_REPORT_GRACE_SECONDS)
        for supervisor in stuck:
            supervisor.cancel()
        if stuck:
            await asyncio.wait(stuck)

    async def _supervise(self, entry: _RunningTask) -> None:
        try:
            result = await self._outcome(entry)
            await self._report(result)
        finally:
            if entry.handler is not None:
                entry.handler.cancel()
            del self._running[entry.payload.task_id]
            self._update_load()

    async def _outcome(self, entry: _RunningTask) -> TaskResult:
        payload, handler = entry.payload, entry.handler
        if handler is None:
            message = f"skill '{payload.type}' is not registered on worker '{self._worker_id}'"
            return results.failure_result(
                payload, self._worker_id, TaskError(ErrorCode.PERMANENT_ERROR, message)
            )
        await asyncio.wait({handler})
        if handler.cancelled():
            logger.info("task %s (job %s) cancelled", payload.task_id, payload.job_id)
            return results.cancelled_result(payload, self._worker_id)
        exc = handler.exception()
        if exc is None:
            return results.result_from_return(payload, self._worker_id, handler.result())
        if isinstance(exc, HandlerTaskError):
            logger.warning(
                "task %s (skill %s) failed with %s: %s", payload.task_id, payload.type, exc.code, exc
            )
        else:
            logger.error("task %s (skill %s) raised", payload.task_id, payload.type, exc_info=exc)
        return results.result_from_exception(payload, self._worker_id, exc)

    async def _report(self, result: TaskResult) -> None:
        try:
            reply = await self._transport.send_result(result)
        except TRANSPORT_ERRORS as exc:
            logger.error(
                "result of task %s (job %s) could not be delivered: %s", result.task_id, result.job_id, exc
            )
            return
        if reply.status == "ignored":
            logger.warning("orchestrator ignored the result of task %s: %s", result.task_id, reply.message)

    def _progress_for(self, payload: TaskPayload) -> Progress:
        async def progress(fraction: float, message: str = "") -> None:
            event = WorkerEventPayload(
                event_id=str(uuid.uuid4()),
                worker_id=self._worker_id,
                origin_worker_id=self._worker_id,
                event_type="progress",
                payload={"progress": float(fraction), "message": message},
                bubbling_chain=[],
                target_job_id=payload.job_id,
                target_task_id=payload.task_id,
            )
            try:
                await self._transport.send_event(event)
            except TRANSPORT_ERRORS as exc:
                logger.warning("progress of task %s not delivered: %s", payload.task_id, exc)

        return progress

    def _update_load(self) -> None:
        was_full = not self._slot_free.is_set()
        if self.at_capacity:
            self._slot_free.clear()
        else:
            self._slot_free.set()
        if was_full != self.at_capacity:
            self._on_load_change()
