"""Side effects committed atomically together with a job change (the unit of work of a commit)."""

import msgspec

from avtomatika.core.records import Job, TaskRecord


class Effects(msgspec.Struct, kw_only=True):
    """Side effects committed atomically together with a job change.

    Applied in this order: ``release_lease``, ``drop_tasks``, ``cancel_tasks``,
    ``push_tasks``, ``create_jobs``, ``run_at``, ``wake_jobs``.
    """

    release_lease: str | None = None
    """Token of the run-queue lease this change completes; the entry is removed if still held by it."""
    drop_tasks: list[str] = msgspec.field(default_factory=list)
    """Task ids that are over: their records, queue entries and deadlines are removed."""
    cancel_tasks: list[str] = msgspec.field(default_factory=list)
    """Task ids cancelled: removed from queues and deadlines, kept as CANCELLED for ``task_retention``."""
    push_tasks: list[TaskRecord] = msgspec.field(default_factory=list)
    """New tasks placed on their workers' queues (QUEUED); their queued deadline is indexed."""
    create_jobs: list[Job] = msgspec.field(default_factory=list)
    """New jobs (e.g. child jobs), stored at version 1 and enqueued to run now."""
    run_at: float | None = None
    """Enqueue this job's next executor step at this time (replaces any queued entry)."""
    wake_jobs: list[str] = msgspec.field(default_factory=list)
    """Other jobs to enqueue now (e.g. a parent whose child ended)."""
