"""Worker API (RXON v1 over HTTP, protocol.md §3 W1-W5): register, poll, result, heartbeat, events."""

import asyncio
import re
from typing import Any, TypeVar

from aiohttp import web

from avtomatika.access.identity import WorkerIdentity, check_signature
from avtomatika.core.codec import encode
from avtomatika.engine import fleet, results
from avtomatika.engine.services import Services
from avtomatika.errors import Forbidden, InvalidRequest, StorageUnavailable
from avtomatika.protocol.constants import (
    PROTOCOL_VERSION,
    VERSION_HEADER,
    WORKER_ID_PATTERN,
    WORKER_TOKEN_HEADER,
)
from avtomatika.protocol.models import (
    Heartbeat,
    RegistrationResponse,
    TaskResult,
    WorkerEventPayload,
    WorkerRegistration,
)
from avtomatika.server.app_keys import SERVICES_KEY
from avtomatika.server.body import convert, json_response, read_object

_WORKER_ID = re.compile(WORKER_ID_PATTERN)
T = TypeVar("T")
EVENT_SIGNATURE_EXCLUDE = ("security", "bubbling_chain")
HOLD_PAUSE_SECONDS = 0.5
"""Pause between attempts of a held result (each attempt already waits out the storage's retries)."""


def _services(request: web.Request) -> Services:
    return request.app[SERVICES_KEY]


def identify(request: web.Request, worker_id: object) -> WorkerIdentity:
    if not isinstance(worker_id, str) or not worker_id:
        raise InvalidRequest("worker_id (a non-empty string) is required")
    return _services(request).worker_auth.authenticate(request.headers.get(WORKER_TOKEN_HEADER), worker_id)


def verify(request: web.Request, identity: WorkerIdentity, raw: dict[str, Any], **kwargs: Any) -> None:
    check_signature(_services(request).config, identity, raw, **kwargs)


async def read_signed(
    request: web.Request,
    kind: type[T],
    what: str,
    exclude: tuple[str, ...] = ("security",),
    *,
    idempotent: bool = False,
) -> tuple[WorkerIdentity, T]:
    """A signed worker message: authenticated by its ``worker_id``, verified, then typed."""
    raw = await read_object(request)
    assert raw is not None
    identity = identify(request, raw.get("worker_id"))
    verify(request, identity, raw, exclude=exclude, idempotent=idempotent)
    return identity, convert(raw, kind, what)


async def register(request: web.Request) -> web.Response:
    _, registration = await read_signed(request, WorkerRegistration, "WorkerRegistration payload")
    if not _WORKER_ID.match(registration.worker_id):
        raise InvalidRequest(f"worker_id '{registration.worker_id}' must match {WORKER_ID_PATTERN}")
    await fleet.register(_services(request), registration)
    sent = request.headers.get(VERSION_HEADER)
    warning = None
    if sent and sent != PROTOCOL_VERSION:
        warning = f"Protocol version mismatch! Worker speaks {sent}, orchestrator speaks {PROTOCOL_VERSION}."
    return json_response(RegistrationResponse(status="registered", version=PROTOCOL_VERSION, warning=warning))


async def next_task(request: web.Request) -> web.StreamResponse:
    services = _services(request)
    identity = identify(request, request.match_info["worker_id"])
    timeout = services.config.WORKER_POLL_TIMEOUT_SECONDS
    record = await fleet.next_task(services, identity.worker_id, timeout)
    if record is None:
        return web.Response(status=204)
    transport = request.transport
    if transport is None or transport.is_closing():
        # The worker gave up waiting: hand the task back rather than lose it.
        await services.storage.requeue_task(record.task_id)
        return web.Response(status=204)
    return web.Response(body=encode(record.payload), content_type="application/json")


async def post_result(request: web.Request) -> web.Response:
    """Apply a result; during a storage outage the request is held until storage answers (up
    to ``RESULT_HOLD_SECONDS``): the published SDK drops a result answered with an error status,
    but waits for a slow answer, and applying a result again is idempotent."""
    services = _services(request)
    identity, result = await read_signed(request, TaskResult, "TaskResult payload", idempotent=True)
    loop = asyncio.get_running_loop()
    hold_until = loop.time() + services.config.RESULT_HOLD_SECONDS
    while True:
        try:
            response = await results.apply_result(services, identity.worker_id, result)
        except StorageUnavailable:
            if loop.time() >= hold_until:
                raise
            await asyncio.sleep(HOLD_PAUSE_SECONDS)
            continue
        return json_response(response)


async def heartbeat(request: web.Request) -> web.Response:
    identity = identify(request, request.match_info["worker_id"])
    raw = await read_object(request, allow_empty=True)
    beat: Heartbeat | None = None
    if raw is not None:
        raw.setdefault("worker_id", identity.worker_id)
        if raw["worker_id"] != identity.worker_id:
            raise Forbidden(f"Heartbeat for '{raw['worker_id']}' sent on the path of '{identity.worker_id}'")
        # A departing worker's last "offline" beat is accepted unsigned (protocol.md §11 #4).
        verify(request, identity, raw, required=raw.get("status") != "offline")
        beat = convert(raw, Heartbeat, "Heartbeat payload")
    response = await fleet.heartbeat(_services(request), identity.worker_id, beat)
    return json_response(response)


async def post_event(request: web.Request) -> web.Response:
    identity, event = await read_signed(request, WorkerEventPayload, "event payload", EVENT_SIGNATURE_EXCLUDE)
    await fleet.apply_event(_services(request), identity.worker_id, event)
    return json_response({"status": "event_accepted"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/_worker/workers/register", register)
    app.router.add_get("/_worker/workers/{worker_id}/tasks/next", next_task)
    app.router.add_post("/_worker/tasks/result", post_result)
    app.router.add_patch("/_worker/workers/{worker_id}", heartbeat)
    app.router.add_post("/_worker/events", post_event)
