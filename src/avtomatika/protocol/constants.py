"""RXON v1 names that both sides of the wire agree on (protocol.md §1, §3, §8)."""

from enum import StrEnum
from typing import Final

PROTOCOL_VERSION: Final = "1.0b7"
VERSION_HEADER: Final = "X-RXON-Version"
CLIENT_TOKEN_HEADER: Final = "X-Client-Token"
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
WORKER_TOKEN_HEADER: Final = "X-Worker-Token"

REPLAY_WINDOW_SECONDS: Final = 60.0
WORKER_ID_PATTERN: Final = r"^[a-zA-Z0-9_-]+$"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    AWAITING_RETRY = "awaiting_retry"
    WAITING_FOR_WORKER = "waiting_for_worker"
    WAITING_FOR_HUMAN = "waiting_for_human"
    WAITING_FOR_PARALLEL_TASKS = "waiting_for_parallel_tasks"
    WAITING_FOR_SUB_JOB = "waiting_for_sub_job"
    FINISHED = "finished"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    CANCELLED = "cancelled"


TERMINAL_STATUSES: Final = frozenset(
    {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.QUARANTINED, JobStatus.CANCELLED}
)
# Statuses in which the executor runs the current state's handler.
RUNNABLE_STATUSES: Final = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.AWAITING_RETRY})


class ResultStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"


class ErrorCode(StrEnum):
    TRANSIENT_ERROR = "TRANSIENT_ERROR"
    PERMANENT_ERROR = "PERMANENT_ERROR"
    INVALID_INPUT_ERROR = "INVALID_INPUT_ERROR"
    SECURITY_ERROR = "SECURITY_ERROR"
    DEPENDENCY_ERROR = "DEPENDENCY_ERROR"
    CONTRACT_VIOLATION_ERROR = "CONTRACT_VIOLATION_ERROR"
    INTEGRITY_MISMATCH_ERROR = "INTEGRITY_MISMATCH_ERROR"
    TIMEOUT_ERROR = "TIMEOUT_ERROR"
    RESOURCE_EXHAUSTED_ERROR = "RESOURCE_EXHAUSTED_ERROR"
    LIMIT_EXCEEDED_ERROR = "LIMIT_EXCEEDED_ERROR"
    DEPENDENCY_MISSING_ERROR = "DEPENDENCY_MISSING_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    LATE_RESULT = "LATE_RESULT"


# How the orchestrator reacts to a worker failure, by error code (protocol.md §8).
QUARANTINE_CODES: Final = frozenset(
    {
        ErrorCode.PERMANENT_ERROR,
        ErrorCode.SECURITY_ERROR,
        ErrorCode.DEPENDENCY_ERROR,
        ErrorCode.CONTRACT_VIOLATION_ERROR,
    }
)
FAIL_CODES: Final = frozenset({ErrorCode.INVALID_INPUT_ERROR, ErrorCode.INTEGRITY_MISMATCH_ERROR})


class IgnoredReason(StrEnum):
    JOB_NOT_FOUND = "job_not_found"
    WORKER_MISMATCH = "worker_mismatch"
    STALE_TASK = "stale_task"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    JOB_ALREADY_TERMINATED = "job_already_terminated"
    JOB_CANCELLED = "job_cancelled"


class WebhookEvent(StrEnum):
    JOB_FINISHED = "job_finished"
    JOB_FAILED = "job_failed"
    JOB_QUARANTINED = "job_quarantined"
    JOB_CANCELLED = "job_cancelled"


WEBHOOK_EVENT_BY_STATUS: Final = {
    JobStatus.FINISHED: WebhookEvent.JOB_FINISHED,
    JobStatus.FAILED: WebhookEvent.JOB_FAILED,
    JobStatus.QUARANTINED: WebhookEvent.JOB_QUARANTINED,
    JobStatus.CANCELLED: WebhookEvent.JOB_CANCELLED,
}
