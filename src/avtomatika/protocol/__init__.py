"""The RXON v1 wire contract: message models, header names, statuses and error codes."""

from avtomatika.protocol.constants import (
    PROTOCOL_VERSION,
    ErrorCode,
    IgnoredReason,
    JobStatus,
    ResultStatus,
    WebhookEvent,
)
from avtomatika.protocol.models import (
    Heartbeat,
    SkillInfo,
    TaskError,
    TaskPayload,
    TaskResult,
    WorkerCommand,
    WorkerEventPayload,
    WorkerRegistration,
)

__all__ = [
    "PROTOCOL_VERSION",
    "ErrorCode",
    "Heartbeat",
    "IgnoredReason",
    "JobStatus",
    "ResultStatus",
    "SkillInfo",
    "TaskError",
    "TaskPayload",
    "TaskResult",
    "WebhookEvent",
    "WorkerCommand",
    "WorkerEventPayload",
    "WorkerRegistration",
]
