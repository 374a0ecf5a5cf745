"""The orchestrator under benchmark: one echo blueprint, memory storage, one extra route
(``/bench/finished``) that reports how many jobs ended, so the load generator needs no polling."""

import os

from aiohttp import web

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.config import Config
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.protocol.constants import TERMINAL_STATUSES
from avtomatika.storage import MemoryStorage, StorageBackend

bp = Blueprint(name="echo", api_version="v1", api_endpoint="/jobs/echo")


@bp.handler(is_start=True)
async def start(initial_data, actions):  # type: ignore[no-untyped-def]
    actions.dispatch_task(task_type="echo", params=initial_data, transitions={"success": "done"})


@bp.handler(is_end=True)
async def done() -> None:
    return None


def counting(base: type[StorageBackend]) -> type[StorageBackend]:
    """``base`` that counts commits ending a job, so the load generator needs no polling."""

    class Counting(base):  # type: ignore[valid-type,misc]
        ended = 0

        async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
            committed: bool = await super().commit(job, expected_version, effects)
            if committed and job.status in TERMINAL_STATUSES:
                type(self).ended += 1
            return committed

    return Counting


def make_storage() -> StorageBackend:
    if os.environ.get("BENCH_STORAGE") == "redis":
        from avtomatika.storage.redis.backend import RedisStorage

        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        return counting(RedisStorage)(url=url, prefix=f"bench-{os.getpid()}")  # type: ignore[call-arg]
    return counting(MemoryStorage)()


def build() -> OrchestratorEngine:
    config = Config()
    config.LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
    storage = make_storage()
    engine = OrchestratorEngine(storage, config)
    engine.register_blueprint(bp)

    async def finished(request: web.Request) -> web.Response:
        return web.json_response({"count": type(storage).ended})  # type: ignore[attr-defined]

    engine.app.router.add_get("/bench/finished", finished)
    return engine


engine = build()
