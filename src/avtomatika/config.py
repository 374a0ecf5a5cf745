"""Configuration from environment variables (spec/config.md §1).

Each setting is declared once, as a :class:`Setting` on :class:`Config`: its name is the variable's,
and it carries the type, the default and the meaning shown in the README's configuration table (a
test keeps the two equal). ``Config()`` reads the environment once; code may reassign any attribute
afterwards, as the Quick Start does. A malformed value raises :class:`ConfigError` naming the variable.
"""

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar, overload

from avtomatika.core.transitions import RetryPolicy
from avtomatika.errors import ConfigError

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}

SIGNATURE_POLICIES = ("require", "verify", "off")


class Setting(Generic[T]):
    """One environment variable: a typed attribute of :class:`Config` with its default and doc."""

    __slots__ = ("default", "doc", "kind", "name")

    def __init__(self, kind: type[T], default: T, doc: str) -> None:
        self.kind, self.default, self.doc = kind, default, doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> "Setting[T]": ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> "T | Setting[T]":
        if instance is None:
            return self
        value: T = instance.__dict__[self.name]
        return value

    def __set__(self, instance: object, value: T) -> None:
        instance.__dict__[self.name] = value

    def parse(self, raw: str) -> T:
        """The value of the variable set to ``raw``; :class:`ConfigError` names it when malformed."""
        convert: Callable[[str], Any] = _boolean if self.kind is bool else self.kind
        try:
            value: T = convert(raw)
        except ValueError:
            expected = (
                "a boolean (use true or false)" if self.kind is bool else f"a valid {self.kind.__name__}"
            )
            raise ConfigError(f"Environment variable {self.name}={raw!r} is not {expected}") from None
        return value


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in _TRUE and lowered not in _FALSE:
        raise ValueError(raw)
    return lowered in _TRUE


class Reputation(NamedTuple):
    """How a result moves its worker's reputation (``engine.results``)."""

    reward_success: float
    penalty_contract_violation: float
    penalty_task_failure: float


