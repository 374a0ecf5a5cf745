"""The seed's import path of the aiohttp application keys (api.md §1)."""

from avtomatika.server.app_keys import (
    DISPATCHER_KEY,
    EXECUTOR_KEY,
    EXECUTOR_TASK_KEY,
    HTTP_SESSION_KEY,
    POLLS_KEY,
    SERVICES_KEY,
    WATCHER_KEY,
    WATCHER_TASK_KEY,
)
from avtomatika.server.orchestrator import ENGINE_KEY
from avtomatika.server.websocket import WS_MANAGER_KEY

__all__ = [
    "DISPATCHER_KEY",
    "ENGINE_KEY",
    "EXECUTOR_KEY",
    "EXECUTOR_TASK_KEY",
    "HTTP_SESSION_KEY",
    "POLLS_KEY",
    "SERVICES_KEY",
    "WATCHER_KEY",
    "WATCHER_TASK_KEY",
    "WS_MANAGER_KEY",
]
