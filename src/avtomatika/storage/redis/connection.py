"""How the Redis backend talks to Redis: connections of its own, or a redis-py client.

redis-py spends about 100 µs of Python on every command (a pool checkout under a timeout, a
retry wrapper, its encoder, coroutine-per-read parsing): most of the orchestrator's cost on the
hot path. :class:`Multiplexed` instead packs each command with hiredis, sends the commands
issued in one event-loop turn in one write, and parses replies with hiredis as bytes arrive,
handing each to the future at the head of a FIFO (Redis answers a connection's commands in
order). Nothing the backend sends blocks on the server (waiting is local, ``storage.waiting``),
so sharing one socket delays no one, and the callers' own concurrency bounds what is in flight.

Commands are not retried here (``retry`` decides what is sent again). A lost connection
fails every command in flight with ``ConnectionError``; the next command connects again. A
connection on which replies stop coming for ``STALL_SECONDS`` while commands wait (a partitioned
or frozen server: TCP alone may not notice for hours) is dropped the same way. A command
that takes work (:meth:`Commands.take`) hands its reply to a give-back callback when its caller
was cancelled meanwhile, so what it took is returned, never dropped with the reply.
"""

import asyncio
import collections
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

Arg = str | bytes | int | float
Command = Sequence[Arg]
Options = dict[str, Any]
GiveBack = Callable[[Any], None]
"""Receives the reply of a taking command whose caller is gone (called from the event loop)."""

CONNECT_TIMEOUT = 10.0
"""Seconds to open a socket and authenticate, unless the URL sets ``socket_connect_timeout``."""
STALL_SECONDS = 30.0
"""Seconds without a reply while commands wait, after which a connection is given up. Long,
because commands sent on a dropped connection may still run: work they took comes back only by
its lease or deadline, whereas a server that resumes answers on the same connection."""
_SUPPORTED = frozenset(
    {"host", "port", "path", "db", "username", "password", "client_name", "socket_connect_timeout"}
)
"""URL options our connections honour; a URL with others (TLS, socket timeouts, ...) is served
by redis-py."""
_INCOMPLETE = object()
_MESSAGE = b"message"
_pack = cast(Callable[[tuple[Arg, ...]], bytes], hiredis.pack_command)
"""hiredis's packer (its stub mistypes the argument as a one-element tuple)."""


def connection_options(url: str) -> Options | None:
    """What :func:`connect` needs for ``url``, or None if it needs what only redis-py has."""
    options: Options = dict(parse_url(url))
    # The scheme alone says TCP or a Unix socket (parse_url also names redis-py's class for it).
    options.pop("connection_class", None)
    if urlsplit(url).scheme not in ("redis", "unix") or not _SUPPORTED.issuperset(options):
        return None
    return options


