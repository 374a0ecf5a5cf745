"""The memory backend's jobs: records, each client's index, and the bound on terminal jobs."""

from collections import OrderedDict
from collections.abc import Callable
from itertools import islice
from typing import NamedTuple


class StoredJob(NamedTuple):
    version: int
    client_id: str
    data: bytes
    """The job frozen as MessagePack (see ``copy``)."""


class JobStore:
    """Jobs by id, each client's job ids in creation order, and terminal jobs in the order of
    their last commit.

    That last order is what retention needs: the oldest terminal job is always first, so expiry
    and the count bound forget jobs one at a time from the front, O(1) each and never a scan.
    Forgetting a job removes it from every structure here and tells ``on_forget``.
    """

    __slots__ = ("_by_client", "_ended", "_jobs", "_on_forget")

    def __init__(self, on_forget: Callable[[str], None]) -> None:
        self._jobs: dict[str, StoredJob] = {}
        # Insertion-ordered dicts as ordered sets: a forgotten job leaves its index in O(1).
        self._by_client: dict[str, dict[str, None]] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()
        self._on_forget = on_forget

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._jobs

    def get(self, job_id: str) -> StoredJob | None:
        return self._jobs.get(job_id)

    def insert(self, job_id: str, client_id: str, data: bytes, terminal: bool, now: float) -> None:
        """Store a new job at version 1."""
        self._jobs[job_id] = StoredJob(1, client_id, data)
        self._by_client.setdefault(client_id, {})[job_id] = None
        if terminal:
            self._ended[job_id] = now

    def replace(self, job_id: str, version: int, data: bytes, terminal: bool, now: float) -> None:
        """Store a new version of an existing job; a terminal one moves to the back of the order."""
        self._jobs[job_id] = StoredJob(version, self._jobs[job_id].client_id, data)
        if terminal:
            self._ended[job_id] = now
            self._ended.move_to_end(job_id)
        else:
            self._ended.pop(job_id, None)

    def page(self, client_id: str, limit: int, offset: int) -> list[bytes]:
        """A page of the client's jobs, newest first."""
        ids = self._by_client.get(client_id)
        if not ids or limit <= 0:
            return []
        start = max(offset, 0)
        return [self._jobs[job_id].data for job_id in islice(reversed(ids), start, start + limit)]

    def trim(self, cutoff: float, limit: int) -> None:
        """Forget terminal jobs last committed at or before ``cutoff``, then the oldest ones
        beyond ``limit``."""
        ended = self._ended
        while ended:
            job_id, ended_at = next(iter(ended.items()))
            if ended_at > cutoff and len(ended) <= limit:
                return
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        del self._ended[job_id]
        stored = self._jobs.pop(job_id)
        ids = self._by_client[stored.client_id]
        del ids[job_id]
        if not ids:
            del self._by_client[stored.client_id]
        self._on_forget(job_id)
