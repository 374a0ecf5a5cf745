"""The worker command channel (protocol.md §5.6): one WebSocket per worker per instance.

Authentication happens before the upgrade, so a bad token gets a 401 JSON error instead
of a socket that is opened and dropped.
"""

import asyncio
import logging

import msgspec
from aiohttp import WSMsgType, web

from avtomatika.core.codec import decode, encode
from avtomatika.engine import fleet
from avtomatika.errors import Forbidden, Unauthorized
from avtomatika.protocol.models import WorkerCommand, WorkerEventPayload
from avtomatika.server.app_keys import SERVICES_KEY
from avtomatika.server.worker_api import EVENT_SIGNATURE_EXCLUDE, identify, verify

logger = logging.getLogger(__name__)

CLOSE_HANDSHAKE_SECONDS = 1.0
"""How long closing a socket waits for the worker's reply to the close frame before it drops the
connection: a stopping instance does not wait on a worker that no longer reads."""
GOING_AWAY = 1001
"""The close code of a stopping instance (RFC 6455 §7.4.1): the worker reconnects elsewhere."""


class WebSocketManager:
    def __init__(self) -> None:
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._closed = False

    async def attach(self, worker_id: str, ws: web.WebSocketResponse) -> None:
        if self._closed:
            await ws.close(code=GOING_AWAY, message=b"Server shutdown")
            return
        previous = self._sockets.get(worker_id)
        self._sockets[worker_id] = ws
        if previous is not None and not previous.closed:
            await previous.close(code=1008, message=b"New connection established")

    def detach(self, worker_id: str, ws: web.WebSocketResponse) -> None:
        if self._sockets.get(worker_id) is ws:
            del self._sockets[worker_id]

    async def send(self, worker_id: str, command: WorkerCommand) -> bool:
        """Deliver a command if the worker is connected to this instance."""
        ws = self._sockets.get(worker_id)
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(encode(command).decode())
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def close_all(self, timeout: float) -> int:
        """Close every socket with 1001, and any opened afterwards; returns how many were open.
        A close still stuck after ``timeout`` (a worker that reads nothing, its buffer full) is
        cancelled, which drops the connection."""
        self._closed = True
        sockets = list(self._sockets.values())
        self._sockets.clear()
        closing = [
            asyncio.ensure_future(ws.close(code=GOING_AWAY, message=b"Server shutdown")) for ws in sockets
        ]
        if closing:
            _, stuck = await asyncio.wait(closing, timeout=timeout)
            for task in stuck:
                task.cancel()
        return len(sockets)


WS_MANAGER_KEY: web.AppKey[WebSocketManager] = web.AppKey("ws_manager")


async def command_channel(request: web.Request) -> web.WebSocketResponse:
    identity = identify(request, request.match_info["worker_id"])
    manager = request.app[WS_MANAGER_KEY]
    ws = web.WebSocketResponse(heartbeat=30.0, timeout=CLOSE_HANDSHAKE_SECONDS)
    await ws.prepare(request)
    await manager.attach(identity.worker_id, ws)
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await _inbound_event(request, identity.worker_id, message.data)
    finally:
        manager.detach(identity.worker_id, ws)
    return ws


async def _inbound_event(request: web.Request, worker_id: str, text: str) -> None:
    """Frames from the worker are events, handled like POST /_worker/events (errors only logged)."""
    try:
        raw = decode(text)
        if not isinstance(raw, dict) or raw.get("worker_id") != worker_id:
            raise ValueError("event frame must be an object whose worker_id is the connected worker")
        verify(request, identify(request, worker_id), raw, exclude=EVENT_SIGNATURE_EXCLUDE)
        event = msgspec.convert(raw, WorkerEventPayload)
        await fleet.apply_event(request.app[SERVICES_KEY], worker_id, event)
    except (ValueError, Unauthorized, Forbidden, msgspec.MsgspecError) as exc:
        logger.warning("Ignored WebSocket frame from worker %s: %s", worker_id, exc)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_worker/ws/{worker_id}", command_channel)
