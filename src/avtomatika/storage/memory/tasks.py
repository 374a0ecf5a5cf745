"""The memory backend's worker task queues and task records."""

from collections.abc import Sequence
from functools import partial

from avtomatika.core import clock
from avtomatika.core.records import TaskRecord, TaskState
from avtomatika.storage.base import WorkerLoad, task_deadline_key
from avtomatika.storage.lazy_heap import LazyHeap
from avtomatika.storage.memory.copy import clone
from avtomatika.storage.memory.deadlines import DeadlineIndex
from avtomatika.storage.waiting import Attempt, Signals, take_or_wait

_IDLE = WorkerLoad(0, 0)


class _WorkerQueue:
    """One worker's queued tasks, ranked by -priority (FIFO among equals), and its running task ids."""

    __slots__ = ("queued", "running")

    def __init__(self) -> None:
        self.queued: LazyHeap[str] = LazyHeap()
        self.running: set[str] = set()

    def discard(self, task_id: str) -> None:
        self.queued.discard(task_id)
        self.running.discard(task_id)

    def load(self) -> WorkerLoad:
        return WorkerLoad(len(self.queued), len(self.running))

    def idle(self) -> bool:
        """No tasks: the queue can be forgotten (and made again when needed)."""
        return not (self.queued or self.running)


class TaskQueues:
    """Task records by id plus a priority queue per worker; keeps ``task:<id>`` deadlines.

    A cancelled record is a tombstone kept until its own expiry, whether or not its job still
    exists: it is dropped when read after that (the watcher reads it when its deadline comes).
    A worker's queue exists only while it holds tasks, its :class:`Signal` only while it has
    pollers.
    """

    __slots__ = ("_deadlines", "_queues", "_signals", "_tasks", "_tombstones")

    def __init__(self, deadlines: DeadlineIndex) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._tombstones: dict[str, float] = {}
        """Cancelled task id -> when its record expires."""
        self._queues: dict[str, _WorkerQueue] = {}
        self._signals = Signals()
        self._deadlines = deadlines

    def push(self, record: TaskRecord) -> None:
        """Queue a task (a private copy); an existing task with this id is replaced."""
        previous = self._tasks.get(record.task_id)
        if previous is not None:
            self._detach(previous)
            self._tombstones.pop(record.task_id, None)
        record.state = TaskState.QUEUED
        record.picked_up_at = None
        self._tasks[record.task_id] = record
        self._enqueue(record, first=False)

    async def poll(self, worker_id: str, wait_seconds: float) -> TaskRecord | None:
        with self._signals.hold(worker_id) as signal:
            return await take_or_wait(partial(self._pop, worker_id), signal, wait_seconds)

    def requeue(self, task_id: str) -> bool:
        record = self._tasks.get(task_id)
        if record is None or record.state != TaskState.RUNNING:
            return False
        self._detach(record)
        record.state = TaskState.QUEUED
        record.picked_up_at = None
        # Ahead of every queued task of equal priority: it was taken once already.
        self._enqueue(record, first=True)
        return True

    def steal(self, task_id: str, from_worker: str, to_worker: str) -> TaskRecord | None:
        record = self._tasks.get(task_id)
        if record is None or record.state != TaskState.QUEUED or record.worker_id != from_worker:
            return None
        self._detach(record)
        record.worker_id = to_worker
        self._start(record, self._queue(to_worker))
        return clone(record)

    def cancel(self, task_id: str, keep_until: float) -> None:
        """Mark CANCELLED and unqueue; the record stays until its deadline drops it."""
        record = self._tasks.get(task_id)
        if record is None:
            return
        self._detach(record)
        self._bury(record, keep_until)

    def drop(self, task_id: str) -> None:
        record = self._tasks.pop(task_id, None)
        if record is not None:
            self._detach(record)
            self._tombstones.pop(task_id, None)
        self._deadlines.discard(task_deadline_key(task_id))

    def remove_worker(self, worker_id: str, keep_until: float) -> list[TaskRecord]:
        """Remove and return the worker's queued (in pop order) and running tasks; the running
        ones stay as CANCELLED until ``keep_until``, so a worker that comes back is told to stop."""
        queue = self._queues.get(worker_id)
        if queue is None:
            return []
        removed = []
        for task_id in queue.queued.smallest(len(queue.queued)):
            removed.append(self._tasks.pop(task_id))
            self._deadlines.discard(task_deadline_key(task_id))
        for task_id in sorted(queue.running):
            record = self._tasks[task_id]
            removed.append(clone(record))
            self._bury(record, keep_until)
        del self._queues[worker_id]
        return removed

    def get(self, task_ids: Sequence[str]) -> list[TaskRecord | None]:
        now = clock.now()
        found = (self._unexpired(task_id, now) for task_id in task_ids)
        return [None if record is None else clone(record) for record in found]

    def peek(self, worker_id: str, limit: int) -> list[TaskRecord]:
        queue = self._queues.get(worker_id)
        if queue is None or limit <= 0:
            return []
        return [clone(self._tasks[task_id]) for task_id in queue.queued.smallest(limit)]

    def loads(self, worker_ids: Sequence[str]) -> list[WorkerLoad]:
        queues = self._queues
        return [queue.load() if (queue := queues.get(w)) is not None else _IDLE for w in worker_ids]

    def _bury(self, record: TaskRecord, keep_until: float) -> None:
        record.state = TaskState.CANCELLED
        self._tombstones[record.task_id] = keep_until
        self._deadlines.set(task_deadline_key(record.task_id), keep_until)

    def _unexpired(self, task_id: str, now: float) -> TaskRecord | None:
        """The record, unless it is a tombstone past its expiry (then it is dropped)."""
        record = self._tasks.get(task_id)
        if record is not None and record.state == TaskState.CANCELLED and self._tombstones[task_id] <= now:
            self.drop(task_id)
            return None
        return record

    def _queue(self, worker_id: str) -> _WorkerQueue:
        queue = self._queues.get(worker_id)
        if queue is None:
            queue = self._queues[worker_id] = _WorkerQueue()
        return queue

    def _enqueue(self, record: TaskRecord, *, first: bool) -> None:
        queue = self._queue(record.worker_id)
        queue.queued.set(record.task_id, -record.priority, first=first)
        key = task_deadline_key(record.task_id)
        deadline = record.queued_deadline()
        if deadline is None:
            self._deadlines.discard(key)
        else:
            self._deadlines.set(key, deadline)
        self._signals.notify(record.worker_id)

    def _detach(self, record: TaskRecord) -> None:
        queue = self._queues.get(record.worker_id)
        if queue is not None:
            queue.discard(record.task_id)
            if queue.idle():
                del self._queues[record.worker_id]

    def _start(self, record: TaskRecord, queue: _WorkerQueue) -> None:
        now = clock.now()
        record.state = TaskState.RUNNING
        record.picked_up_at = now
        queue.running.add(record.task_id)
        self._deadlines.set(task_deadline_key(record.task_id), record.running_deadline(now))

    async def _pop(self, worker_id: str) -> Attempt[TaskRecord]:
        """One attempt; it never suspends, so nothing is taken for a caller cancelled meanwhile."""
        queue = self._queues.get(worker_id)
        task_id = None if queue is None else queue.queued.pop()
        if queue is None or task_id is None:
            return Attempt(None)
        record = self._tasks[task_id]
        self._start(record, queue)
        return Attempt(clone(record), more=bool(queue.queued))
