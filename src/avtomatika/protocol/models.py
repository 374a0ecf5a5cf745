"""RXON v1 wire messages as msgspec Structs (protocol.md §6).

Unknown fields are ignored on decode, as the protocol requires; every optional field
defaults to ``None`` so that what a peer omitted stays distinguishable from a value.
"""

from typing import Any

import msgspec

JSONObject = dict[str, Any]


class Wire(msgspec.Struct, omit_defaults=False):
    """Base of every wire message."""


class SecurityContext(Wire):
    signature: str | None = None
    signer_id: str | None = None
    identity_chain: list[str] | None = None
    metadata: JSONObject | None = None


class FileMetadata(Wire):
    uri: str
    size: int = 0
    etag: str | None = None
    metadata: JSONObject | None = None


class SkillInfo(Wire):
    name: str
    type: str | None = None
    description: str | None = None
    version: str | None = None
    input_schema: JSONObject | None = None
    output_schema: JSONObject | None = None
    events_schema: JSONObject | None = None
    output_statuses: list[str] | None = None
    schema_dialect: str | None = "json-schema"
    properties: JSONObject | None = None


class HardwareDevice(Wire):
    type: str
    model: str | None = None
    id: str | None = None
    properties: JSONObject | None = None
    metrics: JSONObject | None = None


class Resources(Wire):
    max_concurrent_tasks: int = 1
    cpu_cores: int | None = None
    ram_gb: float | None = None
    devices: list[HardwareDevice] | None = None
    properties: JSONObject | None = None


class InstalledArtifact(Wire):
    name: str
    version: str | None = "unknown"
    type: str | None = None
    properties: JSONObject | None = None


class WorkerCapabilities(Wire):
    hostname: str | None = "unknown"
    ip_address: str | None = "0.0.0.0"
    cost_per_skill: dict[str, float] | None = None
    s3_config_hash: str | None = None
    extra: JSONObject | None = None


class WorkerRegistration(Wire):
    worker_id: str
    worker_type: str | None = "generic"
    supported_skills: list[SkillInfo] | None = None
    resources: Resources | None = None
    installed_software: dict[str, str] | None = None
    installed_artifacts: list[InstalledArtifact] | None = None
    capabilities: WorkerCapabilities | None = None
    skills_hash: str | None = None
    security: SecurityContext | None = None
    metadata: JSONObject | None = None
    timestamp: float | None = None


class DeviceUsage(Wire):
    unit_id: str
    load_percent: float
    metrics: JSONObject | None = None


class ResourcesUsage(Wire):
    cpu_load_percent: float | None = 0.0
    ram_used_gb: float | None = 0.0
    devices_usage: list[DeviceUsage] | None = None


class Heartbeat(Wire):
    worker_id: str
    status: str
    usage: ResourcesUsage | None = None
    current_tasks: list[str] | None = None
    supported_skills: list[SkillInfo] | None = None
    hot_cache: list[str] | None = None
    skill_dependencies: dict[str, list[str]] | None = None
    hot_skills: list[SkillInfo] | None = None
    skills_hash: str | None = None
    security: SecurityContext | None = None
    metadata: JSONObject | None = None
    timestamp: float | None = None


class TaskPayload(Wire):
    job_id: str
    task_id: str
    type: str
    params: JSONObject = msgspec.field(default_factory=dict)
    tracing_context: dict[str, str] = msgspec.field(default_factory=dict)
    params_metadata: dict[str, FileMetadata] | None = None
    priority: float = 0.0
    deadline: float | None = None
    security: SecurityContext | None = None
    metadata: JSONObject | None = None


class TaskError(Wire):
    code: str = "TRANSIENT_ERROR"
    message: str = ""
    details: Any = None


class TaskResult(Wire):
    job_id: str
    task_id: str
    worker_id: str | None = None
    status: str = "success"
    data: Any = None
    # A plain string is tolerated by the protocol and read as a transient error message.
    error: TaskError | str | None = None
    data_metadata: dict[str, FileMetadata] | None = None
    security: SecurityContext | None = None
    metadata: JSONObject | None = None
    timestamp: float | None = None


class WorkerEventPayload(Wire):
    event_id: str
    worker_id: str
    origin_worker_id: str
    event_type: str
    payload: JSONObject
    bubbling_chain: list[str] | None = None
    target_job_id: str | None = None
    target_task_id: str | None = None
    trace_context: JSONObject | None = None
    priority: float = 0.0
    timestamp: float | None = None
    security: SecurityContext | None = None
    metadata: JSONObject | None = None


class WorkerCommand(Wire):
    command: str
    task_id: str | None = None
    job_id: str | None = None
    params: JSONObject | None = None
    metadata: JSONObject | None = None


class RegistrationResponse(Wire):
    status: str
    version: str
    warning: str | None = None


class HeartbeatResponse(msgspec.Struct, omit_defaults=True):
    status: str
    next_heartbeat_jitter_ms: int = 0
    require_full_sync: bool = False
    cancel_task_ids: list[str] = msgspec.field(default_factory=list)


class ResultResponse(msgspec.Struct, omit_defaults=True):
    status: str
    transition: str | None = None
    reason: str | None = None
    message: str | None = None