class Config:
    """Orchestrator settings. Attribute names are the environment variable names; the order is
    the README's."""

    API_HOST = Setting(str, "0.0.0.0", "address to listen on")
    API_PORT = Setting(int, 8080, "port to listen on")
    ENABLE_CLIENT_API = Setting(
        bool, True, "`false` removes the client API (`/api/...`); workers are still served"
    )
    CLIENT_TOKEN = Setting(str, "secure-orchestrator-token", "the client token")
    GLOBAL_WORKER_TOKEN = Setting(
        str, "secure-worker-token", "the worker token, also the HMAC key of worker message signatures"
    )
    WORKER_SIGNATURE_POLICY = Setting(
        str,
        "require",
        "`require`: workers that sign must sign; `verify`: check signatures when present; `off`",
    )
    INSTANCE_ID = Setting(
        str, "", "this instance's name in step leases and the watcher lock (empty: host name and PID)"
    )
    STORAGE_BACKEND = Setting(str, "memory", "`memory` or `redis`: the storage `avtomatika serve` uses")
    REDIS_URL = Setting(str, "", "the Redis of `STORAGE_BACKEND=redis`")
    REDIS_HOST = Setting(str, "", "without `REDIS_URL`: the Redis host, with `REDIS_PORT` and `REDIS_DB`")
    REDIS_PORT = Setting(int, 6379, "see `REDIS_HOST`")
    REDIS_DB = Setting(int, 0, "see `REDIS_HOST`")
    STORAGE_RETRY_SECONDS = Setting(
        float,
        5.0,
        "how long a request retries an unreachable Redis before it is answered `503` with `Retry-After`",
    )
    RESULT_HOLD_SECONDS = Setting(
        float, 300.0, "how long a worker's result is held (not refused) while Redis is unreachable"
    )
    IDEMPOTENCY_KEY_TTL_SECONDS = Setting(
        float, 86400.0, "how long a create's `Idempotency-Key` returns the job it made"
    )
    MEMORY_JOB_RETENTION_SECONDS = Setting(
        float,
        3600.0,
        "memory storage: a finished job is forgotten (reads `404`) this long after its last change",
    )
    MEMORY_MAX_FINISHED_JOBS = Setting(
        int, 10_000, "memory storage: beyond this many finished jobs, the oldest are forgotten first"
    )
    WORKER_RECORD_RETENTION_SECONDS = Setting(
        float,
        86400.0,
        "a gone (dead or offline) worker's record expires at the latest this long after its last"
        " heartbeat's deadline",
    )
    JOB_MAX_RETRIES = Setting(int, 3, "retries of a failing handler or a transient task failure")
    TASK_RETRY_BASE_DELAY_SECONDS = Setting(float, 1.0, "the first retry's delay; it doubles at each retry")
    TASK_RETRY_MAX_DELAY_SECONDS = Setting(float, 60.0, "the longest retry delay")
    WORKER_TIMEOUT_SECONDS = Setting(
        float, 300.0, "a task's execution limit after pickup, unless `timeout_seconds` is given"
    )
    WORKER_POLL_TIMEOUT_SECONDS = Setting(
        float, 30.0, "long-poll hold (keep it below the worker's HTTP timeout)"
    )
    WORKER_POLL_GRACE_SECONDS = Setting(
        float,
        10.0,
        "a worker with a free slot that has not polled for the poll timeout plus this is sent no tasks,"
        " and its queued tasks go to other workers",
    )
    WORKER_HEALTH_CHECK_INTERVAL_SECONDS = Setting(
        float, 60.0, "a worker silent for twice this is dead; its tasks are re-dispatched"
    )
    NO_WORKER_WAIT_SECONDS = Setting(
        float,
        300.0,
        "how long a task waits for a worker with its skill (unless it has a dispatch timeout)",
    )
    EXECUTOR_MAX_CONCURRENT_JOBS = Setting(int, 1000, "concurrent handler steps")
    EXECUTOR_LEASE_SECONDS = Setting(float, 30.0, "a step's lease; renewed while the handler runs")
    SHUTDOWN_TIMEOUT_SECONDS = Setting(
        float,
        6.0,
        "how long stopping (SIGTERM) may take: steps and requests in flight may finish until 2 s"
        " before its end, then are handed back to other instances",
    )
    WATCHER_INTERVAL_SECONDS = Setting(float, 2.0, "how often deadlines are checked")
    WATCHER_LIMIT = Setting(int, 500, "deadlines handled per check")
    MAX_TRANSITIONS_PER_JOB = Setting(int, 100, "stops cycling blueprints")
    DISPATCHER_MAX_CANDIDATES = Setting(int, 50, "workers considered per dispatch")
    DISPATCHER_SOFT_LIMIT = Setting(
        int, 3, "`overflow` strategy: queued tasks beyond capacity before a dearer worker is chosen"
    )
    WORK_STEALING_ENABLED = Setting(
        bool, True, "a polling worker with an empty queue takes a task queued for a busier one"
    )
    REPUTATION_MIN_THRESHOLD = Setting(float, 0.3, "workers below this reputation are sent no tasks")
    REPUTATION_REWARD_SUCCESS = Setting(float, 0.001, "reputation gained per successful result")
    REPUTATION_PENALTY_CONTRACT_VIOLATION = Setting(
        float, 0.2, "reputation lost per result that breaks the task's output contract"
    )
    REPUTATION_PENALTY_TASK_FAILURE = Setting(
        float, 0.05, "reputation lost per permanent, security or dependency error"
    )
    WEBHOOK_MAX_ATTEMPTS = Setting(int, 5, "deliveries tried per webhook")
    WEBHOOK_TIMEOUT_SECONDS = Setting(float, 10.0, "a webhook delivery's timeout")
    WEBHOOK_RETRY_BASE_DELAY_SECONDS = Setting(
        float, 1.0, "wait before a webhook's second delivery, doubled before each next one"
    )
    WEBHOOK_QUEUE_SIZE = Setting(
        int, 10000, "webhooks waiting for delivery; when it is full, the oldest is dropped"
    )
    LOG_LEVEL = Setting(str, "INFO", "level of the `avtomatika` logger")
    LOG_FORMAT = Setting(str, "json", "`json`, or anything else for text")
    BLUEPRINTS_DIR = Setting(str, "", "register every blueprint found in this directory's modules")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        for setting in SETTINGS:
            raw = env.get(setting.name)
            setting.__set__(self, setting.default if raw is None else setting.parse(raw))
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

    @property
    def reputation(self) -> Reputation:
        return Reputation(
            self.REPUTATION_REWARD_SUCCESS,
            self.REPUTATION_PENALTY_CONTRACT_VIOLATION,
            self.REPUTATION_PENALTY_TASK_FAILURE,
        )


SETTINGS: tuple[Setting[Any], ...] = tuple(v for v in vars(Config).values() if isinstance(v, Setting))
