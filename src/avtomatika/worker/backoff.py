"""Exponential backoff shared by every retry loop of the worker (poll, register, results, socket)."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import aiohttp

from avtomatika.worker.errors import OrchestratorError

logger = logging.getLogger(__name__)
T = TypeVar("T")

NETWORK_ERRORS: Final = (aiohttp.ClientError, TimeoutError)


class Backoff:
    """Delays ``initial``, ``2 * initial``, … capped at ``maximum``, with ±10 % jitter.

    The jitter keeps a fleet of workers that lost the orchestrator at the same instant from
    reconnecting in lock-step.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self._next = self._initial


async def retry_transient(
    call: Callable[[], Awaitable[T]], backoff: Backoff, what: str, attempts: int = 0
) -> T:
    """Call until it succeeds: network errors and 5xx are retried with backoff, a 4xx is raised at
    once (retrying cannot fix the request). With ``attempts`` > 0 the last failure is raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except OrchestratorError as exc:
            if exc.status < 500 or attempt == attempts:
                raise
            failure: Exception = exc
        except NETWORK_ERRORS as exc:
            if attempt == attempts:
                raise
            failure = exc
        delay = backoff.next_delay()
        of = f"/{attempts}" if attempts else ""
        logger.warning(
            "%s not delivered (attempt %d%s), retrying in %.1fs: %s", what, attempt, of, delay, failure
        )
        await asyncio.sleep(delay)
