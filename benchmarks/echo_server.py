"""The orchestrator under benchmark: one echo blueprint, memory storage, one extra route
(``/bench/finished``) that reports how many jobs ended, so the load generator needs no polling."""

import os

from aiohttp import web

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.config import Config
from avtomatika.protocol.constants import TERMINAL_STATUSES
from avtomatika.records import Job
from avtomatika.storage import Effects, MemoryStorage

bp = Blueprint(name="echo", api_version="v1", api_endpoint="/jobs/echo")


@bp.handler(is_start=True)
async def start(initial_data, actions):  # type: ignore[no-untyped-def]
    actions.dispatch_task(task_type="echo", params=initial_data, transitions={"success": "done"})


@bp.handler(is_end=True)
async def done() -> None:
    return None


class CountingMemoryStorage(MemoryStorage):
    """Counts commits that end a job, so the benchmark needs no per-job callback or polling."""

    ended = 0

    async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
        committed = await super().commit(job, expected_version, effects)
        if committed and job.status in TERMINAL_STATUSES:
            self.ended += 1
        return committed


def build() -> OrchestratorEngine:
    config = Config()
    config.LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
    storage = CountingMemoryStorage()
    engine = OrchestratorEngine(storage, config)
    engine.register_blueprint(bp)

    async def finished(request: web.Request) -> web.Response:
        return web.json_response({"count": storage.ended})

    engine.app.router.add_get("/bench/finished", finished)
    return engine


engine = build()
