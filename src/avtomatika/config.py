"""Configuration from environment variables (spec/config.md §1).

``Config()`` reads the environment once; code may reassign any attribute afterwards, as
the Quick Start does. A malformed value raises :class:`ConfigError` naming the variable.
"""

import os
import socket
from collections.abc import Mapping
from typing import Any

from avtomatika.core.transitions import RetryPolicy
from avtomatika.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}

# name -> (type, default). The order follows spec/config.md.
_FIELDS: dict[str, tuple[type, Any]] = {
    "INSTANCE_ID": (str, None),
    "STORAGE_BACKEND": (str, "memory"),
    "REDIS_URL": (str, ""),
    "REDIS_HOST": (str, ""),
    "REDIS_PORT": (int, 6379),
    "REDIS_DB": (int, 0),
    "STORAGE_RETRY_SECONDS": (float, 5.0),
    "RESULT_HOLD_SECONDS": (float, 300.0),
    "IDEMPOTENCY_KEY_TTL_SECONDS": (float, 86400.0),
    "MEMORY_JOB_RETENTION_SECONDS": (float, 3600.0),
    "MEMORY_MAX_FINISHED_JOBS": (int, 10_000),
    "WORKER_RECORD_RETENTION_SECONDS": (float, 86400.0),
    "API_HOST": (str, "0.0.0.0"),
    "API_PORT": (int, 8080),
    "ENABLE_CLIENT_API": (bool, True),
    "CLIENT_TOKEN": (str, "secure-orchestrator-token"),
    "GLOBAL_WORKER_TOKEN": (str, "secure-worker-token"),
    "WORKER_SIGNATURE_POLICY": (str, "require"),
    "LOG_LEVEL": (str, "INFO"),
    "LOG_FORMAT": (str, "json"),
    "TZ": (str, "UTC"),
    "WORKER_TIMEOUT_SECONDS": (float, 300.0),
    "WORKER_POLL_TIMEOUT_SECONDS": (float, 30.0),
    "WORKER_POLL_GRACE_SECONDS": (float, 10.0),
    "WORKER_HEALTH_CHECK_INTERVAL_SECONDS": (float, 60.0),
    "JOB_MAX_RETRIES": (int, 3),
    "TASK_RETRY_BASE_DELAY_SECONDS": (float, 1.0),
    "TASK_RETRY_MAX_DELAY_SECONDS": (float, 60.0),
    "NO_WORKER_WAIT_SECONDS": (float, 300.0),
    "WATCHER_INTERVAL_SECONDS": (float, 2.0),
    "WATCHER_LIMIT": (int, 500),
    "EXECUTOR_MAX_CONCURRENT_JOBS": (int, 1000),
    "EXECUTOR_LEASE_SECONDS": (float, 30.0),
    "SHUTDOWN_TIMEOUT_SECONDS": (float, 6.0),
    "MAX_TRANSITIONS_PER_JOB": (int, 100),
    "REPUTATION_PENALTY_CONTRACT_VIOLATION": (float, 0.2),
    "REPUTATION_PENALTY_TASK_FAILURE": (float, 0.05),
    "REPUTATION_REWARD_SUCCESS": (float, 0.001),
    "REPUTATION_MIN_THRESHOLD": (float, 0.3),
    "DISPATCHER_SOFT_LIMIT": (int, 3),
    "DISPATCHER_MAX_CANDIDATES": (int, 50),
    "WORK_STEALING_ENABLED": (bool, True),
    "STRICT_EVENT_VALIDATION": (bool, True),
    "WEBHOOK_MAX_ATTEMPTS": (int, 5),
    "WEBHOOK_TIMEOUT_SECONDS": (float, 10.0),
    "WEBHOOK_QUEUE_SIZE": (int, 10000),
    "BLUEPRINTS_DIR": (str, ""),
}

SIGNATURE_POLICIES = ("require", "verify", "off")


def _parse(name: str, kind: type, raw: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"Environment variable {name}={raw!r} is not a boolean (use true or false)")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={raw!r} is not a valid {kind.__name__}") from None


