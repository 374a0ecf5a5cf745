"""Avtomatika: a state-machine orchestrator for long-running AI jobs."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from avtomatika.blueprint import Blueprint
from avtomatika.context import ActionFactory
from avtomatika.data_types import JobContext
from avtomatika.engine import OrchestratorEngine
from avtomatika.storage.base import StorageBackend

try:
    __version__ = version("avtomatika")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

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
    if name == "RedisStorage":
        from avtomatika.storage import RedisStorage

        return RedisStorage
    raise AttributeError(f"module 'avtomatika' has no attribute {name!r}")
