"""Backends the storage conformance suite runs against.

Every backend in :data:`BACKENDS` runs every test in ``test_conformance.py``. A factory is
an async generator that yields one fresh, empty, initialised backend and cleans up after
it; a backend whose server is unavailable should ``pytest.skip`` from its factory.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from avtomatika.storage import MemoryStorage, StorageBackend

BackendFactory = Callable[[], AsyncIterator[StorageBackend]]
OpenBackend = Callable[[], AbstractAsyncContextManager[StorageBackend]]


async def make_memory() -> AsyncIterator[StorageBackend]:
    storage = MemoryStorage()
    await storage.initialize()
    try:
        yield storage
    finally:
        await storage.close()


BACKENDS: dict[str, BackendFactory] = {"memory": make_memory}


@pytest.fixture(scope="session", params=sorted(BACKENDS))
def open_backend(request: pytest.FixtureRequest) -> OpenBackend:
    """Opens a fresh backend of the parametrised kind; property tests open one per example."""
    factory: BackendFactory = BACKENDS[request.param]
    return asynccontextmanager(factory)


@pytest.fixture
async def storage(open_backend: OpenBackend) -> AsyncIterator[StorageBackend]:
    async with open_backend() as backend:
        yield backend
