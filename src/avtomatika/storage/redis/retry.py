"""Riding out Redis outages: bounded retries, one log line per outage start and end.

Every command the backend sends may be sent again. Reads, ``ZADD`` and ``ZREM`` are idempotent;
a job change carries a token of its own, by which the job script recognises a change it applied
already (its reply was lost); a command that takes work gives it back when its late reply
finds the caller gone (``Commands.take``); the other scripts compare owners or tokens, so running
one twice is running it once. So a failed or unanswered
attempt is retried for up to ``retry_seconds``, then :class:`StorageUnavailable` is raised (the
HTTP API answers 503 with ``Retry-After``).

While an outage lasts, callers do not pile commands onto a dead or stalled connection: one probe
(``PING``) runs with backoff, and retries wait for it to get an answer.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import AuthenticationError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from avtomatika.errors import StorageUnavailable
from avtomatika.storage.redis.connection import Arg, Command, Commands, GiveBack

logger = logging.getLogger("avtomatika.storage.redis.backend")

T = TypeVar("T")

ATTEMPT_TIMEOUT = 2.0
"""Seconds one attempt may wait for its reply before it counts as failed (a stalled server)."""
PROBE_BACKOFF = (0.05, 0.1, 0.25)
"""Pauses between probes while Redis is unreachable; the last one repeats (one PING per instance
four times a second is nothing to a server, and calls resume soon after it is back)."""
REPORT_EVERY = 10.0
"""Seconds between the log lines that count an ongoing outage."""
RETRYABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,  # refused, reset, closed; also LOADING while Redis replays its AOF
    RedisTimeoutError,
    TimeoutError,
    ReadOnlyError,  # a primary demoted during a failover
)
FATAL: tuple[type[Exception], ...] = (AuthenticationError,)
"""Connection errors that are a deployment's mistake, not an outage: raised at once."""


class Outage:
    """Whether Redis answers, as callers last saw it. The first failure starts a probe and logs
    one line; while the outage lasts, a line every ``REPORT_EVERY`` seconds counts the failed
    calls; the first answer ends it with one line."""

    def __init__(self, probe: Callable[[], Awaitable[object]], retry_after: float) -> None:
        self._probe = probe
        self._retry_after = retry_after
        self._up = asyncio.Event()
        self._up.set()
        self._prober: asyncio.Task[None] | None = None
        self._failures = 0

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def failed(self, exc: BaseException) -> None:
        """A call failed with a retryable error."""
        self._failures += 1
        if self._prober is None:
            self._up.clear()
            logger.warning("Redis is unreachable (%s); retrying, requests wait or get 503", _describe(exc))
            self._prober = asyncio.create_task(self._probe_until_up(), name="redis-outage-probe")

    def gave_up(self, what: str) -> StorageUnavailable:
        return StorageUnavailable(f"Storage (Redis) is unreachable: {what}", self._retry_after)

    async def wait_up(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the outage to end; True if it did."""
        if self._up.is_set():
            return True
        if timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

    async def _probe_until_up(self) -> None:
        loop = asyncio.get_running_loop()
        started = reported = loop.time()
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    await self._probe()
                break
            except FATAL:
                break  # Redis answers: the calls themselves raise the error
            except RETRYABLE as exc:
                if loop.time() - reported >= REPORT_EVERY:
                    reported = loop.time()
                    logger.warning(
                        "Redis still unreachable after %.0fs (%s); %d failed calls so far",
                        reported - started,
                        _describe(exc),
                        self._failures,
                    )
            await asyncio.sleep(PROBE_BACKOFF[min(attempt, len(PROBE_BACKOFF) - 1)])
            attempt += 1
        logger.warning(
            "Redis is reachable again after %.1fs; %d calls failed meanwhile",
            loop.time() - started,
            self._failures,
        )
        self._failures = 0
        self._prober = None
        self._up.set()


class Resilient:
    """:class:`Commands` that retry retryable failures for up to ``retry_seconds`` (see the
    module docstring), then raise :class:`StorageUnavailable`."""

    __slots__ = ("_inner", "_outage", "_retry_seconds")

    def __init__(self, inner: Commands, retry_seconds: float) -> None:
        self._inner = inner
        self._retry_seconds = retry_seconds
        self._outage = Outage(lambda: inner.execute("PING"), retry_after=max(1.0, retry_seconds))

    @property
    def inner(self) -> Commands:
        """The commands retried."""
        return self._inner

    async def execute(self, *args: Arg) -> Any:
        return await self._retry(lambda: self._inner.execute(*args), args)

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        return await self._retry(lambda: self._inner.execute_many(commands), commands[0] if commands else ())

    async def take(self, command: Command, give_back: GiveBack) -> Any:
        return await self._retry(lambda: self._inner.take(command, give_back), command)

    async def aclose(self) -> None:
        await self._outage.aclose()
        await self._inner.aclose()

    async def _retry(self, attempt: Callable[[], Awaitable[T]], command: Command) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_seconds
        while True:
            if not await self._outage.wait_up(deadline - loop.time()):
                raise self._outage.gave_up(f"no answer within {self._retry_seconds:g}s")
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    return await attempt()
            except RETRYABLE as exc:
                if isinstance(exc, FATAL):
                    raise
                self._outage.failed(exc)
                if loop.time() >= deadline:
                    raise self._outage.gave_up(f"{_name(command)} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _name(command: Command) -> str:
    return str(command[0]) if command else "command"
