"""What a handler sees of its job: the ``JobContext`` and the client that created the job."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

if TYPE_CHECKING:
    from avtomatika.blueprints.actions import ActionFactory


class ClientConfig(NamedTuple):
    """The API client that created the job.

    ``token`` keeps its historical name for compatibility but holds the client's *id*: the
    secret token is never handed to handlers, so blueprint code cannot leak it into history,
    logs or worker params.
    """

    token: str
    plan: str
    params: dict[str, Any]


class JobContext(NamedTuple):
    """Everything about one job step; handlers receive it whole (``context``) or field by field.

    ``state_history`` and ``aggregation_results`` are the very objects persisted after the
    handler returns, so mutating them in place is how a handler stores data.
    ``task_files`` is the job's S3 ``TaskFiles`` or None when S3 offloading is off.
    """

    job_id: str
    current_state: str
    initial_data: Any
    state_history: dict[str, Any]
    client: ClientConfig
    actions: ActionFactory
    data_stores: SimpleNamespace | None = None
    tracing_context: dict[str, Any] | None = None
    aggregation_results: dict[str, dict[str, Any]] | None = None
    webhook_url: str | None = None
    task_files: Any = None


class WorkerInfo(TypedDict, total=False):
    """A loose shape of a worker record as user code may see it (typing only)."""

    worker_id: str
    worker_type: str
    status: str
    skills: list[dict[str, Any]]
    resources: dict[str, Any]
    installed_software: dict[str, str]
    installed_artifacts: list[dict[str, Any]]
    capabilities: dict[str, Any]
    hot_cache: list[str]
    hot_skills: list[str]
    reputation: float
    last_heartbeat: float
    expires_at: float
    metadata: dict[str, Any] | None
