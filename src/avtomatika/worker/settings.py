"""Worker settings: validated once at construction, and read from the environment by ``from_env``.

Environment variables (``Worker.from_env``); each also answers to the published SDK's name, so a
deployment configured for the SDK runs our worker unchanged. When both are set, ours wins (and
the SDK's ``WORKER_INDIVIDUAL_TOKEN`` wins over its ``WORKER_TOKEN``, as in the SDK):

===================================  ===========================  ==================================
variable                             SDK name                     meaning
===================================  ===========================  ==================================
``AVTOMATIKA_URL``                   ``ORCHESTRATOR_URL``         orchestrator base URL (required)
``AVTOMATIKA_WORKER_TOKEN``          ``WORKER_INDIVIDUAL_TOKEN``  ``X-Worker-Token`` and the HMAC
                                     or ``WORKER_TOKEN``          signing key (required)
``AVTOMATIKA_WORKER_ID``             ``WORKER_ID``                ``[a-zA-Z0-9_-]+``
                                                                  (default ``worker-<random>``)
``AVTOMATIKA_MAX_CONCURRENT_TASKS``  ``MAX_CONCURRENT_TASKS``     tasks run at once (default 10)
===================================  ===========================  ==================================
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

# Each setting's variables, the first one set winning (see the module doc).
ENV_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "orchestrator_url": (ENV_URL, "ORCHESTRATOR_URL"),
    "token": (ENV_TOKEN, "WORKER_INDIVIDUAL_TOKEN", "WORKER_TOKEN"),
    "worker_id": (ENV_WORKER_ID, "WORKER_ID"),
    "max_concurrent_tasks": (ENV_MAX_CONCURRENT_TASKS, "MAX_CONCURRENT_TASKS"),
}


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
    """``Worker`` keyword arguments from the environment (variables in the module doc)."""
    found = {option: _first_set(environ, names) for option, names in ENV_NAMES.items()}
    missing = [
        " or ".join(ENV_NAMES[option]) for option in ("orchestrator_url", "token") if not found[option]
    ]
    if missing:
        raise ConfigError(f"environment variable(s) {'; '.join(missing)} must be set to run a worker")
    options: dict[str, Any] = {}
    for option, value in found.items():
        if value is None:
            continue
        name, raw = value
        if option == "max_concurrent_tasks":
            try:
                options[option] = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        else:
            options[option] = raw
    return options


def _first_set(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value, with that value."""
    return next(((name, environ[name]) for name in names if environ.get(name)), None)
