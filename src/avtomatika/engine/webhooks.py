"""Completion webhooks, delivered in the background so the engine never waits on a client.

Each delivery is retried with exponential backoff; a full queue drops the oldest intent
with a warning rather than blocking a transition.
"""

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import msgspec

from avtomatika.core.codec import encode

logger = logging.getLogger(__name__)

SENDERS = 4


class WebhookPayload(msgspec.Struct):
    event: str
    job_id: str
    status: str
    result: Any
    error: str | None
    security: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class WebhookSender:
    def __init__(
        self, *, max_attempts: int, timeout: float, queue_size: int, base_delay: float = 1.0
    ) -> None:
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._base_delay = base_delay
        self._queue: asyncio.Queue[tuple[str, WebhookPayload]] = asyncio.Queue(maxsize=queue_size)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._tasks = [asyncio.create_task(self._run(), name=f"webhook-sender-{i}") for i in range(SENDERS)]

    def send(self, url: str, payload: WebhookPayload) -> None:
        if self._queue.full():
            dropped = self._queue.get_nowait()
            logger.warning("Webhook queue full; dropped %s for job %s", dropped[1].event, dropped[1].job_id)
        self._queue.put_nowait((url, payload))

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded by ``drain_timeout``), then stop the senders."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self) -> None:
        while True:
            url, payload = await self._queue.get()
            try:
                await self._deliver(url, payload)
            finally:
                self._queue.task_done()

    async def _deliver(self, url: str, payload: WebhookPayload) -> None:
        assert self._session is not None
        body = encode(payload)
        headers = {"Content-Type": "application/json"}
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._session.post(url, data=body, headers=headers, timeout=self._timeout) as resp:
                    if 200 <= resp.status < 300:
                        return
                    reason = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            if attempt < self._max_attempts:
                await asyncio.sleep(self._base_delay * 2 ** (attempt - 1))
        logger.warning(
            "Webhook %s for job %s undelivered after %d attempts (%s)",
            payload.event,
            payload.job_id,
            self._max_attempts,
            reason,
        )
