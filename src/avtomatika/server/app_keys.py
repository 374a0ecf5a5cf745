"""aiohttp application keys of the engine's parts (api.md §1). ``ENGINE_KEY`` lives beside
:class:`OrchestratorEngine` and ``WS_MANAGER_KEY`` beside the socket manager, so no module
here imports the modules that import it."""

import asyncio

import aiohttp
from aiohttp import web

from avtomatika.engine.dispatcher import Dispatcher
from avtomatika.engine.executor import JobExecutor
from avtomatika.engine.polls import HeldPolls
from avtomatika.engine.services import Services
from avtomatika.engine.watcher import Watcher

HTTP_SESSION_KEY: web.AppKey[aiohttp.ClientSession] = web.AppKey("http_session")
DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
EXECUTOR_KEY: web.AppKey[JobExecutor] = web.AppKey("executor")
WATCHER_KEY: web.AppKey[Watcher] = web.AppKey("watcher")
SERVICES_KEY: web.AppKey[Services] = web.AppKey("services")
EXECUTOR_TASK_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("executor_task")
WATCHER_TASK_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("watcher_task")
POLLS_KEY: web.AppKey[HeldPolls] = web.AppKey("polls")
