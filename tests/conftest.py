"""Shared fixtures: a real orchestrator on a free loopback port, and HTTP clients for it."""

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import aiohttp
import pytest

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.config import Config
from avtomatika.storage import MemoryStorage

CLIENT_TOKEN = "test-client-token"
WORKER_TOKEN = "test-worker-token"


def service_unavailable(reason: str) -> NoReturn:
    """Skip locally; fail when the run requires every service and tool the suite uses (Redis,
    redis-server, Graphviz): CI sets AVTOMATIKA_REQUIRE_SERVICES=1, so nothing it needs is skipped."""
    if os.environ.get("AVTOMATIKA_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def require(available: bool, reason: str) -> None:
    """``require(shutil.which("dot") is not None, "Graphviz 'dot' is not installed")``: see
    :func:`service_unavailable`."""
    if not available:
        service_unavailable(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_config(**overrides: Any) -> Config:
    config = Config(environ={})
    config.API_HOST = "127.0.0.1"
    config.API_PORT = 0
    config.CLIENT_TOKEN = CLIENT_TOKEN
    config.GLOBAL_WORKER_TOKEN = WORKER_TOKEN
    config.WATCHER_INTERVAL_SECONDS = 0.1
    config.WORKER_POLL_TIMEOUT_SECONDS = 0.5
    config.TASK_RETRY_BASE_DELAY_SECONDS = 0.05
    config.LOG_LEVEL = "WARNING"
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


class Orchestrator:
    """A started engine plus helpers that speak its client API."""

    def __init__(self, engine: OrchestratorEngine, session: aiohttp.ClientSession) -> None:
        self.engine = engine
        self.session = session
        self.url = f"http://127.0.0.1:{engine.port}"
        self.headers = {"X-Client-Token": CLIENT_TOKEN}

    async def create_job(self, path: str, initial_data: dict[str, Any] | None = None, **extra: Any) -> str:
        body = {"initial_data": initial_data or {}, **extra}
        async with self.session.post(self.url + path, json=body, headers=self.headers) as resp:
            assert resp.status == 202, await resp.text()
            return str((await resp.json())["job_id"])

    async def job(self, job_id: str) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/api/v1/jobs/{job_id}", headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            doc: dict[str, Any] = await resp.json()
            return doc

    async def wait_for(
        self, job_id: str, statuses: tuple[str, ...] = ("finished",), timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll the job until its status is one of ``statuses`` (or any terminal status)."""
        terminal = {"finished", "failed", "quarantined", "cancelled"}
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            doc = await self.job(job_id)
            if doc["status"] in statuses or doc["status"] in terminal:
                return doc
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"job {job_id} stuck: {doc}")
            await asyncio.sleep(0.02)


OrchestratorFactory = Callable[..., contextlib.AbstractAsyncContextManager[Orchestrator]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def orchestrator(http: aiohttp.ClientSession) -> OrchestratorFactory:
    """``async with orchestrator(bp1, bp2, **config_overrides) as orch`` runs a real engine."""

    @contextlib.asynccontextmanager
    async def start(
        *blueprints: Blueprint, storage: Any = None, **overrides: Any
    ) -> AsyncIterator[Orchestrator]:
        engine = OrchestratorEngine(storage or MemoryStorage(), make_config(**overrides))
        for bp in blueprints:
            engine.register_blueprint(bp)
        await engine.start()
        try:
            yield Orchestrator(engine, http)
        finally:
            await engine.stop()

    return start


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fresh storage backend; tests taking it run once on memory and once on a real Redis."""
    if request.param == "memory":
        yield MemoryStorage()
        return
    from tests.storage.conftest import redis_storages

    async with redis_storages(1) as (storage,):
        yield storage
