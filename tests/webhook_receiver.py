"""A local webhook endpoint on loopback that records every delivery attempt and its time."""

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.conftest import free_port


class Receiver:
    """Answers each delivery with ``answer(attempt_number)`` (204 unless told otherwise) and
    records it: ``attempts`` holds every try as ``(loop time, body)``, ``received`` the bodies
    it accepted with a 2xx."""

    def __init__(self, answer: Callable[[int], int] = lambda attempt: 204) -> None:
        self.answer = answer
        self.attempts: list[tuple[float, dict[str, Any]]] = []
        self.received: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.attempts.append((asyncio.get_running_loop().time(), body))
        status = self.answer(len(self.attempts))
        if 200 <= status < 300:
            self.received.append(body)
        return web.Response(status=status)

    async def events(self, count: int, kind: str = "", timeout: float = 10.0) -> list[dict[str, Any]]:
        """The accepted deliveries whose event starts with ``kind``, once there are ``count``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [r for r in self.received if r["event"].startswith(kind)]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{count} {kind!r} webhook(s) never arrived: {self.received}")
            await asyncio.sleep(0.02)
