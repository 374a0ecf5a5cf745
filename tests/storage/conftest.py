"""Backends the storage conformance suite runs against.

Every backend in :data:`BACKENDS` runs every test in ``test_conformance.py``. A factory is
an async generator that yields one fresh, empty, initialised backend and cleans up after
it; a backend whose server is unavailable should ``pytest.skip`` from its factory.
"""

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

import pytest

from avtomatika.storage import MemoryStorage, StorageBackend

if TYPE_CHECKING:
    from avtomatika.storage.redis import RedisStorage

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


def service_unavailable(reason: str) -> NoReturn:
    """Skip locally; fail when the run requires real services (CI sets AVTOMATIKA_REQUIRE_SERVICES=1)."""
    if os.environ.get("AVTOMATIKA_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


async def delete_redis_keys(prefix: str, url: str = REDIS_URL) -> None:
    """Remove every key under ``prefix`` (tests only: SCAN is never used by the backend)."""
    import redis.asyncio as aioredis

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

    from avtomatika.storage.redis import RedisStorage

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
