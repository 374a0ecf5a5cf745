"""OrchestratorEngine: wiring and lifecycle only (run / start / stop).

Everything the engine does to jobs lives in the services it wires together; this module
decides what starts, in which order, and when it stops (how it lets go of its work on the way
is ``shutdown.py``).
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.config import Config
from avtomatika.engine import jobs
from avtomatika.engine.executor import JobExecutor
from avtomatika.engine.notify import JobFinishedCallback, Notifier, WorkerEventCallback
from avtomatika.engine.services import Services
from avtomatika.engine.watcher import Watcher
from avtomatika.engine.webhooks import WebhookSender
from avtomatika.errors import BlueprintError, JobNotFound, JobStateConflict
from avtomatika.observability.logging import setup_logging
from avtomatika.server.app import add_routes, new_app
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
from avtomatika.server.inflight import InFlightRequests
from avtomatika.server.shutdown import LAST_STEP_SECONDS, Budget, Work, let_go
from avtomatika.server.websocket import WS_MANAGER_KEY, WebSocketManager
from avtomatika.storage.base import StorageBackend
from avtomatika.storage.factory import apply_retention

logger = logging.getLogger(__name__)

ENGINE_KEY: "web.AppKey[OrchestratorEngine]" = web.AppKey("engine")


class OrchestratorEngine:
    """The orchestrator service: an aiohttp app plus the executor and watcher loops."""

    def __init__(self, storage: StorageBackend, config: Config) -> None:
        self.storage = storage
        self.config = config
        self.blueprints: dict[str, Blueprint] = {}
        self.on_job_finished: list[JobFinishedCallback] = []
        self.on_worker_event: list[WorkerEventCallback] = []
        setup_logging(config.LOG_LEVEL, config.LOG_FORMAT)
        self.webhook_sender = WebhookSender(
            max_attempts=config.WEBHOOK_MAX_ATTEMPTS,
            timeout=config.WEBHOOK_TIMEOUT_SECONDS,
            queue_size=config.WEBHOOK_QUEUE_SIZE,
            base_delay=config.WEBHOOK_RETRY_BASE_DELAY_SECONDS,
        )
        notify = Notifier(self.webhook_sender, self.on_job_finished, self.on_worker_event)
        self.services = Services(storage, config, self.blueprints, notify)
        self.dispatcher = self.services.dispatcher
        self.ws_manager = WebSocketManager()
        self.services.command_sink = self.ws_manager.send
        self._requests = InFlightRequests()
        self.app = new_app(self._requests)
        self.app[ENGINE_KEY] = self
        self.app[SERVICES_KEY] = self.services
        self.app[WS_MANAGER_KEY] = self.ws_manager
        self.app[DISPATCHER_KEY] = self.dispatcher
        self.app[POLLS_KEY] = self.services.polls
        self.app.cleanup_ctx.append(self._lifespan)
        self.app.on_shutdown.append(self._on_shutdown)
        self._is_setup = False
        self._runner: web.AppRunner | None = None
        self._executor: JobExecutor | None = None
        self._watcher: Watcher | None = None
        self._budget: Budget | None = None
        self.port: int | None = None

    def register_blueprint(self, bp: Blueprint) -> None:
        """Validate and add a blueprint; must happen before the server starts."""
        if self._is_setup:
            raise RuntimeError(f"Cannot register blueprint '{bp.name}' after the engine has started")
        if bp.name in self.blueprints:
            raise BlueprintError(f"Blueprint '{bp.name}' is already registered")
        bp.validate()
        self.blueprints[bp.name] = bp

    def setup(self) -> None:
        """Load blueprints from ``BLUEPRINTS_DIR`` and create routes. Idempotent."""
        if self._is_setup:
            return
        if self.config.BLUEPRINTS_DIR:
            from avtomatika.blueprints.loader import load_blueprints_from_dir

            load_blueprints_from_dir(self, self.config.BLUEPRINTS_DIR)
        self.config.validate()
        apply_retention(self.storage, self.config)
        add_routes(self.app, self.blueprints, with_client_api=self.config.ENABLE_CLIENT_API)
        self._is_setup = True

    async def start(self) -> None:
        """Start serving in the background; returns once the port is listening."""
        self.setup()
        # The shutdown sequence ends every request itself, within its own budget.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=LAST_STEP_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.API_HOST, self.config.API_PORT, backlog=2048)
        await site.start()
        addresses = self._runner.addresses  # (host, port, ...) of each bound socket; port 0 is resolved
        self.port = int(addresses[0][1]) if addresses else self.config.API_PORT
        logger.info("Orchestrator listening on %s:%s", self.config.API_HOST, self.port)

    async def stop(self) -> None:
        """Stop taking work, let what is in flight finish or hand it back, release resources;
        returns within ``SHUTDOWN_TIMEOUT_SECONDS`` (the order is in ``shutdown.py``)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (blocking)."""
        from avtomatika.engine.runtime import run_async

        run_async(self._serve_until_signalled())

    async def _serve_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def create_background_job(
        self,
        blueprint_name: str,
        initial_data: dict[str, Any] | None = None,
        *,
        client_id: str = "internal",
        dispatch_timeout: float | None = None,
        result_timeout: float | None = None,
        security: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Create a job without HTTP (scheduler, embedding code); returns its id."""
        bp = self.blueprints.get(blueprint_name)
        if bp is None:
            raise ValueError(f"Blueprint '{blueprint_name}' is not registered")
        job = jobs.new_job(
            bp,
            client_id,
            initial_data or {},
            dispatch_timeout=dispatch_timeout,
            result_timeout=result_timeout,
            security=security,
            metadata=metadata,
        )
        return await jobs.create(self.services, job)

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel any job; False if it does not exist or already ended."""
        try:
            await jobs.cancel(self.services, job_id, None)
        except (JobNotFound, JobStateConflict):
            return False
        return True

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.storage.initialize()
        session = aiohttp.ClientSession()
        app[HTTP_SESSION_KEY] = session
        self.webhook_sender.start(session)
        self._executor = JobExecutor(self.services)
        self._watcher = Watcher(self.services)
        app[EXECUTOR_KEY] = self._executor
        app[WATCHER_KEY] = self._watcher
        app[EXECUTOR_TASK_KEY] = asyncio.create_task(self._executor.run(), name="executor")
        app[WATCHER_TASK_KEY] = asyncio.create_task(self._watcher.run(), name="watcher")
        yield
        budget = self._budget or Budget(self.config.SHUTDOWN_TIMEOUT_SECONDS)
        self._watcher.stop()
        loops = [app[EXECUTOR_TASK_KEY], app[WATCHER_TASK_KEY]]
        _, unfinished = await asyncio.wait(loops, timeout=budget.left())
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self.webhook_sender.stop(budget.left())
        await session.close()
        try:
            await asyncio.wait_for(self.storage.close(), budget.left())
        except TimeoutError:
            logger.warning("Storage did not close within the shutdown budget")

    async def _on_shutdown(self, app: web.Application) -> None:
        """Runs once the listener is closed: let go of every kind of work (``shutdown.py``)."""
        self._budget = Budget(self.config.SHUTDOWN_TIMEOUT_SECONDS)
        work = Work(self.services.polls, self.ws_manager, self._requests, self._executor, self._watcher)
        await let_go(work, self._budget)
