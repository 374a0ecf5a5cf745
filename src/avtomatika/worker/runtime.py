"""A started worker: registration, heartbeats, the poll loop, the command channel and shutdown.

``Worker`` (app.py) is the user-facing object; it creates one ``WorkerRuntime`` per
``start()``/``stop()`` cycle, so no state leaks from one run into the next.
"""

import asyncio
import logging
import socket
from collections.abc import Coroutine
from typing import Any, Final

import aiohttp
import msgspec

from avtomatika.protocol.models import (
    Heartbeat,
    HeartbeatResponse,
    Resources,
    WorkerCapabilities,
    WorkerCommand,
    WorkerRegistration,
)
from avtomatika.worker.backoff import Backoff, retry_transient
from avtomatika.worker.commands import CommandChannel
from avtomatika.worker.errors import WorkerUnknownError
from avtomatika.worker.execution import TaskExecutor
from avtomatika.worker.heartbeat import HeartbeatLoop
from avtomatika.worker.settings import WorkerSettings
from avtomatika.worker.skills import SkillRegistry
from avtomatika.worker.transport import TRANSPORT_ERRORS, Transport

logger = logging.getLogger(__name__)

# Pause after an empty long-poll, so a server that answers 204 at once cannot make us spin.
IDLE_POLL_DELAY_SECONDS: Final = 0.01


class WorkerRuntime:
    """The background machinery of one running worker."""

    def __init__(
        self, settings: WorkerSettings, registry: SkillRegistry, session: aiohttp.ClientSession
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._transport = Transport(
            session,
            settings.orchestrator_url,
            settings.token,
            settings.worker_id,
            poll_timeout=settings.poll_timeout,
        )
        self._heartbeats = HeartbeatLoop(self._beat, settings.heartbeat_interval)
        self._executor = TaskExecutor(
            registry,
            self._transport,
            settings.worker_id,
            settings.max_concurrent_tasks,
            self._heartbeats.nudge,
        )
        self._commands = CommandChannel(
            self._transport.open_command_socket, self._on_command, Backoff(1.0, 30.0)
        )
        self._announced_hash: str | None = None
        self._stopping = False
        self._poller: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Register (retrying while the orchestrator is unreachable), announce ourselves, start the loops."""
        await self._register_until_accepted()
        await self._heartbeats.beat_now()
        self._poller = self._spawn(self._poll_loop(), "poll")
        self._background = [self._spawn(self._heartbeats.run(), "heartbeat")]
        if self._settings.websocket:
            self._background.append(self._spawn(self._commands.run(), "commands"))

    async def stop(self) -> None:
        """Stop polling, drain running tasks, then go offline (protocol.md §5.4)."""
        self._stopping = True
        if self._poller is not None:
            await _cancel_and_wait([self._poller])
        # Report busy while draining: an idle worker would still be sent tasks it will never poll.
        self._heartbeats.nudge()
        await self._executor.drain(self._settings.shutdown_timeout)
        await _cancel_and_wait(self._background)
        try:
            await self._transport.heartbeat(self._heartbeat("offline"))
        except TRANSPORT_ERRORS as exc:
            logger.info("final offline heartbeat not delivered: %s", exc)

    async def _register_until_accepted(self) -> None:
        await retry_transient(self._register, Backoff(1.0, 60.0), "registration")

    async def _register(self) -> None:
        await self._transport.register(self._registration())
        self._announced_hash = self._registry.contract_hash
        logger.info(
            "worker %s registered with %s (%d skill(s))",
            self._settings.worker_id,
            self._settings.orchestrator_url,
            len(self._registry),
        )

    def _registration(self) -> WorkerRegistration:
        settings = self._settings
        return WorkerRegistration(
            worker_id=settings.worker_id,
            worker_type=settings.worker_type,
            supported_skills=self._registry.infos(),
            resources=msgspec.structs.replace(
                settings.resources or Resources(), max_concurrent_tasks=settings.max_concurrent_tasks
            ),
            installed_software=settings.installed_software,
            installed_artifacts=settings.installed_artifacts,
            capabilities=WorkerCapabilities(
                hostname=socket.gethostname(),
                cost_per_skill=settings.cost_per_skill,
                extra={**(settings.extra or {}), "websockets": settings.websocket},
            ),
            skills_hash=self._registry.contract_hash,
        )

    def _heartbeat(self, status: str | None = None) -> Heartbeat:
        contract = self._registry.contract_hash
        if status is None:
            status = "busy" if self._stopping or self._executor.at_capacity else "idle"
        return Heartbeat(
            worker_id=self._settings.worker_id,
            status=status,
            current_tasks=self._executor.task_ids,
            # The skill list travels only when it changed since it was last announced (§5.4).
            supported_skills=self._registry.infos() if contract != self._announced_hash else None,
            skills_hash=contract,
        )

    async def _beat(self) -> HeartbeatResponse | None:
        heartbeat = self._heartbeat()
        try:
            reply = await self._transport.heartbeat(heartbeat)
        except WorkerUnknownError:
            # The orchestrator restarted or our record expired (§11 #5): register again and
            # announce our status right after, instead of waiting a full interval.
            logger.warning("orchestrator does not know worker %s; re-registering", self._settings.worker_id)
            await self._register()
            self._heartbeats.nudge()
            return None
        if heartbeat.supported_skills is not None:
            self._announced_hash = heartbeat.skills_hash
        if reply is None:
            return None
        if reply.require_full_sync:
            self._announced_hash = None
            self._heartbeats.nudge()
        for task_id in reply.cancel_task_ids:
            if self._executor.cancel(task_id):
                logger.info("task %s cancelled by the orchestrator (heartbeat)", task_id)
        return reply

    async def _poll_loop(self) -> None:
        backoff = Backoff(0.5, 30.0)
        while True:
            # Exactly one poll in flight while a slot is free; none at capacity.
            await self._executor.wait_for_slot()
            try:
                payload = await self._transport.poll()
            except TRANSPORT_ERRORS as exc:
                delay = backoff.next_delay()
                logger.warning("poll failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if payload is None:
                await asyncio.sleep(IDLE_POLL_DELAY_SECONDS)
            else:
                self._executor.submit(payload)

    def _on_command(self, command: WorkerCommand) -> None:
        if command.command == "cancel_task" and command.task_id:
            if self._executor.cancel(command.task_id):
                logger.info("task %s cancelled by the orchestrator (command)", command.task_id)
        else:
            logger.info("ignoring unsupported command %r", command.command)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=f"avtomatika-worker-{name}")
        task.add_done_callback(_log_crash)
        return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.critical("worker loop %s stopped unexpectedly", task.get_name(), exc_info=task.exception())


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    # A loop that crashed was already logged by ``_log_crash``; stopping must not re-raise it.
    await asyncio.gather(*tasks, return_exceptions=True)
