"""Waiting for work without sleep loops, shared by every backend's ``claim_run`` and ``poll_task``.

A waiter makes one non-blocking attempt; if nothing is ready it parks on an asyncio future of a
:class:`Signal` until the backend reports new work (``notify``), a timer says a delayed item is
due, or its timeout ends, and then attempts again.

Lost wake-ups are ruled out: a notification that arrives while a waiter's attempt is in flight
bumps the signal's generation, which the waiter checks before parking; a waiter woken for work
it then cannot take (it failed, or was cancelled) hands the wake-up on; a waiter that takes an
item while more are ready wakes the next. A backend whose attempt can be cut off half-way must
also give back what an abandoned attempt took (the Redis backend's ``GiveBacks``), so that work
is only taken by a live caller.
"""

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, NamedTuple, TypeVar

from avtomatika.core import clock

T = TypeVar("T")


class Attempt(NamedTuple, Generic[T]):
    """The outcome of one non-blocking take."""

    item: T | None
    more: bool = False
    """Another item is ready now: wake the next waiter."""
    next_at: float | None = None
    """When the earliest not-yet-ready item becomes ready (epoch seconds), if known."""


class Signal:
    """Coroutines waiting for one kind of work, woken one at a time in arrival order."""

    __slots__ = ("_futures", "_timer", "_timer_at", "_timer_loop", "generation", "users")

    def __init__(self) -> None:
        self._futures: dict[asyncio.Future[None], None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0
        """Counts notifications, so a waiter can tell that one arrived during its attempt."""
        self.users = 0

    def __bool__(self) -> bool:
        """Whether a coroutine is parked here."""
        return bool(self._futures)

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
        """Notify at epoch time ``at`` (one timer, kept at the earliest time asked for; re-armed
        if the event loop changed, as a backend may outlive one)."""
        if not math.isfinite(at):
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer_at <= at and self._timer_loop is loop:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer_loop = loop
        self._timer = loop.call_later(max(at - clock.now(), 0.0), self._on_timer)

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
