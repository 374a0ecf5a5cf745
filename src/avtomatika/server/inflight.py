"""The requests an instance is serving, so that stopping waits for them for a bounded time and
then cancels the rest itself: aiohttp's own shutdown timeout is never what bounds a stop.

A request cancelled this way loses its connection; every client of ours resends on a network
error (a result is applied once however often it arrives).
"""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNWIND_SECONDS = 1.0
"""How long cancelled requests get to unwind (a request is never waited on past this)."""


class InFlightRequests:
    """The tasks of requests in progress (long-polls and WebSocket channels included)."""

    __slots__ = ("_idle", "_tasks")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Future[None] | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None, "aiohttp runs each request in a task"
        self._tasks.add(task)
        try:
            return await handler(request)
        finally:
            self._tasks.discard(task)
            if not self._tasks and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    async def finish(self, seconds: float) -> int:
        """Wait up to ``seconds`` for every request in progress to end, then cancel those still
        running and wait for them to unwind; returns how many were cancelled."""
        if self._tasks:
            self._idle = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._idle], timeout=max(seconds, 0.0))
        stragglers = list(self._tasks)
        for task in stragglers:
            task.cancel()
        if stragglers:
            await asyncio.wait(stragglers, timeout=UNWIND_SECONDS)
        return len(stragglers)
