"""The shared core the executor, API and watcher act through.

``update`` is the one way to change a job outside the executor: read, apply a pure
change, compare-and-set, retry on conflict. Every committed change that ends a job
goes through :meth:`Services.committed`, so notifications cannot be forgotten.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from avtomatika.access.identity import ClientRegistry, WorkerAuthenticator
from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.config import Config
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.engine.dispatcher import Dispatcher
from avtomatika.engine.notify import JobEvent, Notifier
from avtomatika.engine.polls import HeldPolls
from avtomatika.protocol.constants import TERMINAL_STATUSES
from avtomatika.protocol.models import WorkerCommand
from avtomatika.storage.base import StorageBackend

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_CONFLICT_RETRIES = 100
CONFLICT_BACKOFF_CAP = 0.1

CommandSink = Callable[[str, WorkerCommand], Awaitable[bool]]


class Change(Generic[T]):
    """What a job update decided: effects to commit (None: write nothing) and a value to return."""

    __slots__ = ("effects", "value")

    def __init__(self, value: T, effects: Effects | None = None) -> None:
        self.value = value
        self.effects = effects


class Services:
    def __init__(
        self,
        storage: StorageBackend,
        config: Config,
        blueprints: dict[str, Blueprint],
        notify: Notifier,
    ) -> None:
        self.storage = storage
        self.config = config
        self.blueprints = blueprints
        self.dispatcher = Dispatcher(storage, config)
        self.notify = notify
        self.command_sink: CommandSink | None = None
        self.polls = HeldPolls()
        self.clients = ClientRegistry(config)
        self.worker_auth = WorkerAuthenticator(config)

    async def commit(
        self,
        job: Job,
        expected_version: int,
        effects: Effects,
        was_terminal: bool,
        events: Sequence[JobEvent] = (),
    ) -> bool:
        """Commit the change; once it is stored, announce the events it carried and the job's end."""
        if not await self.storage.commit(job, expected_version, effects):
            return False
        for event in events:
            self.notify.event(job, event)
        if not was_terminal and job.status in TERMINAL_STATUSES:
            await self.notify.job_ended(job)
        return True

    async def update(self, job_id: str, change: Callable[[Job], Change[T]], missing: T) -> T:
        """Apply ``change`` to the current job under compare-and-set, retrying on conflicts.

        Conflicting writers back off with jitter, so hundreds of concurrent results for one job
        (a wide fan-in on several instances) converge instead of colliding in lock-step.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            if attempt:
                await asyncio.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP, 0.001 * 2**attempt)))
            job = await self.storage.get_job(job_id)
            if job is None:
                return missing
            expected, was_terminal = job.version, job.status in TERMINAL_STATUSES
            decided = change(job)
            if decided.effects is None:
                return decided.value
            if await self.commit(job, expected, decided.effects, was_terminal):
                return decided.value
        raise RuntimeError(f"Job {job_id}: too many concurrent updates, giving up")

    async def tell_workers_to_cancel(self, job_id: str, task_ids: list[str]) -> None:
        """Push ``cancel_task`` over a worker's command channel when it has one here; workers
        without one learn it from their next heartbeat (``cancel_task_ids``)."""
        if self.command_sink is None or not task_ids:
            return
        for record in await self.storage.get_tasks(task_ids):
            if record is not None:
                command = WorkerCommand(command="cancel_task", task_id=record.task_id, job_id=job_id)
                await self.command_sink(record.worker_id, command)