class Commands(Protocol):
    """What the backend needs from a connection: raw commands, replies as RESP2 gives them."""

    async def execute(self, *args: Arg) -> Any: ...

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Several commands sent together (not a transaction); replies in order."""
        ...

    async def take(self, command: Command, give_back: GiveBack) -> Any:
        """Run a command that takes work; if the caller is cancelled before the reply is
        handed over, the reply goes to ``give_back`` instead."""
        ...

    async def aclose(self) -> None: ...


class ClientCommands:
    """Commands through a redis-py client, used as configured (pool, retries, TLS)."""

    __slots__ = ("_client", "_owned")

    def __init__(self, client: aioredis.Redis, *, owned: bool) -> None:
        self._client = client
        self._owned = owned

    async def execute(self, *args: Arg) -> Any:
        return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute()

    async def take(self, command: Command, give_back: GiveBack) -> Any:
        # redis-py drops a cancelled command's connection: the command runs in a task of its own.
        task = asyncio.ensure_future(self.execute(*command))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(partial(_orphaned, give_back))
            raise

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose(close_connection_pool=True)


class Multiplexed:
    """One connection shared by every caller of a storage instance (see the module docstring)."""

    __slots__ = ("_closed", "_connecting", "_options", "_protocol")

    def __init__(self, options: Options) -> None:
        self._options = options
        self._protocol: RespProtocol | None = None
        self._connecting: asyncio.Task[RespProtocol] | None = None
        self._closed = False

    async def execute(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.lost.done():
            protocol = await self._connected()
        return await protocol.send(_pack(args))

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        protocol = self._protocol
        if protocol is None or protocol.lost.done():
            protocol = await self._connected()
        return await asyncio.gather(*(protocol.send(_pack(tuple(command))) for command in commands))

    async def take(self, command: Command, give_back: GiveBack) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.lost.done():
            protocol = await self._connected()
        reply = protocol.send(_pack(tuple(command)), give_back)
        try:
            return await reply
        except asyncio.CancelledError:
            # Cancelled after the reply arrived but before this coroutine resumed with it
            # (had it come later, the protocol would hand it to give_back).
            if reply.done() and not reply.cancelled() and reply.exception() is None:
                give_back(reply.result())
            raise

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._protocol is not None:
            await self._protocol.aclose()

    async def _connected(self) -> "RespProtocol":
        """The open connection; concurrent callers share one attempt to open it."""
        if self._closed:
            raise RedisConnectionError("The Redis connection was closed")
        if self._connecting is None:
            self._connecting = asyncio.create_task(connect(self._options))
            self._connecting.add_done_callback(self._opened)
        return await asyncio.shield(self._connecting)

    def _opened(self, task: "asyncio.Task[RespProtocol]") -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._protocol = task.result()


async def connect(options: Options, on_message: Callable[[bytes], None] | None = None) -> "RespProtocol":
    """Open and authenticate a connection; ``on_message`` receives the data of pub/sub messages."""
    loop = asyncio.get_running_loop()
    timeout = options.get("socket_connect_timeout") or CONNECT_TIMEOUT
    protocol: RespProtocol | None = None
    try:
        async with asyncio.timeout(timeout):
            if "path" in options:
                _, protocol = await loop.create_unix_connection(
                    lambda: RespProtocol(on_message), options["path"]
                )
            else:
                host, port = options.get("host", "localhost"), options.get("port", 6379)
                _, protocol = await loop.create_connection(lambda: RespProtocol(on_message), host, port)
            await asyncio.gather(*(protocol.send(command) for command in _handshake(options)))
    except BaseException as exc:
        if protocol is not None:
            protocol.close()
        if isinstance(exc, OSError | TimeoutError):
            raise RedisConnectionError(f"Cannot connect to Redis: {exc!r}") from exc
        raise
    return protocol


def _handshake(options: Options) -> list[bytes]:
    """AUTH, SELECT and CLIENT SETNAME, as the URL asks."""
    commands: list[tuple[Arg, ...]] = []
    if options.get("password") is not None:
        username = options.get("username")
        credentials = (options["password"],) if username is None else (username, options["password"])
        commands.append(("AUTH", *credentials))
    if options.get("db"):
        commands.append(("SELECT", options["db"]))
    if options.get("client_name"):
        commands.append(("CLIENT", "SETNAME", options["client_name"]))
    return [_pack(command) for command in commands]


class RespProtocol(asyncio.Protocol):
    """One socket: writes queued and flushed once per loop turn, replies matched to futures in
    order. Pub/sub messages (never a reply to a command) go to ``on_message`` instead."""

    def __init__(self, on_message: Callable[[bytes], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        self._reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        self._transport: asyncio.Transport | None = None
        self._waiting: collections.deque[tuple[asyncio.Future[Any], GiveBack | None]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._progress = self._loop.time()
        """When the last reply arrived, or the first command was sent to an idle connection."""
        self._watchdog: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = self._loop.create_future()
        """Done once the connection is gone; nothing can be sent on it any more."""

    def send(self, packed: bytes, give_back: GiveBack | None = None) -> "asyncio.Future[Any]":
        """Queue a command; its reply resolves the future, or goes to ``give_back`` if the
        future was cancelled meanwhile."""
        if self.lost.done():
            raise RedisConnectionError("The connection to Redis was lost")
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        if not self._waiting:
            self._progress = self._loop.time()
        self._outgoing.append(packed)
        reply = self._loop.create_future()
        self._waiting.append((reply, give_back))
        return reply

    async def call(self, *args: Arg) -> Any:
        return await self.send(_pack(args))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def aclose(self) -> None:
        """Close, and wait until the connection is gone."""
        self.close()
        await self.lost

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if outgoing and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(outgoing))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._watchdog = self._loop.call_later(STALL_SECONDS / 3, self._check_stall)

    def _check_stall(self) -> None:
        if self._waiting and self._loop.time() - self._progress > STALL_SECONDS:
            self._fail(RedisConnectionError(f"Redis sent no reply for {STALL_SECONDS:g}s"))
            if self._transport is not None:
                self._transport.abort()
            return
        self._watchdog = self._loop.call_later(STALL_SECONDS / 3, self._check_stall)

    def data_received(self, data: bytes) -> None:
        self._progress = self._loop.time()
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not _INCOMPLETE:
                if self._on_message is not None and type(reply) is list and reply[:1] == [_MESSAGE]:
                    self._on_message(reply[2])
                    continue
                waiter, give_back = self._waiting.popleft()
                if waiter.done():  # its caller was cancelled
                    if give_back is not None and not isinstance(reply, hiredis.ReplyError):
                        give_back(reply)
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    waiter.set_exception(_error(str(reply)))
                else:
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            # Unparseable bytes or a reply nobody asked for: the stream cannot be trusted.
            self._fail(RedisConnectionError(f"Redis protocol error: {exc!r}"))
            if self._transport is not None:
                self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail(RedisConnectionError(f"Connection to Redis lost: {exc or 'closed'}"))

    def _fail(self, error: Exception) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._outgoing.clear()
        waiting, self._waiting = self._waiting, collections.deque()
        for waiter, _ in waiting:
            if not waiter.done():
                waiter.set_exception(error)


def _orphaned(give_back: GiveBack, done: "asyncio.Future[Any]") -> None:
    if not done.cancelled() and done.exception() is None:
        give_back(done.result())


_ERRORS: dict[str, type[RedisError]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "READONLY": ReadOnlyError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
}
"""Error replies redis-py raises as their own exception classes (as its parser does)."""


def _error(message: str) -> RedisError:
    return _ERRORS.get(message.partition(" ")[0], ResponseError)(message)
