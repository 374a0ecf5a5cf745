"""aiohttp application keys under which the engine exposes its components (api.md §1)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from avtomatika.api.websocket import WebSocketManager
    from avtomatika.dispatcher import Dispatcher
    from avtomatika.engine import OrchestratorEngine
    from avtomatika.executor import JobExecutor
    from avtomatika.polls import HeldPolls
    from avtomatika.services import Services
    from avtomatika.watcher import Watcher

ENGINE_KEY: web.AppKey[OrchestratorEngine] = web.AppKey("engine")
HTTP_SESSION_KEY: web.AppKey[aiohttp.ClientSession] = web.AppKey("http_session")
DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
EXECUTOR_KEY: web.AppKey[JobExecutor] = web.AppKey("executor")
WATCHER_KEY: web.AppKey[Watcher] = web.AppKey("watcher")
WS_MANAGER_KEY: web.AppKey[WebSocketManager] = web.AppKey("ws_manager")
SERVICES_KEY: web.AppKey[Services] = web.AppKey("services")
EXECUTOR_TASK_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("executor_task")
WATCHER_TASK_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("watcher_task")
POLLS_KEY: web.AppKey[HeldPolls] = web.AppKey("polls")
