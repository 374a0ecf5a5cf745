"""The memory backend's worker registry, indexed by skill so lookups never scan every worker."""

from avtomatika.core.records import HeartbeatUpdate, WorkerRecord
from avtomatika.storage.base import heartbeat_changes, worker_deadline_key
from avtomatika.storage.lazy_heap import LazyHeap
from avtomatika.storage.memory.copy import clone
from avtomatika.storage.memory.deadlines import DeadlineIndex


class WorkerRegistry:
    """Worker records, a skill -> workers index and the ``worker:<id>`` liveness deadlines.

    Records passed in must be private copies; records handed out are copies too. Records are
    also ordered by liveness deadline, so :meth:`purge` finds gone workers without a scan.
    """

    __slots__ = ("_by_skill", "_deadlines", "_expiry", "_workers")

    def __init__(self, deadlines: DeadlineIndex) -> None:
        self._workers: dict[str, WorkerRecord] = {}
        # Insertion-ordered dicts as ordered sets: candidates come back in registration order.
        self._by_skill: dict[str, dict[str, None]] = {}
        self._deadlines = deadlines
        self._expiry: LazyHeap[str] = LazyHeap()

    def register(self, record: WorkerRecord) -> WorkerRecord:
        previous = self._workers.get(record.worker_id)
        if previous is not None:
            record.reputation = previous.reputation
            self._unindex(previous)
        self._workers[record.worker_id] = record
        self._index(record)
        self._set_expiry(record)
        return clone(record)

    def heartbeat(self, worker_id: str, update: HeartbeatUpdate) -> WorkerRecord | None:
        record = self._workers.get(worker_id)
        if record is None:
            return None
        reindex = update.skills is not None
        if reindex:
            self._unindex(record)
        for name, value in heartbeat_changes(update).items():
            setattr(record, name, value)
        if reindex:
            self._index(record)
        self._set_expiry(record)
        return clone(record)

    def polled(self, worker_id: str, now: float) -> None:
        record = self._workers.get(worker_id)
        if record is not None:
            record.last_poll = now

    def get(self, worker_id: str) -> WorkerRecord | None:
        record = self._workers.get(worker_id)
        return None if record is None else clone(record)

    def find(self, skill: str, limit: int, now: float) -> list[WorkerRecord]:
        """Up to ``limit`` workers offering ``skill`` whose liveness has not expired."""
        found: list[WorkerRecord] = []
        for worker_id in self._by_skill.get(skill, ()):
            if len(found) >= limit:
                break
            record = self._workers[worker_id]
            if record.expires_at >= now:
                found.append(clone(record))
        return found

    def all(self) -> list[WorkerRecord]:
        return [clone(record) for record in self._workers.values()]

    def remove(self, worker_id: str) -> None:
        record = self._workers.pop(worker_id, None)
        if record is not None:
            self._unindex(record)
        self._expiry.discard(worker_id)
        self._deadlines.discard(worker_deadline_key(worker_id))

    def purge(self, gone_before: float) -> None:
        """Forget workers whose liveness deadline is at or before ``gone_before``. Their
        ``worker:<id>`` deadlines stay: the watcher still hands their tasks to other workers."""
        for worker_id in self._expiry.pop_until(gone_before):
            self._unindex(self._workers.pop(worker_id))

    def adjust_reputation(self, worker_id: str, delta: float) -> None:
        record = self._workers.get(worker_id)
        if record is not None:
            record.reputation = min(1.0, max(0.0, record.reputation + delta))

    def _set_expiry(self, record: WorkerRecord) -> None:
        self._expiry.set(record.worker_id, record.expires_at)
        self._deadlines.set(worker_deadline_key(record.worker_id), record.expires_at)

    def _index(self, record: WorkerRecord) -> None:
        for name in record.skill_names():
            self._by_skill.setdefault(name, {})[record.worker_id] = None

    def _unindex(self, record: WorkerRecord) -> None:
        for name in record.skill_names():
            holders = self._by_skill.get(name)
            if holders is not None:
                holders.pop(record.worker_id, None)
                if not holders:
                    del self._by_skill[name]
