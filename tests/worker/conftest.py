from collections.abc import AsyncIterator

import pytest

from .fake_orchestrator import FakeOrchestrator


@pytest.fixture
async def orchestrator() -> AsyncIterator[FakeOrchestrator]:
    fake = FakeOrchestrator()
    await fake.start()
    yield fake
    await fake.stop()
