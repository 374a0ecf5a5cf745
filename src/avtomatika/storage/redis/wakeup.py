"""Local waiting for work that any process may push, without sleep loops or held connections.

A waiter makes one atomic, non-blocking attempt (a script); if nothing is ready it parks on an
asyncio future of a :class:`Signal` until the pub/sub listener reports new work, a timer says a
delayed entry is due, or its timeout ends, and then attempts again. Waiting holds no Redis
connection, so thousands of long-polls cost only memory.

Lost wake-ups are ruled out three ways: a notification that arrives while a waiter's attempt
is in flight bumps the signal's generation, which the waiter checks before parking; a waiter
that is cancelled after being woken hands the wake-up on; and an attempt that a cancelled
caller no longer wants is undone (:class:`GiveBacks`), so work is only taken by a live caller.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from avtomatika.core import clock
from avtomatika.errors import StorageUnavailable

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Attempt(NamedTuple, Generic[T]):
    """The outcome of one non-blocking take."""

    item: T | None
    more: bool = False
    """Another item is ready now: wake the next waiter."""
    next_at: float | None = None
    """When the earliest not-yet-ready item becomes ready (epoch seconds), if known."""


class Signal:
    """Coroutines waiting for one kind of work, woken one at a time in arrival order."""

    __slots__ = ("_futures", "_timer", "_timer_at", "generation", "users")

    def __init__(self) -> None:
        self._futures: dict[asyncio.Future[None], None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.generation = 0
        """Counts notifications, so a waiter can tell that one arrived during its attempt."""
        self.users = 0

    def notify(self) -> None:
        """New work may be ready: wake the longest waiter."""
        self.generation += 1
        self.wake_one()

    def notify_all(self) -> None:
        """Wake every waiter, e.g. after notifications may have been missed."""
        self.generation += 1
        futures, self._futures = self._futures, {}
        for future in futures:
            if not future.done():
                future.set_result(None)

    def wake_one(self) -> None:
        while self._futures:
            future = next(iter(self._futures))
            del self._futures[future]
            # A cancelled waiter's future is done before its coroutine gets to clean up.
            if not future.done():
                future.set_result(None)
                return

    def arm(self, at: float) -> None:
        """Notify at epoch time ``at`` (one timer, kept at the earliest time asked for)."""
        if not math.isfinite(at):
            return
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        delay = max(at - clock.now(), 0.0)
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf

    async def wait(self, seconds: float) -> None:
        """Park until woken or ``seconds`` pass; a cancelled waiter that was woken hands it on."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures[future] = None
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.wake_one()
            raise
        finally:
            self._futures.pop(future, None)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self.notify()


class Signals:
    """A :class:`Signal` per key (worker id), kept only while someone waits on it."""

    __slots__ = ("_signals",)

    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[Signal]:
        signal = self._signals.get(key)
        if signal is None:
            signal = self._signals[key] = Signal()
        signal.users += 1
        try:
            yield signal
        finally:
            signal.users -= 1
            if not signal.users:
                del self._signals[key]

    def notify(self, key: str) -> None:
        signal = self._signals.get(key)
        if signal is not None:
            signal.notify()

    def notify_all(self) -> None:
        for signal in self._signals.values():
            signal.notify_all()


async def take_or_wait(take: Callable[[], Awaitable[Attempt[T]]], signal: Signal, timeout: float) -> T | None:
    """Take an item now, or wait up to ``timeout`` seconds for one; the last attempt is made
    when the time is up, so an item that arrived just then is not missed."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        seen = signal.generation
        try:
            attempt = await take()
        except BaseException:
            # This waiter may have been the one woken for the work: let another try.
            signal.wake_one()
            raise
        if attempt.more:
            signal.wake_one()
        elif attempt.next_at is not None:
            signal.arm(attempt.next_at)
        if attempt.item is not None:
            return attempt.item
        remaining = give_up - loop.time()
        if remaining <= 0:
            return None
        if signal.generation == seen:
            await signal.wait(remaining)


class GiveBacks:
    """Undoing work taken for callers that were cancelled meanwhile (see ``Commands.take``)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[None]] = set()

    def spawn(self, undo: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(_undo(undo))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def wait(self) -> None:
        """Let every undo in progress finish (before the connection closes)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


async def _undo(undo: Coroutine[Any, Any, object]) -> None:
    # If this fails, the item stays taken: its deadline or lease returns it later.
    try:
        await undo
    except StorageUnavailable:
        logger.warning("Could not give back work taken for a cancelled waiter: storage unreachable")
    except Exception:
        logger.warning("Could not give back work taken for a cancelled waiter", exc_info=True)
