"""aiohttp application keys under which the engine exposes its components (api.md §1)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    pass

ENGINE_KEY = web.AppKey["OrchestratorEngine"]("engine")
HTTP_SESSION_KEY = web.AppKey[aiohttp.ClientSession]("http_session")
DISPATCHER_KEY = web.AppKey["Dispatcher"]("dispatcher")
EXECUTOR_KEY = web.AppKey["JobExecutor"]("executor")
WATCHER_KEY = web.AppKey["Watcher"]("watcher")
WS_MANAGER_KEY = web.AppKey["WebSocketManager"]("ws_manager")
SERVICES_KEY = web.AppKey["Services"]("services")
EXECUTOR_TASK_KEY = web.AppKey["asyncio.Task[None]"]("executor_task")
WATCHER_TASK_KEY = web.AppKey["asyncio.Task[None]"]("watcher_task")
POLLS_KEY: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("polls")
