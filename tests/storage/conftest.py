"""Backends the storage conformance suite runs against.

Every backend in :data:`BACKENDS` runs every test in ``test_conformance.py``. A factory is
an async generator that yields one fresh, empty, initialised backend and cleans up after
it; a backend whose server is unavailable calls ``tests.conftest.service_unavailable`` from its
factory (a skip locally, a failure in CI).
"""

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from avtomatika.storage import MemoryStorage, StorageBackend
from tests.conftest import free_port, require, service_unavailable

if TYPE_CHECKING:
    from avtomatika.storage.redis.backend import RedisStorage

BackendFactory = Callable[[], AsyncIterator[StorageBackend]]
OpenBackend = Callable[[], AbstractAsyncContextManager[StorageBackend]]


async def make_memory() -> AsyncIterator[StorageBackend]:
    storage = MemoryStorage()
    await storage.initialize()
    try:
        yield storage
    finally:
        await storage.close()


REDIS_URL = os.environ.get("AVTOMATIKA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def delete_redis_keys(prefix: str, url: str = REDIS_URL) -> None:
    """Remove every key under ``prefix`` (tests only: SCAN is never used by the backend)."""
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def redis_storages(count: int = 1, url: str = REDIS_URL) -> AsyncIterator[list["RedisStorage"]]:
    """``count`` initialised RedisStorage instances sharing one fresh key prefix (like instances
    of one deployment); their keys are deleted afterwards."""
    from redis.exceptions import RedisError

    from avtomatika.storage.redis.backend import RedisStorage

    prefix = f"avtomatika-test-{uuid.uuid4().hex[:16]}"
    storages = [RedisStorage.from_url(url, prefix=prefix) for _ in range(count)]
    try:
        for storage in storages:
            await storage.initialize()
    except (RedisError, OSError) as exc:
        for storage in storages:
            await storage.close()
        service_unavailable(f"Redis at {url} is unreachable: {exc}")
    try:
        yield list(storages)
    finally:
        for storage in storages:
            await storage.close()
        await delete_redis_keys(prefix, url)


async def make_redis() -> AsyncIterator[StorageBackend]:
    async with redis_storages() as (storage,):
        yield storage


BACKENDS: dict[str, BackendFactory] = {"memory": make_memory, "redis": make_redis}


@pytest.fixture(scope="session", params=sorted(BACKENDS))
def open_backend(request: pytest.FixtureRequest) -> OpenBackend:
    """Opens a fresh backend of the parametrised kind; property tests open one per example."""
    factory: BackendFactory = BACKENDS[request.param]
    return asynccontextmanager(factory)


@pytest.fixture
async def storage(open_backend: OpenBackend) -> AsyncIterator[StorageBackend]:
    async with open_backend() as backend:
        yield backend


# --- private servers, killed, paused and restarted by their PID only ----------------------


class PrivateRedis:
    """A throwaway redis-server on a free port, killed and restarted by its PID only."""

    def __init__(self, binary: str, workdir: str, *extra: str) -> None:
        port = free_port()
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._command += ["--dir", workdir, "--logfile", os.path.join(workdir, "redis.log"), *extra]
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._server = subprocess.Popen(self._command)

    def kill(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()
            self._server = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a frozen host)."""
        assert self._server is not None
        self._server.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._server is not None
        self._server.send_signal(signal.SIGCONT)


@contextmanager
def started_redis(*extra: str) -> Iterator[tuple[PrivateRedis, str]]:
    """A running private server (with ``extra`` arguments) and its working directory."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed")
    assert binary is not None
    workdir = tempfile.mkdtemp(prefix="avt-redis-")
    server = PrivateRedis(binary, workdir, *(arg.format(workdir=workdir) for arg in extra))
    server.start()
    try:
        yield server, workdir
    finally:
        if server._server is not None:
            server.resume()
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with started_redis() as (server, _):
        yield server


async def wait_for_server(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                await client.ping()
                return
            except RedisConnectionError:
                await asyncio.sleep(0.02)
        raise AssertionError(f"redis-server at {url} did not start")
    finally:
        await client.aclose()
