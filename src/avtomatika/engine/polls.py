"""The long-polls an instance holds, so that a stopping instance answers every one of them at once.

A poll is registered by its request's own task, whatever its worker id: ids that no instance has
registered, or that storage keeps no waiter for, are released as surely as any other. Releasing
cancels the task once and the poll turns exactly that cancellation into an empty answer (the
handler replies 204), the way ``asyncio.timeout`` turns its own cancellation into a timeout; any
other cancellation propagates. Storage's waiting is cancellation-safe (no task is taken for a
cancelled waiter, or it is given back), so a released poll loses nothing.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class HeldPolls:
    """Long-polls in progress on this instance; :meth:`release_all` ends them all, empty."""

    __slots__ = ("_held", "_released", "closed")

    def __init__(self) -> None:
        self._held: set[asyncio.Task[Any]] = set()
        self._released: set[asyncio.Task[Any]] = set()
        self.closed = False
        """Set by :meth:`release_all`: a poll arriving afterwards is answered empty at once."""

    def __len__(self) -> int:
        return len(self._held)

    async def hold(self, poll: Coroutine[Any, Any, T | None]) -> T | None:
        """Await ``poll`` in the calling task; None if :meth:`release_all` ended it first."""
        if self.closed:
            poll.close()
            return None
        task = asyncio.current_task()
        assert task is not None, "a poll runs in a task"
        self._held.add(task)
        try:
            return await poll
        except asyncio.CancelledError:
            if task in self._released and task.uncancel() == 0:
                return None
            raise
        finally:
            self._held.discard(task)
            self._released.discard(task)

    def release_all(self) -> int:
        """Answer every held poll empty, and every later one; returns how many were held."""
        self.closed = True
        pending = self._held - self._released
        for task in pending:
            self._released.add(task)
            task.cancel()
        return len(pending)
