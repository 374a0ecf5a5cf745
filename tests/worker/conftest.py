from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from avtomatika.worker import Worker

from .fake_orchestrator import TOKEN, FakeOrchestrator

MakeWorker = Callable[..., Worker]


@pytest.fixture
async def fake_orchestrator() -> AsyncIterator[FakeOrchestrator]:
    fake = FakeOrchestrator()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make_worker(fake_orchestrator: FakeOrchestrator) -> AsyncIterator[MakeWorker]:
    """Workers tuned for fast tests against the fake orchestrator; all stopped afterwards."""
    workers: list[Worker] = []

    def make(**options: Any) -> Worker:
        settings: dict[str, Any] = {
            "worker_id": "w-1",
            "heartbeat_interval": 0.2,
            "poll_timeout": 1.0,
            "shutdown_timeout": 2.0,
            "websocket": False,
        } | options
        worker = Worker(fake_orchestrator.url, TOKEN, **settings)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop()
