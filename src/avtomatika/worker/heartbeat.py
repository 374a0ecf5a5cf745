"""Heartbeat scheduling: every ``interval`` plus the orchestrator's jitter, or at once when nudged.

The orchestrator spreads a fleet's heartbeats by answering each with ``next_heartbeat_jitter_ms``
(protocol.md §5.4, ±2 s around a 15 s interval). The jitter is clamped to half the interval, so a
short interval (as in tests) never turns into a zero or negative delay and a busy loop.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from avtomatika.protocol.models import HeartbeatResponse
from avtomatika.worker.transport import TRANSPORT_ERRORS

logger = logging.getLogger(__name__)


class HeartbeatLoop:
    """Calls ``beat`` on schedule; a failed beat is logged and the schedule continues."""

    def __init__(self, beat: Callable[[], Awaitable[HeartbeatResponse | None]], interval: float) -> None:
        self._beat = beat
        self._interval = interval
        self._delay = interval
        self._nudged = asyncio.Event()

    def nudge(self) -> None:
        """Beat as soon as possible, e.g. because the worker switched between idle and busy."""
        self._nudged.set()

    async def beat_now(self) -> None:
        self._nudged.clear()
        try:
            reply = await self._beat()
        except TRANSPORT_ERRORS as exc:
            logger.warning("heartbeat failed: %s", exc)
            reply = None
        self._delay = self._next_delay(reply)

    async def run(self) -> None:
        while True:
            # Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that races with
            # the event being set, which would make the loop unstoppable.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._delay):
                    await self._nudged.wait()
            await self.beat_now()

    def _next_delay(self, reply: HeartbeatResponse | None) -> float:
        if reply is None:
            return self._interval
        half = self._interval / 2
        jitter = max(-half, min(half, reply.next_heartbeat_jitter_ms / 1000))
        return self._interval + jitter
