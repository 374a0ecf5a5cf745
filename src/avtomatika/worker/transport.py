"""The worker's one seam to the wire: a method per RXON worker route (protocol.md §3, W1-W5, W7).

Every outgoing message is stamped with the current epoch ``timestamp`` and, when the token is one
the protocol signs with, an HMAC ``security`` block over the canonical form (protocol.md §2.3).
Stamping happens per attempt, so a retried message never falls outside the replay window.
"""

import logging
from typing import Any, Final, TypeVar

import aiohttp
import msgspec

from avtomatika.core import clock
from avtomatika.core.codec import decode, encode, to_builtins
from avtomatika.protocol import signing
from avtomatika.protocol.constants import PROTOCOL_VERSION, VERSION_HEADER, WORKER_TOKEN_HEADER
from avtomatika.protocol.models import (
    Heartbeat,
    HeartbeatResponse,
    ResultResponse,
    SecurityContext,
    TaskPayload,
    TaskResult,
    WorkerEventPayload,
    WorkerRegistration,
)
from avtomatika.worker.backoff import NETWORK_ERRORS, Backoff, retry_transient
from avtomatika.worker.errors import OrchestratorError, WorkerUnknownError

logger = logging.getLogger(__name__)

TRANSPORT_ERRORS: Final = (*NETWORK_ERRORS, OrchestratorError)
"""What any call may raise besides cancellation; retry loops catch exactly these."""

# The server holds a long-poll for its own timeout; the client waits this much longer so that a
# task popped at the last moment still reaches us (protocol.md §5.2, §11 #13).
POLL_GRACE_SECONDS: Final = 5.0
# Every other call is a quick acknowledgement; waiting longer only delays the retry.
REQUEST_TIMEOUT_SECONDS: Final = 10.0
# A result is tried this often, the first retry after this delay, doubling: 1, 2, 4 and 8 s, as the
# published SDK does (protocol.md §9). The 15 s outlast an instance that stops (its listener
# closes first) and comes back, or a load balancer moving the address to another instance.
RESULT_ATTEMPTS: Final = 5
RESULT_RETRY_DELAY_SECONDS: Final = 1.0
# Events are excluded from the signature's canonical form with their bubbling chain (§2.3).
EVENT_SIGNATURE_EXCLUDE: Final = ("security", "bubbling_chain")

SignedMessage = TypeVar("SignedMessage", WorkerRegistration, Heartbeat, TaskResult, WorkerEventPayload)
Reply = TypeVar("Reply", HeartbeatResponse, ResultResponse, TaskPayload)


class Transport:
    """HTTP and WebSocket calls of one worker against one orchestrator."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        worker_id: str,
        *,
        poll_timeout: float,
        result_attempts: int = RESULT_ATTEMPTS,
        result_retry_delay: float = RESULT_RETRY_DELAY_SECONDS,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._worker_id = worker_id
        self._poll_timeout = poll_timeout
        self._result_attempts = result_attempts
        self._result_retry_delay = result_retry_delay
        self._headers = {WORKER_TOKEN_HEADER: token, VERSION_HEADER: PROTOCOL_VERSION}

    async def register(self, registration: WorkerRegistration) -> None:
        """W1. Logs the orchestrator's protocol-version ``warning`` when it sends one."""
        path = "/_worker/workers/register"
        reply = decode(await self._call("POST", path, self._seal(registration)) or b"null")
        if isinstance(reply, dict) and reply.get("warning"):
            logger.warning("orchestrator registration warning: %s", reply["warning"])

    async def heartbeat(self, heartbeat: Heartbeat) -> HeartbeatResponse | None:
        """W4. Raises :class:`WorkerUnknownError` on 404: the orchestrator forgot this worker."""
        path = f"/_worker/workers/{self._worker_id}"
        try:
            body = await self._call("PATCH", path, self._seal(heartbeat))
        except OrchestratorError as exc:
            if exc.status == 404:
                raise WorkerUnknownError("PATCH", path, exc.status, exc.body) from None
            raise
        # A body-less heartbeat of an unknown worker is answered with JSON null (protocol.md §5.4).
        if not body or body.strip() == b"null":
            return None
        return _convert("PATCH", path, body, HeartbeatResponse)

    async def poll(self) -> TaskPayload | None:
        """W2 long-poll: the next task, or ``None`` when the server's hold ended empty (204)."""
        path = f"/_worker/workers/{self._worker_id}/tasks/next"
        body = await self._call("GET", path, None, wait_seconds=self._poll_timeout + POLL_GRACE_SECONDS)
        return _convert("GET", path, body, TaskPayload) if body else None

    async def send_result(self, result: TaskResult) -> ResultResponse:
        """W3, retried with backoff on network errors and 5xx; a 4xx is final and raised at once."""
        backoff = Backoff(self._result_retry_delay, 30.0)
        what = f"result of task {result.task_id}"
        return await retry_transient(
            lambda: self._deliver_result(result), backoff, what, self._result_attempts
        )

    async def _deliver_result(self, result: TaskResult) -> ResultResponse:
        path = "/_worker/tasks/result"
        return _convert("POST", path, await self._call("POST", path, self._seal(result)), ResultResponse)

    async def send_event(self, event: WorkerEventPayload) -> None:
        """W5. One attempt: events such as progress are advisory and superseded by the next one."""
        await self._call("POST", "/_worker/events", self._seal(event, exclude=EVENT_SIGNATURE_EXCLUDE))

    async def open_command_socket(self) -> aiohttp.ClientWebSocketResponse:
        """W7: the channel on which the orchestrator pushes ``WorkerCommand`` frames."""
        return await self._session.ws_connect(
            f"{self._base_url}/_worker/ws/{self._worker_id}",
            headers=self._headers,
            heartbeat=30.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=REQUEST_TIMEOUT_SECONDS),
        )

    def _seal(self, message: SignedMessage, *, exclude: tuple[str, ...] = ("security",)) -> bytes:
        return seal(message, token=self._token, signer_id=self._worker_id, exclude=exclude)

    async def _call(
        self, method: str, path: str, body: bytes | None, *, wait_seconds: float | None = None
    ) -> bytes:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self._session.request(
            method,
            self._base_url + path,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=wait_seconds or REQUEST_TIMEOUT_SECONDS),
        ) as response:
            payload = await response.read()
            if response.status >= 400:
                raise OrchestratorError(method, path, response.status, payload.decode(errors="replace"))
            return payload


def _convert(method: str, path: str, body: bytes, kind: type[Reply]) -> Reply:
    try:
        return msgspec.convert(decode(body), kind)
    except msgspec.MsgspecError as exc:
        raise OrchestratorError(method, path, 200, f"malformed reply: {exc}") from exc


def seal(
    message: SignedMessage, *, token: str, signer_id: str, exclude: tuple[str, ...] = ("security",)
) -> bytes:
    """The JSON body of ``message``: timestamped now and, if ``token`` signs, HMAC-signed (§2.3)."""
    body: dict[str, Any] = to_builtins(msgspec.structs.replace(message, timestamp=clock.now()))
    if signing.signs_with(token):
        signature = signing.signature(token, body, exclude=exclude)
        body["security"] = to_builtins(SecurityContext(signature=signature, signer_id=signer_id))
    return encode(body)
