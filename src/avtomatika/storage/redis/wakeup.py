"""Waiting for work that any process may push, without sleep loops or held connections.

The waiting itself is the storage's shared primitive (``avtomatika.storage.waiting``): a waiter makes one
atomic, non-blocking attempt (a script) and, if nothing is ready, parks until the pub/sub
listener reports new work, a timer says a delayed entry is due, or its timeout ends. Waiting
holds no Redis connection, so thousands of long-polls cost only memory.

What is particular to Redis is that an attempt is a round trip a cancelled caller may abandon
half-way, after the script took an item: :class:`GiveBacks` undoes such attempts, so work is only
taken by a live caller.
"""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from avtomatika.errors import StorageUnavailable

logger = logging.getLogger(__name__)


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
