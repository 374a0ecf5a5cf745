"""The orchestrator under benchmark: one echo blueprint, memory storage, one extra route
(``/bench/finished``) that reports how many jobs ended, so the load generator needs no polling."""

import os

from aiohttp import web

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.config import Config
from avtomatika.storage import MemoryStorage

bp = Blueprint(name="echo", api_version="v1", api_endpoint="/jobs/echo")


@bp.handler(is_start=True)
async def start(initial_data, actions):  # type: ignore[no-untyped-def]
    actions.dispatch_task(task_type="echo", params=initial_data, transitions={"success": "done"})


@bp.handler(is_end=True)
async def done() -> None:
    return None


def build() -> OrchestratorEngine:
    config = Config()
    config.LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
    engine = OrchestratorEngine(MemoryStorage(), config)
    engine.register_blueprint(bp)
    ended = {"count": 0}

    async def count(job_id: str, status: str, doc: dict[str, object]) -> None:
        ended["count"] += 1

    async def finished(request: web.Request) -> web.Response:
        return web.json_response(ended)

    engine.on_job_finished.append(count)
    engine.app.router.add_get("/bench/finished", finished)
    return engine


engine = build()
