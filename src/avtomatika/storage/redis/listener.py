"""The pub/sub listener: one connection per storage instance, turning wake-up messages into
local notifications for waiters in this process."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from avtomatika.storage.redis.connection import Options, RespProtocol, connect

logger = logging.getLogger(__name__)

_CONFIRM_SECONDS = 5.0
_IDLE_SECONDS = 30.0
"""A silent connection is pinged after this long, and given up after twice this long."""
_FIRST_RETRY_SECONDS = 0.05
_MAX_RETRY_SECONDS = 5.0

Deliver = Callable[[bytes], None]


class Subscription(Protocol):
    """A confirmed subscription to the wake-up channel, delivering its messages."""

    async def run(self) -> None:
        """Deliver messages until the connection fails, then raise."""

    async def aclose(self) -> None: ...


Subscribe = Callable[[Deliver], Awaitable[Subscription]]
"""Opens a subscription that hands each message to the callback; raises if it cannot."""


class WakeListener:
    """Subscribes to the wake-up channel and hands each message to ``deliver``.

    It reconnects by itself with exponential backoff. Messages published while it was
    disconnected are lost, so after every reconnection ``resync`` wakes all local waiters
    once: a lost message delays work by one reconnection at most and never loses it.
    """

    __slots__ = ("_deliver", "_name", "_resync", "_subscribe", "_task")

    def __init__(self, subscribe: Subscribe, name: str, deliver: Deliver, resync: Callable[[], None]) -> None:
        self._subscribe = subscribe
        self._name = name
        self._deliver = deliver
        self._resync = resync
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (raising if Redis is unreachable), then listen in the background."""
        if self._task is None:
            subscription = await self._subscribe(self._deliver)
            self._task = asyncio.create_task(
                self._run(subscription), name=f"redis-wake-listener:{self._name}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, subscription: Subscription) -> None:
        while True:
            try:
                await subscription.run()
            except Exception as exc:
                logger.warning("Redis wake-up listener lost its connection (%s); reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.aclose()
            subscription = await self._reconnect()
            self._resync()

    async def _reconnect(self) -> Subscription:
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                return await self._subscribe(self._deliver)
            except Exception as exc:
                # The command connection's outage lines tell the operator; this is detail.
                logger.debug("Redis wake-up listener cannot resubscribe (%s); retrying in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)


class OwnSubscription:
    """A subscription on a connection of our own: messages are delivered as they are parsed."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: RespProtocol) -> None:
        self._protocol = protocol

    @classmethod
    async def open(cls, options: Options, channel: str, deliver: Deliver) -> "OwnSubscription":
        protocol = await connect(options, on_message=deliver)
        try:
            # The reply is the server's confirmation: from now on others' messages reach us.
            async with asyncio.timeout(_CONFIRM_SECONDS):
                await protocol.call("SUBSCRIBE", channel)
        except BaseException:
            protocol.close()
            raise
        return cls(protocol)

    async def run(self) -> None:
        lost = self._protocol.lost
        while True:
            done, _ = await asyncio.wait([lost], timeout=_IDLE_SECONDS)
            if done:
                raise RedisConnectionError("The wake-up connection was lost")
            try:
                async with asyncio.timeout(_IDLE_SECONDS):
                    await self._protocol.call("PING")
            except TimeoutError:
                raise RedisConnectionError("The wake-up connection did not answer a PING") from None

    async def aclose(self) -> None:
        await self._protocol.aclose()


class ClientSubscription:
    """A subscription through a redis-py client (one passed in, or a URL only redis-py serves)."""

    __slots__ = ("_deliver", "_pubsub")

    def __init__(self, pubsub: PubSub, deliver: Deliver) -> None:
        self._pubsub = pubsub
        self._deliver = deliver

    @classmethod
    async def open(cls, client: aioredis.Redis, channel: str, deliver: Deliver) -> "ClientSubscription":
        pubsub = client.pubsub()
        subscription = cls(pubsub, deliver)
        try:
            await pubsub.subscribe(channel)
            # Only once the server confirms are messages published by others delivered to us.
            while True:
                message = await pubsub.get_message(timeout=_CONFIRM_SECONDS)
                if message is None:
                    raise RedisConnectionError(f"No confirmation of SUBSCRIBE {channel}")
                if message["type"] == "subscribe":
                    return subscription
        except BaseException:
            await subscription.aclose()
            raise

    async def run(self) -> None:
        awaiting_pong = False
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_SECONDS)
            if message is None:
                if awaiting_pong:
                    raise RedisConnectionError("The wake-up connection did not answer a PING")
                await self._pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            if message["type"] == "message":
                self._deliver(message["data"])

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
