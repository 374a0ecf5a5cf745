"""``Worker``: the first-party RXON v1 worker client, speaking the same protocol as the SDK."""

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from avtomatika.protocol.models import InstalledArtifact, Resources, SkillInfo
from avtomatika.worker.runtime import WorkerRuntime
from avtomatika.worker.settings import WorkerSettings, new_worker_id, options_from_env
from avtomatika.worker.skills import SkillRegistry, make_skill

logger = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])


class Worker:
    """Runs skills for an Avtomatika orchestrator.

    ``orchestrator_url`` and ``token`` locate and authenticate the orchestrator; ``worker_id``
    defaults to ``worker-<random hex>``. ``max_concurrent_tasks`` bounds the tasks run at once (and
    is advertised as ``resources.max_concurrent_tasks``). ``heartbeat_interval``, ``poll_timeout``
    (the server's long-poll hold; the client waits 5 s longer) and ``shutdown_timeout`` (how long
    ``stop()`` lets running tasks finish) are in seconds. ``websocket`` opens the command channel
    through which the orchestrator cancels tasks at once. ``resources``, ``installed_software``,
    ``installed_artifacts``, ``cost_per_skill`` and ``extra`` (``capabilities.extra``) are
    advertised at registration for the dispatcher's matching. Pass ``session`` to share an
    ``aiohttp.ClientSession``; the worker then leaves it open on ``stop()``.
    """

    def __init__(
        self,
        orchestrator_url: str,
        token: str,
        *,
        worker_id: str | None = None,
        worker_type: str = "generic",
        max_concurrent_tasks: int = 10,
        heartbeat_interval: float = 15.0,
        poll_timeout: float = 30.0,
        shutdown_timeout: float = 30.0,
        websocket: bool = True,
        resources: Resources | None = None,
        installed_software: dict[str, str] | None = None,
        installed_artifacts: list[InstalledArtifact] | None = None,
        cost_per_skill: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = WorkerSettings(
            orchestrator_url=orchestrator_url,
            token=token,
            worker_id=worker_id or new_worker_id(),
            worker_type=worker_type,
            max_concurrent_tasks=max_concurrent_tasks,
            heartbeat_interval=heartbeat_interval,
            poll_timeout=poll_timeout,
            shutdown_timeout=shutdown_timeout,
            websocket=websocket,
            resources=resources,
            installed_software=installed_software,
            installed_artifacts=installed_artifacts,
            cost_per_skill=cost_per_skill,
            extra=extra,
        )
        self._registry = SkillRegistry()
        self._session = session
        self._runtime: WorkerRuntime | None = None
        self._owned_session: aiohttp.ClientSession | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A worker configured by ``AVTOMATIKA_URL``, ``AVTOMATIKA_WORKER_TOKEN``,
        ``AVTOMATIKA_WORKER_ID`` and ``AVTOMATIKA_MAX_CONCURRENT_TASKS``, or the published SDK's
        names for them (see ``settings``); keyword ``options`` are passed to the constructor and
        take precedence.
        """
        return cls(**{**options_from_env(os.environ if environ is None else environ), **options})

    @property
    def worker_id(self) -> str:
        return self.settings.worker_id

    def skill(
        self,
        name: str,
        *,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        output_statuses: list[str] | None = None,
        type: str | None = None,
        description: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated async or sync function as the handler of skill ``name``.

        ``type`` is an alternative name the orchestrator may dispatch the skill by; the schemas,
        ``output_statuses`` (custom result statuses) and ``description`` are advertised as given.
        Parameters are injected by name (see ``avtomatika.worker.skills``); the return value is
        mapped to a result as described in ``avtomatika.worker.results``. The function is
        returned unchanged, so it stays directly callable in tests.
        """
        info = SkillInfo(
            name=name,
            type=type,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            output_statuses=output_statuses,
        )

        def register(handler: Handler) -> Handler:
            self._registry.add(make_skill(info, handler))
            return handler

        return register

    async def start(self) -> None:
        """Register with the orchestrator and start working in the background.

        Returns once registered and announced; an unreachable orchestrator is retried with
        backoff, while a refusal (4xx, e.g. a wrong token) raises ``OrchestratorError``.
        """
        if self._runtime is not None:
            raise RuntimeError(f"worker '{self.worker_id}' is already started")
        session = self._session
        if session is None:
            session = self._owned_session = aiohttp.ClientSession()
        runtime = WorkerRuntime(self.settings, self._registry, session)
        try:
            await runtime.start()
        except BaseException:
            await self._close_owned_session()
            raise
        self._runtime = runtime

    async def stop(self) -> None:
        """Stop taking tasks, let running ones finish (up to ``shutdown_timeout``), go offline."""
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        try:
            await runtime.stop()
        finally:
            await self._close_owned_session()

    def run(self) -> None:
        """Run until SIGINT or SIGTERM, then stop gracefully. Blocks; starts its own event loop."""
        asyncio.run(self._run_until_signalled())

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def _run_until_signalled(self) -> None:
        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_requested.set)
        try:
            # A signal while registration still waits for an unreachable orchestrator stops it too.
            starting = asyncio.create_task(self.start())
            signalled = asyncio.create_task(stop_requested.wait())
            await asyncio.wait((starting, signalled), return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                return
            signalled.cancel()
            starting.result()
            try:
                logger.info("worker %s running; stop with SIGINT or SIGTERM", self.worker_id)
                await stop_requested.wait()
                logger.info("worker %s stopping", self.worker_id)
            finally:
                await self.stop()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _close_owned_session(self) -> None:
        session, self._owned_session = self._owned_session, None
        if session is not None:
            await session.close()
