"""The WebSocket command channel (protocol.md §5.6): the orchestrator pushes ``WorkerCommand``s.

Commands are an accelerator, not the only path: cancellations also arrive in heartbeat replies,
so a lost socket only delays them. The channel reconnects with backoff for as long as it runs.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import msgspec

from avtomatika.core.codec import decode
from avtomatika.protocol.models import WorkerCommand
from avtomatika.worker.backoff import NETWORK_ERRORS, Backoff

logger = logging.getLogger(__name__)

# A connection that lived this long was healthy: the next reconnect starts from the shortest delay.
STABLE_CONNECTION_SECONDS: Final = 10.0


class CommandChannel:
    """Keeps one socket open and hands every decoded command to ``on_command``."""

    def __init__(
        self,
        open_socket: Callable[[], Awaitable[aiohttp.ClientWebSocketResponse]],
        on_command: Callable[[WorkerCommand], None],
        backoff: Backoff,
    ) -> None:
        self._open_socket = open_socket
        self._on_command = on_command
        self._backoff = backoff

    async def run(self) -> None:
        while True:
            opened_at = time.monotonic()
            try:
                async with await self._open_socket() as socket:
                    logger.info("command channel connected")
                    await self._receive(socket)
            except NETWORK_ERRORS as exc:
                logger.info("command channel unavailable: %s", exc)
            if time.monotonic() - opened_at >= STABLE_CONNECTION_SECONDS:
                self._backoff.reset()
            await asyncio.sleep(self._backoff.next_delay())

    async def _receive(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.dispatch(message.data)

    def dispatch(self, frame: str) -> None:
        """Decode one text frame; a malformed frame is logged and skipped, never fatal."""
        try:
            command = msgspec.convert(decode(frame), WorkerCommand)
        except msgspec.MsgspecError as exc:
            logger.warning("ignoring malformed command frame: %s", exc)
            return
        self._on_command(command)
