"""Who is calling: client tokens, worker tokens and worker message signatures.

Tokens are compared in constant time and never logged. Signatures are verified with the
credential that authenticated the request (protocol.md §11 #2-#3), so a worker signs with
exactly the token it sends.
"""

import hmac
from typing import Any, NamedTuple

from avtomatika.config import Config
from avtomatika.core.clock import now as clock_now
from avtomatika.errors import AuthError, SignatureError
from avtomatika.protocol import signing
from avtomatika.protocol.constants import REPLAY_WINDOW_SECONDS


class Client(NamedTuple):
    id: str
    plan: str
    params: dict[str, Any]


class WorkerIdentity(NamedTuple):
    worker_id: str
    credential: str


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class ClientRegistry:
    """Resolves ``X-Client-Token`` values to clients.

    ``Config.CLIENT_TOKEN`` is the built-in client ``default`` with no quota, as the Quick
    Start expects; clients from a clients file are added with :meth:`add`.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._clients: dict[str, Client] = {}

    def add(self, token: str, client: Client) -> None:
        self._clients[token] = client

    def authenticate(self, token: str | None) -> Client:
        if not token:
            raise AuthError("Missing X-Client-Token header")
        client = self._clients.get(token)
        if client is not None:
            return client
        default = self._config.CLIENT_TOKEN
        if default and _equal(token, default):
            return Client(id="default", plan="default", params={})
        raise AuthError("Invalid client token")


class WorkerAuthenticator:
    """Resolves ``X-Worker-Token`` plus the worker id the request speaks for."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def authenticate(self, token: str | None, worker_id: str) -> WorkerIdentity:
        if not token:
            raise AuthError("Missing X-Worker-Token header")
        shared = self._config.GLOBAL_WORKER_TOKEN
        if shared and _equal(token, shared):
            return WorkerIdentity(worker_id, token)
        raise AuthError("Invalid worker token")


def check_signature(
    config: Config,
    identity: WorkerIdentity,
    message: dict[str, Any],
    *,
    exclude: tuple[str, ...] = ("security",),
    required: bool = True,
    idempotent: bool = False,
) -> None:
    """Verify ``message['security']`` per ``WORKER_SIGNATURE_POLICY``.

    ``require``: a worker whose token signs (see :func:`signing.signs_with`) must sign;
    ``verify``: signatures are checked when present; ``off``: nothing is checked.
    ``idempotent`` messages (task results) skip the replay window: applying one twice changes
    nothing, while refusing an authentic one that a worker resends after an outage longer than
    the window would lose its work.
    """
    policy = config.WORKER_SIGNATURE_POLICY
    if policy == "off":
        return
    security = message.get("security") or {}
    claimed = security.get("signature") if isinstance(security, dict) else None
    if not claimed:
        if required and policy == "require" and signing.signs_with(identity.credential):
            raise SignatureError("Missing required cryptographic signature")
        return
    signer = security.get("signer_id")
    if signer is not None and signer != identity.worker_id:
        raise SignatureError(f"Message signer ID '{signer}' does not match worker ID '{identity.worker_id}'")
    timestamp = message.get("timestamp")
    if not isinstance(timestamp, int | float):
        raise SignatureError("Missing required timestamp for replay protection")
    if not idempotent and abs(clock_now() - timestamp) > REPLAY_WINDOW_SECONDS:
        raise SignatureError("Message timestamp expired (replay protection)")
    if not isinstance(claimed, str) or not signing.verify(
        identity.credential, message, claimed, exclude=exclude
    ):
        raise SignatureError("Invalid cryptographic signature")
