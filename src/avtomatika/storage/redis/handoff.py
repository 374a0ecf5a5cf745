"""A job read along with a lone task read, handed to the reader's next ``get_job``.

A result or a task deadline reads its task, then updates the job: reading the job's blob in
the same script as the task saves that round trip. (A run claim returns its job outright:
:class:`~avtomatika.storage.base.ClaimedRun`.)

It is handed over only to code in the reader's context (the reader and tasks it starts
afterwards), only once, and only to the next ``get_job`` there, which takes it, or drops it
when it asks for another job. A commit or creation of the job in this process voids it. It is
the job as of the task read: a change another instance commits after that makes the caller's
compare-and-set fail, as it would had the change landed a moment later.
"""

from contextvars import ContextVar
from weakref import WeakValueDictionary


class _Offer:
    __slots__ = ("__weakref__", "blob", "job_id", "owner")

    def __init__(self, owner: "JobHandoff", job_id: str, blob: bytes) -> None:
        self.owner = owner
        self.job_id = job_id
        self.blob: bytes | None = blob
        """None once taken or voided; copies of the context share this object."""


_offer: ContextVar[_Offer | None] = ContextVar("avtomatika_redis_job_handoff", default=None)


class JobHandoff:
    """The offers of one storage instance (see the module docstring)."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: WeakValueDictionary[str, _Offer] = WeakValueDictionary()
        """The open offer of each job, so that a commit can void it (weak: an offer nobody
        takes goes away with the contexts that hold it)."""

    def offer(self, job_id: str, blob: bytes | None) -> None:
        """Offer the job just read (None: the job does not exist, nothing to offer). An older
        offer of the same job is voided, so that each job has one open offer at most."""
        self.void(job_id)
        offer = None if blob is None else _Offer(self, job_id, blob)
        if offer is not None:
            self._open[job_id] = offer
        _offer.set(offer)

    def take(self, job_id: str) -> bytes | None:
        """The offered blob of ``job_id`` if this context holds one; any offer here is spent."""
        offer = _offer.get()
        if offer is None:
            return None
        _offer.set(None)
        if offer.owner is not self or offer.job_id != job_id or offer.blob is None:
            return None
        blob, offer.blob = offer.blob, None
        del self._open[job_id]
        return blob

    def void(self, job_id: str) -> None:
        """The job is being written here: an offer of it would be outdated."""
        offer = self._open.pop(job_id, None)
        if offer is not None:
            offer.blob = None