class Config:
    """Orchestrator settings. Attribute names are the environment variable names."""

    INSTANCE_ID: str
    STORAGE_BACKEND: str
    REDIS_URL: str
    REDIS_HOST: str
    REDIS_PORT: int
    REDIS_DB: int
    STORAGE_RETRY_SECONDS: float
    RESULT_HOLD_SECONDS: float
    IDEMPOTENCY_KEY_TTL_SECONDS: float
    MEMORY_JOB_RETENTION_SECONDS: float
    MEMORY_MAX_FINISHED_JOBS: int
    WORKER_RECORD_RETENTION_SECONDS: float
    API_HOST: str
    API_PORT: int
    ENABLE_CLIENT_API: bool
    CLIENT_TOKEN: str
    GLOBAL_WORKER_TOKEN: str
    WORKER_SIGNATURE_POLICY: str
    LOG_LEVEL: str
    LOG_FORMAT: str
    TZ: str
    WORKER_TIMEOUT_SECONDS: float
    WORKER_POLL_TIMEOUT_SECONDS: float
    WORKER_POLL_GRACE_SECONDS: float
    WORKER_HEALTH_CHECK_INTERVAL_SECONDS: float
    JOB_MAX_RETRIES: int
    TASK_RETRY_BASE_DELAY_SECONDS: float
    TASK_RETRY_MAX_DELAY_SECONDS: float
    NO_WORKER_WAIT_SECONDS: float
    WATCHER_INTERVAL_SECONDS: float
    WATCHER_LIMIT: int
    EXECUTOR_MAX_CONCURRENT_JOBS: int
    EXECUTOR_LEASE_SECONDS: float
    SHUTDOWN_TIMEOUT_SECONDS: float
    MAX_TRANSITIONS_PER_JOB: int
    REPUTATION_PENALTY_CONTRACT_VIOLATION: float
    REPUTATION_PENALTY_TASK_FAILURE: float
    REPUTATION_REWARD_SUCCESS: float
    REPUTATION_MIN_THRESHOLD: float
    DISPATCHER_SOFT_LIMIT: int
    DISPATCHER_MAX_CANDIDATES: int
    WORK_STEALING_ENABLED: bool
    STRICT_EVENT_VALIDATION: bool
    WEBHOOK_MAX_ATTEMPTS: int
    WEBHOOK_TIMEOUT_SECONDS: float
    WEBHOOK_QUEUE_SIZE: int
    BLUEPRINTS_DIR: str

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        for name, (kind, default) in _FIELDS.items():
            raw = env.get(name)
            setattr(self, name, default if raw is None else _parse(name, kind, raw))
        if not self.INSTANCE_ID:
            self.INSTANCE_ID = f"{socket.gethostname()}-{os.getpid()}"
        self.LOG_LEVEL = self.LOG_LEVEL.upper()

    def validate(self) -> None:
        """Check values that only make sense together; called when the engine starts."""
        if self.WORKER_SIGNATURE_POLICY not in SIGNATURE_POLICIES:
            policy = self.WORKER_SIGNATURE_POLICY
            raise ConfigError(f"WORKER_SIGNATURE_POLICY={policy!r} must be one of {SIGNATURE_POLICIES}")
        positive = (
            "WORKER_POLL_TIMEOUT_SECONDS",
            "EXECUTOR_LEASE_SECONDS",
            "WATCHER_INTERVAL_SECONDS",
            "IDEMPOTENCY_KEY_TTL_SECONDS",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.SHUTDOWN_TIMEOUT_SECONDS < 0:
            budget = self.SHUTDOWN_TIMEOUT_SECONDS
            raise ConfigError(f"SHUTDOWN_TIMEOUT_SECONDS must not be negative, got {budget!r}")
        if self.EXECUTOR_MAX_CONCURRENT_JOBS < 1:
            raise ConfigError("EXECUTOR_MAX_CONCURRENT_JOBS must be at least 1")
        retention = (
            "MEMORY_JOB_RETENTION_SECONDS",
            "MEMORY_MAX_FINISHED_JOBS",
            "WORKER_RECORD_RETENTION_SECONDS",
        )
        for name in retention:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")

    @property
    def redis_url(self) -> str:
        """``REDIS_URL``, else one built from ``REDIS_HOST``/``REDIS_PORT``/``REDIS_DB``."""
        if self.REDIS_URL:
            return self.REDIS_URL
        if self.REDIS_HOST:
            return f"redis://{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"
        return ""

    @property
    def poll_silence_limit(self) -> float:
        """A worker with a free slot that has not polled for this long takes no tasks."""
        return self.WORKER_POLL_TIMEOUT_SECONDS + self.WORKER_POLL_GRACE_SECONDS

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.JOB_MAX_RETRIES, self.TASK_RETRY_BASE_DELAY_SECONDS, self.TASK_RETRY_MAX_DELAY_SECONDS
        )

    @property
    def worker_ttl(self) -> float:
        """A worker missing heartbeats for this long is considered dead."""
        return 2 * self.WORKER_HEALTH_CHECK_INTERVAL_SECONDS
