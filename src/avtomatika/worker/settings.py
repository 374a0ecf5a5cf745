"""Worker settings: validated once at construction, and read from the environment by ``from_env``.

Environment variables (``Worker.from_env``):

========================================  ========================================================
``AVTOMATIKA_URL``                        orchestrator base URL, e.g. ``http://127.0.0.1:8080`` (required)
``AVTOMATIKA_WORKER_TOKEN``               ``X-Worker-Token`` and the HMAC signing key (required)
``AVTOMATIKA_WORKER_ID``                  worker id, ``[a-zA-Z0-9_-]+`` (default ``worker-<random>``)
``AVTOMATIKA_MAX_CONCURRENT_TASKS``       tasks run at once (default 10)
========================================  ========================================================
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from avtomatika.errors import ConfigError
from avtomatika.protocol.constants import WORKER_ID_PATTERN
from avtomatika.protocol.models import InstalledArtifact, Resources

ENV_URL: Final = "AVTOMATIKA_URL"
ENV_TOKEN: Final = "AVTOMATIKA_WORKER_TOKEN"
ENV_WORKER_ID: Final = "AVTOMATIKA_WORKER_ID"
ENV_MAX_CONCURRENT_TASKS: Final = "AVTOMATIKA_MAX_CONCURRENT_TASKS"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """Everything a worker needs to know before it connects; see ``Worker`` for each field."""

    orchestrator_url: str
    token: str
    worker_id: str
    worker_type: str = "generic"
    max_concurrent_tasks: int = 10
    heartbeat_interval: float = 15.0
    poll_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    websocket: bool = True
    resources: Resources | None = None
    installed_software: dict[str, str] | None = None
    installed_artifacts: list[InstalledArtifact] | None = None
    cost_per_skill: dict[str, float] | None = None
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.orchestrator_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"orchestrator_url must start with http:// or https://: {self.orchestrator_url!r}"
            )
        if not self.token:
            raise ConfigError(f"worker '{self.worker_id}': the worker token must not be empty")
        if not re.fullmatch(WORKER_ID_PATTERN, self.worker_id):
            raise ConfigError(f"worker_id {self.worker_id!r} must match {WORKER_ID_PATTERN}")
        if self.max_concurrent_tasks < 1:
            raise ConfigError(f"max_concurrent_tasks must be at least 1, got {self.max_concurrent_tasks}")
        for name in ("heartbeat_interval", "poll_timeout", "shutdown_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


def new_worker_id() -> str:
    return f"worker-{uuid.uuid4().hex}"


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``Worker`` keyword arguments from the ``AVTOMATIKA_*`` variables (table in the module doc)."""
    missing = [name for name in (ENV_URL, ENV_TOKEN) if not environ.get(name)]
    if missing:
        raise ConfigError(f"environment variable(s) {', '.join(missing)} must be set to run a worker")
    options: dict[str, Any] = {"orchestrator_url": environ[ENV_URL], "token": environ[ENV_TOKEN]}
    if environ.get(ENV_WORKER_ID):
        options["worker_id"] = environ[ENV_WORKER_ID]
    if environ.get(ENV_MAX_CONCURRENT_TASKS):
        raw = environ[ENV_MAX_CONCURRENT_TASKS]
        try:
            options["max_concurrent_tasks"] = int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_MAX_CONCURRENT_TASKS} must be an integer, got {raw!r}") from None
    return options
