"""A scriptable stand-in for the orchestrator's worker routes (protocol.md §3 W1-W5, W7).

It checks what a strict orchestrator checks — token and version headers, fresh timestamps and
valid HMAC signatures — records every message, and lets a test queue tasks and script replies.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from avtomatika.core import clock
from avtomatika.core.codec import decode, encode
from avtomatika.protocol import signing
from avtomatika.protocol.constants import PROTOCOL_VERSION, VERSION_HEADER, WORKER_TOKEN_HEADER

TOKEN = "test-worker-token"


class FakeOrchestrator:
    def __init__(self, token: str = TOKEN, poll_hold: float = 0.5) -> None:
        self.token = token
        self.poll_hold = poll_hold
        self.registrations: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.rejections: list[str] = []
        self.known_workers: set[str] = set()
        self.tasks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.polls_in_flight = 0
        self.max_polls_in_flight = 0
        self.poll_count = 0
        self.cancel_on_next_heartbeat: list[str] = []
        self.require_full_sync_once = False
        self.result_failures: list[int] = []  # statuses answered (in order) before accepting results
        self.register_status: int | None = None
        self.sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.post("/_worker/workers/register", self._register),
                web.patch("/_worker/workers/{worker_id}", self._heartbeat),
                web.get("/_worker/workers/{worker_id}/tasks/next", self._poll),
                web.post("/_worker/tasks/result", self._result),
                web.post("/_worker/events", self._event),
                web.get("/_worker/ws/{worker_id}", self._socket),
            ]
        )
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def queue_task(self, task_type: str, params: dict[str, Any] | None = None, **fields: Any) -> str:
        task_id = fields.pop("task_id", f"task-{self.tasks.qsize()}-{time.monotonic_ns()}")
        self.tasks.put_nowait(
            {
                "job_id": fields.pop("job_id", task_id),
                "task_id": task_id,
                "type": task_type,
                "params": params or {},
            }
            | fields
        )
        return task_id

    async def send_command(self, command: dict[str, Any]) -> None:
        for socket in self.sockets:
            if not socket.closed:
                await socket.send_str(encode(command).decode())

    def result_for(self, task_id: str) -> dict[str, Any] | None:
        return next((r for r in self.results if r["task_id"] == task_id), None)

    # -- checks shared by every route -------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        ok = request.headers.get(WORKER_TOKEN_HEADER) == self.token
        ok = ok and request.headers.get(VERSION_HEADER) == PROTOCOL_VERSION
        if not ok:
            self.rejections.append(f"headers on {request.path}")
        return ok

    async def _signed_body(
        self, request: web.Request, exclude: tuple[str, ...] = ("security",)
    ) -> dict[str, Any] | web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        body = decode(await request.read())
        problem = self._signature_problem(body, exclude)
        if problem:
            self.rejections.append(f"{problem} on {request.path}")
            return web.json_response({"error": problem}, status=403)
        return body

    def _signature_problem(self, body: dict[str, Any], exclude: tuple[str, ...]) -> str | None:
        if not signing.signs_with(self.token):
            return None
        security = body.get("security") or {}
        if "signature" not in security:
            return "Missing required cryptographic signature"
        if abs(clock.now() - float(body.get("timestamp") or 0)) > 60:
            return "Message timestamp expired (replay protection)"
        if not signing.verify(self.token, body, security["signature"], exclude=exclude):
            return "Invalid cryptographic signature"
        return None

    # -- routes ------------------------------------------------------------------------------

    async def _register(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request)
        if isinstance(body, web.Response):
            return body
        if self.register_status is not None:
            return web.json_response({"error": "scripted"}, status=self.register_status)
        self.registrations.append(body)
        self.known_workers.add(body["worker_id"])
        return web.json_response({"status": "registered", "version": PROTOCOL_VERSION, "warning": None})

    async def _heartbeat(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request)
        if isinstance(body, web.Response):
            return body
        self.heartbeats.append(body)
        if request.match_info["worker_id"] not in self.known_workers:
            return web.json_response({"error": "Worker not found"}, status=404)
        reply: dict[str, Any] = {"status": "ok", "next_heartbeat_jitter_ms": 0}
        if self.cancel_on_next_heartbeat:
            reply["cancel_task_ids"], self.cancel_on_next_heartbeat = self.cancel_on_next_heartbeat, []
        if self.require_full_sync_once:
            reply["require_full_sync"], self.require_full_sync_once = True, False
        return web.json_response(reply)

    async def _poll(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        self.poll_count += 1
        self.polls_in_flight += 1
        self.max_polls_in_flight = max(self.max_polls_in_flight, self.polls_in_flight)
        try:
            async with asyncio.timeout(self.poll_hold):
                task = await self.tasks.get()
        except TimeoutError:
            return web.Response(status=204)
        finally:
            self.polls_in_flight -= 1
        return web.json_response(task)

    async def _result(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request)
        if isinstance(body, web.Response):
            return body
        if self.result_failures:
            return web.json_response({"error": "scripted"}, status=self.result_failures.pop(0))
        self.results.append(body)
        return web.json_response({"status": "accepted", "transition": "success_transition"})

    async def _event(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request, exclude=("security", "bubbling_chain"))
        if isinstance(body, web.Response):
            return body
        self.events.append(body)
        return web.json_response({"status": "event_accepted"})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        async for _ in socket:
            pass
        return socket


async def eventually(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Wait until ``predicate()`` is truthy; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.01)
