"""Event-driven waiting for the memory backend's queues: no sleep loops, no lost wake-ups."""

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Waiters:
    """Coroutines blocked on one queue, woken one at a time in arrival order.

    At most one woken waiter is pending (woken but not yet resumed). It takes its item and
    then calls the queue's ``signal`` again, which wakes the next waiter only if another item
    is ready, so a burst wakes no more coroutines than it can serve.
    """

    __slots__ = ("_futures", "_pending")

    def __init__(self) -> None:
        self._futures: dict[asyncio.Future[None], None] = {}
        self._pending = False

    def __bool__(self) -> bool:
        """Whether a coroutine is waiting or woken and about to resume."""
        return self._pending or bool(self._futures)

    def wake_one(self) -> None:
        """Wake the longest waiter, unless a woken one has yet to take its item."""
        if self._pending:
            return
        while self._futures:
            future = next(iter(self._futures))
            del self._futures[future]
            # A cancelled waiter's future is done before its coroutine gets to clean up.
            if not future.done():
                future.set_result(None)
                self._pending = True
                return

    async def wait(self, seconds: float, signal: Callable[[], None]) -> None:
        """Block until woken or ``seconds`` pass.

        ``signal`` runs once this waiter is registered, so a queue whose head only becomes
        ready later can arm a timer for it.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures[future] = None
        try:
            signal()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await future
        finally:
            self._futures.pop(future, None)
            if future.done() and not future.cancelled():
                self._pending = False


async def take_or_wait(
    take: Callable[[], T | None],
    waiters: Waiters,
    signal: Callable[[], None],
    wait_seconds: float,
) -> T | None:
    """Take an item now or wait up to ``wait_seconds`` for ``signal`` to offer one.

    ``take`` runs only in a coroutine that is alive and returns straight away, so an item is
    never taken for a waiter that was cancelled; a cancelled waiter that had been woken hands
    its wake-up on instead.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait_seconds
    while True:
        item = take()
        signal()
        if item is not None:
            return item
        remaining = give_up - loop.time()
        if remaining <= 0:
            return None
        try:
            await waiters.wait(remaining, signal)
        except asyncio.CancelledError:
            signal()
            raise
