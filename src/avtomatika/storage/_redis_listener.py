"""The pub/sub listener: one connection per storage instance, turning wake-up messages into
local notifications for waiters in this process."""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

_CONFIRM_SECONDS = 5.0
_IDLE_SECONDS = 30.0
"""A silent connection is pinged after this long, and given up after twice this long."""
_FIRST_RETRY_SECONDS = 0.05
_MAX_RETRY_SECONDS = 5.0


class WakeListener:
    """Subscribes to the wake-up channel and hands each message to ``deliver``.

    It reconnects by itself with exponential backoff. Messages published while it was
    disconnected are lost, so after every reconnection ``resync`` wakes all local waiters
    once: a lost message delays work by one reconnection at most and never loses it.
    """

    __slots__ = ("_channel", "_client", "_deliver", "_resync", "_task")

    def __init__(
        self,
        client: aioredis.Redis,
        channel: str,
        deliver: Callable[[bytes], None],
        resync: Callable[[], None],
    ) -> None:
        self._client = client
        self._channel = channel
        self._deliver = deliver
        self._resync = resync
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (raising if Redis is unreachable), then listen in the background."""
        if self._task is None:
            pubsub = await self._subscribe()
            self._task = asyncio.create_task(self._run(pubsub), name=f"redis-wake-listener:{self._channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _subscribe(self) -> PubSub:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # Only once the server confirms are messages published by others delivered to us.
            while True:
                message = await pubsub.get_message(timeout=_CONFIRM_SECONDS)
                if message is None:
                    raise RedisConnectionError(f"No confirmation of SUBSCRIBE {self._channel}")
                if message["type"] == "subscribe":
                    return pubsub
        except BaseException:
            await _close(pubsub)
            raise

    async def _run(self, pubsub: PubSub) -> None:
        while True:
            try:
                await self._pump(pubsub)
            except Exception:
                logger.warning("Redis wake-up listener lost its connection; reconnecting", exc_info=True)
            finally:
                await _close(pubsub)
            pubsub = await self._reconnect()
            self._resync()

    async def _pump(self, pubsub: PubSub) -> None:
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_SECONDS)
            if message is None:
                if awaiting_pong:
                    raise RedisConnectionError("The wake-up connection did not answer a PING")
                await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            if message["type"] == "message":
                self._deliver(message["data"])

    async def _reconnect(self) -> PubSub:
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                return await self._subscribe()
            except Exception as exc:
                logger.warning(
                    "Redis wake-up listener cannot resubscribe (%s); retrying in %.2fs", exc, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(Exception):
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
