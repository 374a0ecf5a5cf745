"""Avtomatika: a state-machine orchestrator for long-running AI jobs.

The names below are imported on first access, so ``import avtomatika.worker`` (or any one room)
loads neither the server, the engine nor storage.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avtomatika.blueprints.actions import ActionFactory
    from avtomatika.blueprints.blueprint import Blueprint
    from avtomatika.blueprints.job_context import JobContext
    from avtomatika.server.orchestrator import OrchestratorEngine
    from avtomatika.storage.base import StorageBackend
    from avtomatika.storage.redis.backend import RedisStorage

try:
    __version__ = version("avtomatika")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "ActionFactory": "avtomatika.blueprints.actions",
    "Blueprint": "avtomatika.blueprints.blueprint",
    "JobContext": "avtomatika.blueprints.job_context",
    "OrchestratorEngine": "avtomatika.server.orchestrator",
    "RedisStorage": "avtomatika.storage",
    "StorageBackend": "avtomatika.storage.base",
}

__all__ = [
    "ActionFactory",
    "Blueprint",
    "JobContext",
    "OrchestratorEngine",
    "RedisStorage",
    "StorageBackend",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'avtomatika' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
