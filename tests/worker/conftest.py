import logging
from collections.abc import AsyncIterator, Callable, Iterator
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


@pytest.fixture
def worker_log() -> Iterator[list[str]]:
    """Messages logged by ``avtomatika.worker.*`` at INFO and above.

    Not pytest's ``caplog``: a started engine reconfigures root logging, after which caplog
    stops seeing records for the rest of the session.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.INFO)
    logger = logging.getLogger("avtomatika.worker")
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(previous_level)
