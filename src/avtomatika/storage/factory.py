"""Chooses the storage backend from configuration (``STORAGE_BACKEND``, ``REDIS_URL``) and
applies the configuration's retention to any backend the engine is given."""

from avtomatika.config import Config
from avtomatika.errors import ConfigError
from avtomatika.storage.base import StorageBackend
from avtomatika.storage.memory.backend import MemoryStorage


def storage_from_config(config: Config) -> StorageBackend:
    """Memory by default; Redis when ``STORAGE_BACKEND=redis`` (the URL is then required)."""
    backend = config.STORAGE_BACKEND.strip().lower()
    if backend == "memory":
        return MemoryStorage()
    if backend == "redis":
        url = config.redis_url
        if not url:
            raise ConfigError("STORAGE_BACKEND=redis needs REDIS_URL (or REDIS_HOST)")
        try:
            from avtomatika.storage import RedisStorage
        except ImportError as exc:
            # The package names the extra to install when that is what is missing.
            raise ConfigError(f"STORAGE_BACKEND=redis: {exc}") from exc
        storage: StorageBackend = RedisStorage.from_url(url, retry_seconds=config.STORAGE_RETRY_SECONDS)
        return storage
    raise ConfigError(f"STORAGE_BACKEND={config.STORAGE_BACKEND!r} must be 'memory' or 'redis'")


def apply_retention(storage: StorageBackend, config: Config) -> None:
    """Set the backend's retention from ``config``: the worker record retention on every
    backend, the bounds on finished jobs on memory storage (Redis keeps its own ``job_retention``)."""
    storage.worker_retention = config.WORKER_RECORD_RETENTION_SECONDS
    if isinstance(storage, MemoryStorage):
        storage.job_retention = config.MEMORY_JOB_RETENTION_SECONDS
        storage.max_finished_jobs = config.MEMORY_MAX_FINISHED_JOBS
